//! Opening a log: finding its segments, finishing interrupted swaps and deletions,
//! recovering what a crash may have torn, and rebuilding the producer state.

use std::collections::BTreeMap;
use std::path::Path;

use gregor_protocol::batch;

use super::*;
use crate::file_cache::FileCache;
use crate::segment::LogSegment;

/// Handles a log opened with [`Log::open`] may keep open.
const OWN_FILE_BUDGET: usize = 64;

fn parse_base_offset(name: &str) -> Option<i64> {
    let stem = name.strip_suffix(".log")?;
    if stem.len() != 20 {
        return None;
    }
    stem.parse().ok()
}

impl Log {
    /// Opens (or creates) the log in `dir` with a file budget of its own (tools, tests,
    /// the metadata log). See [`Log::open_with`].
    pub fn open(dir: &Path, config: LogConfig, clean_shutdown: bool, now_ms: i64) -> Result<Self> {
        let files = Arc::new(FileCache::new(OWN_FILE_BUDGET));
        Self::open_with(dir, config, clean_shutdown, now_ms, files)
    }

    /// Opens (or creates) the log in `dir`, its segment files opened through `files`,
    /// the broker's shared budget. `clean_shutdown` says whether the broker stopped
    /// cleanly; if not, every segment that may hold unflushed data is re-validated.
    ///
    /// Only what the log end needs is read: the last segment's indexes and tail. Closed
    /// segments are `stat`ed and read when first used, and those below the recovery
    /// point are never re-validated, so opening costs no descriptor per segment.
    pub fn open_with(
        dir: &Path,
        config: LogConfig,
        clean_shutdown: bool,
        now_ms: i64,
        files: Arc<FileCache>,
    ) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let shared: Arc<Path> = Arc::from(dir);
        let mut bases: Vec<i64> = Vec::new();
        // Segments whose interrupted swap was finished: their indexes are rebuilt.
        let mut swapped: Vec<i64> = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.ends_with(DELETED_SUFFIX)
                || name.ends_with(".log.cleaned")
                || name.ends_with(".index.swap")
                || name.ends_with(".timeindex.swap")
            {
                // Retention or the cleaner renamed it and the broker stopped before
                // removing it; a `.cleaned` file was never complete; the indexes of a
                // swap the start finishes are rebuilt.
                std::fs::remove_file(entry.path())?;
                continue;
            }
            if let Some(stem) = name.strip_suffix(".swap") {
                // A complete cleaned segment whose swap was interrupted: finish it.
                if let Some(base) = parse_base_offset(stem) {
                    finish_swap(dir, base, &entry.path())?;
                    bases.push(base);
                    swapped.push(base);
                }
                continue;
            }
            if let Some(base) = parse_base_offset(name) {
                bases.push(base);
            }
        }
        bases.sort_unstable();
        bases.dedup();
        let stored_recovery_point = read_recovery_point(dir);
        let recovery_point = if clean_shutdown {
            i64::MAX
        } else {
            stored_recovery_point
        };
        let mut segments: BTreeMap<i64, LogSegment> = BTreeMap::new();
        let mut expected_next: Option<i64> = None;
        for (i, &base) in bases.iter().enumerate() {
            let next_base = bases.get(i + 1).copied();
            // A segment may hold unflushed data if the recovery point falls at or before its end.
            // After a clean stop nothing is re-validated (the last segment's indexes are
            // checked and its tail walked); after a crash, what the recovery point does
            // not cover is.
            let recover = (!clean_shutdown && next_base.is_none_or(|nb| nb > recovery_point))
                || swapped.contains(&base);
            let stale = expected_next.is_some_and(|n| base < n);
            if stale {
                tracing::warn!(dir = %dir.display(), base, "dropping segment that overlaps its predecessor after recovery");
                remove_segment_files(dir, base)?;
                continue;
            }
            let (seg, truncated) = LogSegment::open(
                &shared,
                &files,
                base,
                recover,
                config.index_interval_bytes,
                next_base,
            )?;
            expected_next = Some(seg.next_offset());
            segments.insert(base, seg);
            if truncated {
                // Everything after a truncated segment is unreachable: drop it, as Kafka does.
                for &later in &bases[i + 1..] {
                    tracing::warn!(dir = %dir.display(), base = later, "dropping segment after a truncated one");
                    remove_segment_files(dir, later)?;
                }
                break;
            }
        }
        if segments.is_empty() {
            segments.insert(
                0,
                LogSegment::create(&shared, &files, 0, config.index_interval_bytes)?,
            );
        }
        let log_end_offset = segments.values().next_back().map_or(0, |s| s.next_offset());
        let log_start_offset = segments.keys().next().copied().unwrap_or(0).max(
            read_offset_file(dir, LOG_START_FILE)
                .unwrap_or(0)
                .min(log_end_offset),
        );
        let mut producers =
            crate::producer_state::ProducerStateManager::new(config.producer_id_expiration_ms);
        // Start from the newest producer-state snapshot the log can vouch for (at or
        // below the recovery point, so it never describes data a crash lost), then
        // replay the batch headers after it.
        let trusted = if clean_shutdown {
            log_end_offset
        } else {
            recovery_point.min(log_end_offset)
        };
        let from = load_producer_snapshot(dir, trusted, log_end_offset, &mut producers);
        // Aborted transactions: the index entries before `from` are trusted, the rest
        // are rebuilt from the markers replayed below.
        let mut aborted = Vec::new();
        for &base in segments.keys() {
            let path = dir.join(crate::file_name(base, "txnindex"));
            let entries = crate::txn_index::load(&path)?;
            let kept: Vec<AbortedTxn> = entries
                .iter()
                .copied()
                .filter(|a| a.last_offset < from)
                .collect();
            if kept.len() != entries.len() {
                crate::txn_index::rewrite(&path, &kept)?;
            }
            aborted.extend(kept);
        }
        // The leader-epoch cache: the checkpoint, or the batch headers when it is
        // missing (a log written before it existed, or a lost file); entries past the
        // log end describe a tail recovery cut off.
        let stored_epochs = crate::epoch_cache::EpochCache::load(dir);
        let mut epochs = match stored_epochs.clone() {
            Some(c) => c,
            None => {
                let mut c = crate::epoch_cache::EpochCache::default();
                for seg in segments.values().filter(|s| s.next_offset() <= from) {
                    seg.for_each_header(|h, _| {
                        c.assign(h.partition_leader_epoch, h.base_offset);
                        Ok(())
                    })?;
                }
                c
            }
        };
        epochs.truncate_from_end(log_end_offset);
        let mut scratch = Vec::new();
        for seg in segments.values().filter(|s| s.next_offset() > from) {
            seg.for_each_header(|h, pos| {
                if h.base_offset >= from {
                    // Batches a lost checkpoint write may not cover.
                    epochs.assign(h.partition_leader_epoch, h.base_offset);
                }
                if h.producer_id < 0 || h.base_offset < from {
                    return Ok(());
                }
                if !h.is_control() {
                    producers.update(h, h.base_offset, h.last_offset(), now_ms);
                    return Ok(());
                }
                let bytes = seg.read_batch(pos)?;
                if let Some((m, coordinator_epoch)) = batch::end_txn_marker(&bytes, &mut scratch) {
                    let commit = m == batch::Marker::Commit;
                    let marker = (commit, coordinator_epoch);
                    if let Some(a) =
                        producers.complete_txn(h, marker, h.base_offset, h.base_offset + 1, now_ms)
                    {
                        let path = dir.join(crate::file_name(seg.base_offset, "txnindex"));
                        crate::txn_index::append(&path, &a)?;
                        aborted.push(a);
                    }
                }
                Ok(())
            })?;
        }
        let log = Self {
            dir: shared,
            files,
            deferred: Default::default(),
            defer_writes: false,
            config,
            segments,
            log_start_offset,
            log_end_offset,
            recovery_point: log_end_offset,
            unflushed_rolled: Vec::new(),
            last_flush_ms: now_ms,
            producers,
            aborted,
            epochs,
        };
        if stored_recovery_point != log.recovery_point {
            log.write_recovery_point();
        }
        if stored_epochs.as_ref() != Some(&log.epochs) && !log.epochs.entries().is_empty() {
            log.write_epochs();
        }
        Ok(log)
    }
}

/// Completes an interrupted swap: the `.swap` file is a complete cleaned segment, so
/// whatever is left of the original goes and the `.swap` becomes the segment (its
/// indexes are rebuilt when it is opened).
fn finish_swap(dir: &Path, base: i64, swap: &Path) -> Result<()> {
    for ext in ["log", "index", "timeindex"] {
        match std::fs::remove_file(dir.join(crate::file_name(base, ext))) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    std::fs::rename(swap, dir.join(crate::file_name(base, "log")))?;
    tracing::info!(dir = %dir.display(), base, "finished an interrupted cleaner swap");
    Ok(())
}

/// Loads the newest intact snapshot at or below `trusted` into `producers`; snapshots
/// past the log end (the log was truncated) are removed. Returns the offset replay
/// starts from (0 without a snapshot).
fn load_producer_snapshot(
    dir: &Path,
    trusted: i64,
    log_end: i64,
    producers: &mut crate::producer_state::ProducerStateManager,
) -> i64 {
    let mut offsets = snapshot_offsets(dir);
    offsets.sort_unstable_by(|a, b| b.cmp(a));
    for offset in offsets {
        let path = dir.join(crate::file_name(offset, "snapshot"));
        if offset > log_end {
            let _ = std::fs::remove_file(&path);
            continue;
        }
        if offset > trusted {
            continue;
        }
        if std::fs::read(&path).is_ok_and(|b| producers.load_snapshot(&b)) {
            return offset;
        }
        tracing::warn!(path = %path.display(), "ignoring a damaged producer snapshot");
    }
    0
}

fn read_recovery_point(dir: &Path) -> i64 {
    std::fs::read_to_string(dir.join(RECOVERY_POINT_FILE))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn remove_segment_files(dir: &Path, base: i64) -> Result<()> {
    for ext in ["log", "index", "timeindex", "txnindex"] {
        match std::fs::remove_file(dir.join(crate::file_name(base, ext))) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}
