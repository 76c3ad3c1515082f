//! The log's side of compaction: planning a clean and swapping the result in.

use std::fs::File;
use std::path::PathBuf;

use super::*;
use crate::segment::LogSegment;

impl Log {
    /// Step 1 of a clean: the closed segments eligible for compaction, or `None` if the
    /// log is not dirty enough (`min.cleanable.dirty.ratio`) and no dirty record is past
    /// `max.compaction.lag.ms`. Segments with records younger than
    /// `min.compaction.lag.ms` are left out.
    pub fn clean_plan(&self, cfg: &crate::CleanerConfig, now_ms: i64) -> Option<crate::CleanPlan> {
        let first_dirty = read_offset_file(&self.dir, CLEANER_CHECKPOINT_FILE)
            .unwrap_or(0)
            .max(self.log_start_offset);
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
            snapshot_floor: snapshot_offsets(&self.dir)
                .into_iter()
                .min()
                .unwrap_or(i64::MAX),
        })
    }

    /// Step 3 of a clean: puts cleaned segments in place of the originals (see
    /// [`crate::cleaner`]). A segment that changed since the plan (retention removed
    /// it) keeps its original. Returns the replaced files, to remove after a delay.
    pub fn swap_cleaned(&mut self, out: crate::CleanOutput) -> Result<Vec<PathBuf>> {
        let mut doomed = Vec::new();
        let mut dropped_aborts = Vec::new();
        for c in out.segments {
            let unchanged = self
                .segments
                .get(&c.base)
                .is_some_and(|s| s.size == c.original_size)
                && self.segments.keys().next_back() != Some(&c.base);
            if !unchanged {
                let _ = std::fs::remove_file(&c.cleaned);
                continue;
            }
            let swap = self
                .dir
                .join(format!("{}.swap", crate::file_name(c.base, "log")));
            std::fs::rename(&c.cleaned, &swap)?;
            File::open(&self.dir)?.sync_all()?;
            let old = self.dir.join(crate::file_name(c.base, "log"));
            let parked = self.dir.join(format!(
                "{}{DELETED_SUFFIX}",
                crate::file_name(c.base, "log")
            ));
            for ext in ["index", "timeindex"] {
                match std::fs::remove_file(self.dir.join(crate::file_name(c.base, ext))) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
            std::fs::rename(&old, &parked)?;
            std::fs::rename(&swap, &old)?;
            File::open(&self.dir)?.sync_all()?;
            let (seg, _) = LogSegment::open(
                &self.dir,
                &self.files,
                c.base,
                true,
                self.config.index_interval_bytes,
                None,
            )?;
            let end = self
                .segments
                .range(c.base + 1..)
                .next()
                .map_or(i64::MAX, |(b, _)| *b);
            self.segments.insert(c.base, seg);
            doomed.push(parked);
            // Abort markers the cleaner removed from this segment take their index
            // entries with them.
            let gone: Vec<(i64, i64)> = out
                .removed_aborts
                .iter()
                .copied()
                .filter(|(_, at)| (c.base..end).contains(at))
                .collect();
            if !gone.is_empty() {
                let path = self.dir.join(crate::file_name(c.base, "txnindex"));
                let kept: Vec<AbortedTxn> = crate::txn_index::load(&path)?
                    .into_iter()
                    .filter(|a| !gone.contains(&(a.producer_id, a.last_offset)))
                    .collect();
                crate::txn_index::rewrite(&path, &kept)?;
                dropped_aborts.extend(gone);
            }
        }
        self.aborted
            .retain(|a| !dropped_aborts.contains(&(a.producer_id, a.last_offset)));
        let tmp = self.dir.join(format!("{CLEANER_CHECKPOINT_FILE}.tmp"));
        std::fs::write(&tmp, out.next_dirty.to_string())?;
        std::fs::rename(&tmp, self.dir.join(CLEANER_CHECKPOINT_FILE))?;
        Ok(doomed)
    }
}
