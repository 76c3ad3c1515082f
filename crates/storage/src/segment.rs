//! One segment: a `.log` file of batches plus its sparse `.index` and `.timeindex`.

use std::cell::OnceCell;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use gregor_protocol::batch::{self, BatchHeader};

use crate::file_cache::{FileCache, FileKey, FileKind};
use crate::index::{OffsetIndex, TimeIndex};
use crate::{file_name, LogError, Result};

/// Bytes read to learn a batch's base offset, length and last offset delta.
const PEEK: usize = 27;

/// A segment's files are opened through the shared [`FileCache`] when used, never held
/// by the segment itself; its indexes are read on first use (a closed segment that a
/// clean start did not need costs one `stat` and no descriptor).
pub(crate) struct LogSegment {
    pub(crate) base_offset: i64,
    dir: Arc<Path>,
    files: Arc<FileCache>,
    /// Names this incarnation's files in the cache.
    id: u64,
    /// Bytes of valid batches in the file.
    pub(crate) size: u64,
    /// The indexes and what they tell; set at creation, recovery or first use.
    state: OnceCell<SegState>,
    /// The next segment's base offset while `state` is not loaded (an upper bound of
    /// this segment's next offset; no offset lies between the two).
    next_hint: i64,
    /// `index.interval.bytes`, for rebuilding an index found inconsistent on first use.
    index_interval: usize,
    /// Wall-clock time of the first append, for `segment.ms` rolling.
    pub(crate) first_append_ms: Option<i64>,
    /// Written since the last [`LogSegment::sync_all`].
    unsynced: bool,
}

/// What a segment's indexes say about it.
struct SegState {
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    /// One past the last offset stored here (`base_offset` when empty).
    next_offset: i64,
    /// Largest timestamp in the segment and the offset of the first record carrying it.
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
    bytes_since_last_index: usize,
}

impl SegState {
    fn empty(base_offset: i64) -> Self {
        Self {
            offset_index: OffsetIndex::empty(),
            time_index: TimeIndex::empty(),
            next_offset: base_offset,
            max_timestamp: -1,
            offset_of_max_timestamp: -1,
            bytes_since_last_index: 0,
        }
    }
}

/// Summary of one batch found while scanning a segment.
struct ScannedBatch {
    header: BatchHeader,
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
}

impl Drop for LogSegment {
    fn drop(&mut self) {
        // Deleted, replaced by a cleaned copy, or its log closed: release the handles
        // (a reader holding a clone keeps its own).
        for kind in [FileKind::Log, FileKind::Index, FileKind::TimeIndex] {
            self.files.forget(FileKey::new(self.id, kind));
        }
    }
}

impl LogSegment {
    fn new(
        dir: &Arc<Path>,
        files: &Arc<FileCache>,
        base_offset: i64,
        size: u64,
        next_hint: i64,
        index_interval: usize,
    ) -> Self {
        Self {
            base_offset,
            dir: dir.clone(),
            files: files.clone(),
            id: files.new_segment_id(),
            size,
            state: OnceCell::new(),
            next_hint,
            index_interval,
            first_append_ms: None,
            unsynced: false,
        }
    }

    /// Creates a new, empty segment.
    pub(crate) fn create(
        dir: &Arc<Path>,
        files: &Arc<FileCache>,
        base_offset: i64,
        index_interval: usize,
    ) -> Result<Self> {
        let seg = Self::new(dir, files, base_offset, 0, base_offset, index_interval);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(seg.path(FileKind::Log))
            .map(Arc::new)?;
        files.insert(seg.key(FileKind::Log), file);
        // Leftover indexes of an earlier segment at this offset would not describe it.
        for kind in [FileKind::Index, FileKind::TimeIndex] {
            seg.file(kind)?.set_len(0)?;
        }
        let _ = seg.state.set(SegState::empty(base_offset));
        Ok(seg)
    }

    /// Opens an existing segment. With `recover`, every batch is re-validated by CRC, a
    /// torn or corrupt tail is truncated and the indexes are rebuilt. Without it, the
    /// indexes are trusted unless they look inconsistent; a closed segment (one with a
    /// `next_base`) is only `stat`ed, and read when first used; the last one has its
    /// indexes loaded and its last batches read to find the next offset.
    pub(crate) fn open(
        dir: &Arc<Path>,
        files: &Arc<FileCache>,
        base_offset: i64,
        recover: bool,
        index_interval: usize,
        next_base: Option<i64>,
    ) -> Result<(Self, bool)> {
        let path = dir.join(file_name(base_offset, "log"));
        let size = std::fs::metadata(&path)?.len();
        let hint = next_base.unwrap_or(i64::MAX);
        let mut seg = Self::new(dir, files, base_offset, size, hint, index_interval);
        if recover {
            let truncated = seg.recover()?;
            return Ok((seg, truncated));
        }
        if next_base.is_none() {
            match seg.load_state()? {
                Some(state) => {
                    let _ = seg.state.set(state);
                }
                None => {
                    let truncated = seg.recover()?;
                    return Ok((seg, truncated));
                }
            }
        }
        Ok((seg, false))
    }

    fn key(&self, kind: FileKind) -> FileKey {
        FileKey::new(self.id, kind)
    }

    fn path(&self, kind: FileKind) -> PathBuf {
        let ext = match kind {
            FileKind::Log => "log",
            FileKind::Index => "index",
            FileKind::TimeIndex => "timeindex",
        };
        self.dir.join(file_name(self.base_offset, ext))
    }

    /// The handle on one of the segment's files, opened if the cache closed it.
    fn file(&self, kind: FileKind) -> Result<Arc<File>> {
        Ok(self
            .files
            .get(self.key(kind), &self.path(kind), kind != FileKind::Log)?)
    }

    /// Reads the indexes and the tail: `None` if an index is inconsistent.
    fn load_state(&self) -> Result<Option<SegState>> {
        let index = self.file(FileKind::Index)?;
        let (offset_index, oi_ok) = OffsetIndex::load(&index, self.size)?;
        let time = self.file(FileKind::TimeIndex)?;
        let (time_index, ti_ok) = TimeIndex::load(&time, self.size)?;
        if !oi_ok || !ti_ok {
            return Ok(None);
        }
        let mut state = SegState {
            offset_index,
            time_index,
            ..SegState::empty(self.base_offset)
        };
        let mut pos = u64::from(state.offset_index.lookup(u32::MAX));
        while pos < self.size {
            let (base, len, last_delta) = self.peek(pos)?;
            if base < self.base_offset || pos + len as u64 > self.size {
                return Err(self.corrupt("batch framing past the end of a clean segment"));
            }
            state.next_offset = base + i64::from(last_delta) + 1;
            pos += len as u64;
        }
        if let Some((ts, rel)) = state.time_index.last() {
            state.max_timestamp = ts;
            state.offset_of_max_timestamp = self.base_offset + i64::from(rel);
        }
        Ok(Some(state))
    }

    /// The segment's indexes, read on first use. A closed segment whose index turns out
    /// inconsistent gets it rebuilt from the data (which must then be whole: a closed
    /// segment was fsynced before the next one took writes).
    fn state(&self) -> Result<&SegState> {
        if let Some(s) = self.state.get() {
            return Ok(s);
        }
        let state = match self.load_state()? {
            Some(s) => s,
            None => {
                let (s, valid) = self.rebuild()?;
                if valid < self.size {
                    return Err(self.corrupt("corrupt batch in a closed segment"));
                }
                s
            }
        };
        let _ = self.state.set(state);
        self.state
            .get()
            .ok_or_else(|| self.corrupt("segment state not loaded"))
    }

    fn state_mut(&mut self) -> Result<&mut SegState> {
        self.state()?;
        let path = self.path(FileKind::Log);
        self.state.get_mut().ok_or_else(|| LogError::Corrupt {
            path: path.display().to_string(),
            reason: "segment state not loaded".into(),
        })
    }

    /// One past the last offset stored here. For a closed segment not read yet, the next
    /// segment's base offset: no offset exists between the two, so every use (is this
    /// segment below an offset, where does a read continue) gets the same answer.
    pub(crate) fn next_offset(&self) -> i64 {
        self.state.get().map_or(self.next_hint, |s| s.next_offset)
    }

    /// Largest timestamp in the segment and the offset of its first record carrying it
    /// (`(-1, -1)` when empty). Reads the indexes of a segment not read yet.
    pub(crate) fn max_timestamp(&self) -> Result<(i64, i64)> {
        let s = self.state()?;
        Ok((s.max_timestamp, s.offset_of_max_timestamp))
    }

    /// Memory the loaded indexes take (0 if not loaded).
    pub(crate) fn index_heap_bytes(&self) -> usize {
        self.state.get().map_or(0, |s| {
            s.offset_index.heap_bytes() + s.time_index.heap_bytes()
        })
    }

    fn corrupt(&self, reason: &str) -> LogError {
        LogError::Corrupt {
            path: self.path(FileKind::Log).display().to_string(),
            reason: reason.to_string(),
        }
    }

    /// Reads base offset, total size and last offset delta of the batch at `pos`. The base
    /// offset lies outside the CRC, so a damaged one is refused here (an offset whose
    /// batch would end past `i64::MAX - 1`) rather than overflowing in the callers.
    fn peek(&self, pos: u64) -> Result<(i64, usize, i32)> {
        let mut h = [0u8; PEEK];
        self.file(FileKind::Log)?.read_exact_at(&mut h, pos)?;
        let (base, len) =
            batch::peek_offset_and_size(&h).ok_or_else(|| self.corrupt("negative batch length"))?;
        let last_delta = i32::from_be_bytes([h[23], h[24], h[25], h[26]]);
        if last_delta < 0
            || base < 0
            || base
                .checked_add(i64::from(last_delta))
                .and_then(|l| l.checked_add(1))
                .is_none()
        {
            return Err(self.corrupt("batch offsets out of range"));
        }
        Ok((base, len, last_delta))
    }

    /// Re-validates every batch; truncates at the first bad one. Returns whether it truncated.
    fn recover(&mut self) -> Result<bool> {
        let (state, valid) = self.rebuild()?;
        let file_len = self.size;
        let truncated = valid < file_len;
        if truncated {
            let path = self.path(FileKind::Log);
            tracing::warn!(segment = %path.display(), valid_bytes = valid, file_bytes = file_len, "truncating torn or corrupt tail");
            let file = self.file(FileKind::Log)?;
            file.set_len(valid)?;
            file.sync_all()?;
        }
        self.size = valid;
        self.state = OnceCell::from(state);
        self.unsynced = true;
        Ok(truncated)
    }

    /// Scans the data from the start, validating every batch, and rewrites the indexes
    /// for it. Returns the state and the length of the valid prefix.
    fn rebuild(&self) -> Result<(SegState, u64)> {
        let log = self.file(FileKind::Log)?;
        let index = self.file(FileKind::Index)?;
        let time = self.file(FileKind::TimeIndex)?;
        rebuild_files(
            self.base_offset,
            (&log, self.size),
            (&index, &time),
            self.index_interval,
        )
    }

    /// A cleaned segment whose data and indexes were checked and written off the lock
    /// (see [`PreparedSegment`]) and whose files now have their final names.
    pub(crate) fn from_prepared(
        dir: &Arc<Path>,
        files: &Arc<FileCache>,
        p: PreparedSegment,
        index_interval: usize,
    ) -> Self {
        let mut seg = Self::new(dir, files, p.base, p.size, p.base, index_interval);
        seg.state = OnceCell::from(p.state);
        seg
    }
}

/// A cleaned segment made ready before the swap: every batch re-validated and its
/// indexes written to `<base>.index.swap` and `<base>.timeindex.swap`, all without the
/// partition lock. The swap only renames files.
pub(crate) struct PreparedSegment {
    pub(crate) base: i64,
    pub(crate) size: u64,
    state: SegState,
}

impl PreparedSegment {
    /// Validates the cleaned data file `log` of the segment at `base` and writes its
    /// indexes to `index` and `time`. Fails if any batch is invalid (the cleaner wrote
    /// it, so that is a bug or a bad disk, and the original is kept).
    pub(crate) fn build(
        base: i64,
        log: &Path,
        index: &Path,
        time: &Path,
        index_interval: usize,
    ) -> Result<Self> {
        let create = |p: &Path| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(true)
                .open(p)
        };
        let data = File::open(log)?;
        let size = data.metadata()?.len();
        let (index_file, time_file) = (create(index)?, create(time)?);
        let (state, valid) = rebuild_files(
            base,
            (&data, size),
            (&index_file, &time_file),
            index_interval,
        )?;
        if valid < size {
            return Err(LogError::Corrupt {
                path: log.display().to_string(),
                reason: format!("cleaned segment invalid at byte {valid}"),
            });
        }
        index_file.sync_data()?;
        time_file.sync_data()?;
        Ok(Self { base, size, state })
    }
}

/// Scans `log` (of `size` bytes) from the start, validating every batch, and rewrites
/// the indexes in `index`/`time` for it. Returns the state and the valid prefix length.
fn rebuild_files(
    base_offset: i64,
    (log, size): (&File, u64),
    (index, time): (&File, &File),
    index_interval: usize,
) -> Result<(SegState, u64)> {
    let mut state = SegState::empty(base_offset);
    let file_len = size;
    let mut pos = 0u64;
    let mut buf = Vec::new();
    let mut scratch = Vec::new();
    while pos < file_len {
        let scanned = scan_at(log, pos, file_len, &mut buf, &mut scratch);
        // Offsets must go up and stay within the segment's 32-bit relative range (the
        // base offset is outside the CRC, so a damaged one is caught here).
        let in_range = |s: &ScannedBatch| {
            s.header.base_offset >= state.next_offset
                && s.header.last_offset().saturating_sub(base_offset) < i64::from(u32::MAX)
        };
        let Some(scanned) = scanned.filter(in_range) else {
            break;
        };
        let h = scanned.header;
        index_batch(
            &mut state,
            base_offset,
            None,
            pos,
            &h,
            (scanned.max_timestamp, scanned.offset_of_max_timestamp),
            index_interval,
        )?;
        state.next_offset = h.last_offset().saturating_add(1);
        pos += h.total_size() as u64;
    }
    crate::index::write_if_changed(index, &state.offset_index.encoded())?;
    crate::index::write_if_changed(time, &state.time_index.encoded())?;
    Ok((state, pos))
}

impl LogSegment {
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
        let file = self.file(FileKind::Log)?;
        self.unsynced = true;
        let written = file
            .write_all_at(header, self.size)
            .and_then(|()| file.write_all_at(payload, self.size + header.len() as u64));
        if let Err(e) = written {
            // A full disk or an I/O error part-way: cut the partial batch off again, so
            // the file ends at the last whole batch (a later start would otherwise find
            // a torn tail in a segment it believes clean).
            let _ = file.set_len(self.size);
            return Err(e.into());
        }
        let pos = self.size;
        self.size += (header.len() + payload.len()) as u64;
        let index = self.file(FileKind::Index)?;
        let time = self.file(FileKind::TimeIndex)?;
        let base_offset = self.base_offset;
        let state = self.state_mut()?;
        index_batch(
            state,
            base_offset,
            Some((&index, &time)),
            pos,
            &parsed,
            (max_ts, offset_of_max),
            index_interval,
        )?;
        state.next_offset = parsed.last_offset().saturating_add(1);
        self.first_append_ms.get_or_insert(now_ms);
        Ok(())
    }

    /// Byte position, length and base offset of the first batch whose last offset is
    /// `>= offset`.
    pub(crate) fn locate(&self, offset: i64) -> Result<Option<(u64, usize, i64)>> {
        let rel = (offset - self.base_offset).clamp(0, i64::from(u32::MAX)) as u32;
        let mut pos = u64::from(self.state()?.offset_index.lookup(rel));
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
        let state = self.state()?;
        if let Some((rel, p)) = state.offset_index.floor_by_position(limit as u32) {
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
            next = state.next_offset;
        }
        Ok((at, next))
    }

    /// A shared handle on the segment's data file, for sending ranges of it (it stays
    /// valid after the cache closes its own handle) and for fsyncs outside the lock.
    pub(crate) fn shared_file(&self) -> Result<Arc<File>> {
        self.file(FileKind::Log)
    }

    /// Reads the batch at `pos` in full.
    pub(crate) fn read_batch(&self, pos: u64) -> Result<Vec<u8>> {
        let (_, len, _) = self.peek(pos)?;
        let mut buf = vec![0u8; len];
        self.file(FileKind::Log)?.read_exact_at(&mut buf, pos)?;
        Ok(buf)
    }

    /// Start position for a timestamp search: batches before it only hold smaller timestamps.
    pub(crate) fn time_search_start(&self, ts: i64) -> Result<u64> {
        let state = self.state()?;
        Ok(match state.time_index.lookup_before(ts) {
            Some(rel) => u64::from(state.offset_index.lookup(rel)),
            None => 0,
        })
    }

    /// The header of the batch at `pos`.
    pub(crate) fn header_at(&self, pos: u64) -> Result<BatchHeader> {
        let mut head = [0u8; batch::HEADER_LEN];
        self.file(FileKind::Log)?.read_exact_at(&mut head, pos)?;
        Ok(BatchHeader::parse(&head)?)
    }

    /// Calls `f` with the header and position of every batch, in order (producer-state
    /// rebuild).
    pub(crate) fn for_each_header(
        &self,
        mut f: impl FnMut(&BatchHeader, u64) -> Result<()>,
    ) -> Result<()> {
        let file = self.file(FileKind::Log)?;
        let mut pos = 0u64;
        let mut head = [0u8; batch::HEADER_LEN];
        while pos + batch::HEADER_LEN as u64 <= self.size {
            file.read_exact_at(&mut head, pos)?;
            let h = BatchHeader::parse(&head)?;
            f(&h, pos)?;
            pos += h.total_size() as u64;
        }
        Ok(())
    }

    /// Makes the segment's data and indexes durable if anything was written since the
    /// last call (a segment only read needs no descriptor for this).
    pub(crate) fn sync_all(&mut self) -> Result<()> {
        if !self.unsynced {
            return Ok(());
        }
        for kind in [FileKind::Log, FileKind::Index, FileKind::TimeIndex] {
            self.file(kind)?.sync_data()?;
        }
        self.unsynced = false;
        Ok(())
    }

    /// Everything written is durable (a filesystem-wide sync covered it).
    pub(crate) fn mark_synced(&mut self) {
        self.unsynced = false;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.size == 0
    }
}

/// Reads and fully validates the batch at `pos`. `None` when it is torn or corrupt.
fn scan_at(
    file: &File,
    pos: u64,
    file_len: u64,
    buf: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
) -> Option<ScannedBatch> {
    if file_len - pos < batch::HEADER_LEN as u64 {
        return None;
    }
    let mut head = [0u8; batch::HEADER_LEN];
    file.read_exact_at(&mut head, pos).ok()?;
    let header = BatchHeader::parse(&head).ok()?;
    let total = header.total_size() as u64;
    if total > file_len - pos {
        return None;
    }
    buf.resize(total as usize, 0);
    file.read_exact_at(buf, pos).ok()?;
    let v = batch::validate_stored(buf, scratch, usize::MAX / 4).ok()?;
    let log_append = header.attributes & batch::ATTR_LOG_APPEND_TIME != 0;
    let (max_timestamp, offset_of_max_timestamp) = if log_append {
        (header.max_timestamp, header.base_offset)
    } else {
        (
            v.max_timestamp,
            header
                .base_offset
                .saturating_add(i64::from(v.offset_delta_of_max_timestamp)),
        )
    };
    Some(ScannedBatch {
        header,
        max_timestamp,
        offset_of_max_timestamp,
    })
}

/// Adds index entries for a batch written at `pos` (`files`: the offset and time index
/// files to append them to, or none when the caller writes the indexes whole).
fn index_batch(
    state: &mut SegState,
    base_offset: i64,
    files: Option<(&File, &File)>,
    pos: u64,
    h: &BatchHeader,
    (max_ts, offset_of_max): (i64, i64),
    index_interval: usize,
) -> Result<()> {
    let rel = h
        .base_offset
        .saturating_sub(base_offset)
        .clamp(0, i64::from(u32::MAX)) as u32;
    if state.bytes_since_last_index > index_interval || pos == 0 {
        state
            .offset_index
            .append(files.map(|f| f.0), rel, pos as u32)?;
        state.bytes_since_last_index = 0;
    }
    state.bytes_since_last_index += h.total_size();
    if max_ts > state.max_timestamp {
        state.max_timestamp = max_ts;
        state.offset_of_max_timestamp = offset_of_max;
        state.time_index.maybe_append(
            files.map(|f| f.1),
            max_ts,
            offset_of_max
                .saturating_sub(base_offset)
                .clamp(0, i64::from(u32::MAX)) as u32,
        )?;
    }
    Ok(())
}
