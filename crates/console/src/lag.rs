//! Lag over time: a sampler thread asks for every consumer group's total lag each
//! interval and keeps the samples in a bounded ring buffer per group, which the group
//! page draws as an inline SVG plot.
//!
//! Bounded memory: at most `HISTORY` samples per group and `MAX_GROUPS` groups; a group
//! that disappears from ListGroups is forgotten.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::cluster::Cluster;

/// Samples kept per group: 30 minutes at the default 5 s interval.
pub const HISTORY: usize = 360;
/// Groups tracked at most (the rest are listed but not plotted).
pub const MAX_GROUPS: usize = 1000;

#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Sample {
    /// Milliseconds since the epoch.
    pub at_ms: i64,
    pub lag: i64,
}

/// Per-group ring buffers of total lag. A `std` mutex: held only to copy in or out.
#[derive(Default)]
pub struct LagHistory {
    groups: Mutex<BTreeMap<String, VecDeque<Sample>>>,
}

impl LagHistory {
    pub fn record(&self, group: &str, sample: Sample) {
        let Ok(mut groups) = self.groups.lock() else {
            return;
        };
        if !groups.contains_key(group) && groups.len() >= MAX_GROUPS {
            return;
        }
        let ring = groups.entry(group.to_string()).or_default();
        if ring.len() == HISTORY {
            ring.pop_front();
        }
        ring.push_back(sample);
    }

    /// Forgets groups that are no longer listed.
    pub fn retain(&self, live: &[String]) {
        if let Ok(mut groups) = self.groups.lock() {
            groups.retain(|g, _| live.contains(g));
        }
    }

    pub fn samples(&self, group: &str) -> Vec<Sample> {
        self.groups
            .lock()
            .ok()
            .and_then(|g| g.get(group).map(|r| r.iter().copied().collect()))
            .unwrap_or_default()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Stops the sampler thread when dropped (the server's shutdown).
pub struct Sampler {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    /// Starts sampling every `interval` on a thread of its own (librdkafka blocks).
    pub fn start(
        cluster: Arc<Cluster>,
        history: Arc<LagHistory>,
        interval: Duration,
    ) -> std::io::Result<Self> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("console-lag".into())
            .spawn(move || loop {
                sample_once(&cluster, &history);
                // A message or a dropped sender both end the loop.
                if !matches!(
                    stopped.recv_timeout(interval),
                    Err(mpsc::RecvTimeoutError::Timeout)
                ) {
                    return;
                }
            })?;
        Ok(Self {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn sample_once(cluster: &Cluster, history: &LagHistory) {
    let groups = match cluster.group_list() {
        Ok(g) => g,
        Err(e) => {
            tracing::debug!("lag sampler: {e}");
            return;
        }
    };
    let names: Vec<String> = groups.into_iter().map(|g| g.name).collect();
    history.retain(&names);
    for g in &names {
        match cluster.group_offsets(g) {
            Ok(offsets) => history.record(
                g,
                Sample {
                    at_ms: now_ms(),
                    lag: offsets.iter().map(|o| o.lag).sum(),
                },
            ),
            Err(e) => tracing::debug!("lag sampler: group {g}: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_is_a_bounded_ring() {
        let h = LagHistory::default();
        for i in 0..(HISTORY as i64 + 10) {
            h.record("g", Sample { at_ms: i, lag: i });
        }
        let s = h.samples("g");
        assert_eq!(s.len(), HISTORY);
        assert_eq!(s.first().map(|s| s.at_ms), Some(10));
        h.retain(&[]);
        assert!(h.samples("g").is_empty());
    }
}
