//! Windowed aggregation on event time, and `suppress(untilWindowCloses)`.
//!
//! Stream time is the largest timestamp a processor has seen. A record updates each of its
//! windows that is still open: `window.end + grace > stream time`; for a closed window it
//! is dropped as late. Windows older than the store's retention are expired locally.

use std::any::Any;
use std::sync::Arc;

use super::aggregate::Aggregator;
use super::{Ctx, Processor};
use crate::error::{Result, StreamsError};
use crate::record::DynRecord;
use crate::serde::SerdeRef;
use crate::window::{TimeWindows, Windowed};

pub(crate) struct WindowedAggregate<K, V, A> {
    pub(crate) name: String,
    pub(crate) store: String,
    pub(crate) windows: TimeWindows,
    pub(crate) retention_ms: i64,
    pub(crate) key_serde: SerdeRef<K>,
    pub(crate) agg_serde: SerdeRef<A>,
    pub(crate) agg: Aggregator<K, V, A>,
    pub(crate) stream_time: i64,
    pub(crate) last_expiry: i64,
    /// Records dropped because every window they belong to had closed.
    pub(crate) dropped_late: Arc<std::sync::atomic::AtomicU64>,
}

impl<K, V, A> Processor for WindowedAggregate<K, V, A>
where
    K: Any + Send + Clone,
    V: Any,
    A: Any + Send + Clone,
{
    fn restore_stream_time(&mut self, t: i64) {
        self.stream_time = self.stream_time.max(t);
    }

    fn process(&mut self, rec: DynRecord, ctx: &mut Ctx<'_>) -> Result<()> {
        let (k, v, ts) = rec.into_typed::<K, V>(&self.name)?;
        let Some(v) = v else { return Ok(()) };
        if ts < 0 {
            tracing::warn!(processor = %self.name, ts, "dropping a record with a negative timestamp");
            return Ok(());
        }
        self.stream_time = self.stream_time.max(ts);
        let close_time = self.stream_time.saturating_sub(self.windows.grace_ms());
        let kb = self.key_serde.serialize(&self.store, &k)?;
        let mut updated = false;
        for w in self.windows.windows_for(ts) {
            if w.end <= close_time {
                continue;
            }
            updated = true;
            let store = ctx.store(&self.store)?;
            let old = match store.fetch_window(&kb, w.start) {
                Some(b) => Some(self.agg_serde.deserialize(&self.store, Some(&b))?),
                None => None,
            };
            let new = self.agg.apply(&k, &v, old);
            store.put_window(
                &kb,
                w.start,
                Some(self.agg_serde.serialize(&self.store, &new)?),
            );
            let key = Windowed {
                key: k.clone(),
                window: w,
            };
            ctx.forward(DynRecord::new(key, Some(new), ts));
        }
        if !updated {
            self.dropped_late
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::debug!(processor = %self.name, ts, stream_time = self.stream_time, "dropping a late record");
        }
        if self.stream_time.saturating_sub(self.last_expiry) >= self.windows.size_ms() {
            self.last_expiry = self.stream_time;
            let min_start = self.stream_time.saturating_sub(self.retention_ms);
            ctx.store(&self.store)?.expire_windows(min_start);
        }
        Ok(())
    }
}

/// Holds the latest result of each window until the window closes
/// (`end + grace <= stream time`), then emits it once. The buffer is a logged key-value
/// store keyed by `end | windowed key`, so it survives a restart and is read in end order.
pub(crate) struct SuppressUntilWindowCloses<K, A> {
    pub(crate) name: String,
    pub(crate) store: String,
    pub(crate) grace_ms: i64,
    pub(crate) key_serde: SerdeRef<Windowed<K>>,
    pub(crate) value_serde: SerdeRef<A>,
    pub(crate) stream_time: i64,
}

fn buffer_key(end: i64, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 8);
    out.extend_from_slice(&((end as u64) ^ (1 << 63)).to_be_bytes());
    out.extend_from_slice(key);
    out
}

impl<K, A> Processor for SuppressUntilWindowCloses<K, A>
where
    K: Any + Send + Clone,
    A: Any + Send + Clone,
{
    fn restore_stream_time(&mut self, t: i64) {
        self.stream_time = self.stream_time.max(t);
    }

    fn process(&mut self, rec: DynRecord, ctx: &mut Ctx<'_>) -> Result<()> {
        let (wk, v, ts) = rec.into_typed::<Windowed<K>, A>(&self.name)?;
        self.stream_time = self.stream_time.max(ts);
        let kb = self.key_serde.serialize(&self.store, &wk)?;
        let Some(v) = v else {
            // A merged (deleted) session: it will never be final.
            ctx.store(&self.store)?
                .put(buffer_key(wk.window.end, &kb), None);
            return Ok(());
        };
        let mut value = ts.to_be_bytes().to_vec();
        value.extend_from_slice(&self.value_serde.serialize(&self.store, &v)?);
        let store = ctx.store(&self.store)?;
        store.put(buffer_key(wk.window.end, &kb), Some(value));
        // Emit every window that has closed, oldest end first.
        let close_time = self.stream_time.saturating_sub(self.grace_ms);
        let due = store.entries_below(&buffer_key(close_time.saturating_add(1), &[]));
        for (bk, _) in &due {
            store.put(bk.clone(), None);
        }
        for (bk, bv) in due {
            let (Some(key), Some(ts), Some(value)) = (bk.get(8..), bv.get(..8), bv.get(8..)) else {
                return Err(StreamsError::store(
                    &self.store,
                    "malformed suppression buffer entry",
                ));
            };
            let mut tsb = [0u8; 8];
            tsb.copy_from_slice(ts);
            let key = self.key_serde.deserialize(&self.store, Some(key))?;
            let value = self.value_serde.deserialize(&self.store, Some(value))?;
            ctx.forward(DynRecord::new(key, Some(value), i64::from_be_bytes(tsb)));
        }
        Ok(())
    }
}
