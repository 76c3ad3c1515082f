//! Stream-stream windowed inner join. Each side buffers its records in a window-layout
//! store (`key | timestamp` → the values seen at that timestamp) and, for each record,
//! joins every buffered record of the other side with the same key whose timestamp is
//! within the join window. Buffers expire after before + after + grace of stream time.

use std::any::Any;
use std::sync::Arc;

use super::{Ctx, Processor};
use crate::error::{Result, StreamsError};
use crate::record::DynRecord;
use crate::serde::SerdeRef;
use crate::state::{split_window_key, window_key};

/// Values buffered at one timestamp: `len u32 | bytes`, repeated.
fn append(list: Option<Vec<u8>>, value: &[u8]) -> Vec<u8> {
    let mut out = list.unwrap_or_default();
    out.extend_from_slice(&u32::try_from(value.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(value);
    out
}

fn entries<'a>(store: &str, mut list: &'a [u8]) -> Result<Vec<&'a [u8]>> {
    let mut out = Vec::new();
    while !list.is_empty() {
        let len = list
            .get(..4)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(|b| u32::from_be_bytes(b) as usize)
            .ok_or_else(|| StreamsError::store(store, "malformed join buffer"))?;
        let v = list
            .get(4..4 + len)
            .ok_or_else(|| StreamsError::store(store, "malformed join buffer"))?;
        out.push(v);
        list = &list[4 + len..];
    }
    Ok(out)
}

/// Joins a record of this side (`V`) with one of the other side (`VO`).
pub(crate) type ValueJoiner<K, V, VO, VR> = Arc<dyn Fn(&K, &V, &VO) -> VR + Send + Sync>;

/// One side of the join: `V` its values, `VO` the other side's, `VR` the result.
pub(crate) struct JoinSide<K, V, VO, VR> {
    pub(crate) name: String,
    pub(crate) this_store: String,
    pub(crate) other_store: String,
    /// The other side's records may be this much older / newer than this side's.
    pub(crate) before_ms: i64,
    pub(crate) after_ms: i64,
    pub(crate) grace_ms: i64,
    pub(crate) key_serde: SerdeRef<K>,
    pub(crate) value_serde: SerdeRef<V>,
    pub(crate) other_value_serde: SerdeRef<VO>,
    pub(crate) joiner: ValueJoiner<K, V, VO, VR>,
    pub(crate) stream_time: i64,
    pub(crate) last_expiry: i64,
}

impl<K, V, VO, VR> Processor for JoinSide<K, V, VO, VR>
where
    K: Any + Send + Clone,
    V: Any,
    VO: Any,
    VR: Any + Send + Clone,
{
    fn restore_stream_time(&mut self, t: i64) {
        self.stream_time = self.stream_time.max(t);
    }

    fn process(&mut self, rec: DynRecord, ctx: &mut Ctx<'_>) -> Result<()> {
        let (k, v, ts) = rec.into_typed::<K, V>(&self.name)?;
        let Some(v) = v else { return Ok(()) };
        self.stream_time = self.stream_time.max(ts);
        if ts
            .saturating_add(self.after_ms)
            .saturating_add(self.grace_ms)
            < self.stream_time
        {
            tracing::debug!(processor = %self.name, ts, "dropping a late record");
            return Ok(());
        }
        let kb = self.key_serde.serialize(&self.this_store, &k)?;
        let vb = self.value_serde.serialize(&self.this_store, &v)?;
        let mine = ctx.store(&self.this_store)?;
        let list = append(mine.fetch_window(&kb, ts), &vb);
        mine.put_window(&kb, ts, Some(list));
        let retention = self
            .before_ms
            .saturating_add(self.after_ms)
            .saturating_add(self.grace_ms);
        if self.stream_time.saturating_sub(self.last_expiry) >= retention.max(1) {
            self.last_expiry = self.stream_time;
            mine.expire_windows(self.stream_time.saturating_sub(retention));
        }
        let other = ctx.store(&self.other_store)?;
        let lo = window_key(&kb, ts.saturating_sub(self.before_ms));
        let hi = window_key(&kb, ts.saturating_add(self.after_ms));
        let matches = other.entries_between(&lo, &hi);
        for (stored, list) in matches {
            if split_window_key(&stored).is_none() {
                continue;
            }
            for ob in entries(&self.other_store, &list)? {
                let o = self
                    .other_value_serde
                    .deserialize(&self.other_store, Some(ob))?;
                let out = (self.joiner)(&k, &v, &o);
                ctx.forward(DynRecord::new(k.clone(), Some(out), ts));
            }
        }
        Ok(())
    }
}
