//! The processor API for user code (`KStream::process`): a [`Processor`] sees each record
//! with a [`ProcessorContext`] to forward results, read and write its stores, and
//! [`schedule`](ProcessorContext::schedule) punctuations, Kafka's
//! `ProcessorContext.schedule(interval, PunctuationType, Punctuator)`.
//!
//! Punctuation follows Kafka Streams:
//! - [`PunctuationType::StreamTime`] is aligned to 0 and checked after each record of the
//!   task: it fires when the task's stream time (the largest record timestamp seen)
//!   reaches the next multiple of the interval, so the first record fires it at once and
//!   nothing fires while stream time stands still (no records, or only older ones).
//! - [`PunctuationType::WallClockTime`] first fires one interval after it was scheduled,
//!   then on the interval's grid.
//! - Catch-up: if time jumped past several intervals, the punctuator fires once, with the
//!   current time, and the next one is the next grid point after it.

use std::any::Any;
use std::collections::HashMap;
use std::time::Duration;

use super::{Ctx, Processor as Node};
use crate::error::{Result, StreamsError};
use crate::record::DynRecord;
use crate::serde::SerdeRef;
use crate::state::Store;

/// Which clock a punctuation follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PunctuationType {
    /// Event time: advanced by the task's records only.
    StreamTime,
    /// The system clock (the test driver's `advance_wall_clock_time`).
    WallClockTime,
}

/// A punctuator: called with the punctuation time (ms).
pub type Punctuator<KR, VR> =
    Box<dyn FnMut(i64, &mut ProcessorContext<'_, KR, VR>) -> Result<()> + Send>;

/// A record processor written against the processor API, created once per task by the
/// supplier given to [`KStream::process`](crate::KStream::process).
pub trait Processor<K, V, KR, VR>: Send {
    /// Called once when the task is created, before any record: schedule punctuations here.
    fn init(&mut self, _ctx: &mut ProcessorContext<'_, KR, VR>) -> Result<()> {
        Ok(())
    }

    /// Handles one record (records with a null value are not passed to a processor).
    fn process(
        &mut self,
        key: K,
        value: V,
        timestamp: i64,
        ctx: &mut ProcessorContext<'_, KR, VR>,
    ) -> Result<()>;
}

/// What a [`Processor`] or a punctuator can reach.
pub struct ProcessorContext<'c, KR, VR> {
    stores: &'c mut HashMap<String, Store>,
    allowed: &'c [String],
    timestamp: i64,
    partition: i32,
    forwarded: Vec<(KR, VR, i64)>,
    scheduled: Vec<(i64, PunctuationType, Punctuator<KR, VR>)>,
}

impl<KR, VR> ProcessorContext<'_, KR, VR> {
    /// The current record's timestamp, or the punctuation time in a punctuator.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// The task's partition.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// Sends a record downstream with the current [`timestamp`](Self::timestamp).
    pub fn forward(&mut self, key: KR, value: VR) {
        self.forwarded.push((key, value, self.timestamp));
    }

    /// Sends a record downstream with its own timestamp.
    pub fn forward_with_timestamp(&mut self, key: KR, value: VR, timestamp: i64) {
        self.forwarded.push((key, value, timestamp));
    }

    /// Calls `punctuator` every `interval` of `kind` time, for as long as the task lives.
    pub fn schedule(
        &mut self,
        interval: Duration,
        kind: PunctuationType,
        punctuator: impl FnMut(i64, &mut ProcessorContext<'_, KR, VR>) -> Result<()> + Send + 'static,
    ) -> Result<()> {
        let ms = i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
        if ms < 1 {
            return Err(StreamsError::Topology(
                "a punctuation interval must be at least 1 ms".into(),
            ));
        }
        self.scheduled.push((ms, kind, Box::new(punctuator)));
        Ok(())
    }

    /// One of the stores given to `process`, typed with these serdes. Its changes are
    /// logged to its changelog topic and restored like every store's.
    pub fn key_value_store<SK, SV>(
        &mut self,
        name: &str,
        key_serde: SerdeRef<SK>,
        value_serde: SerdeRef<SV>,
    ) -> Result<KeyValueStore<'_, SK, SV>> {
        if !self.allowed.iter().any(|s| s == name) {
            return Err(StreamsError::Topology(format!(
                "store {name} was not given to this processor"
            )));
        }
        let store = self
            .stores
            .get_mut(name)
            .ok_or_else(|| StreamsError::Topology(format!("store {name} is not in this task")))?;
        Ok(KeyValueStore {
            store,
            key_serde,
            value_serde,
        })
    }
}

/// A store as a processor sees it: typed reads and writes.
pub struct KeyValueStore<'s, K, V> {
    store: &'s mut Store,
    key_serde: SerdeRef<K>,
    value_serde: SerdeRef<V>,
}

impl<K, V> KeyValueStore<'_, K, V> {
    fn name(&self) -> String {
        self.store.spec.name.clone()
    }

    /// The value of `key`.
    pub fn get(&self, key: &K) -> Result<Option<V>> {
        let name = self.name();
        let kb = self.key_serde.serialize(&name, key)?;
        match self.store.get(&kb) {
            Some(b) => Ok(Some(self.value_serde.deserialize(&name, Some(&b))?)),
            None => Ok(None),
        }
    }

    /// Sets `key` to `value`.
    pub fn put(&mut self, key: &K, value: &V) -> Result<()> {
        let name = self.name();
        let kb = self.key_serde.serialize(&name, key)?;
        let vb = self.value_serde.serialize(&name, value)?;
        self.store.put(kb, Some(vb));
        Ok(())
    }

    /// Removes `key`.
    pub fn delete(&mut self, key: &K) -> Result<()> {
        let kb = self.key_serde.serialize(&self.name(), key)?;
        self.store.put(kb, None);
        Ok(())
    }

    /// Every entry, in key-byte order.
    pub fn all(&self) -> Result<Vec<(K, V)>> {
        let name = self.name();
        self.store
            .entries_with_prefix(&[])
            .into_iter()
            .map(|(k, v)| {
                Ok((
                    self.key_serde.deserialize(&name, Some(&k))?,
                    self.value_serde.deserialize(&name, Some(&v))?,
                ))
            })
            .collect()
    }
}

struct Schedule<KR, VR> {
    interval: i64,
    kind: PunctuationType,
    next: i64,
    punctuator: Punctuator<KR, VR>,
}

/// The graph node running a user [`Processor`] and its punctuation schedules.
pub(crate) struct ProcessNode<K, V, KR, VR> {
    pub(crate) name: String,
    pub(crate) stores: Vec<String>,
    pub(crate) user: Box<dyn Processor<K, V, KR, VR>>,
    schedules: Vec<Schedule<KR, VR>>,
    /// The latest wall-clock time the task told this node (to start new schedules).
    wall_clock: i64,
}

impl<K, V, KR, VR> ProcessNode<K, V, KR, VR>
where
    KR: Any + Send + Clone,
    VR: Any + Send + Clone,
{
    pub(crate) fn new(
        name: String,
        stores: Vec<String>,
        user: Box<dyn Processor<K, V, KR, VR>>,
    ) -> Self {
        ProcessNode {
            name,
            stores,
            user,
            schedules: Vec::new(),
            wall_clock: 0,
        }
    }

    /// Runs `f` with a user context, then takes what it forwarded and scheduled.
    fn with_context(
        &mut self,
        ctx: &mut Ctx<'_>,
        timestamp: i64,
        f: impl FnOnce(&mut Self, &mut ProcessorContext<'_, KR, VR>) -> Result<()>,
    ) -> Result<()> {
        let stores = std::mem::take(&mut self.stores);
        let mut pc = ProcessorContext {
            stores: &mut *ctx.stores,
            allowed: &stores,
            timestamp,
            partition: ctx.partition,
            forwarded: Vec::new(),
            scheduled: Vec::new(),
        };
        let result = f(self, &mut pc);
        let (forwarded, scheduled) = (pc.forwarded, pc.scheduled);
        self.stores = stores;
        for (k, v, ts) in forwarded {
            ctx.forward(DynRecord::new(k, Some(v), ts));
        }
        for (interval, kind, punctuator) in scheduled {
            // Kafka: stream time is aligned to 0 (the first record punctuates), wall-clock
            // time to now (the first punctuation is one interval away).
            let next = match kind {
                PunctuationType::StreamTime => 0,
                PunctuationType::WallClockTime => self.wall_clock.saturating_add(interval),
            };
            self.schedules.push(Schedule {
                interval,
                kind,
                next,
                punctuator,
            });
        }
        result
    }
}

impl<K, V, KR, VR> Node for ProcessNode<K, V, KR, VR>
where
    K: Any,
    V: Any,
    KR: Any + Send + Clone,
    VR: Any + Send + Clone,
{
    fn init(&mut self, wall_clock_ms: i64, ctx: &mut Ctx<'_>) -> Result<()> {
        self.wall_clock = wall_clock_ms;
        self.with_context(ctx, -1, |node, pc| node.user.init(pc))
    }

    fn process(&mut self, rec: DynRecord, ctx: &mut Ctx<'_>) -> Result<()> {
        let (k, v, ts) = rec.into_typed::<K, V>(&self.name)?;
        let Some(v) = v else { return Ok(()) };
        self.with_context(ctx, ts, |node, pc| node.user.process(k, v, ts, pc))
    }

    fn punctuate(&mut self, kind: PunctuationType, now: i64, ctx: &mut Ctx<'_>) -> Result<()> {
        if kind == PunctuationType::WallClockTime {
            self.wall_clock = self.wall_clock.max(now);
        }
        // Due schedules fire in the order they were due, each once.
        loop {
            let due = self
                .schedules
                .iter()
                .enumerate()
                .filter(|(_, s)| s.kind == kind && s.next <= now)
                .min_by_key(|(i, s)| (s.next, *i))
                .map(|(i, _)| i);
            let Some(i) = due else { return Ok(()) };
            let s = &mut self.schedules[i];
            // The next grid point after `now` (a jump past several intervals fires once).
            let missed = now.saturating_sub(s.next) / s.interval;
            s.next = s
                .next
                .saturating_add(missed.saturating_add(1).saturating_mul(s.interval));
            let mut punctuator = std::mem::replace(&mut s.punctuator, Box::new(|_, _| Ok(())));
            let result = self.with_context(ctx, now, |_, pc| punctuator(now, pc));
            self.schedules[i].punctuator = punctuator;
            result?;
        }
    }
}
