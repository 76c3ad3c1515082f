//! One transactional id's metadata and the transitions the coordinator applies to it.
//!
//! Each `prepare_*` method checks a request against the current metadata and returns
//! the next metadata without changing `self`; the coordinator persists it and only then
//! adopts it, so memory never runs ahead of `__transaction_state`.

use std::collections::BTreeSet;

use super::TxnError;

/// Kafka's transaction states, with their codes in `TransactionLogValue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

impl TxnState {
    pub fn code(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    pub fn from_code(c: i8) -> Option<Self> {
        Some(match c {
            0 => TxnState::Empty,
            1 => TxnState::Ongoing,
            2 => TxnState::PrepareCommit,
            3 => TxnState::PrepareAbort,
            4 => TxnState::CompleteCommit,
            5 => TxnState::CompleteAbort,
            6 => TxnState::Dead,
            7 => TxnState::PrepareEpochFence,
            _ => return None,
        })
    }

    /// The name DescribeTransactions and ListTransactions use.
    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    fn preparing(self) -> bool {
        matches!(
            self,
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnMetadata {
    pub transactional_id: String,
    pub producer_id: i64,
    pub producer_epoch: i16,
    /// The epoch before the last bump (memory only): lets a producer whose
    /// InitProducerId answer was lost retry with it (KIP-360).
    pub last_producer_epoch: i16,
    /// The producer id before an epoch overflow moved the id to a new one (memory
    /// only, -1 if none): a retried EndTxn v5 under the old id is recognised.
    pub prev_producer_id: i64,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<(String, i32)>,
    pub start_ms: i64,
    pub last_update_ms: i64,
}

/// What InitProducerId must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InitStep {
    /// A transaction is open: abort it (with a bumped epoch, which fences its producer)
    /// and ask again.
    AbortOngoing(TxnMetadata),
    /// Store this and answer with its producer id and epoch.
    Ready(TxnMetadata),
    /// The epoch is exhausted: store this with a new producer id at epoch 0.
    NeedsNewProducerId(TxnMetadata),
}

/// What EndTxn must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndStep {
    /// A retry of a transaction already completed this way.
    Done,
    /// Store this (PrepareCommit/PrepareAbort), then write the markers.
    Prepare(TxnMetadata),
    /// Already prepared this way (a retry after a failure): write the markers.
    Resume,
}

/// Kafka bumps to a new producer id before the epoch reaches `Short.MAX_VALUE`.
pub const MAX_EPOCH: i16 = i16::MAX - 1;

/// The epoch the markers of a transactions-v2 transaction carry when its end bump
/// exhausts the epoch; once they are written the id moves to a new producer id at
/// epoch 0 (KIP-890), so no client ever sees this epoch.
pub const OVERFLOW_EPOCH: i16 = i16::MAX;

impl TxnMetadata {
    pub fn new(id: &str, producer_id: i64, timeout_ms: i32, now_ms: i64) -> Self {
        Self {
            transactional_id: id.to_string(),
            producer_id,
            producer_epoch: 0,
            last_producer_epoch: -1,
            prev_producer_id: -1,
            timeout_ms,
            state: TxnState::Empty,
            partitions: BTreeSet::new(),
            start_ms: -1,
            last_update_ms: now_ms,
        }
    }

    /// When an open transaction times out.
    pub fn expires_at_ms(&self) -> Option<i64> {
        (self.state == TxnState::Ongoing)
            .then(|| self.start_ms.saturating_add(i64::from(self.timeout_ms)))
    }

    /// When an idle id (no open or finishing transaction) is forgotten, under
    /// `transactional.id.expiration.ms`.
    pub fn idle_expires_at_ms(&self, expiration_ms: i64) -> Option<i64> {
        matches!(
            self.state,
            TxnState::Empty | TxnState::CompleteCommit | TxnState::CompleteAbort
        )
        .then(|| self.last_update_ms.saturating_add(expiration_ms))
    }

    pub fn needs_completion(&self) -> bool {
        matches!(self.state, TxnState::PrepareCommit | TxnState::PrepareAbort)
    }

    /// The producer id and epoch a request carries must be the current ones.
    pub fn check_producer(&self, producer_id: i64, epoch: i16) -> Result<(), TxnError> {
        if producer_id != self.producer_id {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        if epoch != self.producer_epoch {
            return Err(TxnError::ProducerFenced);
        }
        Ok(())
    }

    /// InitProducerId for an existing id. `expected` is the producer id and epoch a
    /// re-initialising producer sends (KIP-360), `None` for a new producer instance.
    pub fn prepare_init(
        &self,
        timeout_ms: i32,
        expected: Option<(i64, i16)>,
        now_ms: i64,
    ) -> Result<InitStep, TxnError> {
        if self.state.preparing() {
            return Err(TxnError::ConcurrentTransactions);
        }
        if let Some((pid, epoch)) = expected {
            if pid != self.producer_id {
                return Err(TxnError::InvalidProducerIdMapping);
            }
            if epoch != self.producer_epoch && epoch != self.last_producer_epoch {
                return Err(TxnError::ProducerFenced);
            }
        }
        if self.state == TxnState::Ongoing {
            return Ok(InitStep::AbortOngoing(self.prepare_fence_abort(now_ms)));
        }
        let mut next = self.clone();
        next.timeout_ms = timeout_ms;
        next.state = TxnState::Empty;
        next.partitions.clear();
        next.start_ms = -1;
        next.last_update_ms = now_ms;
        if self.producer_epoch >= MAX_EPOCH {
            next.producer_epoch = 0;
            next.last_producer_epoch = -1;
            return Ok(InitStep::NeedsNewProducerId(next));
        }
        next.last_producer_epoch = self.producer_epoch;
        next.producer_epoch = self.producer_epoch + 1;
        Ok(InitStep::Ready(next))
    }

    /// Aborts the open transaction with the epoch bumped, so the producer that opened
    /// it is fenced on every partition the abort marker reaches (timeouts, and a new
    /// instance of the same transactional id).
    pub fn prepare_fence_abort(&self, now_ms: i64) -> TxnMetadata {
        let mut next = self.clone();
        next.last_producer_epoch = self.producer_epoch;
        next.producer_epoch = self.producer_epoch.saturating_add(1).min(MAX_EPOCH);
        next.state = TxnState::PrepareAbort;
        next.last_update_ms = now_ms;
        next
    }

    /// AddPartitionsToTxn / AddOffsetsToTxn. `None` when every partition is already in
    /// the open transaction (nothing to store).
    pub fn prepare_add(
        &self,
        producer_id: i64,
        epoch: i16,
        partitions: &[(String, i32)],
        now_ms: i64,
    ) -> Result<Option<TxnMetadata>, TxnError> {
        self.check_producer(producer_id, epoch)?;
        match self.state {
            TxnState::PrepareCommit | TxnState::PrepareAbort | TxnState::PrepareEpochFence => {
                return Err(TxnError::ConcurrentTransactions)
            }
            TxnState::Dead => return Err(TxnError::InvalidTxnState),
            _ => {}
        }
        let ongoing = self.state == TxnState::Ongoing;
        if ongoing && partitions.iter().all(|p| self.partitions.contains(p)) {
            return Ok(None);
        }
        let mut next = self.clone();
        if !ongoing {
            next.partitions.clear();
            next.start_ms = now_ms;
        }
        next.state = TxnState::Ongoing;
        next.partitions.extend(partitions.iter().cloned());
        next.last_update_ms = now_ms;
        Ok(Some(next))
    }

    /// KIP-890 verification: is `partition` part of this producer's open transaction?
    pub fn verify(
        &self,
        producer_id: i64,
        epoch: i16,
        partition: &(String, i32),
    ) -> Result<(), TxnError> {
        self.check_producer(producer_id, epoch)?;
        if self.state == TxnState::Ongoing && self.partitions.contains(partition) {
            Ok(())
        } else {
            Err(TxnError::InvalidTxnState)
        }
    }

    /// EndTxn.
    pub fn prepare_end(
        &self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        now_ms: i64,
    ) -> Result<EndStep, TxnError> {
        self.check_producer(producer_id, epoch)?;
        match (self.state, commit) {
            (TxnState::Ongoing, _) => {
                let mut next = self.clone();
                next.state = if commit {
                    TxnState::PrepareCommit
                } else {
                    TxnState::PrepareAbort
                };
                next.last_update_ms = now_ms;
                Ok(EndStep::Prepare(next))
            }
            (TxnState::CompleteCommit, true) | (TxnState::CompleteAbort, false) => {
                Ok(EndStep::Done)
            }
            (TxnState::PrepareCommit, true) | (TxnState::PrepareAbort, false) => {
                Ok(EndStep::Resume)
            }
            (TxnState::PrepareCommit, false)
            | (TxnState::PrepareAbort, true)
            | (TxnState::PrepareEpochFence, _) => Err(TxnError::ConcurrentTransactions),
            _ => Err(TxnError::InvalidTxnState),
        }
    }

    /// The next metadata for an end under transactions v2: the epoch is bumped (to
    /// [`OVERFLOW_EPOCH`] from [`MAX_EPOCH`]), so the markers fence every batch of the
    /// ending transaction and the producer's next one starts at the new epoch.
    fn bumped_end(&self, state: TxnState, now_ms: i64) -> TxnMetadata {
        let mut next = self.clone();
        next.last_producer_epoch = self.producer_epoch;
        next.producer_epoch = self.producer_epoch.saturating_add(1);
        next.state = state;
        next.last_update_ms = now_ms;
        next
    }

    /// EndTxn v5 under `transaction.version` 2 (KIP-890 part 2): every end bumps the
    /// epoch, and the answer carries the new producer id and epoch. Because the epoch
    /// moves, a retry is recognised by the epoch before the bump (or, after an
    /// overflow, by the previous producer id at [`MAX_EPOCH`]) rather than by an
    /// unchanged epoch; a request at the current epoch after a completed transaction
    /// is the next end, and an abort with nothing added is allowed (it only bumps).
    pub fn prepare_end_v2(
        &self,
        producer_id: i64,
        epoch: i16,
        commit: bool,
        now_ms: i64,
    ) -> Result<EndStep, TxnError> {
        use TxnState as S;
        let retry_on_bump = producer_id == self.producer_id
            && i32::from(epoch) + 1 == i32::from(self.producer_epoch);
        let retry_on_overflow = self.prev_producer_id >= 0
            && producer_id == self.prev_producer_id
            && epoch == MAX_EPOCH
            && self.producer_epoch == 0;
        if producer_id != self.producer_id && !retry_on_overflow {
            return Err(TxnError::InvalidProducerIdMapping);
        }
        let retry = retry_on_bump || retry_on_overflow;
        let current = producer_id == self.producer_id && epoch == self.producer_epoch;
        let valid = match self.state {
            S::Ongoing | S::Empty | S::Dead | S::PrepareEpochFence => current,
            S::PrepareCommit | S::PrepareAbort => retry_on_bump,
            S::CompleteCommit | S::CompleteAbort => retry || current,
        };
        if !valid {
            return Err(TxnError::ProducerFenced);
        }
        let ending = if commit {
            S::PrepareCommit
        } else {
            S::PrepareAbort
        };
        match (self.state, commit) {
            (S::Ongoing, _) => Ok(EndStep::Prepare(self.bumped_end(ending, now_ms))),
            (S::CompleteCommit, true) | (S::CompleteAbort, false) if retry => Ok(EndStep::Done),
            (S::Empty | S::CompleteCommit | S::CompleteAbort, false) if !retry => {
                let mut next = self.bumped_end(S::PrepareAbort, now_ms);
                next.partitions.clear();
                next.start_ms = now_ms;
                Ok(EndStep::Prepare(next))
            }
            (S::PrepareCommit, true) | (S::PrepareAbort, false) => Ok(EndStep::Resume),
            (S::PrepareEpochFence, _) => Err(TxnError::ConcurrentTransactions),
            _ => Err(TxnError::InvalidTxnState),
        }
    }

    /// After an overflowed end's markers: the id continues under `new_producer_id` at
    /// epoch 0, remembering the old id for a retried EndTxn.
    pub fn move_to_producer_id(&mut self, new_producer_id: i64) {
        self.prev_producer_id = self.producer_id;
        self.producer_id = new_producer_id;
        self.producer_epoch = 0;
        self.last_producer_epoch = -1;
    }

    /// After the markers: CompleteCommit or CompleteAbort, with no partitions.
    pub fn complete(&self, now_ms: i64) -> TxnMetadata {
        let mut next = self.clone();
        next.state = match self.state {
            TxnState::PrepareCommit => TxnState::CompleteCommit,
            _ => TxnState::CompleteAbort,
        };
        next.partitions.clear();
        next.last_update_ms = now_ms;
        next
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn parts(ps: &[(&str, i32)]) -> Vec<(String, i32)> {
        ps.iter().map(|(t, p)| (t.to_string(), *p)).collect()
    }

    #[test]
    fn a_transaction_commits_and_retries_are_answered() {
        let m = TxnMetadata::new("t", 7, 60_000, 0);
        let m = m
            .prepare_add(7, 0, &parts(&[("a", 0)]), 10)
            .unwrap()
            .unwrap();
        assert_eq!(m.state, TxnState::Ongoing);
        assert_eq!(m.start_ms, 10);
        assert_eq!(m.expires_at_ms(), Some(60_010));
        // Adding the same partition again stores nothing; a new one does.
        assert!(m
            .prepare_add(7, 0, &parts(&[("a", 0)]), 11)
            .unwrap()
            .is_none());
        let m = m
            .prepare_add(7, 0, &parts(&[("b", 1)]), 12)
            .unwrap()
            .unwrap();
        assert_eq!(m.start_ms, 10, "the start time stays");
        assert!(m.verify(7, 0, &("b".into(), 1)).is_ok());
        assert_eq!(
            m.verify(7, 0, &("c".into(), 1)),
            Err(TxnError::InvalidTxnState)
        );
        let EndStep::Prepare(p) = m.prepare_end(7, 0, true, 20).unwrap() else {
            panic!("expected prepare");
        };
        assert_eq!(p.state, TxnState::PrepareCommit);
        assert_eq!(p.prepare_end(7, 0, true, 21), Ok(EndStep::Resume));
        assert_eq!(
            p.prepare_add(7, 0, &parts(&[("a", 0)]), 21),
            Err(TxnError::ConcurrentTransactions)
        );
        let c = p.complete(22);
        assert_eq!(c.state, TxnState::CompleteCommit);
        assert!(c.partitions.is_empty());
        assert_eq!(c.prepare_end(7, 0, true, 23), Ok(EndStep::Done));
        assert_eq!(
            c.prepare_end(7, 0, false, 23),
            Err(TxnError::InvalidTxnState)
        );
        // The next transaction starts afresh.
        let n = c
            .prepare_add(7, 0, &parts(&[("z", 0)]), 30)
            .unwrap()
            .unwrap();
        assert_eq!(n.partitions.len(), 1);
        assert_eq!(n.start_ms, 30);
    }

    #[test]
    fn epochs_fence_old_producers_and_reinit_aborts_an_open_transaction() {
        let m = TxnMetadata::new("t", 7, 60_000, 0);
        let InitStep::Ready(m) = m.prepare_init(60_000, None, 1).unwrap() else {
            panic!("expected ready");
        };
        assert_eq!(m.producer_epoch, 1);
        assert_eq!(
            m.prepare_add(7, 0, &parts(&[("a", 0)]), 2),
            Err(TxnError::ProducerFenced)
        );
        assert_eq!(
            m.prepare_add(8, 1, &parts(&[("a", 0)]), 2),
            Err(TxnError::InvalidProducerIdMapping)
        );
        let m = m
            .prepare_add(7, 1, &parts(&[("a", 0)]), 2)
            .unwrap()
            .unwrap();
        // A new instance arrives while the transaction is open: abort it first.
        let InitStep::AbortOngoing(a) = m.prepare_init(60_000, None, 3).unwrap() else {
            panic!("expected abort");
        };
        assert_eq!((a.state, a.producer_epoch), (TxnState::PrepareAbort, 2));
        assert_eq!(
            a.prepare_init(60_000, None, 3),
            Err(TxnError::ConcurrentTransactions)
        );
        let done = a.complete(4);
        let InitStep::Ready(r) = done.prepare_init(60_000, None, 5).unwrap() else {
            panic!("expected ready");
        };
        assert_eq!(r.producer_epoch, 3);
        // The old instance (epoch 1) is fenced; KIP-360 re-init with the last epoch works.
        assert_eq!(r.prepare_end(7, 1, true, 6), Err(TxnError::ProducerFenced));
        assert!(r.prepare_init(60_000, Some((7, 2)), 6).is_ok());
        assert_eq!(
            r.prepare_init(60_000, Some((7, 1)), 6),
            Err(TxnError::ProducerFenced)
        );
        // Exhausted epochs roll over to a new producer id.
        let mut old = r.clone();
        old.producer_epoch = MAX_EPOCH;
        assert!(matches!(
            old.prepare_init(60_000, None, 7),
            Ok(InitStep::NeedsNewProducerId(_))
        ));
        assert_eq!(
            TxnMetadata::new("t", 1, 1, 0).prepare_end(1, 0, true, 1),
            Err(TxnError::InvalidTxnState)
        );
    }

    #[test]
    fn v2_ends_bump_the_epoch_and_retries_are_recognised() {
        let m = TxnMetadata::new("t", 7, 60_000, 0);
        let m = m
            .prepare_add(7, 0, &parts(&[("a", 0)]), 1)
            .unwrap()
            .unwrap();
        let EndStep::Prepare(p) = m.prepare_end_v2(7, 0, true, 2).unwrap() else {
            panic!("expected prepare");
        };
        assert_eq!((p.state, p.producer_epoch), (TxnState::PrepareCommit, 1));
        // A retry while the markers are pending resumes them.
        assert_eq!(p.prepare_end_v2(7, 0, true, 3), Ok(EndStep::Resume));
        assert_eq!(
            p.prepare_end_v2(7, 1, true, 3),
            Err(TxnError::ProducerFenced)
        );
        let c = p.complete(4);
        // The retry (old epoch) is answered; the same request at the new epoch is the
        // next end: a commit with nothing open is refused, an abort just bumps.
        assert_eq!(c.prepare_end_v2(7, 0, true, 5), Ok(EndStep::Done));
        assert_eq!(
            c.prepare_end_v2(7, 0, false, 5),
            Err(TxnError::InvalidTxnState)
        );
        assert_eq!(
            c.prepare_end_v2(7, 1, true, 5),
            Err(TxnError::InvalidTxnState)
        );
        let EndStep::Prepare(a) = c.prepare_end_v2(7, 1, false, 5).unwrap() else {
            panic!("expected an empty abort");
        };
        assert_eq!((a.state, a.producer_epoch), (TxnState::PrepareAbort, 2));
        assert!(a.partitions.is_empty());
        // Older epochs are fenced; another producer id is not this id's.
        assert_eq!(
            a.complete(6).prepare_end_v2(7, 0, false, 7),
            Err(TxnError::ProducerFenced)
        );
        assert_eq!(
            c.prepare_end_v2(8, 1, true, 5),
            Err(TxnError::InvalidProducerIdMapping)
        );
        // The next transaction runs at the bumped epoch.
        let n = c
            .prepare_add(7, 1, &parts(&[("b", 0)]), 8)
            .unwrap()
            .unwrap();
        assert_eq!(
            n.prepare_add(7, 0, &parts(&[("b", 0)]), 8),
            Err(TxnError::ProducerFenced)
        );
    }

    #[test]
    fn v2_epoch_overflow_moves_to_a_new_producer_id() {
        let mut m = TxnMetadata::new("t", 7, 60_000, 0);
        m.producer_epoch = MAX_EPOCH;
        let m = m
            .prepare_add(7, MAX_EPOCH, &parts(&[("a", 0)]), 1)
            .unwrap()
            .unwrap();
        let EndStep::Prepare(p) = m.prepare_end_v2(7, MAX_EPOCH, false, 2).unwrap() else {
            panic!("expected prepare");
        };
        assert_eq!(p.producer_epoch, OVERFLOW_EPOCH, "the markers' epoch");
        let mut c = p.complete(3);
        c.move_to_producer_id(9);
        assert_eq!((c.producer_id, c.producer_epoch), (9, 0));
        // The client's retry under the old id and epoch is answered with the new ones.
        assert_eq!(c.prepare_end_v2(7, MAX_EPOCH, false, 4), Ok(EndStep::Done));
        assert_eq!(
            c.prepare_end_v2(7, MAX_EPOCH - 1, false, 4),
            Err(TxnError::InvalidProducerIdMapping)
        );
        assert!(c.prepare_add(9, 0, &parts(&[("a", 0)]), 5).is_ok());
    }
}
