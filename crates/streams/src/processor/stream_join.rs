//! Stream-stream windowed joins (inner, left, outer). Each side buffers its records in a
//! window-layout store (`key | timestamp` → the values seen at that timestamp) and, for
//! each record, joins every buffered record of the other side with the same key whose
//! timestamp is within the join window. Buffers expire after before + after + grace of
//! stream time.
//!
//! Left and outer joins (Kafka 3.1+ semantics): a record of an outer side that found no
//! partner is parked in a shared "non-joined" store and emitted with a null partner only
//! once its window has closed (stream time past its timestamp + window + grace), unless a
//! partner arrived before that. So a left join never emits a `(v, null)` result that a
//! later `(v, o)` contradicts within the window. The two sides share one stream time,
//! kept in that store (so it is restored from its changelog with the rest).

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

/// Joins a record of this side (`V`) with one of the other side (`VO`); a `None` side is
/// a missing partner (left and outer joins only). A `None` result is not emitted.
pub(crate) type ValueJoiner<K, V, VO, VR> =
    Arc<dyn Fn(&K, Option<&V>, Option<&VO>) -> Option<VR> + Send + Sync>;

/// Which side a processor is, and which sides emit records that found no partner.
#[derive(Clone, Debug)]
pub(crate) struct OuterJoin {
    /// The shared non-joined store: `timestamp | side | key` → values at that timestamp.
    pub(crate) store: String,
    /// 0 for the left (this) stream, 1 for the other.
    pub(crate) side: u8,
    /// Emit this side's unmatched records.
    pub(crate) this_outer: bool,
    /// Emit the other side's unmatched records.
    pub(crate) other_outer: bool,
}

/// The shared stream time's key in the non-joined store; sorts after every entry.
const STREAM_TIME_KEY: &[u8] = b"\xff\xff\xff\xff\xff\xff\xff\xff\xffstream-time";

fn outer_key(ts: i64, side: u8, key: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + 9);
    out.extend_from_slice(&((ts as u64) ^ (1 << 63)).to_be_bytes());
    out.push(side);
    out.extend_from_slice(key);
    out
}

fn split_outer_key(stored: &[u8]) -> Option<(i64, u8, &[u8])> {
    let ts: [u8; 8] = stored.get(..8)?.try_into().ok()?;
    let side = *stored.get(8)?;
    Some((
        (u64::from_be_bytes(ts) ^ (1 << 63)) as i64,
        side,
        stored.get(9..)?,
    ))
}

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
    /// Set for left and outer joins.
    pub(crate) outer: Option<OuterJoin>,
}

impl<K, V, VO, VR> JoinSide<K, V, VO, VR>
where
    K: Any + Send + Clone,
    V: Any,
    VO: Any,
    VR: Any + Send + Clone,
{
    /// Advances the shared stream time and emits, in timestamp order, the parked records
    /// whose windows have closed.
    fn emit_closed(&mut self, outer: &OuterJoin, ctx: &mut Ctx<'_>) -> Result<()> {
        let store = ctx.store(&outer.store)?;
        let shared = store
            .get(STREAM_TIME_KEY)
            .and_then(|b| <[u8; 8]>::try_from(b.as_slice()).ok())
            .map(i64::from_be_bytes)
            .unwrap_or(i64::MIN);
        let now = shared.max(self.stream_time);
        self.stream_time = now;
        if now > shared {
            store.put(STREAM_TIME_KEY.to_vec(), Some(now.to_be_bytes().to_vec()));
        }
        // A record of this side closes at ts + after + grace, the other side's at
        // ts + before + grace (this side's window is the other's, mirrored).
        let reach = self
            .before_ms
            .min(self.after_ms)
            .saturating_add(self.grace_ms);
        let bound = outer_key(now.saturating_sub(reach), 0, &[]);
        let mut closed = Vec::new();
        for (stored, list) in store.entries_below(&bound) {
            let Some((ts, side, key)) = split_outer_key(&stored) else {
                continue;
            };
            let span = if side == outer.side {
                self.after_ms
            } else {
                self.before_ms
            };
            if ts.saturating_add(span).saturating_add(self.grace_ms) < now {
                closed.push((stored.clone(), ts, side, key.to_vec(), list));
            }
        }
        for (stored, ts, side, key, list) in closed {
            let store = ctx.store(&outer.store)?;
            store.put(stored, None);
            let k = self.key_serde.deserialize(&outer.store, Some(&key))?;
            for vb in entries(&outer.store, &list)? {
                let out = if side == outer.side {
                    let v = self.value_serde.deserialize(&outer.store, Some(vb))?;
                    (self.joiner)(&k, Some(&v), None)
                } else {
                    let o = self.other_value_serde.deserialize(&outer.store, Some(vb))?;
                    (self.joiner)(&k, None, Some(&o))
                };
                if let Some(out) = out {
                    ctx.forward(DynRecord::new(k.clone(), Some(out), ts));
                }
            }
        }
        Ok(())
    }
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
        let mut partners = Vec::new();
        for (stored, list) in matches {
            let Some((_, other_ts)) = split_window_key(&stored) else {
                continue;
            };
            partners.push(other_ts);
            for ob in entries(&self.other_store, &list)? {
                let o = self
                    .other_value_serde
                    .deserialize(&self.other_store, Some(ob))?;
                if let Some(out) = (self.joiner)(&k, Some(&v), Some(&o)) {
                    ctx.forward(DynRecord::new(k.clone(), Some(out), ts));
                }
            }
        }
        if let Some(outer) = self.outer.clone() {
            let parked = ctx.store(&outer.store)?;
            if outer.other_outer {
                // The other side's records found their partner: never emit them unjoined.
                for other_ts in &partners {
                    let key = outer_key(*other_ts, 1 - outer.side, &kb);
                    if parked.get(&key).is_some() {
                        parked.put(key, None);
                    }
                }
            }
            if outer.this_outer && partners.is_empty() {
                let key = outer_key(ts, outer.side, &kb);
                let list = append(parked.get(&key), &vb);
                parked.put(key, Some(list));
            }
            self.emit_closed(&outer, ctx)?;
        }
        Ok(())
    }
}
