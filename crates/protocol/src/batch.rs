//! A view of one record batch (magic v2), the unit that Gregor stores and serves.
//!
//! ```text
//! offset  size  field                     covered by CRC
//!  0       8    baseOffset                no   (set by the broker)
//!  8       4    batchLength               no
//! 12       4    partitionLeaderEpoch      no   (set by the broker)
//! 16       1    magic                     no
//! 17       4    crc (CRC32C)              no
//! 21       2    attributes                yes
//! 23       4    lastOffsetDelta           yes
//! 27       8    baseTimestamp             yes
//! 35       8    maxTimestamp              yes
//! 43       8    producerId                yes
//! 51       2    producerEpoch             yes
//! 53       4    baseSequence              yes
//! 57       4    recordCount               yes
//! 61       ..   records (maybe compressed) yes
//! ```
//!
//! The broker validates a produced batch with [`validate`], then patches only the fields
//! outside the CRC ([`set_base_offset`], [`set_partition_leader_epoch`]). LogAppendTime is
//! the one case that changes covered bytes ([`set_max_timestamp`] recomputes the CRC).

use crate::compression::{self, Codec};
use crate::records::{self, RecordWalker};
use crate::BatchError;

/// Offset + length: the bytes before `batchLength` starts counting.
pub const LOG_OVERHEAD: usize = 12;
/// Size of the full v2 header, records start here.
pub const HEADER_LEN: usize = 61;
const CRC_START: usize = 21;

/// Attribute bit: timestamps are LogAppendTime.
pub const ATTR_LOG_APPEND_TIME: i16 = 0x08;
/// Attribute bit: part of a transaction.
pub const ATTR_TRANSACTIONAL: i16 = 0x10;
/// Attribute bit: control batch (transaction markers).
pub const ATTR_CONTROL: i16 = 0x20;

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn i64_at(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// The fixed header of a v2 batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
}

impl BatchHeader {
    /// Parses the header. Only needs the first [`HEADER_LEN`] bytes.
    pub fn parse(b: &[u8]) -> Result<Self, BatchError> {
        if b.len() < LOG_OVERHEAD + 5 {
            return Err(BatchError::Truncated("shorter than the batch prologue"));
        }
        let magic = b[16] as i8;
        if magic != 2 {
            return Err(BatchError::UnsupportedMagic(magic));
        }
        if b.len() < HEADER_LEN {
            return Err(BatchError::Truncated("shorter than a v2 batch header"));
        }
        let batch_length = i32_at(b, 8);
        if batch_length < (HEADER_LEN - LOG_OVERHEAD) as i32 {
            return Err(BatchError::InvalidRecord(format!(
                "batch length {batch_length} below header size"
            )));
        }
        Ok(Self {
            base_offset: i64_at(b, 0),
            batch_length,
            partition_leader_epoch: i32_at(b, 12),
            magic,
            crc: u32::from_be_bytes([b[17], b[18], b[19], b[20]]),
            attributes: i16_at(b, 21),
            last_offset_delta: i32_at(b, 23),
            base_timestamp: i64_at(b, 27),
            max_timestamp: i64_at(b, 35),
            producer_id: i64_at(b, 43),
            producer_epoch: i16_at(b, 51),
            base_sequence: i32_at(b, 53),
            record_count: i32_at(b, 57),
        })
    }

    /// Bytes the whole batch occupies, prologue included.
    pub fn total_size(&self) -> usize {
        LOG_OVERHEAD + self.batch_length as usize
    }
    /// Saturates: the base offset of a batch a client sent is whatever it wrote.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }
    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }
    pub fn codec(&self) -> Result<Codec, BatchError> {
        Codec::from_attributes(self.attributes)
    }
}

/// Reads only the base offset and length of the batch at the start of `b`, the minimum the
/// storage layer needs to walk a segment. Returns `None` when fewer than 17 bytes remain.
pub fn peek_offset_and_size(b: &[u8]) -> Option<(i64, usize)> {
    if b.len() < LOG_OVERHEAD + 5 {
        return None;
    }
    let len = i32_at(b, 8);
    if len < 0 {
        return None;
    }
    Some((i64_at(b, 0), LOG_OVERHEAD + len as usize))
}

/// CRC32C over the covered bytes of a complete batch.
pub fn compute_crc(batch: &[u8]) -> u32 {
    crc32c::crc32c(&batch[CRC_START..])
}

/// What validation learned about a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidatedBatch {
    pub header: BatchHeader,
    /// Largest record timestamp (CreateTime) in the batch.
    pub max_timestamp: i64,
    /// Offset delta of the first record carrying `max_timestamp`.
    pub offset_delta_of_max_timestamp: i32,
    /// Smallest record timestamp, for `message.timestamp.before.max.ms`.
    pub min_timestamp: i64,
    /// Whether any record has a null key (compacted topics reject these).
    pub has_null_key: bool,
}

/// The records section of a batch (everything after the 61-byte header), decompressed
/// into `scratch` when the batch is compressed; `limit` bounds the inflated size. The
/// one place that turns a stored or produced batch into walkable records.
pub fn records_section<'a>(
    header: &BatchHeader,
    batch: &'a [u8],
    scratch: &'a mut Vec<u8>,
    limit: usize,
) -> Result<&'a [u8], BatchError> {
    let payload = batch
        .get(HEADER_LEN..header.total_size().min(batch.len()))
        .ok_or(BatchError::Truncated("batch"))?;
    let codec = header.codec()?;
    if codec == Codec::None {
        return Ok(payload);
    }
    scratch.clear();
    compression::decompress(codec, payload, scratch, limit)?;
    Ok(scratch)
}

/// Validates one complete batch: size, magic, CRC32C, codec, record count against
/// `lastOffsetDelta`, and every record's framing and offset delta. `scratch` is reused
/// for decompression; `decompress_limit` bounds the inflated size.
pub fn validate(
    batch: &[u8],
    scratch: &mut Vec<u8>,
    decompress_limit: usize,
) -> Result<ValidatedBatch, BatchError> {
    validate_inner(batch, scratch, decompress_limit, true)
}

/// Validates a batch read back from a log: as [`validate`], except that the records'
/// offsets may have gaps (log compaction removes records from inside a batch, keeping
/// the others' offsets), so only strictly increasing deltas within `lastOffsetDelta`
/// are required.
pub fn validate_stored(
    batch: &[u8],
    scratch: &mut Vec<u8>,
    decompress_limit: usize,
) -> Result<ValidatedBatch, BatchError> {
    validate_inner(batch, scratch, decompress_limit, false)
}

fn validate_inner(
    batch: &[u8],
    scratch: &mut Vec<u8>,
    decompress_limit: usize,
    contiguous: bool,
) -> Result<ValidatedBatch, BatchError> {
    let header = BatchHeader::parse(batch)?;
    if batch.len() != header.total_size() {
        return Err(if batch.len() < header.total_size() {
            BatchError::Truncated("batch length points past the end")
        } else {
            BatchError::InvalidRecord("trailing bytes after the record batch".into())
        });
    }
    let computed = compute_crc(batch);
    if computed != header.crc {
        return Err(BatchError::CrcMismatch {
            stored: header.crc,
            computed,
        });
    }
    if header.record_count <= 0 {
        return Err(BatchError::InvalidRecord("batch holds no records".into()));
    }
    let count_ok = if contiguous {
        i64::from(header.record_count) == i64::from(header.last_offset_delta) + 1
    } else {
        i64::from(header.record_count) <= i64::from(header.last_offset_delta) + 1
    };
    if !count_ok {
        return Err(BatchError::InvalidRecord(format!(
            "record count {} does not match lastOffsetDelta {}",
            header.record_count, header.last_offset_delta
        )));
    }
    let data = records_section(&header, batch, scratch, decompress_limit)?;
    let mut max_ts = i64::MIN;
    let mut min_ts = i64::MAX;
    let mut max_delta = 0;
    let mut has_null_key = false;
    let mut walker = RecordWalker::new(data, header.record_count);
    let mut expected = 0i32;
    let mut last_delta = 0i32;
    for rec in walker.by_ref() {
        let rec = rec?;
        let delta_ok = if contiguous {
            rec.offset_delta == expected
        } else {
            rec.offset_delta >= last_delta && rec.offset_delta <= header.last_offset_delta
        };
        if !delta_ok {
            return Err(BatchError::InvalidRecord(format!(
                "record offset delta {} where {expected} was expected",
                rec.offset_delta
            )));
        }
        last_delta = rec.offset_delta.saturating_add(1);
        let ts = header.base_timestamp.wrapping_add(rec.timestamp_delta);
        if ts > max_ts {
            max_ts = ts;
            max_delta = rec.offset_delta;
        }
        min_ts = min_ts.min(ts);
        has_null_key |= rec.key.is_none();
        expected += 1;
    }
    if expected != header.record_count {
        return Err(BatchError::InvalidRecord(
            "fewer records than recordCount".into(),
        ));
    }
    if walker.trailing_bytes() != 0 {
        return Err(BatchError::InvalidRecord(
            "bytes after the last record".into(),
        ));
    }
    Ok(ValidatedBatch {
        header,
        max_timestamp: max_ts,
        min_timestamp: min_ts,
        offset_delta_of_max_timestamp: max_delta,
        has_null_key,
    })
}

/// Finds the offset of the first record whose timestamp is at least `target`, walking
/// (and if need be decompressing) the batch. Used by ListOffsets by timestamp.
pub fn first_offset_at_or_after(
    batch: &[u8],
    target: i64,
    scratch: &mut Vec<u8>,
    limit: usize,
) -> Result<Option<(i64, i64)>, BatchError> {
    let header = BatchHeader::parse(batch)?;
    if header.attributes & ATTR_LOG_APPEND_TIME != 0 {
        return Ok(
            (header.max_timestamp >= target).then_some((header.base_offset, header.max_timestamp))
        );
    }
    let data = records_section(&header, batch, scratch, limit)?;
    for rec in RecordWalker::new(data, header.record_count) {
        let rec = rec?;
        let ts = header.base_timestamp.wrapping_add(rec.timestamp_delta);
        if ts >= target {
            return Ok(Some((header.base_offset + i64::from(rec.offset_delta), ts)));
        }
    }
    Ok(None)
}

/// Sets the base offset (outside the CRC).
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[0..8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Sets the partition leader epoch (outside the CRC).
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[12..16].copy_from_slice(&epoch.to_be_bytes());
}

/// Rewrites the max timestamp and the timestamp-type bit, then the CRC. This is the one
/// patch that changes covered bytes; it costs one CRC pass over the batch.
pub fn set_max_timestamp(batch: &mut [u8], log_append_time: bool, max_timestamp: i64) {
    let (header, payload) = batch.split_at_mut(HEADER_LEN);
    set_max_timestamp_split(header, payload, log_append_time, max_timestamp);
}

/// [`set_max_timestamp`] for a batch held as a separate header copy and the untouched
/// payload, which is how the log appends without copying the producer's bytes.
pub fn set_max_timestamp_split(
    header: &mut [u8],
    payload: &[u8],
    log_append_time: bool,
    max_timestamp: i64,
) {
    let mut attrs = i16_at(header, 21);
    if log_append_time {
        attrs |= ATTR_LOG_APPEND_TIME;
    } else {
        attrs &= !ATTR_LOG_APPEND_TIME;
    }
    header[21..23].copy_from_slice(&attrs.to_be_bytes());
    header[35..43].copy_from_slice(&max_timestamp.to_be_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&header[CRC_START..HEADER_LEN]), payload);
    header[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// A record for [`build`].
pub struct NewRecord<'a> {
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub timestamp: i64,
    pub headers: &'a [(&'a [u8], Option<&'a [u8]>)],
}

/// The producer fields of a batch [`build_as`] makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Producer {
    pub id: i64,
    pub epoch: i16,
    pub base_sequence: i32,
    /// Extra attribute bits: [`ATTR_TRANSACTIONAL`], [`ATTR_CONTROL`].
    pub attributes: i16,
}

impl Producer {
    /// No producer: what plain writes carry.
    pub const NONE: Producer = Producer {
        id: -1,
        epoch: -1,
        base_sequence: -1,
        attributes: 0,
    };
}

/// A transaction marker's kind: the control record key's type field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    Abort,
    Commit,
}

/// The marker a control batch carries, read from its first record's key (version,
/// type). `None` for a control batch of another kind (or unreadable).
pub fn control_marker(batch: &[u8], scratch: &mut Vec<u8>) -> Option<Marker> {
    end_txn_marker(batch, scratch).map(|(m, _)| m)
}

/// The marker a control batch carries and the coordinator epoch its value names
/// (`EndTxnMarker`: version i16, coordinator epoch i32; -1 when the value is missing
/// or short).
pub fn end_txn_marker(batch: &[u8], scratch: &mut Vec<u8>) -> Option<(Marker, i32)> {
    let h = BatchHeader::parse(batch).ok()?;
    if !h.is_control() {
        return None;
    }
    let data = records_section(&h, batch, scratch, 1 << 16).ok()?;
    let rec = RecordWalker::new(data, h.record_count).next()?.ok()?;
    let marker = match rec.key? {
        [_, _, 0, 0] => Marker::Abort,
        [_, _, 0, 1] => Marker::Commit,
        _ => return None,
    };
    let epoch = match rec.value {
        Some([_, _, a, b, c, d, ..]) => i32::from_be_bytes([*a, *b, *c, *d]),
        _ => -1,
    };
    Some((marker, epoch))
}

/// A transaction marker batch (control and transactional bits set, no sequence), as the
/// transaction coordinator writes to each partition of a transaction.
pub fn build_marker(
    producer_id: i64,
    producer_epoch: i16,
    marker: Marker,
    coordinator_epoch: i32,
    timestamp: i64,
) -> Result<Vec<u8>, BatchError> {
    let kind: i16 = match marker {
        Marker::Abort => 0,
        Marker::Commit => 1,
    };
    let mut key = [0u8; 4];
    key[2..].copy_from_slice(&kind.to_be_bytes());
    let mut value = [0u8; 6];
    value[2..].copy_from_slice(&coordinator_epoch.to_be_bytes());
    build_as(
        0,
        Codec::None,
        &[NewRecord {
            key: Some(&key),
            value: Some(&value),
            timestamp,
            headers: &[],
        }],
        Producer {
            id: producer_id,
            epoch: producer_epoch,
            base_sequence: -1,
            attributes: ATTR_CONTROL | ATTR_TRANSACTIONAL,
        },
    )
}

/// Builds a complete batch. The broker uses this only where Kafka also re-encodes; tests
/// use it to make inputs.
pub fn build(
    base_offset: i64,
    codec: Codec,
    recs: &[NewRecord<'_>],
) -> Result<Vec<u8>, BatchError> {
    build_as(base_offset, codec, recs, Producer::NONE)
}

/// [`build`] with producer id, epoch, sequence and attribute bits.
pub fn build_as(
    base_offset: i64,
    codec: Codec,
    recs: &[NewRecord<'_>],
    producer: Producer,
) -> Result<Vec<u8>, BatchError> {
    let base_ts = recs.first().map_or(0, |r| r.timestamp);
    let max_ts = recs.iter().map(|r| r.timestamp).max().unwrap_or(base_ts);
    let mut raw = Vec::new();
    for (i, r) in recs.iter().enumerate() {
        records::encode_record(
            &mut raw,
            i as i32,
            r.timestamp - base_ts,
            r.key,
            r.value,
            r.headers,
        );
    }
    let mut payload = Vec::new();
    compression::compress(codec, &raw, &mut payload)?;
    let mut b = Vec::with_capacity(HEADER_LEN + payload.len());
    b.extend_from_slice(&base_offset.to_be_bytes());
    b.extend_from_slice(&((HEADER_LEN - LOG_OVERHEAD + payload.len()) as i32).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.push(2);
    b.extend_from_slice(&[0; 4]);
    b.extend_from_slice(&(codec.attribute_bits() | producer.attributes).to_be_bytes());
    b.extend_from_slice(&((recs.len() as i32) - 1).to_be_bytes());
    b.extend_from_slice(&base_ts.to_be_bytes());
    b.extend_from_slice(&max_ts.to_be_bytes());
    b.extend_from_slice(&producer.id.to_be_bytes());
    b.extend_from_slice(&producer.epoch.to_be_bytes());
    b.extend_from_slice(&producer.base_sequence.to_be_bytes());
    b.extend_from_slice(&(recs.len() as i32).to_be_bytes());
    b.extend_from_slice(&payload);
    let crc = compute_crc(&b);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(codec: Codec) -> Vec<u8> {
        let recs: Vec<NewRecord<'_>> = (0..10)
            .map(|i| NewRecord {
                key: Some(b"k"),
                value: Some(b"value"),
                timestamp: 1000 + i,
                headers: &[],
            })
            .collect();
        build(0, codec, &recs).unwrap()
    }

    #[test]
    fn valid_batches_pass_for_every_codec() {
        for codec in [
            Codec::None,
            Codec::Gzip,
            Codec::Snappy,
            Codec::Lz4,
            Codec::Zstd,
        ] {
            let mut scratch = Vec::new();
            let v = validate(&sample(codec), &mut scratch, 1 << 20).unwrap();
            assert_eq!(v.header.record_count, 10);
            assert_eq!(v.max_timestamp, 1009);
            assert_eq!(v.offset_delta_of_max_timestamp, 9);
        }
    }

    #[test]
    fn crc_count_and_magic_are_checked() {
        let mut scratch = Vec::new();
        let mut b = sample(Codec::None);
        let last = b.len() - 1;
        b[last] ^= 1;
        assert!(matches!(
            validate(&b, &mut scratch, 1 << 20),
            Err(BatchError::CrcMismatch { .. })
        ));

        let mut b = sample(Codec::None);
        b[23..27].copy_from_slice(&3i32.to_be_bytes());
        let crc = compute_crc(&b);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(
            validate(&b, &mut scratch, 1 << 20),
            Err(BatchError::InvalidRecord(_))
        ));

        let mut b = sample(Codec::None);
        b[16] = 1;
        assert_eq!(
            validate(&b, &mut scratch, 1 << 20),
            Err(BatchError::UnsupportedMagic(1))
        );
    }

    #[test]
    fn patches_keep_the_batch_valid() {
        let mut b = sample(Codec::Lz4);
        set_base_offset(&mut b, 42);
        set_partition_leader_epoch(&mut b, 7);
        set_max_timestamp(&mut b, true, 5555);
        let mut scratch = Vec::new();
        let v = validate(&b, &mut scratch, 1 << 20).unwrap();
        assert_eq!(v.header.base_offset, 42);
        assert_eq!(v.header.partition_leader_epoch, 7);
        assert_eq!(v.header.max_timestamp, 5555);
        assert_ne!(v.header.attributes & ATTR_LOG_APPEND_TIME, 0);
    }

    #[test]
    fn markers_round_trip() {
        let mut scratch = Vec::new();
        for m in [Marker::Abort, Marker::Commit] {
            let b = build_marker(42, 3, m, 9, 1000).unwrap();
            let v = validate(&b, &mut scratch, 1 << 20).unwrap();
            assert!(v.header.is_control() && v.header.is_transactional());
            assert_eq!((v.header.producer_id, v.header.producer_epoch), (42, 3));
            assert_eq!(control_marker(&b, &mut scratch), Some(m));
            assert_eq!(end_txn_marker(&b, &mut scratch), Some((m, 9)));
        }
        assert_eq!(control_marker(&sample(Codec::None), &mut scratch), None);
    }

    #[test]
    fn timestamp_search_finds_first_record() {
        let b = sample(Codec::Gzip);
        let mut scratch = Vec::new();
        assert_eq!(
            first_offset_at_or_after(&b, 1004, &mut scratch, 1 << 20).unwrap(),
            Some((4, 1004))
        );
        assert_eq!(
            first_offset_at_or_after(&b, 5000, &mut scratch, 1 << 20).unwrap(),
            None
        );
    }

    /// Run with overflow checks (the release profile has them): values a client or a
    /// damaged disk controls, at the ends of their ranges, must not overflow.
    #[test]
    fn wire_values_at_the_edges_do_not_overflow() {
        let mut b = sample(Codec::None);
        set_base_offset(&mut b, i64::MAX);
        b[23..27].copy_from_slice(&5i32.to_be_bytes());
        let h = BatchHeader::parse(&b).unwrap();
        assert_eq!(h.last_offset(), i64::MAX);

        // A stored (compacted-style) batch whose one record sits at offset delta
        // i32::MAX, with lastOffsetDelta i32::MAX: valid, and the walker's "next
        // delta" must not overflow.
        let mut rec = vec![0u8, 0]; // attributes, timestamp delta 0
        rec.extend_from_slice(&[0xfe, 0xff, 0xff, 0xff, 0x0f]); // zigzag(i32::MAX)
        rec.extend_from_slice(&[1, 1, 0]); // null key, null value, no headers
        let mut b = sample(Codec::None);
        b.truncate(HEADER_LEN);
        b.push(rec.len() as u8 * 2); // zigzag length
        b.extend_from_slice(&rec);
        let len = (b.len() - LOG_OVERHEAD) as i32;
        b[8..12].copy_from_slice(&len.to_be_bytes());
        b[23..27].copy_from_slice(&i32::MAX.to_be_bytes());
        b[57..61].copy_from_slice(&1i32.to_be_bytes());
        let crc = compute_crc(&b);
        b[17..21].copy_from_slice(&crc.to_be_bytes());
        let mut scratch = Vec::new();
        let v = validate_stored(&b, &mut scratch, 1 << 16).unwrap();
        assert_eq!(v.offset_delta_of_max_timestamp, i32::MAX);
        assert!(matches!(
            validate(&b, &mut scratch, 1 << 16),
            Err(BatchError::InvalidRecord(_))
        ));
    }

    /// Every parser that takes a batch, over `b`: none may panic.
    fn exercise(b: &[u8], scratch: &mut Vec<u8>) -> Result<ValidatedBatch, BatchError> {
        let _ = validate_stored(b, scratch, 1 << 16);
        let _ = first_offset_at_or_after(b, 0, scratch, 1 << 16);
        let _ = control_marker(b, scratch);
        let _ = crate::filter::filter_batch(b, scratch, 1 << 16, |o, _| o % 2 == 0);
        let _ = crate::filter::recompress(b, scratch, 1 << 16, Codec::Gzip);
        validate(b, scratch, 1 << 16)
    }

    fn codec_strategy() -> impl proptest::strategy::Strategy<Value = Codec> {
        proptest::sample::select(vec![
            Codec::None,
            Codec::Gzip,
            Codec::Snappy,
            Codec::Lz4,
            Codec::Zstd,
        ])
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Mutations of valid batches of every codec, with the CRC fixed up afterwards so
        /// that the bytes get past the CRC check into the codecs and the record walker
        /// (random bytes never would). The header fields the CRC covers are fair game
        /// too: counts, deltas, attributes (the codec bits), timestamps.
        #[test]
        fn mutated_valid_batches_reach_the_codecs_and_walker(
            codec in codec_strategy(),
            edits in proptest::collection::vec((21usize..4096, proptest::num::u8::ANY), 0..6),
            cut in proptest::option::of(61usize..4096),
        ) {
            let mut b = sample(codec);
            for (at, byte) in &edits {
                let at = 21 + (at - 21) % (b.len() - 21);
                b[at] = *byte;
            }
            if let Some(cut) = cut {
                // A shorter batch whose length field agrees, so the cut reaches the codec.
                let cut = 61 + (cut - 61) % (b.len() - 60);
                b.truncate(cut);
                let len = (cut - LOG_OVERHEAD) as i32;
                b[8..12].copy_from_slice(&len.to_be_bytes());
            }
            let crc = compute_crc(&b);
            b[17..21].copy_from_slice(&crc.to_be_bytes());
            let mut scratch = Vec::new();
            let r = exercise(&b, &mut scratch);
            proptest::prop_assert!(
                !matches!(r, Err(BatchError::CrcMismatch { .. })),
                "the fixed-up CRC must pass, so the payload is what gets checked"
            );
            if edits.is_empty() && cut.is_none() {
                proptest::prop_assert!(r.is_ok(), "{:?}", r);
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let mut scratch = Vec::new();
            let _ = validate(&bytes, &mut scratch, 1 << 16);
            let _ = first_offset_at_or_after(&bytes, 0, &mut scratch, 1 << 16);
        }

        #[test]
        fn corrupting_any_covered_byte_is_caught(at in 21usize..200, flip in 1u8..=255) {
            let mut b = sample(Codec::None);
            let at = 21 + at % (b.len() - 21);
            b[at] ^= flip;
            let mut scratch = Vec::new();
            proptest::prop_assert!(validate(&b, &mut scratch, 1 << 16).is_err());
        }
    }
}
