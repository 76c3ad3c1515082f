//! Sparse offset and time indexes, mirrored in memory for lookups and appended to disk.
//!
//! Entries are fixed-size big-endian records, as Kafka lays them out. The in-memory copy
//! answers lookups with a binary search; the file is the durable copy, rebuilt from the
//! log whenever recovery finds it missing or inconsistent.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::Result;

/// Offset index: relative offset of a batch -> its byte position in the segment.
pub(crate) struct OffsetIndex {
    file: File,
    entries: Vec<(u32, u32)>,
}

/// Time index: max timestamp seen so far -> relative offset of the record carrying it.
pub(crate) struct TimeIndex {
    file: File,
    entries: Vec<(i64, u32)>,
}

fn open_rw(path: &Path) -> Result<File> {
    Ok(OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?)
}

fn read_all(file: &mut File) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    file.read_to_end(&mut buf)?;
    Ok(buf)
}

impl OffsetIndex {
    const ENTRY: usize = 8;

    /// Opens an index and loads it. Returns `None` for entries if the file is inconsistent
    /// (wrong size or non-increasing entries), so the caller rebuilds it.
    pub(crate) fn open(path: &Path, segment_size: u64) -> Result<(Self, bool)> {
        let mut file = open_rw(path)?;
        let raw = read_all(&mut file)?;
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
        // index for a non-empty segment was lost (deleted, or created empty by this
        // very open) and must be rebuilt, not trusted.
        if entries.is_empty() && segment_size > 0 {
            ok = false;
        }
        if !ok {
            entries.clear();
        }
        Ok((Self { file, entries }, ok))
    }

    pub(crate) fn append(&mut self, rel: u32, pos: u32) -> Result<()> {
        if self.entries.last().is_some_and(|&(r, _)| rel <= r) {
            return Ok(());
        }
        let mut e = [0u8; Self::ENTRY];
        e[..4].copy_from_slice(&rel.to_be_bytes());
        e[4..].copy_from_slice(&pos.to_be_bytes());
        self.file
            .write_all_at(&e, (self.entries.len() * Self::ENTRY) as u64)?;
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

    pub(crate) fn reset(&mut self) -> Result<()> {
        self.entries.clear();
        self.file.set_len(0)?;
        Ok(())
    }

    pub(crate) fn sync(&self) -> Result<()> {
        self.file.sync_data()?;
        Ok(())
    }
}

impl TimeIndex {
    const ENTRY: usize = 12;

    /// Opens a time index and loads it. Returns `false` if the file is inconsistent, or
    /// empty while its segment (the `.log` next to it) holds data: every batch with a
    /// timestamp adds an entry, so the index was lost and the caller rebuilds it.
    pub(crate) fn open(path: &Path) -> Result<(Self, bool)> {
        let segment_size = std::fs::metadata(path.with_extension("log")).map_or(0, |m| m.len());
        let mut file = open_rw(path)?;
        let raw = read_all(&mut file)?;
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
        Ok((Self { file, entries }, ok))
    }

    /// Appends if `ts` is larger than the last entry's timestamp.
    pub(crate) fn maybe_append(&mut self, ts: i64, rel: u32) -> Result<()> {
        if self.entries.last().is_some_and(|&(lt, _)| ts <= lt) {
            return Ok(());
        }
        let mut e = [0u8; Self::ENTRY];
        e[..8].copy_from_slice(&ts.to_be_bytes());
        e[8..].copy_from_slice(&rel.to_be_bytes());
        self.file
            .write_all_at(&e, (self.entries.len() * Self::ENTRY) as u64)?;
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

    pub(crate) fn reset(&mut self) -> Result<()> {
        self.entries.clear();
        self.file.set_len(0)?;
        Ok(())
    }

    pub(crate) fn sync(&self) -> Result<()> {
        self.file.sync_data()?;
        Ok(())
    }
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
