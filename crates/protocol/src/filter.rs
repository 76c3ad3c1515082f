//! Removing records from a stored batch, for log compaction.
//!
//! Compaction is one of the few places where the broker must change what the CRC
//! covers. A batch whose records all stay is left byte for byte as it is; a batch that
//! loses some is rebuilt with the same header fields (base offset, base timestamp,
//! producer id/epoch/sequence, attributes, leader epoch), the surviving records copied
//! with their original offset and timestamp deltas and raw headers, recompressed with
//! the batch's own codec, and a new CRC. Offsets keep their gaps, as in Kafka.

use crate::batch::{compute_crc, BatchHeader, HEADER_LEN, LOG_OVERHEAD};
use crate::compression::{self, Codec};
use crate::records::{write_varint, write_varlong, RecordView, RecordWalker};
use crate::BatchError;

/// What filtering did to a batch.
#[derive(Debug, PartialEq, Eq)]
pub enum Filtered {
    /// Every record stays: keep the original bytes.
    Unchanged,
    /// No record stays: drop the batch.
    Empty,
    /// Some records stay: the rebuilt batch.
    Rebuilt(Vec<u8>),
}

/// Keeps the records of `batch` for which `keep(offset, record)` is true. `scratch`
/// holds the decompressed records; `limit` bounds their size.
pub fn filter_batch(
    batch: &[u8],
    scratch: &mut Vec<u8>,
    limit: usize,
    mut keep: impl FnMut(i64, &RecordView<'_>) -> bool,
) -> Result<Filtered, BatchError> {
    let header = BatchHeader::parse(batch)?;
    if batch.len() < header.total_size() {
        return Err(BatchError::Truncated("batch length points past the end"));
    }
    let batch = &batch[..header.total_size()];
    let codec = header.codec()?;
    let data = crate::batch::records_section(&header, batch, scratch, limit)?;
    let mut kept: Vec<RecordView<'_>> = Vec::new();
    let mut total = 0;
    for rec in RecordWalker::new(data, header.record_count) {
        let rec = rec?;
        total += 1;
        if keep(header.base_offset + i64::from(rec.offset_delta), &rec) {
            kept.push(rec);
        }
    }
    if kept.len() == total {
        return Ok(Filtered::Unchanged);
    }
    let Some(last) = kept.last() else {
        return Ok(Filtered::Empty);
    };
    let last_offset_delta = last.offset_delta;
    let mut raw = Vec::with_capacity(data.len());
    for r in &kept {
        encode_view(&mut raw, r);
    }
    let log_append_time = header.attributes & crate::batch::ATTR_LOG_APPEND_TIME != 0;
    let max_timestamp = if log_append_time {
        header.max_timestamp
    } else {
        kept.iter()
            .map(|r| header.base_timestamp.wrapping_add(r.timestamp_delta))
            .max()
            .unwrap_or(header.max_timestamp)
    };
    let mut body = Vec::with_capacity(raw.len());
    compression::compress(codec, &raw, &mut body)?;
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&batch[..HEADER_LEN]);
    let length = (HEADER_LEN - LOG_OVERHEAD + body.len()) as i32;
    out[8..12].copy_from_slice(&length.to_be_bytes());
    out[23..27].copy_from_slice(&last_offset_delta.to_be_bytes());
    out[35..43].copy_from_slice(&max_timestamp.to_be_bytes());
    out[57..61].copy_from_slice(&(kept.len() as i32).to_be_bytes());
    out.extend_from_slice(&body);
    let crc = compute_crc(&out);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(Filtered::Rebuilt(out))
}

/// Re-encodes a batch's records with `codec` (a topic's `compression.type` that is not
/// `producer`). Everything else in the header stays; the CRC is recomputed.
pub fn recompress(
    batch: &[u8],
    scratch: &mut Vec<u8>,
    limit: usize,
    codec: Codec,
) -> Result<Vec<u8>, BatchError> {
    let header = BatchHeader::parse(batch)?;
    if batch.len() < header.total_size() {
        return Err(BatchError::Truncated("batch length points past the end"));
    }
    let batch = &batch[..header.total_size()];
    let data = crate::batch::records_section(&header, batch, scratch, limit)?;
    let mut body = Vec::with_capacity(data.len() / 2 + 64);
    compression::compress(codec, data, &mut body)?;
    let mut out = Vec::with_capacity(HEADER_LEN + body.len());
    out.extend_from_slice(&batch[..HEADER_LEN]);
    let length = (HEADER_LEN - LOG_OVERHEAD + body.len()) as i32;
    out[8..12].copy_from_slice(&length.to_be_bytes());
    let attrs = (header.attributes & !0x07) | codec.attribute_bits();
    out[21..23].copy_from_slice(&attrs.to_be_bytes());
    out.extend_from_slice(&body);
    let crc = compute_crc(&out);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

/// Re-encodes a record as it was (raw headers included).
fn encode_view(out: &mut Vec<u8>, r: &RecordView<'_>) {
    let mut body = Vec::with_capacity(
        24 + r.key.map_or(0, <[u8]>::len) + r.value.map_or(0, <[u8]>::len) + r.headers.len(),
    );
    body.push(r.attributes as u8);
    write_varlong(&mut body, r.timestamp_delta);
    write_varint(&mut body, r.offset_delta);
    for field in [r.key, r.value] {
        match field {
            Some(b) => {
                write_varint(&mut body, b.len() as i32);
                body.extend_from_slice(b);
            }
            None => write_varint(&mut body, -1),
        }
    }
    write_varint(&mut body, r.header_count);
    body.extend_from_slice(r.headers);
    write_varint(out, body.len() as i32);
    out.extend_from_slice(&body);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::batch::{build, validate, validate_stored, NewRecord};

    fn sample(codec: Codec) -> Vec<u8> {
        let hdr: &[(&[u8], Option<&[u8]>)] = &[(b"h", Some(b"1")), (b"h", None)];
        let recs: Vec<NewRecord<'_>> = (0..6)
            .map(|i| NewRecord {
                key: Some(if i % 2 == 0 { b"a" } else { b"b" }),
                value: if i == 5 { None } else { Some(b"value") },
                timestamp: 1000 + i,
                headers: hdr,
            })
            .collect();
        let mut b = build(100, codec, &recs).unwrap();
        crate::batch::set_base_offset(&mut b, 100);
        b
    }

    #[test]
    fn keeps_offsets_headers_and_codec() {
        for codec in [
            Codec::None,
            Codec::Gzip,
            Codec::Lz4,
            Codec::Zstd,
            Codec::Snappy,
        ] {
            let b = sample(codec);
            let mut scratch = Vec::new();
            assert_eq!(
                filter_batch(&b, &mut scratch, 1 << 20, |_, _| true).unwrap(),
                Filtered::Unchanged
            );
            assert_eq!(
                filter_batch(&b, &mut scratch, 1 << 20, |_, _| false).unwrap(),
                Filtered::Empty
            );
            // Keep only offsets 103 and 104.
            let Filtered::Rebuilt(out) =
                filter_batch(&b, &mut scratch, 1 << 20, |o, _| o == 103 || o == 104).unwrap()
            else {
                panic!("expected a rebuilt batch");
            };
            assert!(
                validate(&out, &mut scratch, 1 << 20).is_err(),
                "gaps are not producer input"
            );
            let v = validate_stored(&out, &mut scratch, 1 << 20).unwrap();
            assert_eq!(v.header.base_offset, 100);
            assert_eq!(v.header.record_count, 2);
            assert_eq!(v.header.last_offset_delta, 4);
            assert_eq!(v.max_timestamp, 1004);
            assert_eq!(v.header.codec().unwrap(), codec);
            let data = if codec == Codec::None {
                out[HEADER_LEN..].to_vec()
            } else {
                let mut d = Vec::new();
                compression::decompress(codec, &out[HEADER_LEN..], &mut d, 1 << 20).unwrap();
                d
            };
            let recs: Vec<_> = RecordWalker::new(&data, 2)
                .collect::<Result<_, _>>()
                .unwrap();
            assert_eq!(recs[0].offset_delta, 3);
            assert_eq!(recs[0].key, Some(&b"b"[..]));
            assert_eq!(recs[1].timestamp_delta, 4);
            assert_eq!(recs[1].header_count, 2);
        }
    }

    #[test]
    fn recompression_changes_only_the_codec() {
        let mut scratch = Vec::new();
        let b = sample(Codec::Gzip);
        for to in [
            Codec::None,
            Codec::Zstd,
            Codec::Lz4,
            Codec::Snappy,
            Codec::Gzip,
        ] {
            let out = recompress(&b, &mut scratch, 1 << 20, to).unwrap();
            let v = validate(&out, &mut scratch, 1 << 20).unwrap();
            assert_eq!(v.header.codec().unwrap(), to);
            assert_eq!(v.header.record_count, 6);
            assert_eq!(v.header.base_offset, 100);
            assert_eq!(v.max_timestamp, 1005);
        }
    }

    #[test]
    fn garbage_is_an_error() {
        let mut scratch = Vec::new();
        assert!(filter_batch(&[0u8; 10], &mut scratch, 1 << 20, |_, _| true).is_err());
        let mut b = sample(Codec::None);
        b.truncate(b.len() - 3);
        assert!(filter_batch(&b, &mut scratch, 1 << 20, |_, _| true).is_err());
    }
}
