//! Removing data: DeleteRecords, time and size retention, deleting a whole log.

use std::path::PathBuf;

use super::*;
use crate::segment::LogSegment;

impl Log {
    /// DeleteRecords: moves the log start offset up to `offset` (at most the log end) and
    /// drops the segments entirely below it. Returns the new log start offset and the
    /// files to remove after the delete delay.
    pub fn delete_records_before(&mut self, offset: i64) -> Result<(i64, Vec<PathBuf>)> {
        let offset = offset.min(self.log_end_offset);
        if offset <= self.log_start_offset {
            return Ok((self.log_start_offset, Vec::new()));
        }
        self.log_start_offset = offset;
        let tmp = self.dir.join(format!("{LOG_START_FILE}.tmp"));
        std::fs::write(&tmp, offset.to_string())?;
        std::fs::rename(&tmp, self.dir.join(LOG_START_FILE))?;
        let doomed = self.remove_segments_while(|seg| Ok(seg.next_offset() <= offset))?;
        Ok((self.log_start_offset, doomed))
    }

    /// Retention: drops the oldest closed segments whose newest record is older than
    /// `retention_ms`, or while the log is larger than `retention_bytes` without them.
    /// A negative limit is no limit. The active segment is never removed (it goes once
    /// `segment.ms` or `segment.bytes` rolls it). Returns the files to remove later.
    pub fn apply_retention(
        &mut self,
        retention_ms: i64,
        retention_bytes: i64,
        now_ms: i64,
    ) -> Result<Vec<PathBuf>> {
        let mut size = self.size_bytes();
        let start = self.log_start_offset;
        self.remove_segments_while(|seg| {
            if seg.next_offset() <= start {
                // Entirely below a DeleteRecords start offset.
                size = size.saturating_sub(seg.size);
                return Ok(true);
            }
            // Reads the indexes of the oldest segment only: the walk stops at the first
            // segment that stays.
            let too_old = retention_ms >= 0 && {
                let (max_ts, _) = seg.max_timestamp()?;
                max_ts >= 0 && now_ms.saturating_sub(max_ts) > retention_ms
            };
            let too_big =
                retention_bytes >= 0 && size.saturating_sub(seg.size) >= retention_bytes as u64;
            if too_old || too_big {
                size = size.saturating_sub(seg.size);
                Ok(true)
            } else {
                Ok(false)
            }
        })
    }

    /// Removes closed segments from the front while `pred` holds: they leave the map,
    /// their files are renamed `*.deleted` (reads of other segments are unaffected) and
    /// the log start offset moves to the first remaining segment if it was below it.
    fn remove_segments_while<F>(&mut self, mut pred: F) -> Result<Vec<PathBuf>>
    where
        F: FnMut(&LogSegment) -> Result<bool>,
    {
        let mut doomed = Vec::new();
        loop {
            if self.segments.len() <= 1 {
                break;
            }
            let Some((&base, seg)) = self.segments.iter().next() else {
                break;
            };
            if !pred(seg)? {
                break;
            }
            self.segments.remove(&base);
            for ext in ["log", "index", "timeindex", "txnindex"] {
                let from = self.dir.join(crate::file_name(base, ext));
                let to = self
                    .dir
                    .join(format!("{}{DELETED_SUFFIX}", crate::file_name(base, ext)));
                match std::fs::rename(&from, &to) {
                    Ok(()) => doomed.push(to),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
            tracing::info!(dir = %self.dir.display(), base, "segment deleted");
        }
        if let Some(&first) = self.segments.keys().next() {
            if first > self.log_start_offset {
                self.log_start_offset = first;
            }
        }
        let start = self.log_start_offset;
        self.aborted.retain(|a| a.last_offset >= start);
        Ok(doomed)
    }

    /// Deletes the log's files: renames its directory out of the way (so a crash
    /// mid-delete does not resurrect it, and startup finishes the job) and removes it.
    /// Open handles stay valid until dropped, so in-flight reads are unaffected.
    pub fn delete(&self) -> Result<()> {
        let name = self
            .dir
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("log")
            .to_string();
        let doomed = self
            .dir
            .with_file_name(format!("{name}.{}{DELETE_SUFFIX}", uuid_like()));
        std::fs::rename(&self.dir, &doomed)?;
        std::fs::remove_dir_all(&doomed)?;
        Ok(())
    }
}

/// Suffix of log directories being deleted; startup removes leftovers.
pub const DELETE_SUFFIX: &str = "-delete";

pub(super) fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{nanos:x}")
}
