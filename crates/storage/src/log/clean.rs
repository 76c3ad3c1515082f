//! The log's side of compaction: planning a clean and swapping the result in.

use std::fs::File;
use std::path::{Path, PathBuf};

use super::*;
use crate::segment::{LogSegment, PreparedSegment};

/// What a clean plan needs from the log's directory: the cleaner checkpoint and the
/// oldest producer snapshot. Read without the partition lock (the broker reads them on
/// the blocking pool, then plans under the lock).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanInputs {
    /// The first offset not cleaned yet (`cleaner-offset-checkpoint`, 0 without one).
    pub checkpoint: i64,
    /// The smallest producer-snapshot offset (`i64::MAX` without snapshots). Read
    /// before the plan, it can only be lower than the truth (snapshots are written at
    /// ever higher offsets), which keeps a marker rather than dropping one too early.
    pub snapshot_floor: i64,
}

impl CleanInputs {
    /// Reads both from `dir` (a small file and a directory scan).
    pub fn read(dir: &Path) -> Self {
        Self {
            checkpoint: read_offset_file(dir, CLEANER_CHECKPOINT_FILE).unwrap_or(0),
            snapshot_floor: snapshot_offsets(dir).into_iter().min().unwrap_or(i64::MAX),
        }
    }

    /// The checkpoint only (enough for the dirty ratio; the floor is set so that no
    /// marker would be dropped).
    pub fn read_checkpoint(dir: &Path) -> Self {
        Self {
            checkpoint: read_offset_file(dir, CLEANER_CHECKPOINT_FILE).unwrap_or(0),
            snapshot_floor: i64::MIN,
        }
    }
}

impl Log {
    /// Step 1 of a clean, reading its inputs from the directory itself (tests, tools).
    pub fn clean_plan(&self, cfg: &crate::CleanerConfig, now_ms: i64) -> Option<crate::CleanPlan> {
        self.clean_plan_with(cfg, now_ms, CleanInputs::read(&self.dir))
    }

    /// Step 1 of a clean: the closed segments eligible for compaction, or `None` if the
    /// log is not dirty enough (`min.cleanable.dirty.ratio`) and no dirty record is past
    /// `max.compaction.lag.ms`. Segments with records younger than
    /// `min.compaction.lag.ms` are left out. No file is read but the indexes of a
    /// closed segment not used since the start.
    pub fn clean_plan_with(
        &self,
        cfg: &crate::CleanerConfig,
        now_ms: i64,
        inputs: CleanInputs,
    ) -> Option<crate::CleanPlan> {
        let first_dirty = inputs.checkpoint.max(self.log_start_offset);
        let active = *self.segments.keys().next_back()?;
        let stable = self.first_unstable_offset().unwrap_or(i64::MAX);
        let mut segments = Vec::new();
        for (&base, seg) in self.segments.range(..active) {
            let max_timestamp = match seg.max_timestamp() {
                Ok((ts, _)) => ts,
                Err(e) => {
                    tracing::warn!(dir = %self.dir.display(), base, error = %e, "cannot read a segment's indexes; not cleaning past it");
                    break;
                }
            };
            if max_timestamp > now_ms.saturating_sub(cfg.min_compaction_lag_ms)
                || seg.next_offset() > stable
            {
                break;
            }
            segments.push(crate::PlannedSegment {
                base,
                path: self.dir.join(crate::file_name(base, "log")),
                size: seg.size,
                max_timestamp,
            });
        }
        let total: u64 = segments.iter().map(|s| s.size).sum();
        let dirty: u64 = segments
            .iter()
            .filter(|s| s.base >= first_dirty)
            .map(|s| s.size)
            .sum();
        if dirty == 0 || total == 0 {
            return None;
        }
        let ratio = dirty as f64 / total as f64;
        let overdue = segments
            .iter()
            .find(|s| s.base >= first_dirty)
            .is_some_and(|s| now_ms.saturating_sub(s.max_timestamp) > cfg.max_compaction_lag_ms);
        if ratio < cfg.min_cleanable_ratio && !overdue {
            return None;
        }
        let mut aborted: std::collections::HashMap<i64, Vec<(i64, i64)>> = Default::default();
        for a in &self.aborted {
            aborted
                .entry(a.producer_id)
                .or_default()
                .push((a.first_offset, a.last_offset));
        }
        Some(crate::CleanPlan {
            dir: self.dir.to_path_buf(),
            segments,
            first_dirty,
            dirty_ratio: ratio,
            aborted,
            snapshot_floor: inputs.snapshot_floor,
        })
    }

    /// Step 3 of a clean, inline: [`PreparedSwap::prepare`], [`Log::swap_prepared`] and
    /// [`SwapFinish::finish`] in a row (tests and tools; the broker runs the first and
    /// last on the blocking pool, without the partition lock). Returns the replaced
    /// files, to remove after a delay.
    pub fn swap_cleaned(&mut self, out: crate::CleanOutput) -> Result<Vec<PathBuf>> {
        let prepared = PreparedSwap::prepare(&self.dir, out, self.config.index_interval_bytes)?;
        self.swap_prepared(prepared)?.finish()
    }

    /// Step 3b of a clean, under the partition lock: puts prepared segments in place of
    /// the originals with renames only (no read, no fsync; see [`crate::cleaner`]). A
    /// segment that changed since the plan (retention removed it) keeps its original.
    pub fn swap_prepared(&mut self, p: PreparedSwap) -> Result<SwapFinish> {
        let mut finish = SwapFinish {
            dir: self.dir.to_path_buf(),
            doomed: Vec::new(),
            discard: Vec::new(),
            txn_rewrites: Vec::new(),
            checkpoint: p.next_dirty,
        };
        let mut dropped_aborts = Vec::new();
        for seg in p.segments {
            let base = seg.base;
            let unchanged = self
                .segments
                .get(&base)
                .is_some_and(|s| s.size == seg.original_size)
                && self.segments.keys().next_back() != Some(&base);
            let names = SwapNames::new(&self.dir, base);
            if !unchanged {
                finish.discard.extend([names.log, names.index, names.time]);
                continue;
            }
            // Indexes first: while `<base>.log.swap` exists a start rebuilds them, so a
            // crash never pairs the new indexes with the old data or the reverse. The
            // old files are parked (`*.deleted`), not replaced: replacing frees their
            // blocks in the rename, which with a `discard` mount waits for the device;
            // the parked names are unique for the same reason (the previous clean of this
            // segment parked its files under the same base offset a moment ago).
            let stamp = super::retention::uuid_like();
            for ext in ["index", "timeindex", "log"] {
                let current = self.dir.join(crate::file_name(base, ext));
                let parked = self.dir.join(format!(
                    "{}.{stamp}{DELETED_SUFFIX}",
                    crate::file_name(base, ext)
                ));
                match std::fs::rename(&current, &parked) {
                    Ok(()) => finish.doomed.push(parked),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound && ext != "log" => {}
                    Err(e) => return Err(e.into()),
                }
                let new = match ext {
                    "index" => &names.index,
                    "timeindex" => &names.time,
                    _ => &names.log,
                };
                std::fs::rename(new, &current)?;
            }
            let end = self
                .segments
                .range(base + 1..)
                .next()
                .map_or(i64::MAX, |(b, _)| *b);
            let installed = LogSegment::from_prepared(
                &self.dir,
                &self.files,
                seg.prepared,
                self.config.index_interval_bytes,
            );
            self.segments.insert(base, installed);
            // Abort markers the cleaner removed from this segment take their index
            // entries with them (the file is rewritten from memory after the lock).
            let gone: Vec<(i64, i64)> = p
                .removed_aborts
                .iter()
                .copied()
                .filter(|(_, at)| (base..end).contains(at))
                .collect();
            if !gone.is_empty() {
                let kept: Vec<AbortedTxn> = self
                    .aborted
                    .iter()
                    .copied()
                    .filter(|a| (base..end).contains(&a.last_offset))
                    .filter(|a| !gone.contains(&(a.producer_id, a.last_offset)))
                    .collect();
                let path = self.dir.join(crate::file_name(base, "txnindex"));
                finish.txn_rewrites.push((path, kept));
                dropped_aborts.extend(gone);
            }
        }
        self.aborted
            .retain(|a| !dropped_aborts.contains(&(a.producer_id, a.last_offset)));
        Ok(finish)
    }
}

/// The names a prepared segment's files have until the swap.
struct SwapNames {
    log: PathBuf,
    index: PathBuf,
    time: PathBuf,
}

impl SwapNames {
    fn new(dir: &Path, base: i64) -> Self {
        let name = |ext| dir.join(format!("{}.swap", crate::file_name(base, ext)));
        Self {
            log: name("log"),
            index: name("index"),
            time: name("timeindex"),
        }
    }
}

struct PreparedCleaned {
    base: i64,
    original_size: u64,
    prepared: PreparedSegment,
}

/// Cleaned segments ready to swap: checked, indexed and renamed `<base>.log.swap`.
pub struct PreparedSwap {
    segments: Vec<PreparedCleaned>,
    next_dirty: i64,
    removed_aborts: Vec<(i64, i64)>,
}

impl PreparedSwap {
    /// Step 3a of a clean, without the partition lock: re-validates every batch of each
    /// cleaned segment and writes its indexes (`<base>.index.swap`,
    /// `<base>.timeindex.swap`), renames `<base>.log.cleaned` to `<base>.log.swap` (a
    /// complete segment, whose swap a start would finish), then fsyncs the directory
    /// once. On failure every file made here is removed and the originals stay.
    ///
    /// If retention removes an original between this and the swap and the broker then
    /// crashes, the next start finishes the swap of its `.swap` file: data retention
    /// had removed comes back until retention runs again (never data that was not
    /// there, and never out of offset order).
    pub fn prepare(dir: &Path, out: crate::CleanOutput, index_interval: usize) -> Result<Self> {
        crate::testing::checkpoint(dir, crate::testing::SwapStep::Prepare);
        let mut segments = Vec::new();
        let mut made: Vec<PathBuf> = Vec::new();
        let result = (|| -> Result<()> {
            for c in &out.segments {
                let names = SwapNames::new(dir, c.base);
                made.extend([names.index.clone(), names.time.clone()]);
                let prepared = PreparedSegment::build(
                    c.base,
                    &c.cleaned,
                    &names.index,
                    &names.time,
                    index_interval,
                )?;
                std::fs::rename(&c.cleaned, &names.log)?;
                made.push(names.log);
                segments.push(PreparedCleaned {
                    base: c.base,
                    original_size: c.original_size,
                    prepared,
                });
            }
            if !segments.is_empty() {
                File::open(dir)?.sync_all()?;
            }
            Ok(())
        })();
        if let Err(e) = result {
            for path in made.iter().chain(out.segments.iter().map(|c| &c.cleaned)) {
                let _ = std::fs::remove_file(path);
            }
            return Err(e);
        }
        Ok(Self {
            segments,
            next_dirty: out.next_dirty,
            removed_aborts: out.removed_aborts,
        })
    }
}

/// What is left of a swap after the partition lock is released: an fsync of the
/// directory (the renames), the `.txnindex` rewrites, the cleaner checkpoint, and the
/// removal of prepared files whose swap was abandoned.
pub struct SwapFinish {
    dir: PathBuf,
    doomed: Vec<PathBuf>,
    discard: Vec<PathBuf>,
    txn_rewrites: Vec<(PathBuf, Vec<AbortedTxn>)>,
    checkpoint: i64,
}

impl SwapFinish {
    /// Blocking. Returns the replaced segment files, to remove after
    /// `file.delete.delay.ms`.
    pub fn finish(self) -> Result<Vec<PathBuf>> {
        crate::testing::checkpoint(&self.dir, crate::testing::SwapStep::Finish);
        for path in &self.discard {
            let _ = std::fs::remove_file(path);
        }
        File::open(&self.dir)?.sync_all()?;
        for (path, kept) in &self.txn_rewrites {
            crate::txn_index::rewrite(path, kept)?;
        }
        write_offset_file(&self.dir.join(CLEANER_CHECKPOINT_FILE), self.checkpoint)?;
        Ok(self.doomed)
    }
}
