//! Confluent's wire format: magic byte `0`, the schema id as a 4-byte big-endian
//! integer, then the payload (Avro binary, JSON text, or for Protobuf the message-index
//! array followed by the message bytes).
//!
//! Everything here is pure and total: malformed input is a [`WireError`], never a panic,
//! because the bytes come from any producer on the topic.

/// The first byte of every framed record.
pub const MAGIC: u8 = 0;

/// Why bytes are not a framed record (or not a valid message-index array).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Shorter than the 5-byte header.
    #[error("Unknown magic byte! (the record is {0} bytes, shorter than the 5-byte header)")]
    Truncated(usize),
    /// The first byte is not 0: not written by a schema-registry serializer.
    #[error("Unknown magic byte! (found {0:#04x}, expected 0x00)")]
    BadMagic(u8),
    /// The Protobuf message-index array is cut short or out of range.
    #[error("Invalid message indexes: {0}")]
    BadMessageIndexes(&'static str),
}

/// `payload` framed with `schema_id`.
pub fn frame(schema_id: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + payload.len());
    out.push(MAGIC);
    out.extend_from_slice(&schema_id.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The schema id and the payload of a framed record.
pub fn unframe(bytes: &[u8]) -> Result<(u32, &[u8]), WireError> {
    let (header, payload) = match bytes.split_first_chunk::<5>() {
        Some(split) => split,
        None => return Err(WireError::Truncated(bytes.len())),
    };
    if header[0] != MAGIC {
        return Err(WireError::BadMagic(header[0]));
    }
    let id = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    Ok((id, payload))
}

/// The Protobuf message-index array for the message at `path` (indexes of the message in
/// its file, then of each nested message): a zigzag varint count then zigzag varint
/// indexes, with the single byte `0` standing for `[0]` (the file's first message).
pub fn encode_message_indexes(path: &[i32]) -> Vec<u8> {
    let mut out = Vec::new();
    if path == [0] {
        out.push(0);
        return out;
    }
    put_zigzag(&mut out, i64::try_from(path.len()).unwrap_or(i64::MAX));
    for &i in path {
        put_zigzag(&mut out, i64::from(i));
    }
    out
}

/// The message-index array at the start of a Protobuf payload, and the rest.
pub fn decode_message_indexes(bytes: &[u8]) -> Result<(Vec<i32>, &[u8]), WireError> {
    let (count, mut rest) = get_zigzag(bytes)?;
    if count == 0 {
        return Ok((vec![0], rest));
    }
    // Each index takes at least one byte: a count past the remaining length is garbage,
    // and checking it first keeps a forged count from sizing an allocation.
    let count = usize::try_from(count)
        .ok()
        .filter(|&c| c <= rest.len())
        .ok_or(WireError::BadMessageIndexes("count out of range"))?;
    let mut path = Vec::with_capacity(count);
    for _ in 0..count {
        let (i, r) = get_zigzag(rest)?;
        let i = i32::try_from(i)
            .ok()
            .filter(|i| *i >= 0)
            .ok_or(WireError::BadMessageIndexes("index out of range"))?;
        path.push(i);
        rest = r;
    }
    Ok((path, rest))
}

fn put_zigzag(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    loop {
        let byte = (z & 0x7f) as u8;
        z >>= 7;
        if z == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn get_zigzag(bytes: &[u8]) -> Result<(i64, &[u8]), WireError> {
    let mut z: u64 = 0;
    for (n, &b) in bytes.iter().enumerate().take(10) {
        z |= u64::from(b & 0x7f) << (7 * n);
        if b & 0x80 == 0 {
            let v = ((z >> 1) as i64) ^ -((z & 1) as i64);
            return Ok((v, &bytes[n + 1..]));
        }
    }
    Err(WireError::BadMessageIndexes("truncated varint"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_and_unframes() {
        let framed = frame(258, b"abc");
        assert_eq!(framed, [0, 0, 0, 1, 2, b'a', b'b', b'c']);
        assert_eq!(unframe(&framed), Ok((258, &b"abc"[..])));
        assert_eq!(unframe(&frame(7, b"")), Ok((7, &b""[..])));
    }

    #[test]
    fn malformed_frames_are_errors() {
        assert_eq!(unframe(b""), Err(WireError::Truncated(0)));
        assert_eq!(unframe(&[0, 0, 0, 1]), Err(WireError::Truncated(4)));
        assert_eq!(unframe(b"{\"a\":1}"), Err(WireError::BadMagic(b'{')));
        assert_eq!(unframe(&[1, 0, 0, 0, 1]), Err(WireError::BadMagic(1)));
    }

    #[test]
    fn message_indexes_round_trip_with_the_zero_shortcut() {
        assert_eq!(encode_message_indexes(&[0]), [0]);
        assert_eq!(decode_message_indexes(&[0, 9]), Ok((vec![0], &[9u8][..])));
        // [1]: count 1 (zigzag 2), index 1 (zigzag 2).
        assert_eq!(encode_message_indexes(&[1]), [2, 2]);
        // [0, 2]: count 2, then 0 and 2 (zigzag 0 and 4).
        assert_eq!(encode_message_indexes(&[0, 2]), [4, 0, 4]);
        for path in [vec![1], vec![0, 2], vec![3, 0, 70]] {
            let mut bytes = encode_message_indexes(&path);
            bytes.push(0xaa);
            assert_eq!(decode_message_indexes(&bytes), Ok((path, &[0xaau8][..])));
        }
    }

    #[test]
    fn malformed_message_indexes_are_errors() {
        assert!(decode_message_indexes(&[]).is_err());
        assert!(decode_message_indexes(&[0x80]).is_err());
        // A count of 1000 with two bytes left.
        assert!(decode_message_indexes(&[0xd0, 0x0f, 2, 2]).is_err());
        // A negative index (zigzag 1 = -1).
        assert!(decode_message_indexes(&[2, 1]).is_err());
        assert!(decode_message_indexes(&[0xff; 11]).is_err());
    }
}
