//! Incremental fetch sessions (KIP-227).
//!
//! A client that opens a session (epoch 0) gets a session id; later requests with the
//! next epoch list only partitions whose fetch position changed, plus forgotten ones, and
//! the response carries only partitions with news (data, an error, or a moved high
//! watermark, last stable offset or log start offset). The cache is bounded
//! (`max.incremental.fetch.session.cache.slots`); the least recently used session is
//! evicted, and its client falls back to a full fetch when told the id is gone.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use uuid::Uuid;

/// A partition as the session remembers it.
#[derive(Debug, Clone)]
pub struct SessionPartition {
    pub topic: String,
    pub topic_id: Uuid,
    pub partition: i32,
    pub fetch_offset: i64,
    pub max_bytes: i32,
    pub current_leader_epoch: i32,
    /// What the client was last told; a change is news.
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
}

struct Session {
    epoch: i32,
    partitions: Vec<SessionPartition>,
    last_used: Instant,
}

/// Why an incremental request was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum SessionError {
    NotFound,
    InvalidEpoch,
}

pub struct FetchSessionCache {
    max_slots: usize,
    inner: Mutex<Inner>,
}

struct Inner {
    sessions: HashMap<i32, Session>,
    next_id: i32,
}

/// Epochs run 1..=i32::MAX and wrap to 1; 0 opens and -1 closes a session.
pub fn next_epoch(e: i32) -> i32 {
    if e == i32::MAX {
        1
    } else {
        e + 1
    }
}

impl FetchSessionCache {
    pub fn new(max_slots: usize) -> Self {
        let seed = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.subsec_nanos())
            & 0x3fff_ffff) as i32;
        Self {
            max_slots,
            inner: Mutex::new(Inner {
                sessions: HashMap::new(),
                next_id: seed.max(1),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        match self.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    pub fn remove(&self, id: i32) {
        self.lock().sessions.remove(&id);
    }

    /// Creates a session holding `partitions`; returns its id, or 0 when sessions are
    /// disabled.
    pub fn create(&self, partitions: Vec<SessionPartition>) -> i32 {
        if self.max_slots == 0 {
            return 0;
        }
        let mut inner = self.lock();
        if inner.sessions.len() >= self.max_slots {
            if let Some(oldest) = inner
                .sessions
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(id, _)| *id)
            {
                inner.sessions.remove(&oldest);
            }
        }
        let mut id = inner.next_id;
        while id == 0 || inner.sessions.contains_key(&id) {
            id = id.wrapping_add(1).max(1);
        }
        inner.next_id = id.wrapping_add(1).max(1);
        inner.sessions.insert(
            id,
            Session {
                epoch: 1,
                partitions,
                last_used: Instant::now(),
            },
        );
        id
    }

    /// Applies an incremental request: `updates` are added or replace what the session
    /// holds, `forgotten` (topic, partition) pairs are dropped. Returns the partitions to
    /// fetch, in session order.
    pub fn update(
        &self,
        id: i32,
        epoch: i32,
        updates: Vec<SessionPartition>,
        forgotten: &[(Uuid, String, i32)],
    ) -> Result<Vec<SessionPartition>, SessionError> {
        let mut inner = self.lock();
        let s = inner.sessions.get_mut(&id).ok_or(SessionError::NotFound)?;
        if s.epoch != epoch {
            return Err(SessionError::InvalidEpoch);
        }
        s.last_used = Instant::now();
        s.partitions.retain(|p| {
            !forgotten.iter().any(|(tid, name, idx)| {
                *idx == p.partition && (*name == p.topic || (!tid.is_nil() && *tid == p.topic_id))
            })
        });
        for u in updates {
            match s
                .partitions
                .iter_mut()
                .find(|p| p.topic == u.topic && p.partition == u.partition)
            {
                Some(p) => {
                    p.fetch_offset = u.fetch_offset;
                    p.max_bytes = u.max_bytes;
                    p.current_leader_epoch = u.current_leader_epoch;
                }
                None => s.partitions.push(u),
            }
        }
        Ok(s.partitions.clone())
    }

    /// Records what the response told the client and advances the epoch.
    pub fn commit(&self, id: i32, sent: &[SessionPartition]) {
        let mut inner = self.lock();
        if let Some(s) = inner.sessions.get_mut(&id) {
            for p in &mut s.partitions {
                if let Some(n) = sent
                    .iter()
                    .find(|n| n.topic == p.topic && n.partition == p.partition)
                {
                    p.high_watermark = n.high_watermark;
                    p.last_stable_offset = n.last_stable_offset;
                    p.log_start_offset = n.log_start_offset;
                }
            }
            s.epoch = next_epoch(s.epoch);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sp(topic: &str, partition: i32, offset: i64) -> SessionPartition {
        SessionPartition {
            topic: topic.into(),
            topic_id: Uuid::nil(),
            partition,
            fetch_offset: offset,
            max_bytes: 1024,
            current_leader_epoch: -1,
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
        }
    }

    #[test]
    fn session_lifecycle() {
        let cache = FetchSessionCache::new(2);
        let id = cache.create(vec![sp("a", 0, 0), sp("a", 1, 0)]);
        assert_ne!(id, 0);
        assert_eq!(
            cache.update(id, 2, vec![], &[]).unwrap_err(),
            SessionError::InvalidEpoch
        );
        let parts = cache
            .update(
                id,
                1,
                vec![sp("a", 0, 5), sp("b", 0, 0)],
                &[(Uuid::nil(), "a".into(), 1)],
            )
            .unwrap();
        let got: Vec<(String, i32, i64)> = parts
            .iter()
            .map(|p| (p.topic.clone(), p.partition, p.fetch_offset))
            .collect();
        assert_eq!(got, vec![("a".into(), 0, 5), ("b".into(), 0, 0)]);
        cache.commit(id, &parts);
        assert!(cache.update(id, 2, vec![], &[]).is_ok());
        assert_eq!(
            cache.update(12345, 1, vec![], &[]).unwrap_err(),
            SessionError::NotFound
        );
        // Eviction of the least recently used.
        let b = cache.create(vec![]);
        let c = cache.create(vec![]);
        assert_eq!(
            cache.update(id, 3, vec![], &[]).unwrap_err(),
            SessionError::NotFound
        );
        assert!(cache.update(b, 1, vec![], &[]).is_ok());
        assert!(cache.update(c, 1, vec![], &[]).is_ok());
        assert_eq!(next_epoch(i32::MAX), 1);
    }

    #[test]
    fn disabled_cache_hands_out_no_sessions() {
        assert_eq!(FetchSessionCache::new(0).create(vec![]), 0);
    }
}
