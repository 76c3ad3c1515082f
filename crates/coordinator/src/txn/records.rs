//! The records of `__transaction_state` in Kafka's schemas: `TransactionLogKey` v0
//! (the transactional id) and `TransactionLogValue` v0 (producer id and epoch, timeout,
//! state, partitions, last update and start times), each prefixed by its version.

use std::collections::BTreeSet;

use super::state::{TxnMetadata, TxnState};
use crate::group::records::{put_str, Reader, RecordError};

pub fn encode_key(transactional_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + transactional_id.len());
    out.extend_from_slice(&0i16.to_be_bytes());
    put_str(&mut out, transactional_id);
    out
}

pub fn decode_key(b: &[u8]) -> Result<String, RecordError> {
    let mut r = Reader { b, pos: 0 };
    if r.i16()? != 0 {
        return Err(RecordError("unknown transaction log key version"));
    }
    r.string()
}

pub fn encode_value(m: &TxnMetadata) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&0i16.to_be_bytes());
    out.extend_from_slice(&m.producer_id.to_be_bytes());
    out.extend_from_slice(&m.producer_epoch.to_be_bytes());
    out.extend_from_slice(&m.timeout_ms.to_be_bytes());
    out.push(m.state.code() as u8);
    // Partitions grouped by topic; null when there are none, as Kafka writes it.
    let mut topics: Vec<(&str, Vec<i32>)> = Vec::new();
    for (t, p) in &m.partitions {
        match topics.last_mut() {
            Some((name, ps)) if *name == t.as_str() => ps.push(*p),
            _ => topics.push((t.as_str(), vec![*p])),
        }
    }
    if topics.is_empty() {
        out.extend_from_slice(&(-1i32).to_be_bytes());
    } else {
        out.extend_from_slice(&(topics.len() as i32).to_be_bytes());
        for (t, ps) in topics {
            put_str(&mut out, t);
            out.extend_from_slice(&(ps.len() as i32).to_be_bytes());
            for p in ps {
                out.extend_from_slice(&p.to_be_bytes());
            }
        }
    }
    out.extend_from_slice(&m.last_update_ms.to_be_bytes());
    out.extend_from_slice(&m.start_ms.to_be_bytes());
    out
}

pub fn decode_value(transactional_id: &str, b: &[u8]) -> Result<TxnMetadata, RecordError> {
    let mut r = Reader { b, pos: 0 };
    if r.i16()? != 0 {
        return Err(RecordError("unknown transaction log value version"));
    }
    let producer_id = r.i64()?;
    let producer_epoch = r.i16()?;
    let timeout_ms = r.i32()?;
    let state =
        TxnState::from_code(r.take(1)?[0] as i8).ok_or(RecordError("unknown transaction state"))?;
    let mut partitions = BTreeSet::new();
    let n = r.i32()?;
    for _ in 0..n.max(0) {
        let topic = r.string()?;
        let count = r.i32()?;
        if count < 0 || count as usize > r.remaining() / 4 {
            return Err(RecordError("bad partition count"));
        }
        for _ in 0..count {
            partitions.insert((topic.clone(), r.i32()?));
        }
    }
    let last_update_ms = r.i64()?;
    let start_ms = r.i64()?;
    Ok(TxnMetadata {
        transactional_id: transactional_id.to_string(),
        producer_id,
        producer_epoch,
        last_producer_epoch: -1,
        prev_producer_id: -1,
        timeout_ms,
        state,
        partitions,
        start_ms,
        last_update_ms,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn values_round_trip_and_garbage_is_an_error() {
        let mut m = TxnMetadata::new("t1", 42, 60_000, 1000);
        m.state = TxnState::Ongoing;
        m.partitions.insert(("a".into(), 0));
        m.partitions.insert(("a".into(), 2));
        m.partitions.insert(("b".into(), 1));
        let v = encode_value(&m);
        let back = decode_value("t1", &v).unwrap();
        assert_eq!(back.partitions, m.partitions);
        assert_eq!(back.state, TxnState::Ongoing);
        assert_eq!((back.producer_id, back.producer_epoch), (42, 0));
        assert_eq!(decode_key(&encode_key("t1")).unwrap(), "t1");
        for cut in 0..v.len() {
            assert!(decode_value("t1", &v[..cut]).is_err());
        }
    }
}
