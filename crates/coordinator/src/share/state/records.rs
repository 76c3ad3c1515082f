//! `__share_group_state` records in Kafka's coordinator-record format, so the topic
//! reads the same as Kafka's share coordinator writes it.
//!
//! - Key: the record type as an int16 (`0` = ShareSnapshot, `1` = ShareUpdate), then
//!   `ShareSnapshotKey` v0 (not flexible): group id (int16-length string), topic id
//!   (16 bytes), partition (int32).
//! - Value: the value version as an int16 (`0`), then `ShareSnapshotValue` v0
//!   (flexible): snapshot epoch (uint16), state epoch (int32), leader epoch (int32),
//!   start offset (int64), state batches (compact array of first offset int64, last
//!   offset int64, delivery state int8, delivery count int16, tagged fields), tagged
//!   fields.
//! - A null value (tombstone) deletes the share-partition's state.
//!
//! Gregor writes a whole snapshot every time (a share-partition's state is bounded by
//! `group.share.partition.max.record.locks`), so compaction keeps exactly the latest.
//! A ShareUpdate record (type 1, which Kafka writes between snapshots) is not written
//! here and is refused on replay as unknown.

use bytes::{Buf, BufMut, BytesMut};
use uuid::Uuid;

use super::{ShareState, StateBatch, StateKey};

const SNAPSHOT: i16 = 0;
const VALUE_VERSION: i16 = 0;

/// Why a stored record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("share-state record truncated")]
    Truncated,
    #[error("unsupported share-state record type {0}")]
    Type(i16),
    #[error("unsupported share-state value version {0}")]
    Version(i16),
    #[error("share-state group id is not UTF-8")]
    Utf8,
}

pub fn encode_key(k: &StateKey) -> Vec<u8> {
    let g = k.group.as_bytes();
    let len = g.len().min(i16::MAX as usize);
    let mut b = BytesMut::with_capacity(2 + 2 + len + 16 + 4);
    b.put_i16(SNAPSHOT);
    b.put_i16(len as i16);
    b.put_slice(&g[..len]);
    b.put_slice(k.topic_id.as_bytes());
    b.put_i32(k.partition);
    b.to_vec()
}

pub fn decode_key(mut b: &[u8]) -> Result<StateKey, RecordError> {
    if b.remaining() < 4 {
        return Err(RecordError::Truncated);
    }
    let kind = b.get_i16();
    if kind != SNAPSHOT {
        return Err(RecordError::Type(kind));
    }
    let len = usize::try_from(b.get_i16()).map_err(|_| RecordError::Truncated)?;
    if b.remaining() != len + 16 + 4 {
        return Err(RecordError::Truncated);
    }
    let group = std::str::from_utf8(&b[..len])
        .map_err(|_| RecordError::Utf8)?
        .to_string();
    b.advance(len);
    let mut id = [0u8; 16];
    b.copy_to_slice(&mut id);
    Ok(StateKey {
        group,
        topic_id: Uuid::from_bytes(id),
        partition: b.get_i32(),
    })
}

fn put_uvarint(b: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        b.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    b.put_u8(v as u8);
}

fn get_uvarint(b: &mut &[u8]) -> Result<u64, RecordError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        if !b.has_remaining() {
            return Err(RecordError::Truncated);
        }
        let byte = b.get_u8();
        v |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(RecordError::Truncated)
}

/// Skips a tagged-fields section (Gregor writes none; Kafka's newer versions may).
fn skip_tags(b: &mut &[u8]) -> Result<(), RecordError> {
    let n = get_uvarint(b)?;
    for _ in 0..n {
        get_uvarint(b)?;
        let size = usize::try_from(get_uvarint(b)?).map_err(|_| RecordError::Truncated)?;
        if b.remaining() < size {
            return Err(RecordError::Truncated);
        }
        b.advance(size);
    }
    Ok(())
}

pub fn encode_value(s: &ShareState) -> Vec<u8> {
    let mut b = BytesMut::with_capacity(32 + s.batches.len() * 20);
    b.put_i16(VALUE_VERSION);
    b.put_u16(s.snapshot_epoch);
    b.put_i32(s.state_epoch);
    b.put_i32(s.leader_epoch);
    b.put_i64(s.start_offset);
    put_uvarint(&mut b, s.batches.len() as u64 + 1);
    for x in &s.batches {
        b.put_i64(x.first_offset);
        b.put_i64(x.last_offset);
        b.put_i8(x.delivery_state);
        b.put_i16(x.delivery_count);
        put_uvarint(&mut b, 0);
    }
    put_uvarint(&mut b, 0);
    b.to_vec()
}

pub fn decode_value(mut b: &[u8]) -> Result<ShareState, RecordError> {
    if b.remaining() < 2 + 2 + 4 + 4 + 8 {
        return Err(RecordError::Truncated);
    }
    let version = b.get_i16();
    if version != VALUE_VERSION {
        return Err(RecordError::Version(version));
    }
    let snapshot_epoch = b.get_u16();
    let state_epoch = b.get_i32();
    let leader_epoch = b.get_i32();
    let start_offset = b.get_i64();
    let n = get_uvarint(&mut b)?;
    let n = usize::try_from(n.saturating_sub(1)).map_err(|_| RecordError::Truncated)?;
    // Each batch is at least 20 bytes: a count beyond that is a damaged record.
    if n > b.remaining() / 20 {
        return Err(RecordError::Truncated);
    }
    let mut batches = Vec::with_capacity(n);
    for _ in 0..n {
        if b.remaining() < 19 {
            return Err(RecordError::Truncated);
        }
        batches.push(StateBatch {
            first_offset: b.get_i64(),
            last_offset: b.get_i64(),
            delivery_state: b.get_i8(),
            delivery_count: b.get_i16(),
        });
        skip_tags(&mut b)?;
    }
    skip_tags(&mut b)?;
    Ok(ShareState {
        snapshot_epoch,
        state_epoch,
        leader_epoch,
        start_offset,
        batches,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_and_value_round_trip_and_damage_is_an_error() {
        let k = StateKey {
            group: "queue-ü".into(),
            topic_id: Uuid::new_v4(),
            partition: 7,
        };
        let kb = encode_key(&k);
        assert_eq!(decode_key(&kb), Ok(k));
        assert_eq!(decode_key(&kb[..kb.len() - 1]), Err(RecordError::Truncated));
        let mut update = kb.clone();
        update[1] = 1;
        assert_eq!(decode_key(&update), Err(RecordError::Type(1)));

        let s = ShareState {
            snapshot_epoch: 3,
            state_epoch: 1,
            leader_epoch: 4,
            start_offset: 100,
            batches: vec![
                StateBatch {
                    first_offset: 100,
                    last_offset: 104,
                    delivery_state: 2,
                    delivery_count: 1,
                },
                StateBatch {
                    first_offset: 105,
                    last_offset: 105,
                    delivery_state: 0,
                    delivery_count: 3,
                },
            ],
        };
        let vb = encode_value(&s);
        assert_eq!(decode_value(&vb), Ok(s));
        for cut in 0..vb.len() {
            assert!(decode_value(&vb[..cut]).is_err(), "cut at {cut}");
        }
        let mut huge = vb.clone();
        huge[20] = 0x7f; // a batch count far beyond the bytes
        assert_eq!(decode_value(&huge), Err(RecordError::Truncated));
    }
}
