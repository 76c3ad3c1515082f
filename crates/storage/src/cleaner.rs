//! The log cleaner: compaction keeps the newest record of each key.
//!
//! A clean has three steps, so that producers are never blocked by it:
//! 1. [`Log::clean_plan_with`] (under the partition lock, cheap, with the checkpoint
//!    and snapshot list read before it, [`crate::CleanInputs`]): which closed segments
//!    to clean and which are dirty (written since the last clean).
//! 2. [`build_cleaned`] (no lock, reads and writes files): a key → latest-offset map
//!    over the dirty segments, in bounded memory (keys are kept as 128-bit hashes, as
//!    Kafka's SkimpyOffsetMap does), then each segment up to the end of the map is
//!    rewritten as `<base>.log.cleaned` keeping only the records no later record
//!    supersedes. Tombstones older than `delete.retention.ms` go too.
//! 3. The swap, Kafka's protocol split around the lock:
//!    a. [`crate::PreparedSwap::prepare`] (no lock): every batch of each fsynced
//!    `.cleaned` file is re-validated and its indexes written as `.index.swap` and
//!    `.timeindex.swap`; `.cleaned` is renamed `.swap`; one directory fsync.
//!    b. [`Log::swap_prepared`] (under the lock, renames only): the new indexes over
//!    the old, the old `.log` to `.log.deleted`, `.swap` to `.log`, and the prepared
//!    segment (indexes in memory) in place of the old one.
//!    c. [`crate::SwapFinish::finish`] (no lock): a directory fsync, the `.txnindex`
//!    rewrites and the cleaner checkpoint.
//!
//!    At startup a `.cleaned` file (incomplete) is removed and a `.swap` file (complete)
//!    finishes its swap with its indexes rebuilt, so a crash at any point leaves either
//!    the old or the new segment, never a mix; a produce never waits for an fsync or a
//!    re-validation of the cleaner's.
//!
//! Offsets never change: a compacted log has gaps, which consumers skip.
//!
//! Transactions: only segments entirely below the last stable offset are cleaned, so
//! open transactions are never touched. Records of aborted transactions are removed and
//! never enter the key map (an aborted write must not shadow the committed value of its
//! key). A transaction marker goes once none of its transaction's records are left,
//! it is older than `delete.retention.ms`, and every producer snapshot is past it (a
//! snapshot taken inside the transaction would otherwise restore it as open, with no
//! marker left to close it).

use std::collections::HashMap;
use std::fs::File;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};

use gregor_protocol::batch::{self, BatchHeader, Marker};
use gregor_protocol::filter::{filter_batch, Filtered};
use gregor_protocol::records::RecordWalker;

use crate::{file_name, Result};

/// Per-log compaction settings (Kafka's topic configs).
#[derive(Debug, Clone, PartialEq)]
pub struct CleanerConfig {
    /// `min.cleanable.dirty.ratio`
    pub min_cleanable_ratio: f64,
    /// `min.compaction.lag.ms`: records younger than this are not compacted.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a dirty segment older than this is cleaned whatever the ratio.
    pub max_compaction_lag_ms: i64,
    /// `delete.retention.ms`: how long tombstones stay.
    pub delete_retention_ms: i64,
    /// Most distinct keys one clean maps (from `log.cleaner.dedupe.buffer.size`).
    pub max_map_entries: usize,
}

/// One closed segment as the plan saw it.
#[derive(Debug, Clone)]
pub struct PlannedSegment {
    pub base: i64,
    pub path: PathBuf,
    pub size: u64,
    pub max_timestamp: i64,
}

/// What to clean: `segments` (oldest first, all closed), of which those with
/// `base >= first_dirty` are dirty.
#[derive(Debug, Clone)]
pub struct CleanPlan {
    pub dir: PathBuf,
    pub segments: Vec<PlannedSegment>,
    pub first_dirty: i64,
    pub dirty_ratio: f64,
    /// Aborted transactions by producer id: `(first offset, marker offset)` ranges.
    pub aborted: HashMap<i64, Vec<(i64, i64)>>,
    /// The oldest producer snapshot's offset (`i64::MAX` without one): only markers
    /// below it may be removed.
    pub snapshot_floor: i64,
}

impl CleanPlan {
    /// Whether a data batch belongs to an aborted transaction.
    fn is_aborted(&self, h: &BatchHeader) -> bool {
        h.is_transactional()
            && !h.is_control()
            && self.aborted.get(&h.producer_id).is_some_and(|ranges| {
                ranges
                    .iter()
                    .any(|&(first, last)| first <= h.base_offset && h.base_offset < last)
            })
    }
}

/// A cleaned replacement for one segment.
#[derive(Debug)]
pub struct CleanedSegment {
    pub base: i64,
    pub original_size: u64,
    pub cleaned: PathBuf,
    pub cleaned_size: u64,
}

/// The result of [`build_cleaned`].
#[derive(Debug)]
pub struct CleanOutput {
    pub segments: Vec<CleanedSegment>,
    /// The first offset not covered by the key map: the next clean starts here.
    pub next_dirty: i64,
    pub records_removed: u64,
    /// Abort markers removed, as `(producer id, marker offset)`: their aborted-transaction
    /// index entries must go with them, or a read_committed reader would keep skipping
    /// that producer's later (committed) batches with no marker to stop it.
    pub removed_aborts: Vec<(i64, i64)>,
}

/// 128 bits of a key: two SipHash passes with different seeds. A collision would make
/// the cleaner drop a record of a different key, so 64 bits would not be enough for
/// logs with millions of keys.
fn key_hash(key: &[u8]) -> u128 {
    let mut a = std::collections::hash_map::DefaultHasher::new();
    0xA5u8.hash(&mut a);
    key.hash(&mut a);
    let mut b = std::collections::hash_map::DefaultHasher::new();
    0x5Au8.hash(&mut b);
    key.hash(&mut b);
    (u128::from(a.finish()) << 64) | u128::from(b.finish())
}

/// Calls `f` for each batch in a segment file: (header, bytes of the whole batch).
fn for_each_batch(
    path: &Path,
    mut f: impl FnMut(&BatchHeader, &[u8]) -> Result<bool>,
) -> Result<()> {
    let data = std::fs::read(path)?;
    let mut at = 0;
    while at + batch::HEADER_LEN <= data.len() {
        let h = BatchHeader::parse(&data[at..])?;
        let end = at + h.total_size();
        if end > data.len() {
            break;
        }
        if !f(&h, &data[at..end])? {
            break;
        }
        at = end;
    }
    Ok(())
}

/// Step 2: builds the key map over the dirty segments and writes the cleaned files.
pub fn build_cleaned(plan: &CleanPlan, cfg: &CleanerConfig, now_ms: i64) -> Result<CleanOutput> {
    let mut map: HashMap<u128, i64> = HashMap::new();
    let mut scratch = Vec::new();
    let mut next_dirty = plan.first_dirty;
    // The map covers whole dirty segments only, so the checkpoint lands on a boundary.
    for seg in plan.segments.iter().filter(|s| s.base >= plan.first_dirty) {
        let mut seg_map: Vec<(u128, i64)> = Vec::new();
        let mut last = seg.base - 1;
        for_each_batch(&seg.path, |h, bytes| {
            last = h.last_offset();
            if h.is_control() || plan.is_aborted(h) {
                return Ok(true);
            }
            let data = batch::records_section(h, bytes, &mut scratch, 1 << 30)?;
            for rec in RecordWalker::new(data, h.record_count) {
                let rec = rec?;
                if let Some(k) = rec.key {
                    seg_map.push((key_hash(k), h.base_offset + i64::from(rec.offset_delta)));
                }
            }
            Ok(true)
        })?;
        if map.len() + seg_map.len() > cfg.max_map_entries && !map.is_empty() {
            break;
        }
        for (k, o) in seg_map {
            map.insert(k, o);
        }
        next_dirty = next_dirty.max(last + 1);
    }
    let tombstone_horizon = now_ms.saturating_sub(cfg.delete_retention_ms);
    let mut out = Vec::new();
    let mut removed = 0u64;
    // Per producer: whether any record of its current transaction survives.
    let mut txn_kept: HashMap<i64, bool> = HashMap::new();
    let mut removed_aborts = Vec::new();
    let mut marker_scratch = Vec::new();
    for seg in plan.segments.iter().filter(|s| s.base < next_dirty) {
        let cleaned = plan
            .dir
            .join(format!("{}.cleaned", file_name(seg.base, "log")));
        let mut file = File::create(&cleaned)?;
        let mut written = 0u64;
        let mut filter_scratch = Vec::new();
        for_each_batch(&seg.path, |h, bytes| {
            if h.is_control() {
                // Segments are rewritten from the log start, so the transaction's records
                // (which precede its marker) have all been seen.
                let retained = txn_kept.remove(&h.producer_id).unwrap_or(false);
                let removable = !retained
                    && h.max_timestamp < tombstone_horizon
                    && h.last_offset() < plan.snapshot_floor;
                if removable {
                    removed += 1;
                    if batch::control_marker(bytes, &mut marker_scratch) == Some(Marker::Abort) {
                        removed_aborts.push((h.producer_id, h.last_offset()));
                    }
                } else {
                    file.write_all(bytes)?;
                    written += bytes.len() as u64;
                }
                return Ok(true);
            }
            if plan.is_aborted(h) {
                txn_kept.entry(h.producer_id).or_insert(false);
                removed += h.record_count.max(0) as u64;
                return Ok(true);
            }
            let base_ts = h.base_timestamp;
            let filtered = filter_batch(bytes, &mut filter_scratch, 1 << 30, |offset, rec| {
                let keep = match rec.key {
                    // A keyless record has no place in a compacted log.
                    None => false,
                    Some(k) => match map.get(&key_hash(k)) {
                        Some(&latest) if latest > offset => false,
                        // The newest record of its key: a tombstone stays until
                        // delete.retention.ms has passed.
                        _ => {
                            rec.value.is_some()
                                || base_ts.saturating_add(rec.timestamp_delta) >= tombstone_horizon
                        }
                    },
                };
                if !keep {
                    removed += 1;
                }
                keep
            })?;
            if h.is_transactional() {
                *txn_kept.entry(h.producer_id).or_insert(false) |=
                    !matches!(filtered, Filtered::Empty);
            }
            match filtered {
                Filtered::Unchanged => {
                    file.write_all(bytes)?;
                    written += bytes.len() as u64;
                }
                Filtered::Rebuilt(b) => {
                    file.write_all(&b)?;
                    written += b.len() as u64;
                }
                Filtered::Empty => {}
            }
            Ok(true)
        })?;
        file.sync_all()?;
        out.push(CleanedSegment {
            base: seg.base,
            original_size: seg.size,
            cleaned,
            cleaned_size: written,
        });
    }
    Ok(CleanOutput {
        segments: out,
        next_dirty,
        records_removed: removed,
        removed_aborts,
    })
}
