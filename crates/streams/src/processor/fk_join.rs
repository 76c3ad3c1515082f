//! Foreign-key table-table join (KIP-213): the four processors and the bytes they send
//! each other through the two internal topics.
//!
//! ```text
//!  left sub-topology (partitioned by primary key K)     right sub-topology (by foreign key KO)
//!  left table ─▶ SubscriptionSend ──registration topic (key KO)──▶ SubscriptionReceive ◀─ right store
//!       │              │ (no FK / delete: result emitted here)          │ subscription store
//!    left store        ▼                                                │ (KO, K) → hash, partition
//!       ▲          result ◀── ResponseResolve ◀──response topic (key K, ▼ explicit partition)──┐
//!       └──────────────────────────┘                      right table ─▶ RightUpdate (fan-out)─┘
//! ```
//!
//! - The left side subscribes each primary key to its foreign key; the right side keeps
//!   the subscriptions (a logged store, keyed `len(fk) | fk | pk` so one foreign key's
//!   subscribers are a prefix scan) and answers with the right value, now and on every
//!   later right update.
//! - A subscription carries a hash of the left value it was made for; the response echoes
//!   it, and the left side drops a response whose hash is not the hash of its current left
//!   value (the left row changed since: a newer response is on its way, or none is due).
//! - A subscription also carries the left task's partition, and responses are written to
//!   exactly that partition: the left table may be partitioned by any partitioner.
//! - Kafka's left side sees old and new values (`sendOldValues`); tables here forward new
//!   values only, so the send processor keeps the previous foreign key per primary key in
//!   its own logged store to unsubscribe it when the foreign key changes.

use std::any::Any;
use std::sync::Arc;

use super::{Ctx, Processor, SinkRecord, TopicName};
use crate::error::{Result, StreamsError};
use crate::record::DynRecord;
use crate::serde::SerdeRef;

/// The foreign key of a left value (`None`: the row references nothing).
pub(crate) type FkExtractor<V, KO> = Arc<dyn Fn(&V) -> Option<KO> + Send + Sync>;
/// The join result of a left value and the right value, `None` to delete the result
/// (an inner join without a match).
pub(crate) type FkJoiner<V, VO, VR> = Arc<dyn Fn(&V, Option<&VO>) -> Option<VR> + Send + Sync>;

const VERSION: u8 = 0;
type Hash = [u8; 16];

/// What the right side does with a subscription (Kafka's byte values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Instruction {
    /// Unsubscribe; no response (the foreign key changed or went away).
    DeleteKeyNoPropagate = 0,
    /// Subscribe; respond with the right value, or a null when there is none (the left row
    /// had a result before, or it is a left join).
    PropagateNullIfNoFkValAvailable = 2,
    /// Subscribe; respond only when the right value exists (a new row of an inner join).
    PropagateOnlyIfFkValAvailable = 3,
}

impl Instruction {
    fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(Self::DeleteKeyNoPropagate),
            2 => Some(Self::PropagateNullIfNoFkValAvailable),
            3 => Some(Self::PropagateOnlyIfFkValAvailable),
            _ => None,
        }
    }
}

/// A stable 128-bit hash of the left value's bytes (FNV-1a; Kafka uses Murmur3-128). It
/// travels through topics and stores, so it must not depend on the Rust version.
pub(crate) fn value_hash(bytes: &[u8]) -> Hash {
    let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for &b in bytes {
        h ^= u128::from(b);
        h = h.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
    }
    h.to_be_bytes()
}

/// Registration topic value: `version | instruction | hash(16) | partition(i32) | pk`.
pub(crate) fn encode_subscription(
    instruction: Instruction,
    hash: Hash,
    partition: i32,
    pk: &[u8],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(22 + pk.len());
    out.push(VERSION);
    out.push(instruction as u8);
    out.extend_from_slice(&hash);
    out.extend_from_slice(&partition.to_be_bytes());
    out.extend_from_slice(pk);
    out
}

fn decode_subscription(b: &[u8]) -> Option<(Instruction, Hash, i32, &[u8])> {
    if *b.first()? != VERSION {
        return None;
    }
    let instruction = Instruction::from_byte(*b.get(1)?)?;
    let hash: Hash = b.get(2..18)?.try_into().ok()?;
    let partition = i32::from_be_bytes(b.get(18..22)?.try_into().ok()?);
    Some((instruction, hash, partition, b.get(22..)?))
}

/// Response topic value: `version | hash(16) | 0 (no right value) or 1 + right value`.
fn encode_response(hash: &Hash, right: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(18 + right.map_or(0, <[u8]>::len));
    out.push(VERSION);
    out.extend_from_slice(hash);
    match right {
        Some(v) => {
            out.push(1);
            out.extend_from_slice(v);
        }
        None => out.push(0),
    }
    out
}

fn decode_response(b: &[u8]) -> Option<(Hash, Option<&[u8]>)> {
    if *b.first()? != VERSION {
        return None;
    }
    let hash: Hash = b.get(1..17)?.try_into().ok()?;
    match b.get(17)? {
        0 => Some((hash, None)),
        _ => Some((hash, Some(b.get(18..)?))),
    }
}

/// Subscription store key: `len(fk) u32 | fk | pk`, so one foreign key's subscribers
/// are contiguous (and no foreign key's prefix is another's).
pub(crate) fn subscription_prefix(fk: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + fk.len());
    out.extend_from_slice(&u32::try_from(fk.len()).unwrap_or(u32::MAX).to_be_bytes());
    out.extend_from_slice(fk);
    out
}

fn corrupt(node: &str, what: &str) -> StreamsError {
    StreamsError::Topology(format!("{node}: malformed {what}"))
}

/// Left side: turns each left-table update into subscription changes (or, when the row
/// has no foreign key or was deleted, into the result directly).
pub(crate) struct SubscriptionSend<K, V, KO, VO, VR> {
    pub(crate) name: String,
    /// The left table's store: its name is the serdes' topic, so bytes match its keys.
    pub(crate) left_store: String,
    /// Primary key → `1 | fk` or `0` (row without a foreign key).
    pub(crate) previous_fk_store: String,
    pub(crate) registration: TopicName,
    pub(crate) key_serde: SerdeRef<K>,
    pub(crate) value_serde: SerdeRef<V>,
    pub(crate) fk_serde: SerdeRef<KO>,
    pub(crate) extractor: FkExtractor<V, KO>,
    pub(crate) joiner: FkJoiner<V, VO, VR>,
    pub(crate) left_join: bool,
}

impl<K, V, KO, VO, VR> SubscriptionSend<K, V, KO, VO, VR> {
    fn subscribe(
        &self,
        ctx: &mut Ctx<'_>,
        fk: &[u8],
        instruction: Instruction,
        hash: Hash,
        pk: &[u8],
        ts: i64,
    ) {
        ctx.sink.push(SinkRecord {
            topic: self.registration.resolve(ctx.app_id),
            partition: None,
            key: Some(fk.to_vec()),
            value: Some(encode_subscription(instruction, hash, ctx.partition, pk)),
            timestamp: ts,
            changelog_of: None,
        });
    }
}

impl<K, V, KO, VO, VR> Processor for SubscriptionSend<K, V, KO, VO, VR>
where
    K: Any + Send + Clone,
    V: Any,
    KO: Any,
    VO: Any,
    VR: Any + Send + Clone,
{
    fn process(&mut self, rec: DynRecord, ctx: &mut Ctx<'_>) -> Result<()> {
        let (k, v, ts) = rec.into_typed::<K, V>(&self.name)?;
        let pk = self.key_serde.serialize(&self.left_store, &k)?;
        let previous = ctx.store(&self.previous_fk_store)?.get(&pk);
        let old_fk = previous
            .as_deref()
            .and_then(|p| p.split_first())
            .filter(|(flag, _)| **flag == 1)
            .map(|(_, fk)| fk.to_vec());
        let new_fk = match &v {
            Some(v) => match (self.extractor)(v) {
                Some(fk) => Some(self.fk_serde.serialize(&self.left_store, &fk)?),
                None => None,
            },
            None => None,
        };
        if let Some(old) = &old_fk {
            if new_fk.as_ref() != Some(old) {
                self.subscribe(
                    ctx,
                    old,
                    Instruction::DeleteKeyNoPropagate,
                    [0; 16],
                    &pk,
                    ts,
                );
            }
        }
        let remembered = match (&v, &new_fk) {
            (None, _) => None,
            (Some(_), None) => Some(vec![0]),
            (Some(_), Some(fk)) => Some([&[1u8][..], fk].concat()),
        };
        ctx.store(&self.previous_fk_store)?
            .put(pk.clone(), remembered);
        match (v, new_fk) {
            (Some(v), Some(fk)) => {
                let hash = value_hash(&self.value_serde.serialize(&self.left_store, &v)?);
                // A row that may have had a result must hear back even without a match,
                // to delete that result.
                let instruction = if self.left_join || previous.is_some() {
                    Instruction::PropagateNullIfNoFkValAvailable
                } else {
                    Instruction::PropagateOnlyIfFkValAvailable
                };
                self.subscribe(ctx, &fk, instruction, hash, &pk, ts);
            }
            // No foreign key: nothing to ask the right side; the result is known here.
            (Some(v), None) => {
                let result = (self.joiner)(&v, None);
                // An inner join's new row without a foreign key has no result to delete.
                if result.is_some() || previous.is_some() {
                    ctx.forward(DynRecord::new(k, result, ts));
                }
            }
            (None, _) => {
                if previous.is_some() {
                    ctx.forward(DynRecord::new::<K, VR>(k, None, ts));
                }
            }
        }
        Ok(())
    }
}

/// Right side: applies subscriptions to the subscription store and answers them with the
/// right table's current value.
pub(crate) struct SubscriptionReceive {
    pub(crate) name: String,
    pub(crate) subscription_store: String,
    pub(crate) right_store: String,
    pub(crate) response: TopicName,
}

impl Processor for SubscriptionReceive {
    fn process(&mut self, rec: DynRecord, ctx: &mut Ctx<'_>) -> Result<()> {
        let (fk, v, ts) = rec.into_typed::<Vec<u8>, Vec<u8>>(&self.name)?;
        let Some(v) = v else { return Ok(()) };
        let (instruction, hash, partition, pk) =
            decode_subscription(&v).ok_or_else(|| corrupt(&self.name, "subscription"))?;
        let mut key = subscription_prefix(&fk);
        key.extend_from_slice(pk);
        let store = ctx.store(&self.subscription_store)?;
        if instruction == Instruction::DeleteKeyNoPropagate {
            store.put(key, None);
            return Ok(());
        }
        let mut entry = hash.to_vec();
        entry.extend_from_slice(&partition.to_be_bytes());
        store.put(key, Some(entry));
        let right = ctx.store(&self.right_store)?.get(&fk);
        if right.is_none() && instruction == Instruction::PropagateOnlyIfFkValAvailable {
            return Ok(());
        }
        ctx.sink.push(SinkRecord {
            topic: self.response.resolve(ctx.app_id),
            partition: Some(partition),
            key: Some(pk.to_vec()),
            value: Some(encode_response(&hash, right.as_deref())),
            timestamp: ts,
            changelog_of: None,
        });
        Ok(())
    }
}

/// Right side: a right-table update (or delete) is sent to every subscriber of its key.
pub(crate) struct RightUpdate<KO, VO> {
    pub(crate) name: String,
    pub(crate) right_store: String,
    pub(crate) subscription_store: String,
    pub(crate) response: TopicName,
    pub(crate) key_serde: SerdeRef<KO>,
    pub(crate) value_serde: SerdeRef<VO>,
}

impl<KO: Any, VO: Any> Processor for RightUpdate<KO, VO> {
    fn process(&mut self, rec: DynRecord, ctx: &mut Ctx<'_>) -> Result<()> {
        let (ko, vo, ts) = rec.into_typed::<KO, VO>(&self.name)?;
        let fk = self.key_serde.serialize(&self.right_store, &ko)?;
        let right = match &vo {
            Some(v) => Some(self.value_serde.serialize(&self.right_store, v)?),
            None => None,
        };
        let prefix = subscription_prefix(&fk);
        let topic = self.response.resolve(ctx.app_id);
        for (key, entry) in ctx
            .store(&self.subscription_store)?
            .entries_with_prefix(&prefix)
        {
            let (Some(hash), Some(partition)) = (
                entry.get(..16).and_then(|h| Hash::try_from(h).ok()),
                entry.get(16..20).and_then(|p| <[u8; 4]>::try_from(p).ok()),
            ) else {
                return Err(corrupt(&self.name, "subscription store entry"));
            };
            ctx.sink.push(SinkRecord {
                topic: topic.clone(),
                partition: Some(i32::from_be_bytes(partition)),
                key: Some(key[prefix.len()..].to_vec()),
                value: Some(encode_response(&hash, right.as_deref())),
                timestamp: ts,
                changelog_of: None,
            });
        }
        Ok(())
    }
}

/// Left side: joins a response with the current left value, unless the left value
/// changed since the subscription the response answers (its hash differs): stale.
pub(crate) struct ResponseResolve<K, V, VO, VR> {
    pub(crate) name: String,
    pub(crate) left_store: String,
    pub(crate) key_serde: SerdeRef<K>,
    pub(crate) value_serde: SerdeRef<V>,
    pub(crate) right_value_serde: SerdeRef<VO>,
    pub(crate) joiner: FkJoiner<V, VO, VR>,
}

impl<K, V, VO, VR> Processor for ResponseResolve<K, V, VO, VR>
where
    K: Any + Send + Clone,
    V: Any,
    VO: Any,
    VR: Any + Send + Clone,
{
    fn process(&mut self, rec: DynRecord, ctx: &mut Ctx<'_>) -> Result<()> {
        let (pk, v, ts) = rec.into_typed::<Vec<u8>, Vec<u8>>(&self.name)?;
        let Some(v) = v else { return Ok(()) };
        let (hash, right) = decode_response(&v).ok_or_else(|| corrupt(&self.name, "response"))?;
        let Some(left) = ctx.store(&self.left_store)?.get(&pk) else {
            // Deleted since: the delete emitted the tombstone already.
            return Ok(());
        };
        if value_hash(&left) != hash {
            tracing::trace!(node = %self.name, "dropping a stale foreign-key join response");
            return Ok(());
        }
        let k = self.key_serde.deserialize(&self.left_store, Some(&pk))?;
        let left = self
            .value_serde
            .deserialize(&self.left_store, Some(&left))?;
        let right = match right {
            Some(r) => Some(
                self.right_value_serde
                    .deserialize(&self.left_store, Some(r))?,
            ),
            None => None,
        };
        ctx.forward(DynRecord::new(k, (self.joiner)(&left, right.as_ref()), ts));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_formats_round_trip() {
        let s = encode_subscription(
            Instruction::PropagateOnlyIfFkValAvailable,
            value_hash(b"v"),
            7,
            b"pk",
        );
        assert_eq!(
            decode_subscription(&s),
            Some((
                Instruction::PropagateOnlyIfFkValAvailable,
                value_hash(b"v"),
                7,
                &b"pk"[..]
            ))
        );
        let h = value_hash(b"x");
        assert_eq!(decode_response(&encode_response(&h, None)), Some((h, None)));
        assert_eq!(
            decode_response(&encode_response(&h, Some(b""))),
            Some((h, Some(&b""[..])))
        );
        assert_ne!(value_hash(b"a"), value_hash(b"b"));
        // The prefix of one foreign key never covers another's entries.
        assert!(!subscription_prefix(b"ab").starts_with(&subscription_prefix(b"a")));
    }
}
