//! Per-address connection counts for `max.connections.per.ip` (Kafka's
//! `ConnectionQuotas`). The accept loop asks for a slot before it serves a connection;
//! the slot is given back when the connection's task ends, however it ends.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};

use crate::config::BrokerConfig;

/// Open connections per client address.
#[derive(Default)]
pub struct ConnectionQuotas {
    counts: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's claim on its address's count; dropping it releases the claim.
pub struct ConnectionSlot {
    quotas: Arc<ConnectionQuotas>,
    ip: IpAddr,
}

impl ConnectionQuotas {
    /// Takes a slot for a connection from `ip`, or `None` if `ip` already holds as many
    /// connections as the config allows it (the caller closes the new one at once).
    pub fn try_acquire(
        self: &Arc<Self>,
        config: &BrokerConfig,
        ip: IpAddr,
    ) -> Option<ConnectionSlot> {
        let ip = ip.to_canonical();
        let limit = config.max_connections_for(ip);
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let n = counts.entry(ip).or_insert(0);
        if *n >= limit {
            if *n == 0 {
                counts.remove(&ip);
            }
            return None;
        }
        *n += 1;
        Some(ConnectionSlot {
            quotas: self.clone(),
            ip,
        })
    }

    /// Connections `ip` holds open now.
    pub fn count(&self, ip: IpAddr) -> usize {
        let counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.get(&ip.to_canonical()).copied().unwrap_or(0)
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut counts = self
            .quotas
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = counts.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn slots_are_counted_per_address_and_released_on_drop() {
        let config = BrokerConfig::from_explicit(BTreeMap::from([
            ("max.connections.per.ip".to_string(), "2".to_string()),
            (
                "max.connections.per.ip.overrides".to_string(),
                "127.0.0.3:0".to_string(),
            ),
        ]))
        .unwrap_or_else(|e| panic!("{e}"));
        let q = Arc::new(ConnectionQuotas::default());
        let a: IpAddr = [127, 0, 0, 1].into();
        let b: IpAddr = [127, 0, 0, 2].into();
        let first = q.try_acquire(&config, a);
        let second = q.try_acquire(&config, a);
        assert!(first.is_some() && second.is_some());
        assert!(
            q.try_acquire(&config, a).is_none(),
            "a third from one address"
        );
        assert_eq!(q.count(a), 2);
        assert!(
            q.try_acquire(&config, b).is_some(),
            "another address is not affected"
        );
        assert!(
            q.try_acquire(&config, [127, 0, 0, 3].into()).is_none(),
            "override 0"
        );
        drop(first);
        assert_eq!(q.count(a), 1);
        assert!(
            q.try_acquire(&config, a).is_some(),
            "a released slot is reusable"
        );
    }
}
