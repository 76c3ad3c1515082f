//! What a follower does to its log: append the leader's batches byte for byte, and
//! truncate a divergent tail (KIP-101, KIP-279).

use gregor_protocol::batch::{self, BatchHeader};

use std::path::PathBuf;

use super::*;
use crate::epoch_cache::EpochCache;
use crate::segment::LogSegment;

/// What a replica append did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplicaAppend {
    /// Batches appended.
    pub batches: usize,
    /// Bytes appended.
    pub bytes: usize,
}

impl Log {
    /// Appends the leader's batches as they are (offsets, epochs, timestamps and CRCs
    /// all the leader's). `records` is a fetch response's record set: whole batches,
    /// possibly followed by a partial one cut by the fetch size, which is ignored.
    /// Batches entirely below the log end are skipped (a retried fetch); a batch may
    /// start above the log end (the leader compacted the offsets between). Each batch's
    /// CRC is checked; the first bad one stops the append with an error, leaving the
    /// batches before it appended.
    pub fn append_replica(&mut self, records: &[u8], now_ms: i64) -> Result<ReplicaAppend> {
        let mut out = ReplicaAppend::default();
        let mut at = 0;
        let mut scratch = Vec::new();
        while let Some(rest) = records.get(at..).filter(|r| r.len() >= batch::HEADER_LEN) {
            let h = BatchHeader::parse(rest)?;
            let Some(bytes) = rest.get(..h.total_size()) else {
                break; // the partial batch at the end of a size-limited fetch
            };
            at += bytes.len();
            if h.last_offset() < self.log_end_offset {
                continue;
            }
            if h.base_offset < self.log_end_offset {
                return Err(LogError::Corrupt {
                    path: self.dir.display().to_string(),
                    reason: format!(
                        "replicated batch [{}, {}] straddles the log end {}",
                        h.base_offset,
                        h.last_offset(),
                        self.log_end_offset
                    ),
                });
            }
            let computed = batch::compute_crc(bytes);
            if computed != h.crc {
                return Err(LogError::Batch(gregor_protocol::BatchError::CrcMismatch {
                    stored: h.crc,
                    computed,
                }));
            }
            self.maybe_roll(bytes.len(), h.last_offset(), now_ms)?;
            let (head, payload) = bytes.split_at(batch::HEADER_LEN);
            let interval = self.config.index_interval_bytes;
            // The batch's own max timestamp, at its last offset (Kafka's shallow offset
            // of the max timestamp for replicated batches).
            self.active()?.append(
                head,
                payload,
                h.max_timestamp,
                h.last_offset(),
                interval,
                now_ms,
            )?;
            self.log_end_offset = h.last_offset() + 1;
            if h.producer_id >= 0 {
                if !h.is_control() {
                    self.producers
                        .update(&h, h.base_offset, h.last_offset(), now_ms);
                } else if let Some((m, coordinator_epoch)) =
                    batch::end_txn_marker(bytes, &mut scratch)
                {
                    let commit = m == batch::Marker::Commit;
                    if let Some(a) = self.producers.complete_txn(
                        &h,
                        (commit, coordinator_epoch),
                        h.base_offset,
                        self.log_end_offset,
                        now_ms,
                    ) {
                        self.record_abort(a);
                    }
                }
            }
            self.assign_epoch(h.partition_leader_epoch, h.base_offset);
            out.batches += 1;
            out.bytes += bytes.len();
        }
        Ok(out)
    }

    /// Removes every batch at or after `offset` (a follower's divergent tail). A batch
    /// that straddles `offset` goes whole, so the log ends at a batch boundary at or
    /// below it. Below the log start, the log is emptied and restarts at `offset`.
    /// The producer state, aborted-transaction index and epoch cache are rebuilt for
    /// the shorter log by reopening it. Returns the files to remove later.
    pub fn truncate_to(&mut self, offset: i64, now_ms: i64) -> Result<Vec<PathBuf>> {
        if offset >= self.log_end_offset {
            // Nothing to remove, but an epoch that starts at the log end wrote nothing:
            // this replica led under it without an append before another leader took
            // over. Kept, it is the follower's last fetched epoch, which the leader never
            // had, so every fetch diverges again and never counts for the ISR (Kafka's
            // `UnifiedLog.truncateTo` drops it too; seen in the seed 102 soak).
            if self.epochs.truncate_from_end(self.log_end_offset) {
                self.write_epochs();
            }
            return Ok(Vec::new());
        }
        self.deferred.run_to_completion();
        let mut doomed = Vec::new();
        let restart_at = (offset < self.log_start_offset).then_some(offset);
        // Where the kept data ends: the base of the batch holding `offset`.
        let mut cut: Option<(i64, u64, i64)> = None; // (segment base, position, new end)
        if restart_at.is_none() {
            if let Some((&base, seg)) = self.segments.range(..=offset).next_back() {
                if let Some((pos, _, batch_base)) = seg.locate(offset)? {
                    cut = Some((base, pos, batch_base.min(offset)));
                }
            }
        }
        let keep_from = match (restart_at, cut) {
            (Some(_), _) => i64::MIN,
            (None, Some((base, 0, _))) => base - 1,
            (None, Some((base, _, _))) => base,
            (None, None) => offset,
        };
        // Segments after the cut (and the cut segment itself when nothing of it stays).
        let gone: Vec<i64> = self
            .segments
            .keys()
            .copied()
            .filter(|&b| b > keep_from)
            .collect();
        for base in gone {
            if let Some(seg) = self.segments.remove(&base) {
                drop(seg);
            }
            doomed.extend(rename_deleted(&self.dir, base)?);
        }
        let new_end = match (restart_at, cut) {
            (Some(at), _) => at,
            (None, Some((base, pos, end))) if pos > 0 => {
                if let Some(seg) = self.segments.get(&base) {
                    seg.shared_file()?.set_len(pos)?;
                }
                // Its indexes are rebuilt when the log reopens (the segment stays: it
                // keeps the data below the cut, and the log's start with it).
                for ext in ["index", "timeindex"] {
                    match std::fs::remove_file(self.dir.join(crate::file_name(base, ext))) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                end
            }
            (None, Some((_, _, end))) => end,
            (None, None) => offset,
        };
        if self.segments.is_empty() {
            // Nothing kept below: the log restarts empty at the new end.
            let seg = LogSegment::create(
                &self.dir,
                &self.files,
                new_end,
                self.config.index_interval_bytes,
            )?;
            drop(seg);
            crate::log::write_offset_file(&self.dir.join(LOG_START_FILE), new_end)?;
        }
        // Records of the removed tail: the producer snapshots above the new end and the
        // epochs that started above it (reopening drops the txnindex entries above the
        // newest snapshot and replays the markers after it).
        for snap in snapshot_offsets(&self.dir) {
            if snap > new_end {
                let _ = std::fs::remove_file(self.dir.join(crate::file_name(snap, "snapshot")));
            }
        }
        if self.epochs.truncate_from_end(new_end) {
            crate::log::write_text_file(
                &self.dir.join(crate::epoch_cache::FILE),
                &self.epochs.encode(),
            )?;
        }
        let recovery_point = self.recovery_point.min(new_end);
        crate::log::write_offset_file(&self.dir.join(RECOVERY_POINT_FILE), recovery_point)?;
        self.reopen(recovery_point, now_ms)?;
        Ok(doomed)
    }

    /// Empties the log and restarts it at `offset` (a follower whose log ends below the
    /// leader's log start: everything it has is gone on the leader). Returns the files
    /// to remove later.
    pub fn truncate_fully_and_start_at(
        &mut self,
        offset: i64,
        now_ms: i64,
    ) -> Result<Vec<PathBuf>> {
        self.deferred.run_to_completion();
        let mut doomed = Vec::new();
        let bases: Vec<i64> = self.segments.keys().copied().collect();
        self.segments.clear();
        for base in bases {
            doomed.extend(rename_deleted(&self.dir, base)?);
        }
        for snap in snapshot_offsets(&self.dir) {
            let _ = std::fs::remove_file(self.dir.join(crate::file_name(snap, "snapshot")));
        }
        self.epochs = EpochCache::default();
        crate::log::write_text_file(
            &self.dir.join(crate::epoch_cache::FILE),
            &self.epochs.encode(),
        )?;
        drop(LogSegment::create(
            &self.dir,
            &self.files,
            offset,
            self.config.index_interval_bytes,
        )?);
        crate::log::write_offset_file(&self.dir.join(LOG_START_FILE), offset)?;
        crate::log::write_offset_file(&self.dir.join(RECOVERY_POINT_FILE), offset)?;
        self.reopen(offset, now_ms)?;
        Ok(doomed)
    }

    /// Reopens the log from its files after they were changed underneath it, keeping
    /// its deferred-write queue and setting.
    fn reopen(&mut self, recovery_point: i64, now_ms: i64) -> Result<()> {
        let defer = self.defer_writes;
        let deferred = self.deferred.clone();
        self.segments.clear();
        let mut reopened = Log::open_with(
            &self.dir,
            self.config.clone(),
            false,
            now_ms,
            self.files.clone(),
        )?;
        reopened.recovery_point = recovery_point.min(reopened.log_end_offset);
        reopened.deferred = deferred;
        reopened.defer_writes = defer;
        tracing::info!(dir = %self.dir.display(), from = self.log_end_offset, to = reopened.log_end_offset, "log truncated");
        *self = reopened;
        Ok(())
    }
}

/// Renames a segment's files `*.deleted`; returns the new paths.
fn rename_deleted(dir: &Path, base: i64) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for ext in ["log", "index", "timeindex", "txnindex"] {
        let from = dir.join(crate::file_name(base, ext));
        let to = dir.join(format!("{}{DELETED_SUFFIX}", crate::file_name(base, ext)));
        match std::fs::rename(&from, &to) {
            Ok(()) => out.push(to),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

    use super::*;
    use crate::deferred::Write;
    use gregor_protocol::batch::{NewRecord, Producer};
    use gregor_protocol::compression::Codec;
    use std::time::{Duration, Instant};

    /// Appends one single-record batch of producer `pid` (epoch 0) at sequence `seq`,
    /// as a leader does.
    fn append(log: &mut Log, pid: i64, seq: i32) -> crate::AppendInfo {
        let recs = [NewRecord {
            key: None,
            value: Some(b"v"),
            timestamp: 1_000,
            headers: &[],
        }];
        let producer = Producer {
            id: pid,
            epoch: 0,
            base_sequence: seq,
            attributes: 0,
        };
        let b = batch::build_as(0, Codec::None, &recs, producer).unwrap();
        let v = batch::validate(&b, &mut Vec::new(), 1 << 20).unwrap();
        log.append(&b, &v, 1, None, 0).unwrap()
    }

    /// A drain under way on another thread (the broker drains on its blocking pool)
    /// holds a producer snapshot of the tail a truncation removes. The truncation must
    /// wait for it: written afterwards, that snapshot would survive the truncation and,
    /// once the log grew past its offset, be loaded by the next open, so that the retry
    /// of a truncated batch is taken for a duplicate of data the log no longer has.
    #[test]
    fn a_snapshot_drained_during_a_truncation_does_not_outlive_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p");
        let small = LogConfig {
            segment_bytes: 200,
            ..LogConfig::default()
        };
        let mut log = Log::open(&path, small, false, 0).unwrap();
        log.set_defer_writes(true);
        for seq in 0..6 {
            append(&mut log, 7, seq);
        }
        log.deferred.run();
        // Sequences 6..9 at offsets 6..9: the rolls among them queue snapshots above 6.
        for seq in 6..10 {
            append(&mut log, 7, seq);
        }
        let taken = log.deferred.begin_drain_for_test();
        assert!(
            taken
                .iter()
                .any(|w| matches!(w, Write::Snapshot { offset, .. } if *offset > 6)),
            "a snapshot of the tail is queued"
        );
        let deferred = log.deferred.clone();
        std::thread::scope(|s| {
            let truncation = s.spawn(|| log.truncate_to(6, 0).unwrap());
            let deadline = Instant::now() + Duration::from_secs(30);
            while !truncation.is_finished() && deferred.waiting_for_test() == 0 {
                assert!(
                    Instant::now() < deadline,
                    "the truncation neither ended nor waited"
                );
                std::thread::yield_now();
            }
            // The other thread's drain goes on and writes what it took.
            deferred.finish_drain_for_test(taken);
            truncation.join().unwrap();
        });
        assert_eq!(log.log_end_offset(), 6);
        let snapshots = snapshot_offsets(&path);
        assert!(
            snapshots.iter().all(|&o| o <= 6),
            "snapshots above the new log end: {snapshots:?}"
        );
        // The new leader's history: another producer's batches past those offsets, no
        // roll, then a clean restart.
        log.set_config(LogConfig::default());
        for seq in 0..8 {
            append(&mut log, 8, seq);
        }
        log.set_defer_writes(false);
        drop(log);
        let mut log = Log::open(&path, LogConfig::default(), true, 0).unwrap();
        let retry = append(&mut log, 7, 6);
        assert!(
            !retry.duplicate,
            "the retry of truncated sequence 6 was taken for a duplicate at {}",
            retry.base_offset
        );
        assert_eq!(retry.base_offset, 14);
    }

    /// A replica that became leader (its epoch recorded at the log end) and lost the
    /// leadership before any append: the new leader answers its fetch as diverging at
    /// that same end, and the truncation, which removes no batch, must still forget the
    /// empty epoch, or the follower's next fetch names it again and diverges forever.
    #[test]
    fn a_truncation_at_the_log_end_forgets_an_epoch_that_wrote_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p");
        let mut log = Log::open(&path, LogConfig::default(), false, 0).unwrap();
        for seq in 0..3 {
            append(&mut log, 7, seq);
        }
        log.assign_epoch(1, 0);
        log.assign_epoch(5, 3);
        assert_eq!(log.epochs().latest_epoch(), Some(5));
        // The new leader (epoch 6) has epoch 1 ending at 3: truncate to 3.
        log.truncate_to(3, 0).unwrap();
        assert_eq!(log.log_end_offset(), 3);
        assert_eq!(
            log.epochs().latest_epoch(),
            Some(1),
            "the epoch that wrote nothing is still the last fetched one"
        );
        assert_eq!(log.end_offset_for_epoch(1), (1, 3));
    }
}
