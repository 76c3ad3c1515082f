//! A partition's replication side: as leader, what followers' fetches say (high
//! watermark, ISR changes); as follower, appending the leader's batches and truncating
//! a divergent tail.

use std::path::PathBuf;
use std::sync::atomic::Ordering;

use gregor_storage::{Log, LogError, ReplicaAppend};

use super::{remove_later, Partition};
use crate::replication::state::FetchClock;
use crate::util::now_ms;

impl Partition {
    /// As leader: a follower fetched from `fetch_offset`. Returns the ISR to ask the
    /// controller for when the follower has caught up and should join it.
    /// `broker_epoch` is the one the fetch carried (KIP-903; -1 when it had none). In a
    /// fetch session, `session` is its clock and when its previous round began (see
    /// `replication::state::FetchClock`).
    pub fn record_follower_fetch(
        &self,
        replica: i32,
        broker_epoch: i64,
        fetch_offset: i64,
        session: Option<(&FetchClock, i64)>,
    ) -> Option<Vec<i32>> {
        let end = self.log_end_offset();
        let hw = self.high_watermark();
        let expand = match self.replicas.lock() {
            Ok(mut r) => {
                r.note_broker_epoch(replica, broker_epoch);
                r.record_session_fetch(replica, fetch_offset, end, hw, now_ms(), session)
            }
            Err(_) => None,
        };
        self.advance_high_watermark();
        expand
    }

    /// As leader: `replica` stopped fetching this partition in the fetch session whose
    /// clock is `clock` (its previous round began at `previous_round_ms`).
    pub fn end_fetch_session(&self, replica: i32, clock: &FetchClock, previous_round_ms: i64) {
        if let Ok(mut r) = self.replicas.lock() {
            r.unlink_clock(replica, clock, previous_round_ms);
        }
    }

    /// As leader: the ISR without followers that lagged longer than `lag_max_ms`, if any
    /// did (the change is then pending until the controller answers).
    pub fn shrink_isr(&self, lag_max_ms: i64) -> Option<Vec<i32>> {
        self.replicas.lock().ok()?.shrink(now_ms(), lag_max_ms)
    }

    /// `isr` with its members' broker epochs, as AlterPartition sends it (see
    /// [`crate::replication::state::ReplicaSet::isr_with_epochs`]).
    pub fn isr_with_epochs(&self, isr: &[i32], my_epoch: i64) -> Vec<(i32, i64)> {
        self.replicas
            .lock()
            .map(|r| r.isr_with_epochs(isr, my_epoch))
            .unwrap_or_default()
    }

    /// The controller accepted the AlterPartition in flight; it leaves the partition at
    /// `partition_epoch`.
    pub fn alter_partition_answered(&self, partition_epoch: i32) {
        if let Ok(mut r) = self.replicas.lock() {
            r.answered(partition_epoch);
        }
    }

    /// The AlterPartition in flight failed: another may be sent.
    pub fn alter_partition_failed(&self) {
        if let Ok(mut r) = self.replicas.lock() {
            r.pending_isr = None;
        }
        // A caught-up follower outside the ISR is proposed again at its next fetch,
        // which its fetch session must therefore not skip.
        self.changed();
    }

    /// As follower: appends the leader's batches byte for byte, then takes the leader's
    /// high watermark (capped at the local log end) and log start offset.
    pub fn append_replica(
        &self,
        records: &[u8],
        leader_high_watermark: i64,
        leader_log_start: i64,
    ) -> Result<ReplicaAppend, LogError> {
        self.checked(self.append_replica_inner(records, leader_high_watermark, leader_log_start))
    }

    fn append_replica_inner(
        &self,
        records: &[u8],
        leader_high_watermark: i64,
        leader_log_start: i64,
    ) -> Result<ReplicaAppend, LogError> {
        let now = now_ms();
        let (appended, end) = {
            let mut log = self.log()?;
            let appended = if records.is_empty() {
                ReplicaAppend::default()
            } else {
                log.append_replica(records, now)?
            };
            self.note_log_end(&log);
            (appended, log.log_end_offset())
        };
        self.run_deferred();
        if leader_log_start > self.log_start_offset() && leader_log_start <= end {
            self.delete_records(leader_log_start)?;
        }
        self.publish_high_watermark(leader_high_watermark.min(end), false);
        if appended.batches > 0 {
            self.changed();
            self.wake_waiters();
        }
        Ok(appended)
    }

    /// As follower: removes the log's tail from `offset` on (it diverged from the
    /// leader's). The high watermark comes down with it if it was above.
    pub fn truncate_to(&self, offset: i64) -> Result<(), LogError> {
        self.truncate_with(|log| log.truncate_to(offset, now_ms()))
    }

    /// As follower: empties the log and restarts it at `offset` (the leader's log start
    /// is past everything this replica has).
    pub fn truncate_fully_and_start_at(&self, offset: i64) -> Result<(), LogError> {
        self.truncate_with(|log| log.truncate_fully_and_start_at(offset, now_ms()))
    }

    fn truncate_with(
        &self,
        f: impl FnOnce(&mut Log) -> Result<Vec<PathBuf>, LogError>,
    ) -> Result<(), LogError> {
        let doomed = {
            let mut log = self.log()?;
            let doomed = self.checked(f(&mut log))?;
            self.note_log_end(&log);
            self.log_start_offset
                .store(log.log_start_offset(), Ordering::Release);
            doomed
        };
        self.run_deferred();
        self.changed();
        let end = self.log_end_offset();
        if self.high_watermark() > end {
            self.publish_high_watermark(end, true);
        }
        remove_later(doomed, self.settings().file_delete_delay_ms);
        Ok(())
    }

    /// As follower: the largest epoch at or below `epoch` and where it ends here.
    pub fn end_offset_for_epoch(&self, epoch: i32) -> Result<(i32, i64), LogError> {
        Ok(self.log()?.end_offset_for_epoch(epoch))
    }

    /// The newest leader epoch in the log (what a follower's fetch names as its last
    /// fetched epoch).
    pub fn latest_epoch(&self) -> Result<Option<i32>, LogError> {
        Ok(self.log()?.epochs().latest_epoch())
    }
}
