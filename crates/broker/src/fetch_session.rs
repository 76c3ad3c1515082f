//! Incremental fetch sessions (KIP-227).
//!
//! A client that opens a session (epoch 0) gets a session id; later requests with the
//! next epoch list only partitions whose fetch position changed, plus forgotten ones, and
//! the response carries only partitions with news (data, an error, or a moved high
//! watermark, last stable offset or log start offset).
//!
//! Memory is bounded twice: by sessions (`max.incremental.fetch.session.cache.slots`) and
//! by the partitions all sessions hold together ([`MAX_CACHED_PARTITIONS`]). Only
//! partitions that exist are ever stored (the fetch handler answers the others without a
//! session), each at most once per session. When a new session does not fit, the least
//! recently used ones are evicted (their clients are told the id is gone and fall back
//! to a full fetch); a session that alone exceeds the budget is not created, and its
//! client fetches without one, as KIP-227 allows.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use uuid::Uuid;

/// Partitions all sessions may hold together (about 100 bytes each).
pub const MAX_CACHED_PARTITIONS: usize = 500_000;

/// A partition as the session remembers it.
#[derive(Debug, Clone)]
pub struct SessionPartition {
    pub topic: Arc<str>,
    pub topic_id: Uuid,
    pub partition: i32,
    pub fetch_offset: i64,
    pub max_bytes: i32,
    pub current_leader_epoch: i32,
    /// The epoch of the last batch the fetcher has (v12+; followers), or -1.
    pub last_fetched_epoch: i32,
    /// What the client was last told; a change is news.
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
}

struct Session {
    epoch: i32,
    partitions: Vec<SessionPartition>,
    /// Position of each (topic, partition) in `partitions`.
    index: HashMap<(Arc<str>, i32), usize>,
    last_used: Instant,
}

impl Session {
    fn new(partitions: Vec<SessionPartition>) -> Self {
        let mut s = Self {
            epoch: 1,
            partitions: Vec::with_capacity(partitions.len()),
            index: HashMap::with_capacity(partitions.len()),
            last_used: Instant::now(),
        };
        for p in partitions {
            s.upsert(p);
        }
        s
    }

    fn upsert(&mut self, u: SessionPartition) {
        match self.index.get(&(u.topic.clone(), u.partition)) {
            Some(&i) => {
                let p = &mut self.partitions[i];
                p.fetch_offset = u.fetch_offset;
                p.max_bytes = u.max_bytes;
                p.current_leader_epoch = u.current_leader_epoch;
                p.last_fetched_epoch = u.last_fetched_epoch;
            }
            None => {
                self.index
                    .insert((u.topic.clone(), u.partition), self.partitions.len());
                self.partitions.push(u);
            }
        }
    }

    fn reindex(&mut self) {
        self.index.clear();
        for (i, p) in self.partitions.iter().enumerate() {
            self.index.insert((p.topic.clone(), p.partition), i);
        }
    }
}

/// Why an incremental request was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum SessionError {
    NotFound,
    InvalidEpoch,
}

pub struct FetchSessionCache {
    max_slots: usize,
    max_partitions: usize,
    inner: Mutex<Inner>,
}

struct Inner {
    sessions: HashMap<i32, Session>,
    /// Partitions held by all sessions.
    partitions: usize,
    next_id: i32,
}

impl Inner {
    fn remove(&mut self, id: i32) -> Option<Session> {
        let s = self.sessions.remove(&id)?;
        self.partitions -= s.partitions.len();
        Some(s)
    }

    /// Evicts least recently used sessions other than `keep` until `room` more
    /// partitions and one more session fit. Returns whether they do.
    fn make_room(&mut self, keep: i32, room: usize, max_slots: usize, max: usize) -> bool {
        if room > max {
            return false;
        }
        while self.partitions + room > max || self.sessions.len() >= max_slots {
            let oldest = self
                .sessions
                .iter()
                .filter(|(id, _)| **id != keep)
                .min_by_key(|(_, s)| s.last_used)
                .map(|(id, _)| *id);
            match oldest {
                Some(id) => {
                    self.remove(id);
                }
                None => return self.partitions + room <= max,
            }
        }
        true
    }
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
        Self::with_partition_budget(max_slots, MAX_CACHED_PARTITIONS)
    }

    pub fn with_partition_budget(max_slots: usize, max_partitions: usize) -> Self {
        let seed = (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.subsec_nanos())
            & 0x3fff_ffff) as i32;
        Self {
            max_slots,
            max_partitions,
            inner: Mutex::new(Inner {
                sessions: HashMap::new(),
                partitions: 0,
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
        self.lock().remove(id);
    }

    /// Partitions held by all sessions (for tests and metrics).
    pub fn cached_partitions(&self) -> usize {
        self.lock().partitions
    }

    /// Sessions held, and the partitions they hold together (for metrics).
    pub fn sizes(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.sessions.len(), inner.partitions)
    }

    /// Creates a session holding `partitions`; returns its id, or 0 when sessions are
    /// disabled or it does not fit.
    pub fn create(&self, partitions: Vec<SessionPartition>) -> i32 {
        if self.max_slots == 0 {
            return 0;
        }
        let session = Session::new(partitions);
        let mut inner = self.lock();
        let n = session.partitions.len();
        if !inner.make_room(0, n, self.max_slots, self.max_partitions) {
            return 0;
        }
        let mut id = inner.next_id;
        while id == 0 || inner.sessions.contains_key(&id) {
            id = id.wrapping_add(1).max(1);
        }
        inner.next_id = id.wrapping_add(1).max(1);
        inner.partitions += n;
        inner.sessions.insert(id, session);
        id
    }

    /// Applies an incremental request: `updates` are added or replace what the session
    /// holds, `forgotten` (topic, partition) pairs are dropped. Returns the partitions to
    /// fetch, in session order. A session that would outgrow the budget is dropped
    /// (`NotFound`: the client starts over with a full fetch).
    pub fn update(
        &self,
        id: i32,
        epoch: i32,
        updates: Vec<SessionPartition>,
        forgotten: &[(Uuid, String, i32)],
    ) -> Result<Vec<SessionPartition>, SessionError> {
        let mut inner = self.lock();
        let s = inner.sessions.get(&id).ok_or(SessionError::NotFound)?;
        if s.epoch != epoch {
            return Err(SessionError::InvalidEpoch);
        }
        let mut s = inner.remove(id).ok_or(SessionError::NotFound)?;
        s.last_used = Instant::now();
        if !forgotten.is_empty() {
            s.partitions.retain(|p| {
                !forgotten.iter().any(|(tid, name, idx)| {
                    *idx == p.partition
                        && (**name == *p.topic || (!tid.is_nil() && *tid == p.topic_id))
                })
            });
            s.reindex();
        }
        for u in updates {
            s.upsert(u);
        }
        let n = s.partitions.len();
        if !inner.make_room(id, n, self.max_slots.saturating_add(1), self.max_partitions) {
            return Err(SessionError::NotFound);
        }
        let plan = s.partitions.clone();
        inner.partitions += n;
        inner.sessions.insert(id, s);
        Ok(plan)
    }

    /// Records what the response told the client and advances the epoch.
    pub fn commit(&self, id: i32, sent: &[SessionPartition]) {
        let mut inner = self.lock();
        if let Some(s) = inner.sessions.get_mut(&id) {
            for n in sent {
                if let Some(&i) = s.index.get(&(n.topic.clone(), n.partition)) {
                    let p = &mut s.partitions[i];
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
            last_fetched_epoch: -1,
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
            .map(|p| (p.topic.to_string(), p.partition, p.fetch_offset))
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

    /// Sessions together never hold more partitions than the budget; a session that
    /// alone exceeds it is not created, and one that grows past it is dropped.
    #[test]
    fn partitions_are_bounded_across_sessions() {
        let cache = FetchSessionCache::with_partition_budget(100, 10);
        let many = |t: &str, n: i32| (0..n).map(|i| sp(t, i, 0)).collect::<Vec<_>>();
        assert_eq!(cache.create(many("big", 11)), 0);
        let a = cache.create(many("a", 6));
        assert_ne!(a, 0);
        // The same partition twice is stored once.
        let mut dup = many("b", 2);
        dup.extend(many("b", 2));
        let b = cache.create(dup);
        assert_eq!(cache.cached_partitions(), 8);
        // Making room for 4 more evicts the least recently used session (a).
        let c = cache.create(many("c", 4));
        assert_ne!(c, 0);
        assert_eq!(cache.cached_partitions(), 6);
        assert_eq!(
            cache.update(a, 1, vec![], &[]).unwrap_err(),
            SessionError::NotFound
        );
        // Growing b past the budget on its own drops it.
        assert_eq!(
            cache.update(b, 1, many("x", 9), &[]).unwrap_err(),
            SessionError::NotFound
        );
        assert!(cache.cached_partitions() <= 10);
        assert!(cache.update(c, 1, vec![], &[]).is_ok());
    }

    #[test]
    fn disabled_cache_hands_out_no_sessions() {
        assert_eq!(FetchSessionCache::new(0).create(vec![]), 0);
    }
}
