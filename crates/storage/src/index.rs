//! Sparse offset and time indexes, mirrored in memory for lookups and appended to disk.
//!
//! Entries are fixed-size big-endian records, as Kafka lays them out. The in-memory copy
//! answers lookups with a binary search; the file is the durable copy, rebuilt from the
//! log whenever recovery finds it missing or inconsistent. The structs hold no file
//! handle: the segment passes one from the shared file cache when it writes.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::Result;

/// Offset index: relative offset of a batch -> its byte position in the segment.
pub(crate) struct OffsetIndex {
    entries: Vec<(u32, u32)>,
}

/// Time index: max timestamp seen so far -> relative offset of the record carrying it.
pub(crate) struct TimeIndex {
    entries: Vec<(i64, u32)>,
}

/// The whole file, read positionally (the handle is shared, so its cursor is not used).
fn read_all(file: &File) -> Result<Vec<u8>> {
    let len = usize::try_from(file.metadata()?.len()).unwrap_or(usize::MAX);
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, 0)?;
    Ok(buf)
}

impl OffsetIndex {
    const ENTRY: usize = 8;

    /// An empty index (a new segment, or one about to be rebuilt).
    pub(crate) fn empty() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// Loads an index from its file. The flag is false (and the index empty) if the
    /// file is inconsistent (wrong size or non-increasing entries), so the caller
    /// rebuilds it.
    pub(crate) fn load(file: &File, segment_size: u64) -> Result<(Self, bool)> {
        let raw = read_all(file)?;
        let mut entries = Vec::with_capacity(raw.len() / Self::ENTRY);
        let mut ok = raw.len() % Self::ENTRY == 0;
        if ok {
            for c in raw.chunks_exact(Self::ENTRY) {
                let rel = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
                let pos = u32::from_be_bytes([c[4], c[5], c[6], c[7]]);
                let increasing = entries.last().is_none_or(|&(r, p)| rel > r && pos > p);
                if !increasing || u64::from(pos) >= segment_size {
                    ok = false;
                    break;
                }
                entries.push((rel, pos));
            }
        }
        // The first batch of a segment always gets an entry (position 0), so an empty
        // index for a non-empty segment was lost (deleted, or created empty by this very
        // open) and must be rebuilt, not trusted.
        if entries.is_empty() && segment_size > 0 {
            ok = false;
        }
        if !ok {
            entries.clear();
        }
        Ok((Self { entries }, ok))
    }

    /// Adds an entry, and writes it to `file` when given (a rebuild writes the whole
    /// index at the end instead, see [`write_if_changed`]).
    pub(crate) fn append(&mut self, file: Option<&File>, rel: u32, pos: u32) -> Result<()> {
        if self.entries.last().is_some_and(|&(r, _)| rel <= r) {
            return Ok(());
        }
        let mut e = [0u8; Self::ENTRY];
        e[..4].copy_from_slice(&rel.to_be_bytes());
        e[4..].copy_from_slice(&pos.to_be_bytes());
        if let Some(file) = file {
            file.write_all_at(&e, (self.entries.len() * Self::ENTRY) as u64)?;
        }
        self.entries.push((rel, pos));
        Ok(())
    }

    /// Largest entry whose relative offset is `<= rel`, as a byte position (0 if none).
    pub(crate) fn lookup(&self, rel: u32) -> u32 {
        match self.entries.partition_point(|&(r, _)| r <= rel) {
            0 => 0,
            i => self.entries[i - 1].1,
        }
    }

    /// The last entry at or below file position `pos`: `(relative offset, position)`.
    pub(crate) fn floor_by_position(&self, pos: u32) -> Option<(u32, u32)> {
        match self.entries.partition_point(|&(_, p)| p <= pos) {
            0 => None,
            i => Some(self.entries[i - 1]),
        }
    }

    /// Bytes of memory the entries take.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<(u32, u32)>()
    }

    /// The file image of the entries.
    pub(crate) fn encoded(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * Self::ENTRY);
        for &(rel, pos) in &self.entries {
            out.extend_from_slice(&rel.to_be_bytes());
            out.extend_from_slice(&pos.to_be_bytes());
        }
        out
    }
}

impl TimeIndex {
    const ENTRY: usize = 12;

    pub(crate) fn empty() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// Loads a time index. The flag is false if the file is inconsistent, or empty while
    /// its segment holds `segment_size` bytes: every batch with a timestamp adds an
    /// entry, so the index was lost and the caller rebuilds it.
    pub(crate) fn load(file: &File, segment_size: u64) -> Result<(Self, bool)> {
        let raw = read_all(file)?;
        let mut entries = Vec::with_capacity(raw.len() / Self::ENTRY);
        let mut ok = raw.len() % Self::ENTRY == 0;
        if ok {
            for c in raw.chunks_exact(Self::ENTRY) {
                let mut t = [0u8; 8];
                t.copy_from_slice(&c[..8]);
                let ts = i64::from_be_bytes(t);
                let rel = u32::from_be_bytes([c[8], c[9], c[10], c[11]]);
                if entries.last().is_some_and(|&(lt, _)| ts <= lt) {
                    ok = false;
                    break;
                }
                entries.push((ts, rel));
            }
        }
        if entries.is_empty() && segment_size > 0 {
            ok = false;
        }
        if !ok {
            entries.clear();
        }
        Ok((Self { entries }, ok))
    }

    /// Appends if `ts` is larger than the last entry's timestamp.
    pub(crate) fn maybe_append(&mut self, file: Option<&File>, ts: i64, rel: u32) -> Result<()> {
        if self.entries.last().is_some_and(|&(lt, _)| ts <= lt) {
            return Ok(());
        }
        let mut e = [0u8; Self::ENTRY];
        e[..8].copy_from_slice(&ts.to_be_bytes());
        e[8..].copy_from_slice(&rel.to_be_bytes());
        if let Some(file) = file {
            file.write_all_at(&e, (self.entries.len() * Self::ENTRY) as u64)?;
        }
        self.entries.push((ts, rel));
        Ok(())
    }

    /// Relative offset of the last entry whose timestamp is strictly below `ts`: every
    /// batch before it has only smaller timestamps, so a search may start there.
    pub(crate) fn lookup_before(&self, ts: i64) -> Option<u32> {
        match self.entries.partition_point(|&(t, _)| t < ts) {
            0 => None,
            i => Some(self.entries[i - 1].1),
        }
    }

    pub(crate) fn last(&self) -> Option<(i64, u32)> {
        self.entries.last().copied()
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<(i64, u32)>()
    }

    /// The file image of the entries.
    pub(crate) fn encoded(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.entries.len() * Self::ENTRY);
        for &(ts, rel) in &self.entries {
            out.extend_from_slice(&ts.to_be_bytes());
            out.extend_from_slice(&rel.to_be_bytes());
        }
        out
    }
}

/// Makes `file` hold exactly `image`, writing only if it differs: recovery after an
/// unclean stop rebuilds every active segment's indexes, and rewriting (truncating)
/// thousands of unchanged index files costs milliseconds each.
pub(crate) fn write_if_changed(file: &File, image: &[u8]) -> Result<()> {
    let len = file.metadata()?.len();
    if len == image.len() as u64 {
        let mut current = vec![0u8; image.len()];
        file.read_exact_at(&mut current, 0)?;
        if current == image {
            return Ok(());
        }
    }
    file.write_all_at(image, 0)?;
    if len != image.len() as u64 {
        file.set_len(image.len() as u64)?;
    }
    Ok(())
}

/// Test seam: the entries of an offset index file as stored, `(relative offset,
/// position)`, or `None` if the file is not a whole number of entries.
#[doc(hidden)]
pub fn offset_index_entries(path: &Path) -> Result<Option<Vec<(u32, u32)>>> {
    let raw = std::fs::read(path)?;
    if raw.len() % OffsetIndex::ENTRY != 0 {
        return Ok(None);
    }
    Ok(Some(
        raw.chunks_exact(OffsetIndex::ENTRY)
            .map(|c| {
                (
                    u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
                    u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
                )
            })
            .collect(),
    ))
}

/// Test seam: the entries of a time index file as stored, `(timestamp, relative
/// offset)`, or `None` if the file is not a whole number of entries.
#[doc(hidden)]
pub fn time_index_entries(path: &Path) -> Result<Option<Vec<(i64, u32)>>> {
    let raw = std::fs::read(path)?;
    if raw.len() % TimeIndex::ENTRY != 0 {
        return Ok(None);
    }
    Ok(Some(
        raw.chunks_exact(TimeIndex::ENTRY)
            .map(|c| {
                let mut t = [0u8; 8];
                t.copy_from_slice(&c[..8]);
                (
                    i64::from_be_bytes(t),
                    u32::from_be_bytes([c[8], c[9], c[10], c[11]]),
                )
            })
            .collect(),
    ))
}
