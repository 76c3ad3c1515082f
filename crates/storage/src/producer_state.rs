//! Idempotent-producer state for one partition (Kafka's `ProducerStateManager`).
//!
//! For each producer id the log remembers its epoch and its last five batches (first and
//! last sequence, first and last offset). An append from that producer is checked under
//! the partition lock, so the check and the write are one step:
//! - a batch equal to one of the last five is a retry: it is not written again and the
//!   original offsets are returned (the client sees success);
//! - an older epoch is fenced (INVALID_PRODUCER_EPOCH);
//! - a new epoch must start at sequence 0;
//! - otherwise the first sequence must follow the last one (wrapping at `i32::MAX`), or
//!   the batch is OUT_OF_ORDER_SEQUENCE_NUMBER.
//!
//! A producer the log does not know (new, or expired after `producer.id.expiration.ms`)
//! may start at any sequence, as Kafka allows. The state is rebuilt from the batch
//! headers when the log opens, so it survives a `kill -9` exactly as the data does.

use std::collections::{BTreeSet, HashMap, VecDeque};

use gregor_protocol::batch::BatchHeader;

/// Batches remembered per producer: the most a producer may have in flight.
const CACHED_BATCHES: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BatchMeta {
    first_seq: i32,
    last_seq: i32,
    first_offset: i64,
    last_offset: i64,
}

#[derive(Debug, Clone)]
struct ProducerEntry {
    epoch: i16,
    batches: VecDeque<BatchMeta>,
    last_append_ms: i64,
    /// First offset of this producer's open transaction on the partition.
    txn_first_offset: Option<i64>,
    /// The coordinator epoch of the last marker written for this producer (-1: none):
    /// a marker from an older coordinator is fenced (Kafka's
    /// TransactionCoordinatorFencedException), so a coordinator that lost its
    /// partition and wakes up late cannot end a transaction its successor let begin.
    coordinator_epoch: i32,
}

/// An aborted transaction on this partition: what the `.txnindex` holds and Fetch
/// reports to read_committed consumers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// Offset of the abort marker.
    pub last_offset: i64,
    /// The last stable offset right after the marker: no transaction still open then
    /// started below it, which bounds the search in [`crate::Log::aborted_between`].
    pub last_stable_offset: i64,
}

/// One producer as DescribeProducers reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveProducer {
    pub producer_id: i64,
    pub epoch: i16,
    pub last_sequence: i32,
    pub last_append_ms: i64,
    /// First offset of its open transaction here, -1 for none.
    pub txn_first_offset: i64,
}

/// Why an idempotent append was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProducerError {
    #[error("Producer's epoch {got} is older than the current epoch {current}.")]
    InvalidEpoch { got: i16, current: i16 },
    #[error(
        "Out of order sequence number for producer {producer_id}: expected {expected}, got {got}."
    )]
    OutOfOrder {
        producer_id: i64,
        expected: i32,
        got: i32,
    },
    #[error("Transaction marker of coordinator epoch {got} is older than the producer's last marker's, {current}: that coordinator is fenced.")]
    CoordinatorFenced { got: i32, current: i32 },
}

/// The outcome of checking an idempotent batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// Append it.
    Append,
    /// Already in the log at these offsets.
    Duplicate { first_offset: i64, last_offset: i64 },
}

#[derive(Debug, Default)]
pub struct ProducerStateManager {
    producers: HashMap<i64, ProducerEntry>,
    expiration_ms: i64,
    /// Open transactions by first offset: the smallest is the first unstable offset.
    ongoing: BTreeSet<(i64, i64)>,
}

fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

/// The last sequence of a batch: `base_sequence + last_offset_delta`, wrapping.
pub fn last_sequence(h: &BatchHeader) -> i32 {
    let last = i64::from(h.base_sequence) + i64::from(h.last_offset_delta);
    if last > i64::from(i32::MAX) {
        (last - i64::from(i32::MAX) - 1) as i32
    } else {
        last as i32
    }
}

impl ProducerStateManager {
    pub fn new(expiration_ms: i64) -> Self {
        Self {
            producers: HashMap::new(),
            expiration_ms,
            ongoing: BTreeSet::new(),
        }
    }

    pub fn set_expiration(&mut self, expiration_ms: i64) {
        self.expiration_ms = expiration_ms;
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Forgets every producer idle past `producer.id.expiration.ms` that has no open
    /// transaction here (Kafka's `removeExpiredProducers`, run by a periodic sweep), so
    /// producers that never come back do not stay in memory. Returns how many went.
    pub fn remove_expired(&mut self, now_ms: i64) -> usize {
        let expiration = self.expiration_ms;
        let before = self.producers.len();
        self.producers.retain(|_, e| {
            e.txn_first_offset.is_some() || now_ms.saturating_sub(e.last_append_ms) <= expiration
        });
        before - self.producers.len()
    }

    /// Checks a batch from an idempotent producer (`producer_id >= 0`).
    pub fn check(&mut self, h: &BatchHeader, now_ms: i64) -> Result<SequenceCheck, ProducerError> {
        let expiration = self.expiration_ms;
        if let Some(e) = self.producers.get(&h.producer_id) {
            if e.txn_first_offset.is_none() && now_ms.saturating_sub(e.last_append_ms) > expiration
            {
                self.producers.remove(&h.producer_id);
            }
        }
        let Some(entry) = self.producers.get(&h.producer_id) else {
            return Ok(SequenceCheck::Append);
        };
        if h.producer_epoch < entry.epoch {
            return Err(ProducerError::InvalidEpoch {
                got: h.producer_epoch,
                current: entry.epoch,
            });
        }
        if h.base_sequence < 0 {
            // No sequence (the group coordinator's transactional offset commits, as in
            // Kafka): fenced by epoch only.
            return Ok(SequenceCheck::Append);
        }
        let last_seq = last_sequence(h);
        if h.producer_epoch == entry.epoch {
            if let Some(dup) = entry
                .batches
                .iter()
                .find(|b| b.first_seq == h.base_sequence && b.last_seq == last_seq)
            {
                return Ok(SequenceCheck::Duplicate {
                    first_offset: dup.first_offset,
                    last_offset: dup.last_offset,
                });
            }
            let expected = entry
                .batches
                .back()
                .map_or(h.base_sequence, |b| next_seq(b.last_seq));
            if h.base_sequence != expected {
                return Err(ProducerError::OutOfOrder {
                    producer_id: h.producer_id,
                    expected,
                    got: h.base_sequence,
                });
            }
        } else if h.base_sequence != 0 {
            return Err(ProducerError::OutOfOrder {
                producer_id: h.producer_id,
                expected: 0,
                got: h.base_sequence,
            });
        }
        Ok(SequenceCheck::Append)
    }

    /// The entry of the batch's producer, new (at the batch's epoch) if unknown.
    fn entry<'a>(
        producers: &'a mut HashMap<i64, ProducerEntry>,
        h: &BatchHeader,
        now_ms: i64,
    ) -> &'a mut ProducerEntry {
        producers
            .entry(h.producer_id)
            .or_insert_with(|| ProducerEntry {
                epoch: h.producer_epoch,
                batches: VecDeque::new(),
                last_append_ms: now_ms,
                txn_first_offset: None,
                coordinator_epoch: -1,
            })
    }

    /// Records a batch that was appended at `first_offset..=last_offset` (or found in
    /// the log while rebuilding).
    pub fn update(&mut self, h: &BatchHeader, first_offset: i64, last_offset: i64, now_ms: i64) {
        if h.producer_id < 0 {
            return;
        }
        let entry = Self::entry(&mut self.producers, h, now_ms);
        if h.producer_epoch != entry.epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
        if h.is_transactional() && entry.txn_first_offset.is_none() {
            entry.txn_first_offset = Some(first_offset);
            self.ongoing.insert((first_offset, h.producer_id));
        }
        entry.last_append_ms = entry.last_append_ms.max(now_ms);
        if h.base_sequence < 0 {
            return;
        }
        if entry.batches.len() == CACHED_BATCHES {
            entry.batches.pop_front();
        }
        entry.batches.push_back(BatchMeta {
            first_seq: h.base_sequence,
            last_seq: last_sequence(h),
            first_offset,
            last_offset,
        });
    }

    /// Checks a transaction marker from the coordinator of `coordinator_epoch`: a
    /// producer epoch older than the producer's is fenced, and so is a coordinator
    /// epoch older than the last marker's (Kafka's `appendEndTxnMarker`).
    pub fn check_marker(
        &self,
        h: &BatchHeader,
        coordinator_epoch: i32,
    ) -> Result<(), ProducerError> {
        match self.producers.get(&h.producer_id) {
            Some(e) if h.producer_epoch < e.epoch => Err(ProducerError::InvalidEpoch {
                got: h.producer_epoch,
                current: e.epoch,
            }),
            Some(e) if coordinator_epoch < e.coordinator_epoch => {
                Err(ProducerError::CoordinatorFenced {
                    got: coordinator_epoch,
                    current: e.coordinator_epoch,
                })
            }
            _ => Ok(()),
        }
    }

    /// Records a transaction marker written at `offset`: the producer's open
    /// transaction here (if any) ends. Returns the aborted-transaction entry for an
    /// abort that ended one.
    pub fn complete_txn(
        &mut self,
        h: &BatchHeader,
        marker: (bool, i32),
        offset: i64,
        log_end: i64,
        now_ms: i64,
    ) -> Option<AbortedTxn> {
        let (commit, coordinator_epoch) = marker;
        let entry = Self::entry(&mut self.producers, h, now_ms);
        entry.coordinator_epoch = entry.coordinator_epoch.max(coordinator_epoch);
        if h.producer_epoch > entry.epoch {
            // The coordinator bumped the epoch (a timed-out or fenced transaction): the
            // old epoch is fenced here from now on.
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
        entry.last_append_ms = entry.last_append_ms.max(now_ms);
        let first = entry.txn_first_offset.take()?;
        self.ongoing.remove(&(first, h.producer_id));
        if commit {
            return None;
        }
        Some(AbortedTxn {
            producer_id: h.producer_id,
            first_offset: first,
            last_offset: offset,
            last_stable_offset: self.first_unstable_offset().unwrap_or(log_end),
        })
    }

    /// Every producer this partition remembers, by id (DescribeProducers).
    pub fn describe(&self) -> Vec<ActiveProducer> {
        let mut out: Vec<ActiveProducer> = self
            .producers
            .iter()
            .map(|(id, e)| ActiveProducer {
                producer_id: *id,
                epoch: e.epoch,
                last_sequence: e.batches.back().map_or(-1, |b| b.last_seq),
                last_append_ms: e.last_append_ms,
                txn_first_offset: e.txn_first_offset.unwrap_or(-1),
            })
            .collect();
        out.sort_by_key(|p| p.producer_id);
        out
    }

    /// The first offset of the oldest open transaction, if any.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.ongoing.iter().next().map(|(o, _)| *o)
    }

    /// Open transactions as `(producer id, first offset)`.
    pub fn ongoing(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.ongoing.iter().map(|(o, p)| (*p, *o))
    }
}

const SNAPSHOT_MAGIC_V1: &[u8; 4] = b"GPS1";
/// v2 adds each producer's open-transaction first offset (-1 for none).
const SNAPSHOT_MAGIC_V2: &[u8; 4] = b"GPS2";
/// Version 3 adds each producer's last marker's coordinator epoch.
const SNAPSHOT_MAGIC: &[u8; 4] = b"GPS3";

impl ProducerStateManager {
    /// The state as bytes: magic, producer count, per producer its id, epoch, last
    /// append time and cached batches, then a CRC32C of everything before it.
    pub fn encode_snapshot(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + self.producers.len() * 64);
        out.extend_from_slice(SNAPSHOT_MAGIC);
        out.extend_from_slice(&(self.producers.len() as u32).to_be_bytes());
        let mut ids: Vec<&i64> = self.producers.keys().collect();
        ids.sort_unstable();
        for id in ids {
            let Some(e) = self.producers.get(id) else {
                continue;
            };
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&e.epoch.to_be_bytes());
            out.extend_from_slice(&e.last_append_ms.to_be_bytes());
            out.extend_from_slice(&e.txn_first_offset.unwrap_or(-1).to_be_bytes());
            out.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
            out.push(e.batches.len() as u8);
            for b in &e.batches {
                out.extend_from_slice(&b.first_seq.to_be_bytes());
                out.extend_from_slice(&b.last_seq.to_be_bytes());
                out.extend_from_slice(&b.first_offset.to_be_bytes());
                out.extend_from_slice(&b.last_offset.to_be_bytes());
            }
        }
        let crc = crc32c::crc32c(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Replaces the state with a snapshot's; `false` (state untouched) if the bytes are
    /// not a whole, intact snapshot.
    pub fn load_snapshot(&mut self, bytes: &[u8]) -> bool {
        fn take<'a>(b: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
            if b.len() < n {
                return None;
            }
            let (h, t) = b.split_at(n);
            *b = t;
            Some(h)
        }
        fn i64_of(b: &mut &[u8]) -> Option<i64> {
            take(b, 8).map(|s| i64::from_be_bytes([s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]]))
        }
        fn i32_of(b: &mut &[u8]) -> Option<i32> {
            take(b, 4).map(|s| i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
        }
        let parse = |bytes: &[u8]| -> Option<HashMap<i64, ProducerEntry>> {
            let (body, crc) = bytes.split_at(bytes.len().checked_sub(4)?);
            if crc32c::crc32c(body).to_be_bytes() != crc {
                return None;
            }
            let mut b = body;
            let version = match take(&mut b, 4)? {
                m if m == SNAPSHOT_MAGIC => 3,
                m if m == SNAPSHOT_MAGIC_V2 => 2,
                m if m == SNAPSHOT_MAGIC_V1 => 1,
                _ => return None,
            };
            let n = i32_of(&mut b)? as u32;
            let mut producers = HashMap::new();
            for _ in 0..n {
                let id = i64_of(&mut b)?;
                let e = take(&mut b, 2)?;
                let epoch = i16::from_be_bytes([e[0], e[1]]);
                let last_append_ms = i64_of(&mut b)?;
                let txn_first_offset = if version >= 2 {
                    Some(i64_of(&mut b)?).filter(|o| *o >= 0)
                } else {
                    None
                };
                let coordinator_epoch = if version >= 3 { i32_of(&mut b)? } else { -1 };
                let count = *take(&mut b, 1)?.first()?;
                let mut batches = VecDeque::new();
                for _ in 0..count {
                    batches.push_back(BatchMeta {
                        first_seq: i32_of(&mut b)?,
                        last_seq: i32_of(&mut b)?,
                        first_offset: i64_of(&mut b)?,
                        last_offset: i64_of(&mut b)?,
                    });
                }
                producers.insert(
                    id,
                    ProducerEntry {
                        epoch,
                        batches,
                        last_append_ms,
                        txn_first_offset,
                        coordinator_epoch,
                    },
                );
            }
            b.is_empty().then_some(producers)
        };
        match parse(bytes) {
            Some(p) => {
                self.ongoing = p
                    .iter()
                    .filter_map(|(id, e)| e.txn_first_offset.map(|o| (o, *id)))
                    .collect();
                self.producers = p;
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn header(pid: i64, epoch: i16, seq: i32, count: i32) -> BatchHeader {
        BatchHeader {
            base_offset: 0,
            batch_length: 0,
            partition_leader_epoch: 0,
            magic: 2,
            crc: 0,
            attributes: 0,
            last_offset_delta: count - 1,
            base_timestamp: 0,
            max_timestamp: 0,
            producer_id: pid,
            producer_epoch: epoch,
            base_sequence: seq,
            record_count: count,
        }
    }

    #[test]
    fn retries_are_duplicates_gaps_are_out_of_order_old_epochs_fenced() {
        let mut s = ProducerStateManager::new(i64::MAX);
        let b0 = header(7, 0, 0, 10);
        assert_eq!(s.check(&b0, 0), Ok(SequenceCheck::Append));
        s.update(&b0, 100, 109, 0);
        let b1 = header(7, 0, 10, 5);
        assert_eq!(s.check(&b1, 0), Ok(SequenceCheck::Append));
        s.update(&b1, 110, 114, 0);
        assert_eq!(
            s.check(&b0, 0),
            Ok(SequenceCheck::Duplicate {
                first_offset: 100,
                last_offset: 109
            })
        );
        assert!(matches!(
            s.check(&header(7, 0, 20, 1), 0),
            Err(ProducerError::OutOfOrder { expected: 15, .. })
        ));
        // A bumped epoch restarts at 0; then the old epoch is fenced.
        assert!(matches!(
            s.check(&header(7, 1, 5, 1), 0),
            Err(ProducerError::OutOfOrder { expected: 0, .. })
        ));
        let e1 = header(7, 1, 0, 1);
        assert_eq!(s.check(&e1, 0), Ok(SequenceCheck::Append));
        s.update(&e1, 115, 115, 0);
        assert!(matches!(
            s.check(&header(7, 0, 15, 1), 0),
            Err(ProducerError::InvalidEpoch { .. })
        ));
        // Unknown producers may start anywhere.
        assert_eq!(s.check(&header(8, 0, 42, 1), 0), Ok(SequenceCheck::Append));
    }

    #[test]
    fn snapshots_round_trip_and_refuse_damage() {
        let mut s = ProducerStateManager::new(i64::MAX);
        for pid in 0..3 {
            for i in 0..7 {
                s.update(
                    &header(pid, 1, i * 2, 2),
                    i64::from(i) * 2,
                    i64::from(i) * 2 + 1,
                    5,
                );
            }
        }
        let snap = s.encode_snapshot();
        let mut loaded = ProducerStateManager::new(i64::MAX);
        assert!(loaded.load_snapshot(&snap));
        assert_eq!(loaded.len(), 3);
        assert_eq!(
            loaded.check(&header(1, 1, 12, 2), 5),
            Ok(SequenceCheck::Duplicate {
                first_offset: 12,
                last_offset: 13
            })
        );
        assert_eq!(
            loaded.check(&header(1, 1, 14, 1), 5),
            Ok(SequenceCheck::Append)
        );
        let mut bad = snap.clone();
        bad[10] ^= 1;
        assert!(!ProducerStateManager::new(1).load_snapshot(&bad));
        assert!(!ProducerStateManager::new(1).load_snapshot(&snap[..snap.len() - 1]));
        assert!(!ProducerStateManager::new(1).load_snapshot(&[]));
    }

    #[test]
    fn the_sweep_removes_idle_producers_but_not_open_transactions() {
        let mut m = ProducerStateManager::new(1_000);
        for pid in 0..100 {
            let h = header(pid, 0, 0, 1);
            m.update(&h, pid, pid, 10);
        }
        let mut txn = header(500, 0, 0, 1);
        txn.attributes |= gregor_protocol::batch::ATTR_TRANSACTIONAL;
        m.update(&txn, 100, 100, 10);
        assert_eq!(m.len(), 101);
        assert_eq!(
            m.remove_expired(1_010),
            0,
            "none idle past the expiration yet"
        );
        m.update(&header(7, 0, 1, 1), 101, 101, 2_000);
        assert_eq!(m.remove_expired(2_500), 99);
        // The producer that appended again stays, and so does the open transaction.
        assert_eq!(m.len(), 2);
        assert_eq!(m.first_unstable_offset(), Some(100));
    }

    #[test]
    fn sequences_wrap_and_producers_expire() {
        let mut s = ProducerStateManager::new(1000);
        let near_end = header(1, 0, i32::MAX - 1, 2);
        s.update(&near_end, 0, 1, 0);
        assert_eq!(s.check(&header(1, 0, 0, 1), 10), Ok(SequenceCheck::Append));
        assert!(s.check(&header(1, 0, 5, 1), 10).is_err());
        // After producer.id.expiration.ms the producer is forgotten.
        assert_eq!(
            s.check(&header(1, 0, 5, 1), 5000),
            Ok(SequenceCheck::Append)
        );
        assert!(s.is_empty());
    }

    #[test]
    fn transactions_set_the_first_unstable_offset_and_aborts_are_reported() {
        let mut s = ProducerStateManager::new(1000);
        let mut t1 = header(1, 0, 0, 5);
        t1.attributes = gregor_protocol::batch::ATTR_TRANSACTIONAL;
        let mut t2 = header(2, 0, 0, 5);
        t2.attributes = gregor_protocol::batch::ATTR_TRANSACTIONAL;
        s.update(&t1, 10, 14, 0);
        s.update(&t2, 15, 19, 0);
        let mut t1b = header(1, 0, 5, 5);
        t1b.attributes = gregor_protocol::batch::ATTR_TRANSACTIONAL;
        s.update(&t1b, 20, 24, 0);
        assert_eq!(s.first_unstable_offset(), Some(10));
        let marker = |pid| {
            let mut m = header(pid, 0, -1, 1);
            m.attributes =
                gregor_protocol::batch::ATTR_TRANSACTIONAL | gregor_protocol::batch::ATTR_CONTROL;
            m
        };
        assert_eq!(s.complete_txn(&marker(1), (true, 0), 25, 26, 0), None);
        assert_eq!(s.first_unstable_offset(), Some(15));
        // Open transactions never expire; the snapshot keeps them.
        assert_eq!(
            s.check(&t2, 1_000_000),
            Ok(SequenceCheck::Duplicate {
                first_offset: 15,
                last_offset: 19
            })
        );
        let mut loaded = ProducerStateManager::new(1000);
        assert!(loaded.load_snapshot(&s.encode_snapshot()));
        assert_eq!(loaded.first_unstable_offset(), Some(15));
        assert_eq!(
            loaded.complete_txn(&marker(2), (false, 0), 26, 27, 0),
            Some(AbortedTxn {
                producer_id: 2,
                first_offset: 15,
                last_offset: 26,
                last_stable_offset: 27
            })
        );
        assert_eq!(loaded.first_unstable_offset(), None);
        // A marker with a bumped epoch fences the old one.
        let mut bumped = marker(1);
        bumped.producer_epoch = 1;
        loaded.complete_txn(&bumped, (false, 0), 27, 28, 0);
        assert!(loaded.check_marker(&marker(1), 0).is_err());
        assert!(matches!(
            loaded.check(&header(1, 0, 10, 1), 0),
            Err(ProducerError::InvalidEpoch { .. })
        ));
    }

    #[test]
    fn a_late_marker_of_an_older_coordinator_cannot_end_the_next_transaction() {
        let mut s = ProducerStateManager::new(i64::MAX);
        let mut marker = header(5, 0, -1, 1);
        marker.attributes = 0x30;
        let mut data = header(5, 0, 0, 3);
        data.attributes = 0x10;
        // Transaction 1 ends by the marker of the coordinator that took over (epoch 4).
        s.update(&data, 10, 12, 0);
        assert_eq!(s.check_marker(&marker, 4), Ok(()));
        s.complete_txn(&marker, (true, 4), 13, 14, 0);
        // Transaction 2 begins; the old coordinator (epoch 3) wakes with its commit.
        let mut next = header(5, 0, 3, 3);
        next.attributes = 0x10;
        s.update(&next, 14, 16, 0);
        assert_eq!(
            s.check_marker(&marker, 3),
            Err(ProducerError::CoordinatorFenced { got: 3, current: 4 })
        );
        assert_eq!(s.first_unstable_offset(), Some(14));
        // The snapshot keeps the fence; the current coordinator's marker passes.
        let mut loaded = ProducerStateManager::new(i64::MAX);
        assert!(loaded.load_snapshot(&s.encode_snapshot()));
        assert!(loaded.check_marker(&marker, 3).is_err());
        assert_eq!(loaded.check_marker(&marker, 4), Ok(()));
    }
}
