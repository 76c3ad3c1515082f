//! A walker over the records inside a v2 batch's (decompressed) records section.
//!
//! It borrows the bytes and yields [`RecordView`]s of slices into them: no allocation per
//! record. Duplicate header keys are kept as they are (the generated crate's decoder folds
//! them into a map, which is why the broker does not use it on this path).

use crate::BatchError;

/// One record, borrowed from the batch bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub attributes: i8,
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    /// Raw header section: `count` headers follow, each key/value length-prefixed.
    pub header_count: i32,
    pub headers: &'a [u8],
}

/// Iterates over `count` records in `data`.
pub struct RecordWalker<'a> {
    data: &'a [u8],
    pos: usize,
    remaining: i32,
}

impl<'a> RecordWalker<'a> {
    pub fn new(data: &'a [u8], count: i32) -> Self {
        Self {
            data,
            pos: 0,
            remaining: count,
        }
    }

    /// Bytes not consumed by the records walked so far.
    pub fn trailing_bytes(&self) -> usize {
        self.data.len() - self.pos
    }
}

fn invalid(msg: &str) -> BatchError {
    BatchError::InvalidRecord(msg.to_string())
}

/// Reads a zigzag varint (at most 5 bytes) from `buf` at `*pos`.
pub fn read_varint(buf: &[u8], pos: &mut usize) -> Result<i32, BatchError> {
    let raw = read_unsigned(buf, pos, 5)?;
    let raw = u32::try_from(raw).map_err(|_| invalid("varint overflow"))?;
    Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
}

/// Reads a zigzag varlong (at most 10 bytes) from `buf` at `*pos`.
pub fn read_varlong(buf: &[u8], pos: &mut usize) -> Result<i64, BatchError> {
    let raw = read_unsigned(buf, pos, 10)?;
    Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

fn read_unsigned(buf: &[u8], pos: &mut usize, max_bytes: usize) -> Result<u64, BatchError> {
    let mut value: u64 = 0;
    for i in 0..max_bytes {
        let b = *buf.get(*pos).ok_or_else(|| invalid("truncated varint"))?;
        *pos += 1;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(invalid("varint too long"))
}

/// Appends a zigzag varint to `out`.
pub fn write_varint(out: &mut Vec<u8>, v: i32) {
    write_varlong(out, i64::from(v));
}

/// Appends a zigzag varlong to `out`.
pub fn write_varlong(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn read_bytes<'a>(
    buf: &'a [u8],
    pos: &mut usize,
    end: usize,
) -> Result<Option<&'a [u8]>, BatchError> {
    let len = read_varint(buf, pos)?;
    if len < 0 {
        return Ok(None);
    }
    let stop = pos
        .checked_add(len as usize)
        .filter(|s| *s <= end)
        .ok_or_else(|| invalid("field past record end"))?;
    let slice = &buf[*pos..stop];
    *pos = stop;
    Ok(Some(slice))
}

impl<'a> Iterator for RecordWalker<'a> {
    type Item = Result<RecordView<'a>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining <= 0 {
            return None;
        }
        self.remaining -= 1;
        let r = self.parse_one();
        if r.is_err() {
            self.remaining = 0;
        }
        Some(r)
    }
}

impl<'a> RecordWalker<'a> {
    fn parse_one(&mut self) -> Result<RecordView<'a>, BatchError> {
        let buf = self.data;
        let mut pos = self.pos;
        let len = read_varint(buf, &mut pos)?;
        if len < 0 {
            return Err(invalid("negative record length"));
        }
        let end = pos
            .checked_add(len as usize)
            .filter(|e| *e <= buf.len())
            .ok_or_else(|| invalid("record past batch end"))?;
        let attributes = *buf.get(pos).ok_or_else(|| invalid("truncated record"))? as i8;
        pos += 1;
        let timestamp_delta = read_varlong(buf, &mut pos)?;
        let offset_delta = read_varint(buf, &mut pos)?;
        let key = read_bytes(buf, &mut pos, end)?;
        let value = read_bytes(buf, &mut pos, end)?;
        let header_count = read_varint(buf, &mut pos)?;
        if header_count < 0 {
            return Err(invalid("negative header count"));
        }
        let headers_start = pos;
        for _ in 0..header_count {
            let hk = read_bytes(buf, &mut pos, end)?;
            if hk.is_none() {
                return Err(invalid("null header key"));
            }
            read_bytes(buf, &mut pos, end)?;
        }
        if pos != end {
            return Err(invalid("record length does not match its fields"));
        }
        self.pos = end;
        Ok(RecordView {
            attributes,
            timestamp_delta,
            offset_delta,
            key,
            value,
            header_count,
            headers: &buf[headers_start..end],
        })
    }
}

/// Encodes one record (used by tests and by the broker where it must build batches).
pub fn encode_record(
    out: &mut Vec<u8>,
    offset_delta: i32,
    timestamp_delta: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[(&[u8], Option<&[u8]>)],
) {
    let mut body =
        Vec::with_capacity(32 + key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len));
    body.push(0);
    write_varlong(&mut body, timestamp_delta);
    write_varint(&mut body, offset_delta);
    for field in [key, value] {
        match field {
            Some(b) => {
                write_varint(&mut body, b.len() as i32);
                body.extend_from_slice(b);
            }
            None => write_varint(&mut body, -1),
        }
    }
    write_varint(&mut body, headers.len() as i32);
    for (k, v) in headers {
        write_varint(&mut body, k.len() as i32);
        body.extend_from_slice(k);
        match v {
            Some(v) => {
                write_varint(&mut body, v.len() as i32);
                body.extend_from_slice(v);
            }
            None => write_varint(&mut body, -1),
        }
    }
    write_varint(out, body.len() as i32);
    out.extend_from_slice(&body);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_records_with_duplicate_headers_and_nulls() {
        let mut data = Vec::new();
        encode_record(
            &mut data,
            0,
            5,
            None,
            Some(b"v0"),
            &[(b"h", Some(b"1")), (b"h", Some(b"2"))],
        );
        encode_record(&mut data, 1, 7, Some(b"k1"), None, &[]);
        let recs: Vec<_> = RecordWalker::new(&data, 2)
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(recs[0].key, None);
        assert_eq!(recs[0].value, Some(&b"v0"[..]));
        assert_eq!(recs[0].header_count, 2);
        assert_eq!(recs[1].offset_delta, 1);
        assert_eq!(recs[1].timestamp_delta, 7);
        assert_eq!(recs[1].value, None);
    }

    #[test]
    fn varints_round_trip() {
        for v in [
            0i64,
            1,
            -1,
            63,
            -64,
            300,
            i64::from(i32::MAX),
            i64::from(i32::MIN),
            i64::MAX,
            i64::MIN,
        ] {
            let mut out = Vec::new();
            write_varlong(&mut out, v);
            let mut pos = 0;
            assert_eq!(read_varlong(&out, &mut pos).unwrap(), v);
            assert_eq!(pos, out.len());
        }
    }

    #[test]
    fn garbage_never_panics() {
        let garbage = [0xffu8; 40];
        for n in 0..garbage.len() {
            let _ = RecordWalker::new(&garbage[..n], 3).count();
        }
    }
}
