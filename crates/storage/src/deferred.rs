//! Small file writes a log decides on under its partition's lock but performs after it:
//! producer snapshots at a roll, `.txnindex` appends, recovery-point and cleaner
//! checkpoint files. The lock holder only queues them (a memory move); whoever releases
//! the lock calls [`DeferredWrites::run`], on the blocking pool in the broker, so an
//! append never waits behind a `write`/`rename`/`readdir`.
//!
//! Order: writes are queued under the partition lock, so the queue is in the log's
//! order; one caller at a time drains it (the others return at once and the drainer
//! picks their writes up), so a `.txnindex` gets its entries in marker order even when
//! two appends release the lock at the same moment.
//!
//! A truncation (or the switch back to inline writes) must instead wait for a drain
//! under way elsewhere ([`DeferredWrites::run_to_completion`]): the drainer may hold a
//! producer snapshot of the tail being removed, taken off the queue but not yet on
//! disk. Were it written after the truncation deleted the snapshots above the new end,
//! the next open would load it once the log grows past its offset, and the producer
//! state would describe batches the log no longer has: a retry of a truncated batch
//! would be answered as a duplicate, or the producer's next batch as out of order.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex, MutexGuard};

use crate::producer_state::AbortedTxn;

/// One deferred write. All are best effort, as when they were done inline: a failure is
/// logged and only makes the next start do more work (replay headers, recover more).
#[derive(Debug)]
pub(crate) enum Write {
    /// A producer-state snapshot `<offset>.snapshot` (then keep the two newest).
    Snapshot {
        dir: PathBuf,
        offset: i64,
        bytes: Vec<u8>,
    },
    /// An entry appended to a segment's `.txnindex`.
    TxnIndex { path: PathBuf, entry: AbortedTxn },
    /// A small file holding one offset, replaced atomically (tmp + rename).
    OffsetFile { path: PathBuf, value: i64 },
    /// The leader-epoch checkpoint, replaced atomically.
    EpochCheckpoint { path: PathBuf, text: String },
}

#[derive(Default)]
struct Queue {
    writes: VecDeque<Write>,
    draining: bool,
    /// Callers of `run_to_completion` waiting for another drainer to finish.
    waiting: usize,
}

/// The queue of one log's deferred writes.
#[derive(Default)]
pub struct DeferredWrites {
    queue: Mutex<Queue>,
    /// Signalled when a drain ends.
    drained: Condvar,
}

impl std::fmt::Debug for DeferredWrites {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeferredWrites")
            .field("pending", &self.lock().writes.len())
            .finish()
    }
}

impl DeferredWrites {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        match self.queue.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    pub(crate) fn push(&self, w: Write) {
        self.lock().writes.push_back(w);
    }

    /// Whether anything is queued.
    pub fn is_empty(&self) -> bool {
        self.lock().writes.is_empty()
    }

    /// Performs the queued writes in order. Returns at once if another caller is
    /// draining (it will perform these too).
    pub fn run(&self) {
        let mut q = self.lock();
        if q.draining {
            return;
        }
        q.draining = true;
        drop(q);
        self.drain();
    }

    /// Performs the queued writes in order, first waiting for a drain under way
    /// elsewhere to finish (the write it is performing included): on return, every
    /// write queued before the call is on disk. For a truncation, which then deletes
    /// what those writes described (see the module doc).
    pub fn run_to_completion(&self) {
        let mut q = self.lock();
        while q.draining {
            q.waiting += 1;
            q = match self.drained.wait(q) {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            q.waiting -= 1;
        }
        q.draining = true;
        drop(q);
        self.drain();
    }

    /// Pops and performs writes until the queue is empty, then ends the drain. The
    /// caller set `draining`.
    fn drain(&self) {
        loop {
            let next = {
                let mut q = self.lock();
                match q.writes.pop_front() {
                    Some(w) => w,
                    None => {
                        q.draining = false;
                        self.drained.notify_all();
                        return;
                    }
                }
            };
            perform(next);
        }
    }
}

#[cfg(test)]
impl DeferredWrites {
    /// As another thread's drain: takes every queued write, leaving the queue marked
    /// as being drained until [`DeferredWrites::finish_drain_for_test`].
    pub(crate) fn begin_drain_for_test(&self) -> Vec<Write> {
        let mut q = self.lock();
        assert!(!q.draining, "a drain is already under way");
        q.draining = true;
        q.writes.drain(..).collect()
    }

    /// Performs the taken writes and ends that drain.
    pub(crate) fn finish_drain_for_test(&self, writes: Vec<Write>) {
        for w in writes {
            perform(w);
        }
        self.drain();
    }

    /// How many callers wait for a drain to end.
    pub(crate) fn waiting_for_test(&self) -> usize {
        self.lock().waiting
    }
}

fn perform(w: Write) {
    match w {
        Write::Snapshot { dir, offset, bytes } => {
            crate::log::write_snapshot(&dir, offset, &bytes);
        }
        Write::TxnIndex { path, entry } => {
            if let Err(e) = crate::txn_index::append(&path, &entry) {
                // The entry is in memory; a restart rebuilds it only if the marker is
                // above the producer snapshot it starts from.
                tracing::error!(path = %path.display(), error = %e, "cannot write the aborted-transaction index");
            }
        }
        Write::EpochCheckpoint { path, text } => {
            if let Err(e) = crate::log::write_text_file(&path, &text) {
                tracing::warn!(path = %path.display(), error = %e, "cannot write the leader-epoch checkpoint; the next start rebuilds it");
            }
        }
        Write::OffsetFile { path, value } => {
            if let Err(e) = crate::log::write_offset_file(&path, value) {
                tracing::warn!(path = %path.display(), error = %e, "cannot write an offset file; the next start does more work");
            }
        }
    }
}
