//! One share-partition's state (KIP-932): which records of one topic-partition a share
//! group has delivered, to whom, how often, and which are done.
//!
//! Offsets below the share-partition start offset (SPSO) are done. Offsets at or above
//! the end offset (SPEO) were never acquired and are implicitly AVAILABLE with delivery
//! count 0. In between, `records` holds one entry per offset that was handed out; an
//! offset of that window absent from `records` was no record (a control batch or a
//! compaction gap) and counts as ARCHIVED.
//!
//! Synchronous and free of wire types: the coordinator calls it under its lock with the
//! time, and it answers what changed.
//!
//! # Invariants
//! - At most one member holds an offset: only an AVAILABLE offset is acquired, and it
//!   leaves ACQUIRED only through its holder's acknowledgement, its holder leaving, or
//!   its lock's deadline.
//! - A delivery count never goes down; it grows by one at each acquisition.
//! - The SPSO advances only over ACKNOWLEDGED or ARCHIVED offsets (and gaps), never
//!   over an AVAILABLE or ACQUIRED one, except when an operator resets it.
//! - Every ACQUIRED offset has a lock deadline in `locks`; nothing else does.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::ShareError;

/// A delivered record's state (Kafka's `RecordState`; AVAILABLE is also the implicit
/// state of everything at or above the SPEO).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordState {
    Available,
    Acquired,
    Acknowledged,
    Archived,
}

impl RecordState {
    /// The code the persisted snapshot uses (Kafka's: 0, 1, 2, 4).
    pub fn code(self) -> u8 {
        match self {
            RecordState::Available => 0,
            RecordState::Acquired => 1,
            RecordState::Acknowledged => 2,
            RecordState::Archived => 4,
        }
    }

    pub fn from_code(c: u8) -> Option<Self> {
        match c {
            0 => Some(RecordState::Available),
            1 => Some(RecordState::Acquired),
            2 => Some(RecordState::Acknowledged),
            4 => Some(RecordState::Archived),
            _ => None,
        }
    }

    fn done(self) -> bool {
        matches!(self, RecordState::Acknowledged | RecordState::Archived)
    }
}

/// An acknowledgement type as the wire carries it (ShareFetch/ShareAcknowledge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckType {
    /// 0: the offset holds no record (a gap the client saw in the batch).
    Gap,
    Accept,
    Release,
    Reject,
    /// 4 (KIP-1222): the holder keeps the record and its lock restarts; allowed only in
    /// a request that says it renews (`IsRenewAck`, version 2).
    Renew,
}

impl AckType {
    pub fn from_code(c: i8) -> Option<Self> {
        match c {
            0 => Some(AckType::Gap),
            1 => Some(AckType::Accept),
            2 => Some(AckType::Release),
            3 => Some(AckType::Reject),
            4 => Some(AckType::Renew),
            _ => None,
        }
    }
}

/// The group's limits, from `group.share.*`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// `group.share.partition.max.record.locks`: offsets in flight at once.
    pub max_in_flight: usize,
    /// `group.share.delivery.count.limit`.
    pub delivery_limit: i16,
    /// `group.share.record.lock.duration.ms`.
    pub lock_duration: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InFlight {
    pub state: RecordState,
    pub delivery_count: i16,
    /// The member holding it while ACQUIRED.
    pub owner: Option<String>,
    pub deadline: Option<Instant>,
}

/// A run of consecutive offsets acquired in one go, as ShareFetch reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AcquiredRange {
    pub first: i64,
    pub last: i64,
    pub delivery_count: i16,
}

/// One record batch's offsets as the log holds them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSpan {
    pub base: i64,
    pub last: i64,
    /// A transaction marker: never delivered.
    pub control: bool,
}

#[derive(Debug, Clone, Default)]
pub struct SharePartition {
    spso: i64,
    speo: i64,
    records: BTreeMap<i64, InFlight>,
    locks: BTreeSet<(Instant, i64)>,
    /// Bumped by every change a snapshot would show (persistence writes newer ones).
    version: u64,
}

impl SharePartition {
    /// A new share-partition starting at `start` (from `share.auto.offset.reset`).
    pub fn new(start: i64) -> Self {
        Self {
            spso: start,
            speo: start,
            ..Self::default()
        }
    }

    /// Rebuilds one from its snapshot: the start offset and the non-AVAILABLE entries.
    /// A record that was ACQUIRED when the snapshot was taken comes back AVAILABLE.
    pub fn restore(spso: i64, speo: i64, entries: Vec<(i64, RecordState, i16)>) -> Self {
        let mut p = Self::new(spso);
        p.speo = speo.max(spso);
        for (offset, state, delivery_count) in entries {
            if offset < spso || offset >= p.speo {
                continue;
            }
            let state = match state {
                RecordState::Acquired => RecordState::Available,
                s => s,
            };
            p.records.insert(
                offset,
                InFlight {
                    state,
                    delivery_count,
                    owner: None,
                    deadline: None,
                },
            );
        }
        p.advance_start();
        p
    }

    pub fn start_offset(&self) -> i64 {
        self.spso
    }

    pub fn end_offset(&self) -> i64 {
        self.speo
    }

    pub fn version(&self) -> u64 {
        self.version
    }

    pub fn record(&self, offset: i64) -> Option<&InFlight> {
        self.records.get(&offset)
    }

    /// Entries for a snapshot: every in-flight offset with its state and count.
    pub fn entries(&self) -> Vec<(i64, RecordState, i16)> {
        self.records
            .iter()
            .map(|(o, r)| (*o, r.state, r.delivery_count))
            .collect()
    }

    /// Offsets currently in flight (between SPSO and SPEO, records only).
    pub fn in_flight(&self) -> usize {
        self.records.len()
    }

    /// Where the next acquisition should read the log from: the first AVAILABLE
    /// in-flight offset at or after `from`, else the SPEO when the in-flight cap allows
    /// new records; `None` when nothing can be acquired from there.
    pub fn next_candidate(&self, from: i64, limits: &Limits) -> Option<i64> {
        let from = from.max(self.spso);
        let redeliver = self
            .records
            .range(from..)
            .find(|(_, r)| r.state == RecordState::Available)
            .map(|(o, _)| *o);
        redeliver
            .or_else(|| (self.records.len() < limits.max_in_flight).then_some(self.speo.max(from)))
    }

    /// The log start moved past the SPSO (retention or DeleteRecords): what is below
    /// it can never be delivered again.
    pub fn log_start_moved(&mut self, log_start: i64) {
        if log_start <= self.spso {
            return;
        }
        let below: Vec<i64> = self.records.range(..log_start).map(|(o, _)| *o).collect();
        for o in below {
            if let Some(r) = self.records.remove(&o) {
                if let Some(d) = r.deadline {
                    self.locks.remove(&(d, o));
                }
            }
        }
        self.speo = self.speo.max(log_start);
        self.advance_start();
        self.version += 1;
    }

    /// Acquires for `member` the AVAILABLE offsets of `batches` (read from the log at
    /// or after `from`), at most `max_records` of them, and returns them as ranges.
    pub fn acquire(
        &mut self,
        member: &str,
        batches: &[BatchSpan],
        from: i64,
        max_records: usize,
        now: Instant,
        limits: &Limits,
    ) -> Vec<AcquiredRange> {
        let deadline = now + limits.lock_duration;
        let mut out: Vec<AcquiredRange> = Vec::new();
        let mut taken = 0usize;
        for b in batches {
            if taken >= max_records {
                break;
            }
            let first = b.base.max(from).max(self.spso);
            if b.control {
                // A marker is never delivered; past the SPEO it becomes a gap.
                if b.last >= self.speo {
                    self.speo = b.last + 1;
                    self.advance_start();
                }
                continue;
            }
            let mut o = first;
            while o <= b.last && taken < max_records {
                let count = if o >= self.speo {
                    if self.records.len() >= limits.max_in_flight {
                        break;
                    }
                    // Offsets skipped between the SPEO and here were no records.
                    self.speo = o + 1;
                    self.records.insert(
                        o,
                        InFlight {
                            state: RecordState::Acquired,
                            delivery_count: 1,
                            owner: Some(member.to_string()),
                            deadline: Some(deadline),
                        },
                    );
                    1
                } else {
                    match self.records.get_mut(&o) {
                        Some(r) if r.state == RecordState::Available => {
                            r.state = RecordState::Acquired;
                            r.delivery_count = r.delivery_count.saturating_add(1);
                            r.owner = Some(member.to_string());
                            r.deadline = Some(deadline);
                            r.delivery_count
                        }
                        _ => {
                            o += 1;
                            continue;
                        }
                    }
                };
                self.locks.insert((deadline, o));
                taken += 1;
                match out.last_mut() {
                    Some(last) if last.last + 1 == o && last.delivery_count == count => {
                        last.last = o;
                    }
                    _ => out.push(AcquiredRange {
                        first: o,
                        last: o,
                        delivery_count: count,
                    }),
                }
                o += 1;
            }
        }
        if taken > 0 {
            self.version += 1;
        }
        self.advance_start();
        out
    }

    /// Applies `member`'s acknowledgement of `first..=last`: one type for all of them,
    /// or one per offset. Nothing changes unless every offset is ACQUIRED by `member`
    /// (a gap may also be an offset that holds no record). RENEW is refused here.
    pub fn acknowledge(
        &mut self,
        member: &str,
        first: i64,
        last: i64,
        types: &[i8],
        limits: &Limits,
    ) -> Result<(), ShareError> {
        self.acknowledge_or_renew(member, first, last, types, None, limits)
    }

    /// [`Self::acknowledge`] where RENEW is allowed (`renew_at`: the time it happens):
    /// a renewed offset stays ACQUIRED by `member`, with the same delivery count, and
    /// its lock runs again from `renew_at`.
    pub fn acknowledge_or_renew(
        &mut self,
        member: &str,
        first: i64,
        last: i64,
        types: &[i8],
        renew_at: Option<Instant>,
        limits: &Limits,
    ) -> Result<(), ShareError> {
        if last < first || types.is_empty() {
            return Err(ShareError::InvalidRequest(
                "empty acknowledgement batch".into(),
            ));
        }
        // Wire values: computed wide so no pair of offsets overflows.
        let span = usize::try_from(i128::from(last) - i128::from(first) + 1).unwrap_or(usize::MAX);
        if types.len() != 1 && types.len() != span {
            return Err(ShareError::InvalidRequest(
                "acknowledge types must be one, or one per offset".into(),
            ));
        }
        let mut planned = Vec::with_capacity(span.min(4096));
        for (i, o) in (first..=last).enumerate() {
            let code = if types.len() == 1 { types[0] } else { types[i] };
            let kind = AckType::from_code(code)
                .filter(|k| *k != AckType::Renew || renew_at.is_some())
                .ok_or_else(|| ShareError::InvalidRequest(format!("acknowledge type {code}")))?;
            match self.records.get(&o) {
                Some(r)
                    if r.state == RecordState::Acquired && r.owner.as_deref() == Some(member) =>
                {
                    planned.push((o, kind));
                }
                // A gap the client names that we never counted as a record.
                None if kind == AckType::Gap && o >= self.spso && o < self.speo => {}
                _ => return Err(ShareError::InvalidRecordState),
            }
        }
        let mut settled = false;
        for (o, kind) in planned {
            let next = match kind {
                AckType::Accept => RecordState::Acknowledged,
                AckType::Reject | AckType::Gap => RecordState::Archived,
                AckType::Release => RecordState::Available,
                AckType::Renew => {
                    if let Some(now) = renew_at {
                        self.renew(o, now + limits.lock_duration);
                    }
                    continue;
                }
            };
            self.settle(o, next, limits);
            settled = true;
        }
        // A renewal alone changes nothing a snapshot holds (locks are not persisted).
        if settled {
            self.version += 1;
            self.advance_start();
        }
        Ok(())
    }

    /// Moves an ACQUIRED offset's lock deadline.
    fn renew(&mut self, o: i64, deadline: Instant) {
        if let Some(r) = self.records.get_mut(&o) {
            if let Some(old) = r.deadline.replace(deadline) {
                self.locks.remove(&(old, o));
            }
            self.locks.insert((deadline, o));
        }
    }

    /// Releases everything `member` holds (it left, or its session ended). Whether
    /// anything changed.
    pub fn release_member(&mut self, member: &str, limits: &Limits) -> bool {
        let held: Vec<i64> = self
            .records
            .iter()
            .filter(|(_, r)| r.state == RecordState::Acquired && r.owner.as_deref() == Some(member))
            .map(|(o, _)| *o)
            .collect();
        for &o in &held {
            self.settle(o, RecordState::Available, limits);
        }
        if !held.is_empty() {
            self.version += 1;
            self.advance_start();
        }
        !held.is_empty()
    }

    /// Expires every lock whose deadline is at or before `now`. Whether any did.
    pub fn expire(&mut self, now: Instant, limits: &Limits) -> bool {
        let mut any = false;
        while let Some(&(d, o)) = self.locks.first() {
            if d > now {
                break;
            }
            self.settle(o, RecordState::Available, limits);
            any = true;
        }
        if any {
            self.version += 1;
            self.advance_start();
        }
        any
    }

    /// The earliest lock deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.locks.first().map(|(d, _)| *d)
    }

    /// Operator reset (AlterShareGroupOffsets): everything restarts at `offset`.
    pub fn reset(&mut self, offset: i64) {
        self.records.clear();
        self.locks.clear();
        self.spso = offset;
        self.speo = offset;
        self.version += 1;
    }

    /// Moves an ACQUIRED offset out of that state: `Available` becomes ARCHIVED once
    /// the delivery limit is reached.
    fn settle(&mut self, o: i64, next: RecordState, limits: &Limits) {
        if let Some(r) = self.records.get_mut(&o) {
            if let Some(d) = r.deadline.take() {
                self.locks.remove(&(d, o));
            }
            r.owner = None;
            r.state = match next {
                RecordState::Available if r.delivery_count >= limits.delivery_limit => {
                    RecordState::Archived
                }
                s => s,
            };
        }
    }

    /// Drops finished offsets at the front; the SPSO is the first one still pending.
    fn advance_start(&mut self) {
        while let Some(e) = self.records.first_entry() {
            if !e.get().state.done() {
                break;
            }
            e.remove();
        }
        self.spso = self.records.keys().next().copied().unwrap_or(self.speo);
    }
}

#[cfg(test)]
mod tests;
