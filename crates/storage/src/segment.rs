//! One segment: a `.log` file of batches plus its sparse `.index` and `.timeindex`.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use gregor_protocol::batch::{self, BatchHeader};

use crate::index::{OffsetIndex, TimeIndex};
use crate::{file_name, LogError, Result};

/// Bytes read to learn a batch's base offset, length and last offset delta.
const PEEK: usize = 27;

pub(crate) struct LogSegment {
    pub(crate) base_offset: i64,
    path: PathBuf,
    /// Shared so a fetch can send a range of it after the partition lock is released
    /// (the handle keeps the data readable even if the segment is deleted meanwhile).
    file: Arc<File>,
    /// Bytes of valid batches in the file.
    pub(crate) size: u64,
    /// One past the last offset stored here (`base_offset` when empty).
    pub(crate) next_offset: i64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    bytes_since_last_index: usize,
    /// Largest timestamp in the segment and the offset of the first record carrying it.
    pub(crate) max_timestamp: i64,
    pub(crate) offset_of_max_timestamp: i64,
    /// Wall-clock time of the first append, for `segment.ms` rolling.
    pub(crate) first_append_ms: Option<i64>,
}

/// Summary of one batch found while scanning a segment.
struct ScannedBatch {
    header: BatchHeader,
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
}

impl LogSegment {
    /// Creates a new, empty segment.
    pub(crate) fn create(dir: &Path, base_offset: i64) -> Result<Self> {
        let path = dir.join(file_name(base_offset, "log"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map(Arc::new)?;
        let (offset_index, _) = OffsetIndex::open(&dir.join(file_name(base_offset, "index")), 0)?;
        let (time_index, _) = TimeIndex::open(&dir.join(file_name(base_offset, "timeindex")))?;
        Ok(Self {
            base_offset,
            path,
            file,
            size: 0,
            next_offset: base_offset,
            offset_index,
            time_index,
            bytes_since_last_index: 0,
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
            first_append_ms: None,
        })
    }

    /// Opens an existing segment. With `recover`, every batch is re-validated by CRC, a
    /// torn or corrupt tail is truncated and the indexes are rebuilt. Without it, the
    /// indexes are trusted unless they look inconsistent, and only the last batch is read
    /// to find `next_offset`.
    pub(crate) fn open(
        dir: &Path,
        base_offset: i64,
        recover: bool,
        index_interval: usize,
    ) -> Result<(Self, bool)> {
        let path = dir.join(file_name(base_offset, "log"));
        let file = Arc::new(OpenOptions::new().read(true).write(true).open(&path)?);
        let size = file.metadata()?.len();
        let (offset_index, oi_ok) =
            OffsetIndex::open(&dir.join(file_name(base_offset, "index")), size)?;
        let (time_index, ti_ok) = TimeIndex::open(&dir.join(file_name(base_offset, "timeindex")))?;
        let mut seg = Self {
            base_offset,
            path,
            file,
            size,
            next_offset: base_offset,
            offset_index,
            time_index,
            bytes_since_last_index: 0,
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
            first_append_ms: None,
        };
        if recover || !oi_ok || !ti_ok {
            let truncated = seg.recover(index_interval)?;
            return Ok((seg, truncated));
        }
        seg.load_tail()?;
        Ok((seg, false))
    }

    /// Finds `next_offset` from the last indexed position and the time-index tail.
    fn load_tail(&mut self) -> Result<()> {
        let mut pos = u64::from(self.offset_index.lookup(u32::MAX));
        while pos < self.size {
            let (base, len, last_delta) = self.peek(pos)?;
            if base < self.base_offset || pos + len as u64 > self.size {
                return Err(self.corrupt("batch framing past the end of a clean segment"));
            }
            self.next_offset = base + i64::from(last_delta) + 1;
            pos += len as u64;
        }
        if let Some((ts, rel)) = self.time_index.last() {
            self.max_timestamp = ts;
            self.offset_of_max_timestamp = self.base_offset + i64::from(rel);
        }
        Ok(())
    }

    fn corrupt(&self, reason: &str) -> LogError {
        LogError::Corrupt {
            path: self.path.display().to_string(),
            reason: reason.to_string(),
        }
    }

    /// Reads base offset, total size and last offset delta of the batch at `pos`.
    fn peek(&self, pos: u64) -> Result<(i64, usize, i32)> {
        let mut h = [0u8; PEEK];
        self.file.read_exact_at(&mut h, pos)?;
        let (base, len) =
            batch::peek_offset_and_size(&h).ok_or_else(|| self.corrupt("negative batch length"))?;
        let last_delta = i32::from_be_bytes([h[23], h[24], h[25], h[26]]);
        Ok((base, len, last_delta))
    }

    /// Re-validates every batch; truncates at the first bad one. Returns whether it truncated.
    fn recover(&mut self, index_interval: usize) -> Result<bool> {
        self.offset_index.reset()?;
        self.time_index.reset()?;
        self.bytes_since_last_index = 0;
        self.max_timestamp = -1;
        self.offset_of_max_timestamp = -1;
        self.next_offset = self.base_offset;
        let file_len = self.size;
        let mut pos = 0u64;
        let mut buf = Vec::new();
        let mut scratch = Vec::new();
        while pos < file_len {
            let scanned = self.scan_at(pos, file_len, &mut buf, &mut scratch);
            let Some(scanned) = scanned.filter(|s| s.header.base_offset >= self.next_offset) else {
                break;
            };
            let h = scanned.header;
            self.index_batch(
                pos,
                &h,
                scanned.max_timestamp,
                scanned.offset_of_max_timestamp,
                index_interval,
            )?;
            self.next_offset = h.last_offset() + 1;
            pos += h.total_size() as u64;
        }
        let truncated = pos < file_len;
        if truncated {
            tracing::warn!(segment = %self.path.display(), valid_bytes = pos, file_bytes = file_len, "truncating torn or corrupt tail");
            self.file.set_len(pos)?;
            self.file.sync_all()?;
        }
        self.size = pos;
        Ok(truncated)
    }

    /// Reads and fully validates the batch at `pos`. `None` when it is torn or corrupt.
    fn scan_at(
        &self,
        pos: u64,
        file_len: u64,
        buf: &mut Vec<u8>,
        scratch: &mut Vec<u8>,
    ) -> Option<ScannedBatch> {
        if file_len - pos < batch::HEADER_LEN as u64 {
            return None;
        }
        let mut head = [0u8; batch::HEADER_LEN];
        self.file.read_exact_at(&mut head, pos).ok()?;
        let header = BatchHeader::parse(&head).ok()?;
        let total = header.total_size() as u64;
        if total > file_len - pos {
            return None;
        }
        buf.resize(total as usize, 0);
        self.file.read_exact_at(buf, pos).ok()?;
        let v = batch::validate_stored(buf, scratch, usize::MAX / 4).ok()?;
        let log_append = header.attributes & batch::ATTR_LOG_APPEND_TIME != 0;
        let (max_timestamp, offset_of_max_timestamp) = if log_append {
            (header.max_timestamp, header.base_offset)
        } else {
            (
                v.max_timestamp,
                header.base_offset + i64::from(v.offset_delta_of_max_timestamp),
            )
        };
        Some(ScannedBatch {
            header,
            max_timestamp,
            offset_of_max_timestamp,
        })
    }

    /// Adds index entries for a batch written at `pos`.
    fn index_batch(
        &mut self,
        pos: u64,
        h: &BatchHeader,
        max_ts: i64,
        offset_of_max: i64,
        index_interval: usize,
    ) -> Result<()> {
        let rel = (h.base_offset - self.base_offset) as u32;
        if self.bytes_since_last_index > index_interval || pos == 0 {
            self.offset_index.append(rel, pos as u32)?;
            self.bytes_since_last_index = 0;
        }
        self.bytes_since_last_index += h.total_size();
        if max_ts > self.max_timestamp {
            self.max_timestamp = max_ts;
            self.offset_of_max_timestamp = offset_of_max;
            self.time_index
                .maybe_append(max_ts, (offset_of_max - self.base_offset) as u32)?;
        }
        Ok(())
    }

    /// Appends a finished batch given as its (patched) header and untouched payload.
    /// `max_ts`/`offset_of_max` are the record-level values found by validation.
    pub(crate) fn append(
        &mut self,
        header: &[u8],
        payload: &[u8],
        max_ts: i64,
        offset_of_max: i64,
        index_interval: usize,
        now_ms: i64,
    ) -> Result<()> {
        let parsed = BatchHeader::parse(header)?;
        let written = self.file.write_all_at(header, self.size).and_then(|()| {
            self.file
                .write_all_at(payload, self.size + header.len() as u64)
        });
        if let Err(e) = written {
            // A full disk or an I/O error part-way: cut the partial batch off again, so
            // the file ends at the last whole batch (a later start would otherwise find
            // a torn tail in a segment it believes clean).
            let _ = self.file.set_len(self.size);
            return Err(e.into());
        }
        let pos = self.size;
        self.size += (header.len() + payload.len()) as u64;
        self.index_batch(pos, &parsed, max_ts, offset_of_max, index_interval)?;
        self.next_offset = parsed.last_offset() + 1;
        self.first_append_ms.get_or_insert(now_ms);
        Ok(())
    }

    /// Byte position, length and base offset of the first batch whose last offset is
    /// `>= offset`.
    pub(crate) fn locate(&self, offset: i64) -> Result<Option<(u64, usize, i64)>> {
        let rel = (offset - self.base_offset).clamp(0, i64::from(u32::MAX)) as u32;
        let mut pos = u64::from(self.offset_index.lookup(rel));
        while pos < self.size {
            let (base, len, last_delta) = self.peek(pos)?;
            if base + i64::from(last_delta) >= offset {
                return Ok(Some((pos, len, base)));
            }
            pos += len as u64;
        }
        Ok(None)
    }

    /// The range of whole batches to send from `pos` (where a batch of `first_len` bytes
    /// starts): at most `max_bytes` (but the first batch whole if `min_one`), none whose
    /// base offset is `>= upper_bound`. Returns the end position and the offset that
    /// follows the range (the next batch's base offset, or the segment's end).
    ///
    /// Only batch headers are read, and few of them: the walk starts at the last index
    /// entry at or below the byte limit (entries are `log.index.interval.bytes` apart), so
    /// the cost does not grow with the size of the read.
    pub(crate) fn read_end(
        &self,
        pos: u64,
        first_len: usize,
        max_bytes: usize,
        min_one: bool,
        upper_bound: i64,
    ) -> Result<(u64, i64)> {
        let budget = if min_one {
            max_bytes.max(first_len)
        } else {
            max_bytes
        };
        let limit = pos.saturating_add(budget as u64).min(self.size);
        // Batches before an index entry whose offset is below `upper_bound` and whose
        // position is within the limit all belong to the range: start walking there.
        let upper_rel = (upper_bound - self.base_offset).clamp(0, i64::from(u32::MAX)) as u32;
        let mut at = pos;
        let mut next = self.base_offset;
        if let Some((rel, p)) = self.offset_index.floor_by_position(limit as u32) {
            if u64::from(p) > pos && rel < upper_rel {
                at = u64::from(p);
                next = self.base_offset + i64::from(rel);
            }
        }
        while at < limit {
            let (base, len, last_delta) = self.peek(at)?;
            if base >= upper_bound || at + len as u64 > limit {
                return Ok((at, base));
            }
            next = base + i64::from(last_delta) + 1;
            at += len as u64;
        }
        if at == self.size {
            next = self.next_offset;
        }
        Ok((at, next))
    }

    /// A shared handle on the segment's data file, for sending ranges of it.
    pub(crate) fn shared_file(&self) -> Arc<File> {
        self.file.clone()
    }

    /// Reads the batch at `pos` in full.
    pub(crate) fn read_batch(&self, pos: u64) -> Result<Vec<u8>> {
        let (_, len, _) = self.peek(pos)?;
        let mut buf = vec![0u8; len];
        self.file.read_exact_at(&mut buf, pos)?;
        Ok(buf)
    }

    /// Start position for a timestamp search: batches before it only hold smaller timestamps.
    pub(crate) fn time_search_start(&self, ts: i64) -> u64 {
        match self.time_index.lookup_before(ts) {
            Some(rel) => u64::from(self.offset_index.lookup(rel)),
            None => 0,
        }
    }

    /// Iterates batch positions and headers from `pos`.
    pub(crate) fn header_at(&self, pos: u64) -> Result<BatchHeader> {
        let mut head = [0u8; batch::HEADER_LEN];
        self.file.read_exact_at(&mut head, pos)?;
        Ok(BatchHeader::parse(&head)?)
    }

    /// Calls `f` with the header and position of every batch, in order (producer-state
    /// rebuild).
    pub(crate) fn for_each_header(
        &self,
        mut f: impl FnMut(&BatchHeader, u64) -> Result<()>,
    ) -> Result<()> {
        let mut pos = 0u64;
        while pos + batch::HEADER_LEN as u64 <= self.size {
            let h = self.header_at(pos)?;
            f(&h, pos)?;
            pos += h.total_size() as u64;
        }
        Ok(())
    }

    /// Makes the segment's data and indexes durable (called when it stops being active).
    pub(crate) fn sync_all(&self) -> Result<()> {
        self.file.sync_data()?;
        self.offset_index.sync()?;
        self.time_index.sync()?;
        Ok(())
    }

    pub(crate) fn file_handle(&self) -> Result<File> {
        Ok(self.file.try_clone()?)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.size == 0
    }
}
