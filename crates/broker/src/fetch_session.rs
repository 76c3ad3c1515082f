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
//!
//! A round costs what changed, not what the session holds. Each partition the session
//! holds remembers the [`Partition`] it resolved to and, once a round found nothing new
//! there (no data, no error, the client caught up and told the current watermarks), the
//! partition's change counter at that moment ([`Held::settled`]). Later rounds skip it
//! while the counter is unchanged and the client does not list it: its answer would be
//! the same empty one. Anything a fetch answer depends on bumps the counter (see
//! `Partition::version`), and so does a request that lists the partition again. The
//! session's `Notify` is registered with each partition once and woken on every
//! change, so a parked round needs no per-round registration either.

use std::collections::HashMap;
use std::sync::atomic::AtomicI64;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::Notify;
use uuid::Uuid;

use crate::partition::Partition;
use crate::replication::state::FetchClock;

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
    /// The hosted partition this resolved to, registered with the session's `Notify`.
    pub held: Option<Held>,
}

/// A session partition's hosted partition, and the change counter at which a round
/// last found nothing new for the client there (`None`: it must be looked at).
#[derive(Clone)]
pub struct Held {
    pub partition: Arc<Partition>,
    pub settled: Option<u64>,
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Held")
            .field("partition", &(&self.partition.topic, self.partition.index))
            .field("settled", &self.settled)
            .finish()
    }
}

impl SessionPartition {
    /// Whether a round may skip this partition: it settled, and nothing changed since.
    pub fn skippable(&self) -> bool {
        self.held.as_ref().is_some_and(|h| {
            h.settled
                .is_some_and(|version| h.partition.version() == version)
        })
    }
}

/// What a session round works with.
#[derive(Debug)]
pub struct Round {
    /// Every partition the session holds, in session order.
    pub plan: Vec<SessionPartition>,
    /// Partitions the request made the session forget.
    pub forgotten: Vec<SessionPartition>,
    /// Woken by a change to any partition registered with it.
    pub watch: Arc<Notify>,
    pub clock: FetchClock,
}

struct Session {
    epoch: i32,
    watch: Arc<Notify>,
    clock: FetchClock,
    partitions: Vec<SessionPartition>,
    /// Position of each (topic, partition) in `partitions`.
    index: HashMap<(Arc<str>, i32), usize>,
    last_used: Instant,
}

impl Session {
    fn new(partitions: Vec<SessionPartition>, watch: Arc<Notify>, clock: FetchClock) -> Self {
        let mut s = Self {
            epoch: 1,
            watch,
            clock,
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
                // Listed again: looked at this round, whatever it settled at.
                if let Some(h) = &mut p.held {
                    h.settled = None;
                }
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
    /// Partitions incremental rounds looked at (not skipped), for metrics and tests.
    looked: std::sync::atomic::AtomicU64,
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
            looked: std::sync::atomic::AtomicU64::new(0),
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

    /// An incremental round looked at `n` partitions.
    pub fn note_looked(&self, n: usize) {
        self.looked
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// Partitions incremental rounds looked at so far (the others were skipped).
    pub fn looked(&self) -> u64 {
        self.looked.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sessions held, and the partitions they hold together (for metrics).
    pub fn sizes(&self) -> (usize, usize) {
        let inner = self.lock();
        (inner.sessions.len(), inner.partitions)
    }

    /// Creates a session holding `partitions` (as the full fetch that opened it left
    /// them, registered with `watch`); returns its id, or 0 when sessions are disabled
    /// or it does not fit.
    pub fn create(
        &self,
        partitions: Vec<SessionPartition>,
        watch: Arc<Notify>,
        clock: FetchClock,
    ) -> i32 {
        if self.max_slots == 0 {
            return 0;
        }
        let session = Session::new(partitions, watch, clock);
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
    ) -> Result<Round, SessionError> {
        let mut inner = self.lock();
        let s = inner.sessions.get(&id).ok_or(SessionError::NotFound)?;
        if s.epoch != epoch {
            return Err(SessionError::InvalidEpoch);
        }
        let mut s = inner.remove(id).ok_or(SessionError::NotFound)?;
        s.last_used = Instant::now();
        let mut dropped = Vec::new();
        if !forgotten.is_empty() {
            let (gone, kept) = std::mem::take(&mut s.partitions)
                .into_iter()
                .partition(|p| {
                    forgotten.iter().any(|(tid, name, idx)| {
                        *idx == p.partition
                            && (**name == *p.topic || (!tid.is_nil() && *tid == p.topic_id))
                    })
                });
            s.partitions = kept;
            dropped = gone;
            s.reindex();
        }
        for u in updates {
            s.upsert(u);
        }
        let n = s.partitions.len();
        if !inner.make_room(id, n, self.max_slots.saturating_add(1), self.max_partitions) {
            return Err(SessionError::NotFound);
        }
        let round = Round {
            plan: s.partitions.clone(),
            forgotten: dropped,
            watch: s.watch.clone(),
            clock: s.clock.clone(),
        };
        inner.partitions += n;
        inner.sessions.insert(id, s);
        Ok(round)
    }

    /// Records what the round's answer told the client about the partitions it looked
    /// at (`looked`: the watermarks, the hosted partition and whether it settled) and
    /// advances the epoch.
    pub fn commit(&self, id: i32, looked: &[SessionPartition]) {
        let mut inner = self.lock();
        if let Some(s) = inner.sessions.get_mut(&id) {
            for n in looked {
                if let Some(&i) = s.index.get(&(n.topic.clone(), n.partition)) {
                    let p = &mut s.partitions[i];
                    p.high_watermark = n.high_watermark;
                    p.last_stable_offset = n.last_stable_offset;
                    p.log_start_offset = n.log_start_offset;
                    // Listed again by a request that raced this one: leave it unsettled.
                    let same_position = p.fetch_offset == n.fetch_offset
                        && p.current_leader_epoch == n.current_leader_epoch
                        && p.last_fetched_epoch == n.last_fetched_epoch
                        && p.max_bytes == n.max_bytes;
                    p.held = match &n.held {
                        Some(h) if !same_position => Some(Held {
                            partition: h.partition.clone(),
                            settled: None,
                        }),
                        other => other.clone(),
                    };
                }
            }
            s.epoch = next_epoch(s.epoch);
        }
    }
}

/// A new session clock (see `FetchClock`).
pub fn new_clock() -> FetchClock {
    Arc::new(AtomicI64::new(i64::MIN))
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
            held: None,
        }
    }

    fn create(cache: &FetchSessionCache, parts: Vec<SessionPartition>) -> i32 {
        cache.create(parts, Arc::new(Notify::new()), new_clock())
    }

    #[test]
    fn session_lifecycle() {
        let cache = FetchSessionCache::new(2);
        let id = create(&cache, vec![sp("a", 0, 0), sp("a", 1, 0)]);
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
            .unwrap()
            .plan;
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
        let b = create(&cache, vec![]);
        let c = create(&cache, vec![]);
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
        assert_eq!(create(&cache, many("big", 11)), 0);
        let a = create(&cache, many("a", 6));
        assert_ne!(a, 0);
        // The same partition twice is stored once.
        let mut dup = many("b", 2);
        dup.extend(many("b", 2));
        let b = create(&cache, dup);
        assert_eq!(cache.cached_partitions(), 8);
        // Making room for 4 more evicts the least recently used session (a).
        let c = create(&cache, many("c", 4));
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
        assert_eq!(
            FetchSessionCache::new(0).create(vec![], Arc::new(Notify::new()), new_clock()),
            0
        );
    }
}
