//! [`Log`]: the ordered set of segments of one partition.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use gregor_protocol::batch::{self, ValidatedBatch};

use crate::epoch_cache::EpochCache;
use crate::file_cache::FileCache;
use crate::producer_state::AbortedTxn;
use crate::segment::LogSegment;
use crate::{LogError, Result};

const RECOVERY_POINT_FILE: &str = "recovery-point";
/// Holds the log start offset when DeleteRecords moved it inside a segment.
const LOG_START_FILE: &str = "log-start-offset";
/// The first offset the cleaner has not compacted yet (Kafka's cleaner checkpoint).
const CLEANER_CHECKPOINT_FILE: &str = "cleaner-offset-checkpoint";
/// Suffix of segment files that retention removed; they are deleted after
/// `file.delete.delay.ms` (and at the next start, if the broker stopped before).
pub const DELETED_SUFFIX: &str = ".deleted";

/// Per-log settings, from the topic's configs (Kafka names in comments).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// `segment.bytes`
    pub segment_bytes: u64,
    /// `segment.ms`
    pub segment_ms: i64,
    /// `index.interval.bytes`
    pub index_interval_bytes: usize,
    /// `flush.messages`: fsync after this many messages (Kafka's default: never).
    pub flush_messages: i64,
    /// `flush.ms`: fsync when the oldest unflushed data is this old (default: never).
    pub flush_ms: i64,
    /// `producer.id.expiration.ms`: an idle producer's sequence state is forgotten.
    pub producer_id_expiration_ms: i64,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            segment_bytes: 1 << 30,
            segment_ms: 7 * 24 * 3600 * 1000,
            index_interval_bytes: 4096,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            producer_id_expiration_ms: 86_400_000,
        }
    }
}

/// What an append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendInfo {
    /// The batch was a retry of one already in the log (idempotent producer): nothing
    /// was written and the offsets are the original ones.
    pub duplicate: bool,
    pub base_offset: i64,
    pub last_offset: i64,
    /// The LogAppendTime applied, or -1 under CreateTime.
    pub log_append_time: i64,
    pub log_start_offset: i64,
}

/// Data read into memory: whole batches from one segment.
#[derive(Debug, Default)]
pub struct ReadInfo {
    pub bytes: Vec<u8>,
}

/// Data for a fetch, not read: a range of whole batches in one segment file, for the
/// network layer to send straight from the file (`sendfile`). The handle keeps the bytes
/// readable after the partition lock is released, even if retention or compaction
/// removes the segment meanwhile (the file is unlinked, not truncated).
#[derive(Debug, Clone)]
pub struct FileRange {
    pub file: Arc<File>,
    pub position: u64,
    pub len: usize,
    /// The offset that follows the range's last batch.
    pub end_offset: i64,
}

impl FileRange {
    /// Reads the range into memory (for tests and for transports that cannot send from
    /// a file).
    pub fn read_to_vec(&self) -> std::io::Result<Vec<u8>> {
        use std::os::unix::fs::FileExt;
        let mut buf = vec![0u8; self.len];
        self.file.read_exact_at(&mut buf, self.position)?;
        Ok(buf)
    }

    /// Appends the range's bytes to `out` (a small range, or one a response copies so
    /// as not to hold its file open).
    pub fn read_into(&self, out: &mut bytes::BytesMut) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let start = out.len();
        out.resize(start + self.len, 0);
        let read = self.file.read_exact_at(&mut out[start..], self.position);
        if read.is_err() {
            out.truncate(start);
        }
        read
    }
}

/// Files to fsync to make everything below `upto` durable. Taken under the partition's
/// lock, synced outside it (so producers keep appending), then reported back with
/// [`Log::mark_flushed`]. Concurrent producers that wait for one flush share it: that is
/// the group commit.
pub struct FlushHandle {
    files: Vec<Arc<File>>,
    pub upto: i64,
}

impl FlushHandle {
    pub fn sync(&self) -> std::io::Result<()> {
        for f in &self.files {
            f.sync_data()?;
        }
        Ok(())
    }
}

/// One partition's log.
pub struct Log {
    dir: Arc<Path>,
    /// The broker's budget of open segment files, shared with every other log.
    files: Arc<FileCache>,
    /// Small writes decided under the caller's lock (see `crate::deferred`).
    deferred: Arc<crate::DeferredWrites>,
    /// Whether they wait for the caller ([`Log::set_defer_writes`]) or run at once.
    defer_writes: bool,
    config: LogConfig,
    segments: BTreeMap<i64, LogSegment>,
    log_start_offset: i64,
    log_end_offset: i64,
    /// Everything below this offset is known to be on stable storage.
    recovery_point: i64,
    /// Base offsets of segments rolled since the last flush (names, not handles: the
    /// files are opened through the budget when the flush takes them).
    unflushed_rolled: Vec<i64>,
    last_flush_ms: i64,
    producers: crate::producer_state::ProducerStateManager,
    /// Aborted transactions by marker offset (the `.txnindex` files, in memory).
    aborted: Vec<AbortedTxn>,
    /// Where each leader epoch starts (`leader-epoch-checkpoint`).
    epochs: EpochCache,
}

mod clean;
mod open;
mod replica;
mod retention;

pub use clean::{CleanInputs, PreparedSwap, SwapFinish};
pub use replica::ReplicaAppend;
pub use retention::DELETE_SUFFIX;

impl Log {
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn config(&self) -> &LogConfig {
        &self.config
    }
    pub fn set_config(&mut self, config: LogConfig) {
        self.producers
            .set_expiration(config.producer_id_expiration_ms);
        self.config = config;
    }
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }
    pub fn log_end_offset(&self) -> i64 {
        self.log_end_offset
    }
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }
    /// Bytes of memory the loaded sparse indexes take.
    pub fn index_memory_bytes(&self) -> usize {
        self.segments
            .values()
            .map(LogSegment::index_heap_bytes)
            .sum()
    }
    /// Total bytes of all segments.
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(|s| s.size).sum()
    }

    fn active(&mut self) -> Result<&mut LogSegment> {
        let dir = &self.dir;
        match self.segments.values_mut().next_back() {
            Some(s) => Ok(s),
            None => Err(LogError::Corrupt {
                path: dir.display().to_string(),
                reason: "log has no segment".into(),
            }),
        }
    }

    fn maybe_roll(&mut self, batch_len: usize, last_offset: i64, now_ms: i64) -> Result<()> {
        let cfg = self.config.clone();
        let active = self.active()?;
        if active.is_empty() {
            return Ok(());
        }
        let full = active.size + batch_len as u64 > cfg.segment_bytes;
        let old = active
            .first_append_ms
            .is_some_and(|t| now_ms.saturating_sub(t) >= cfg.segment_ms);
        let rel_overflow = last_offset - active.base_offset > i64::from(u32::MAX);
        let pos_overflow = active.size + batch_len as u64 > u64::from(u32::MAX);
        if full || old || rel_overflow || pos_overflow {
            let rolled = active.base_offset;
            self.unflushed_rolled.push(rolled);
            let base = self.log_end_offset;
            let seg = LogSegment::create(&self.dir, &self.files, base, cfg.index_interval_bytes)?;
            self.segments.insert(base, seg);
            tracing::debug!(dir = %self.dir.display(), base, "rolled segment");
            // The snapshot (a write, a rename and a directory scan) is queued, not
            // written under the lock: see `crate::deferred`.
            self.queue(crate::deferred::Write::Snapshot {
                dir: self.dir.to_path_buf(),
                offset: self.log_end_offset,
                bytes: self.producers.encode_snapshot(),
            });
        }
        Ok(())
    }

    /// Queues a small file write, performed now unless the owner defers them
    /// ([`Log::set_defer_writes`]).
    fn queue(&self, w: crate::deferred::Write) {
        self.deferred.push(w);
        if !self.defer_writes {
            self.deferred.run();
        }
    }

    /// With `on`, the small writes this log decides on under its caller's lock
    /// (snapshots at a roll, `.txnindex` appends, recovery points) are only queued: the
    /// caller runs [`Log::deferred_writes`] after releasing its lock.
    pub fn set_defer_writes(&mut self, on: bool) {
        self.defer_writes = on;
        if !on {
            // Nothing queued before may land after the inline writes that follow.
            self.deferred.run_to_completion();
        }
    }

    /// The queue of writes deferred past the caller's lock (see [`Log::set_defer_writes`]).
    pub fn deferred_writes(&self) -> Arc<crate::DeferredWrites> {
        self.deferred.clone()
    }

    /// Appends one validated batch, assigning offsets from the log end. The producer's
    /// bytes are not copied or changed: a copy of the 61-byte header gets the base offset,
    /// the leader epoch and, under LogAppendTime (`log_append_time_ms`), the max timestamp
    /// and CRC; the payload is written as it came.
    pub fn append(
        &mut self,
        bytes: &[u8],
        v: &ValidatedBatch,
        leader_epoch: i32,
        log_append_time_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<AppendInfo> {
        if bytes.len() < batch::HEADER_LEN {
            return Err(LogError::Batch(gregor_protocol::BatchError::Truncated(
                "batch header",
            )));
        }
        let idempotent = v.header.producer_id >= 0 && !v.header.is_control();
        let marker = if v.header.producer_id >= 0 && v.header.is_control() {
            let marker = batch::end_txn_marker(bytes, &mut Vec::new());
            let coordinator_epoch = marker.map_or(-1, |(_, e)| e);
            self.producers.check_marker(&v.header, coordinator_epoch)?;
            marker
        } else {
            None
        };
        if idempotent {
            if let crate::producer_state::SequenceCheck::Duplicate {
                first_offset,
                last_offset,
            } = self.producers.check(&v.header, now_ms)?
            {
                return Ok(AppendInfo {
                    duplicate: true,
                    base_offset: first_offset,
                    last_offset,
                    log_append_time: log_append_time_ms.unwrap_or(-1),
                    log_start_offset: self.log_start_offset,
                });
            }
        }
        let base_offset = self.log_end_offset;
        let last_offset = base_offset + i64::from(v.header.last_offset_delta);
        self.maybe_roll(bytes.len(), last_offset, now_ms)?;
        let (head, payload) = bytes.split_at(batch::HEADER_LEN);
        let mut header = [0u8; batch::HEADER_LEN];
        header.copy_from_slice(head);
        batch::set_base_offset(&mut header, base_offset);
        batch::set_partition_leader_epoch(&mut header, leader_epoch);
        let (max_ts, offset_of_max) = match log_append_time_ms {
            Some(t) => {
                batch::set_max_timestamp_split(&mut header, payload, true, t);
                (t, base_offset)
            }
            None => {
                if v.header.max_timestamp != v.max_timestamp {
                    // Clients must set maxTimestamp; repair it as Kafka does (covered by the CRC).
                    batch::set_max_timestamp_split(&mut header, payload, false, v.max_timestamp);
                }
                (
                    v.max_timestamp,
                    base_offset + i64::from(v.offset_delta_of_max_timestamp),
                )
            }
        };
        let interval = self.config.index_interval_bytes;
        self.active()?
            .append(&header, payload, max_ts, offset_of_max, interval, now_ms)?;
        self.log_end_offset = last_offset + 1;
        if idempotent {
            self.producers
                .update(&v.header, base_offset, last_offset, now_ms);
        }
        if let Some((m, coordinator_epoch)) = marker {
            let commit = m == batch::Marker::Commit;
            if let Some(a) = self.producers.complete_txn(
                &v.header,
                (commit, coordinator_epoch),
                base_offset,
                self.log_end_offset,
                now_ms,
            ) {
                self.record_abort(a);
            }
        }
        self.assign_epoch(leader_epoch, base_offset);
        Ok(AppendInfo {
            duplicate: false,
            base_offset,
            last_offset,
            log_append_time: log_append_time_ms.unwrap_or(-1),
            log_start_offset: self.log_start_offset,
        })
    }

    /// Records that `epoch` wrote from `start` on (a leader's first append, or a new
    /// leader before it accepts writes, KAFKA-7415), queueing the checkpoint write.
    pub fn assign_epoch(&mut self, epoch: i32, start: i64) {
        if self.epochs.assign(epoch, start) {
            self.write_epochs();
        }
    }

    fn write_epochs(&self) {
        self.queue(crate::deferred::Write::EpochCheckpoint {
            path: self.dir.join(crate::epoch_cache::FILE),
            text: self.epochs.encode(),
        });
    }

    /// The leader-epoch cache (OffsetForLeaderEpoch, divergence checks).
    pub fn epochs(&self) -> &EpochCache {
        &self.epochs
    }

    /// The largest epoch at or below `epoch` and where it ends in this log (KIP-101).
    pub fn end_offset_for_epoch(&self, epoch: i32) -> (i32, i64) {
        self.epochs.end_offset_for(epoch, self.log_end_offset)
    }

    /// Keeps an aborted transaction in memory and in the active segment's `.txnindex`.
    fn record_abort(&mut self, a: AbortedTxn) {
        let base = self.segments.keys().next_back().copied().unwrap_or(0);
        let path = self.dir.join(crate::file_name(base, "txnindex"));
        self.queue(crate::deferred::Write::TxnIndex { path, entry: a });
        self.aborted.push(a);
    }

    /// The first offset of the oldest transaction still open on this partition.
    pub fn first_unstable_offset(&self) -> Option<i64> {
        self.producers.first_unstable_offset()
    }

    /// Forgets producers idle past `producer.id.expiration.ms` with no open transaction
    /// (the periodic sweep). Returns how many went.
    pub fn remove_expired_producers(&mut self, now_ms: i64) -> usize {
        self.producers.remove_expired(now_ms)
    }

    /// The producers this partition remembers (DescribeProducers).
    pub fn active_producers(&self) -> Vec<crate::producer_state::ActiveProducer> {
        self.producers.describe()
    }

    /// Open transactions as `(producer id, first offset)`.
    pub fn ongoing_transactions(&self) -> Vec<(i64, i64)> {
        self.producers.ongoing().collect()
    }

    /// Aborted transactions a read_committed reader of `[from, upper)` must skip, as
    /// `(producer id, first offset)`: those whose marker is at or after `from` and that
    /// started below `upper`.
    pub fn aborted_between(&self, from: i64, upper: i64) -> Vec<(i64, i64)> {
        let start = self.aborted.partition_point(|a| a.last_offset < from);
        let mut out = Vec::new();
        for a in &self.aborted[start..] {
            if a.first_offset < upper {
                out.push((a.producer_id, a.first_offset));
            }
            // No transaction open after this marker started below its last stable
            // offset, so later entries cannot overlap the range.
            if a.last_stable_offset >= upper {
                break;
            }
        }
        out
    }

    /// Whether the flush policy (`flush.messages`, `flush.ms`) calls for an fsync now.
    /// Producers wait for such a flush before they are acknowledged.
    pub fn flush_due(&self, now_ms: i64) -> bool {
        let unflushed = self.log_end_offset - self.recovery_point;
        unflushed > 0
            && (unflushed >= self.config.flush_messages
                || now_ms.saturating_sub(self.last_flush_ms) >= self.config.flush_ms)
    }

    /// Whether anything waits for an fsync: the policy, or a segment rolled since the
    /// last flush (which the background flusher syncs, so producers do not wait on it).
    pub fn needs_flush(&self, now_ms: i64) -> bool {
        !self.unflushed_rolled.is_empty() || self.flush_due(now_ms)
    }

    /// Files to fsync so that everything currently appended is durable.
    pub fn flush_handle(&mut self) -> Result<FlushHandle> {
        let mut files = Vec::new();
        for base in std::mem::take(&mut self.unflushed_rolled) {
            // A rolled segment retention or the cleaner removed since needs no sync.
            if let Some(seg) = self.segments.get(&base) {
                files.push(seg.shared_file()?);
            }
        }
        files.push(self.active()?.shared_file()?);
        Ok(FlushHandle {
            files,
            upto: self.log_end_offset,
        })
    }

    /// Records that a [`FlushHandle`] was synced.
    pub fn mark_flushed(&mut self, upto: i64, now_ms: i64) -> Result<()> {
        self.last_flush_ms = now_ms;
        if upto > self.recovery_point {
            let crossed_segment = self
                .segments
                .range(self.recovery_point + 1..=upto)
                .next()
                .is_some();
            self.recovery_point = upto;
            if crossed_segment {
                self.queue(crate::deferred::Write::OffsetFile {
                    path: self.dir.join(RECOVERY_POINT_FILE),
                    value: upto,
                });
            }
        }
        Ok(())
    }

    /// Records that a filesystem-wide sync ([`crate::sync_filesystem`]) started after
    /// `upto` was this log's end made everything below it durable, indexes included,
    /// and writes the recovery point (the broker's shutdown: one `syncfs` for all logs
    /// instead of an fsync per file).
    pub fn mark_synced(&mut self, upto: i64, now_ms: i64) -> Result<()> {
        if upto == self.log_end_offset {
            self.unflushed_rolled.clear();
            for seg in self.segments.values_mut() {
                seg.mark_synced();
            }
        }
        self.mark_flushed(upto, now_ms)?;
        self.write_recovery_point();
        Ok(())
    }

    /// Flushes everything inline and records the recovery point (shutdown, tests).
    pub fn flush(&mut self, now_ms: i64) -> Result<()> {
        let h = self.flush_handle()?;
        h.sync()?;
        for seg in self.segments.values_mut() {
            seg.sync_all()?;
        }
        self.mark_flushed(h.upto, now_ms)?;
        self.write_recovery_point();
        Ok(())
    }

    /// Writes the producer state as of the log end to `<offset>.snapshot` (at each roll
    /// and at clean shutdown) and keeps the two newest. Best effort: without a snapshot
    /// the state is rebuilt from the log's batch headers. Written even when no producer
    /// is known (as Kafka does): an empty snapshot at the log end spares the next start
    /// a replay of every batch header of every segment.
    pub fn snapshot_producers(&self) {
        write_snapshot(
            &self.dir,
            self.log_end_offset,
            &self.producers.encode_snapshot(),
        );
    }

    /// Records the recovery point. Best effort: if it cannot be written (a full disk),
    /// the file keeps an older, lower value, which only makes the next recovery check
    /// more of the log; it never skips unflushed data.
    fn write_recovery_point(&self) {
        let path = self.dir.join(RECOVERY_POINT_FILE);
        if let Err(e) = write_offset_file(&path, self.recovery_point) {
            tracing::warn!(dir = %self.dir.display(), error = %e, "cannot write the recovery point; recovery will start earlier");
        }
    }

    /// Reads whole batches starting at the batch that holds `offset`, from one segment:
    /// at most `max_bytes` (or the first batch whole when `min_one`), and only batches
    /// whose base offset is below `upper_bound` (the high watermark for consumers).
    pub fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
        upper_bound: i64,
    ) -> Result<ReadInfo> {
        let Some(range) = self.read_range(offset, max_bytes, min_one, upper_bound)? else {
            return Ok(ReadInfo::default());
        };
        Ok(ReadInfo {
            bytes: range.read_to_vec()?,
        })
    }

    /// Like [`Log::read`], but returns where the bytes are instead of reading them (the
    /// fetch path sends them from the file). `None` when there is nothing to send.
    pub fn read_range(
        &self,
        offset: i64,
        max_bytes: usize,
        min_one: bool,
        upper_bound: i64,
    ) -> Result<Option<FileRange>> {
        if offset < self.log_start_offset || offset > self.log_end_offset {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start: self.log_start_offset,
                log_end: self.log_end_offset,
            });
        }
        if offset >= upper_bound || offset == self.log_end_offset {
            return Ok(None);
        }
        let start = self
            .segments
            .range(..=offset)
            .next_back()
            .map_or(self.log_start_offset, |(b, _)| *b);
        for seg in self.segments.range(start..).map(|(_, s)| s) {
            if let Some((pos, first_len, _)) = seg.locate(offset)? {
                let (end, end_offset) =
                    seg.read_end(pos, first_len, max_bytes, min_one, upper_bound)?;
                if end == pos {
                    return Ok(None);
                }
                return Ok(Some(FileRange {
                    file: seg.shared_file()?,
                    position: pos,
                    len: (end - pos) as usize,
                    end_offset,
                }));
            }
        }
        Ok(None)
    }

    /// The first record with timestamp `>= ts`: `(offset, timestamp)`.
    pub fn offset_for_timestamp(&self, ts: i64) -> Result<Option<(i64, i64)>> {
        let mut scratch = Vec::new();
        for seg in self.segments.values() {
            if seg.max_timestamp()?.0 < ts {
                continue;
            }
            let mut pos = seg.time_search_start(ts)?;
            while pos < seg.size {
                let h = seg.header_at(pos)?;
                if h.max_timestamp >= ts && h.last_offset() >= self.log_start_offset {
                    let bytes = seg.read_batch(pos)?;
                    if let Some(found) =
                        batch::first_offset_at_or_after(&bytes, ts, &mut scratch, usize::MAX / 4)?
                    {
                        return Ok(Some((found.0.max(self.log_start_offset), found.1)));
                    }
                }
                pos += h.total_size() as u64;
            }
        }
        Ok(None)
    }

    /// The offset and timestamp of the record with the largest timestamp (KIP-734).
    /// Reads the indexes of segments not read yet.
    pub fn max_timestamp_offset(&self) -> Result<Option<(i64, i64)>> {
        let mut best: Option<(i64, i64)> = None;
        for seg in self.segments.values() {
            let (ts, offset) = seg.max_timestamp()?;
            if ts >= 0 && best.is_none_or(|(_, t)| ts > t) {
                best = Some((offset, ts));
            }
        }
        Ok(best)
    }

    /// Flushes and closes the log cleanly.
    pub fn close(mut self, now_ms: i64) -> Result<()> {
        self.flush(now_ms)
    }
}

/// Offsets of the `<offset>.snapshot` files in `dir`.
fn snapshot_offsets(dir: &Path) -> Vec<i64> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    let name = e.file_name();
                    let stem = name.to_str()?.strip_suffix(".snapshot")?.to_string();
                    (stem.len() == 20).then(|| stem.parse().ok()).flatten()
                })
                .collect()
        })
        .unwrap_or_default()
}

fn read_offset_file(dir: &Path, name: &str) -> Option<i64> {
    std::fs::read_to_string(dir.join(name))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// Writes `<offset>.snapshot` in `dir` (tmp + rename) and keeps the two newest.
/// Best effort: a failure is logged.
pub(crate) fn write_snapshot(dir: &Path, offset: i64, bytes: &[u8]) {
    let name = crate::file_name(offset, "snapshot");
    let tmp = dir.join(format!("{name}.tmp"));
    let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, dir.join(&name)));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        tracing::warn!(dir = %dir.display(), error = %e, "cannot write producer snapshot");
        return;
    }
    let mut snaps = snapshot_offsets(dir);
    snaps.sort_unstable();
    let keep_from = snaps.len().saturating_sub(2);
    for old in &snaps[..keep_from] {
        let _ = std::fs::remove_file(dir.join(crate::file_name(*old, "snapshot")));
    }
}

/// Replaces the file at `path` with `value` (tmp + rename, so a reader sees the old or
/// the new value).
pub(crate) fn write_offset_file(path: &Path, value: i64) -> std::io::Result<()> {
    write_text_file(path, &value.to_string())
}

/// Replaces the file at `path` with `text` (tmp + rename).
pub(crate) fn write_text_file(path: &Path, text: &str) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let written = std::fs::write(&tmp, text).and_then(|()| std::fs::rename(&tmp, path));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}
