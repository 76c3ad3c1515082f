//! Session-windowed aggregation. Sessions of a key are kept in a window-layout store
//! (`key | start` → `end | aggregate`). A record at `ts` merges every session of its key
//! that ends at or after `ts - gap` and starts at or before `ts + gap` into one; the merged
//! sessions are deleted and forwarded as deletes (null values), the new one as an update.
//! A record whose merged session ends before `stream time - grace` is dropped as late.

use std::any::Any;

use super::aggregate::Aggregator;
use super::{Ctx, Processor};
use crate::error::{Result, StreamsError};
use crate::record::DynRecord;
use crate::serde::SerdeRef;
use crate::state::{split_window_key, window_key};
use crate::window::{SessionWindows, Window, Windowed};

pub(crate) type Merger<K, A> = std::sync::Arc<dyn Fn(&K, A, A) -> A + Send + Sync>;

pub(crate) struct SessionAggregate<K, V, A> {
    pub(crate) name: String,
    pub(crate) store: String,
    pub(crate) windows: SessionWindows,
    pub(crate) retention_ms: i64,
    pub(crate) key_serde: SerdeRef<K>,
    pub(crate) agg_serde: SerdeRef<A>,
    pub(crate) agg: Aggregator<K, V, A>,
    pub(crate) merger: Merger<K, A>,
    pub(crate) stream_time: i64,
    pub(crate) last_expiry: i64,
}

fn split_value(store: &str, v: &[u8]) -> Result<(i64, Vec<u8>)> {
    let end: [u8; 8] = v
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| StreamsError::store(store, "malformed session entry"))?;
    Ok((i64::from_be_bytes(end), v[8..].to_vec()))
}

impl<K, V, A> Processor for SessionAggregate<K, V, A>
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
            return Ok(());
        }
        self.stream_time = self.stream_time.max(ts);
        let close_time = self.stream_time.saturating_sub(self.windows.grace_ms());
        let gap = self.windows.gap_ms();
        let kb = self.key_serde.serialize(&self.store, &k)?;
        let sessions = ctx
            .store(&self.store)?
            .entries_between(&window_key(&kb, i64::MIN), &window_key(&kb, i64::MAX));
        let (mut start, mut end, mut agg) = (ts, ts, None::<A>);
        let mut merged = Vec::new();
        for (sk, sv) in sessions {
            let Some((_, s_start)) = split_window_key(&sk) else {
                continue;
            };
            let (s_end, bytes) = split_value(&self.store, &sv)?;
            if s_end < ts.saturating_sub(gap) || s_start > ts.saturating_add(gap) {
                continue;
            }
            let a = self.agg_serde.deserialize(&self.store, Some(&bytes))?;
            agg = Some(match agg {
                None => a,
                Some(prev) => (self.merger)(&k, prev, a),
            });
            start = start.min(s_start);
            end = end.max(s_end);
            merged.push(Window {
                start: s_start,
                end: s_end,
            });
        }
        if end < close_time {
            tracing::debug!(processor = %self.name, ts, "dropping a late record");
            return Ok(());
        }
        let new = self.agg.apply(&k, &v, agg);
        for w in merged {
            ctx.store(&self.store)?.put_window(&kb, w.start, None);
            ctx.forward(DynRecord::new(
                Windowed {
                    key: k.clone(),
                    window: w,
                },
                None::<A>,
                ts,
            ));
        }
        let mut value = end.to_be_bytes().to_vec();
        value.extend_from_slice(&self.agg_serde.serialize(&self.store, &new)?);
        let store = ctx.store(&self.store)?;
        store.put_window(&kb, start, Some(value));
        ctx.forward(DynRecord::new(
            Windowed {
                key: k,
                window: Window { start, end },
            },
            Some(new),
            ts,
        ));
        if self.stream_time.saturating_sub(self.last_expiry) >= gap.max(1) {
            self.last_expiry = self.stream_time;
            ctx.store(&self.store)?
                .expire_sessions(self.stream_time.saturating_sub(self.retention_ms));
        }
        Ok(())
    }
}
