//! The raft log and vote: one append-only file of CRC-framed records.
//!
//! A frame is `len: u32 LE | crc32c(payload): u32 LE | payload` where the payload is a
//! JSON [`Record`]: an entry, a vote, the committed log id or a purge mark. Replay keeps
//! the last vote and committed id, and cuts the file at the first torn or damaged frame
//! (a crash in the middle of an append). Every write that openraft must be able to rely
//! on (entries, votes, truncation) is fsynced before the call returns or the flush
//! callback runs; writes are serialised by the mutex (one writer, openraft's). Purging
//! rewrites the file (temp file, fsync, rename): after a snapshot the log left is short.
//! Entries are also kept in memory: the metadata log is bounded by the snapshot interval.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{Entry, LogId, OptionalSend, RaftLogReader, StorageError, StorageIOError, Vote};
use serde::{Deserialize, Serialize};

use super::TypeConfig;

pub(crate) const LOG_FILE: &str = "raft.log";
const FRAME_HEADER: usize = 8;
/// The largest frame replay accepts (a larger length is damage).
const MAX_FRAME: usize = 256 << 20;

type NodeId = u64;
type SErr = StorageError<NodeId>;

#[derive(Serialize, Deserialize)]
enum Record {
    Entry(Entry<TypeConfig>),
    Vote(Vote<NodeId>),
    Committed(Option<LogId<NodeId>>),
    Purged(LogId<NodeId>),
}

/// `payload` framed with its length and CRC.
pub(crate) fn frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + FRAME_HEADER);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// The payload of the frame at the start of `bytes` and the frame's size; `None` for a
/// torn or damaged frame.
pub(crate) fn unframe(bytes: &[u8]) -> Option<(&[u8], usize)> {
    let header = bytes.get(..FRAME_HEADER)?;
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len > MAX_FRAME {
        return None;
    }
    let payload = bytes.get(FRAME_HEADER..FRAME_HEADER + len)?;
    (crc32c::crc32c(payload) == crc).then_some((payload, FRAME_HEADER + len))
}

/// Writes `bytes` to `path` through a temp file: fsync, rename, fsync the directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    // A name of its own per write: two writers never share a temp file.
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}.tmp", SEQ.fetch_add(1, Ordering::Relaxed)));
    let tmp = path.with_file_name(name);
    let mut f = File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        File::open(dir)?.sync_all()?;
    }
    Ok(())
}

struct Inner {
    file: File,
    /// Entries by index, with the file position of their frame.
    entries: BTreeMap<u64, (Entry<TypeConfig>, u64)>,
    vote: Option<Vote<NodeId>>,
    committed: Option<LogId<NodeId>>,
    purged: Option<LogId<NodeId>>,
    len: u64,
}

pub(crate) struct Shared {
    inner: Mutex<Inner>,
    path: PathBuf,
    /// Set when the node is dropped without shutdown: a core still running writes nothing.
    fenced: AtomicBool,
}

/// The log store; clones share it (openraft's log reader is a clone).
#[derive(Clone)]
pub(crate) struct LogStore {
    shared: Arc<Shared>,
}

fn io_err(e: impl ToString) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

impl LogStore {
    /// Opens (creating when `create`) the log in `dir` and replays it.
    pub(crate) fn open(dir: &Path) -> std::io::Result<Self> {
        let path = dir.join(LOG_FILE);
        let bytes = std::fs::read(&path)?;
        let mut inner = Inner {
            file: OpenOptions::new().read(true).write(true).open(&path)?,
            entries: BTreeMap::new(),
            vote: None,
            committed: None,
            purged: None,
            len: 0,
        };
        let mut at = 0usize;
        while at < bytes.len() {
            let Some((payload, size)) = unframe(&bytes[at..]) else {
                break;
            };
            let Ok(record) = serde_json::from_slice::<Record>(payload) else {
                break;
            };
            match record {
                Record::Entry(e) => {
                    let index = e.log_id.index;
                    let _ = inner.entries.split_off(&index);
                    inner.entries.insert(index, (e, at as u64));
                }
                Record::Vote(v) => inner.vote = Some(v),
                Record::Committed(c) => inner.committed = c,
                Record::Purged(p) => {
                    inner.entries = inner.entries.split_off(&(p.index + 1));
                    inner.purged = Some(p);
                }
            }
            at += size;
        }
        if at < bytes.len() {
            tracing::warn!(
                file = %path.display(),
                kept = at,
                cut = bytes.len() - at,
                "raft log: cutting a torn or damaged tail"
            );
            inner.file.set_len(at as u64)?;
            inner.file.sync_all()?;
        }
        inner.len = at as u64;
        // The committed id never points past the log (it is written without fsync).
        let last = inner.entries.values().next_back().map(|(e, _)| e.log_id);
        if inner.committed.map(|c| c.index)
            > last.map(|l| l.index).max(inner.purged.map(|p| p.index))
        {
            inner.committed = last.or(inner.purged);
        }
        Ok(Self {
            shared: Arc::new(Shared {
                inner: Mutex::new(inner),
                path,
                fenced: AtomicBool::new(false),
            }),
        })
    }

    /// Creates an empty log file in `dir` (a new raft state), fsynced.
    pub(crate) fn create(dir: &Path) -> std::io::Result<()> {
        let f = File::create(dir.join(LOG_FILE))?;
        f.sync_all()?;
        File::open(dir)?.sync_all()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        match self.shared.inner.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Stops every later write (a node dropped without shutdown).
    pub(crate) fn fence(&self) {
        self.shared.fenced.store(true, Ordering::SeqCst);
    }

    fn check_fenced(&self) -> std::io::Result<()> {
        if self.shared.fenced.load(Ordering::SeqCst) {
            return Err(io_err("the metadata quorum was stopped"));
        }
        Ok(())
    }

    /// The index of the last entry, if any.
    pub(crate) fn last_index(&self) -> Option<u64> {
        let g = self.lock();
        g.entries
            .keys()
            .next_back()
            .copied()
            .or(g.purged.map(|p| p.index))
    }

    /// The id of the last entry (or of the last purged one when none is left).
    pub(crate) fn last_log_id(&self) -> Option<LogId<NodeId>> {
        let g = self.lock();
        g.entries
            .values()
            .next_back()
            .map(|(e, _)| e.log_id)
            .or(g.purged)
    }

    pub(crate) fn committed(&self) -> Option<LogId<NodeId>> {
        self.lock().committed
    }

    /// Entries with index in `from..=to`, at most `max` of them; `None` when `from` was
    /// purged.
    pub(crate) fn entries(&self, from: u64, to: u64, max: usize) -> Option<Vec<Entry<TypeConfig>>> {
        let g = self.lock();
        if g.purged.is_some_and(|p| p.index >= from) {
            return None;
        }
        Some(
            g.entries
                .range(from..=to)
                .take(max)
                .map(|(_, (e, _))| e.clone())
                .collect(),
        )
    }

    fn append_records(&self, g: &mut Inner, records: &[Record]) -> std::io::Result<Vec<u64>> {
        self.check_fenced()?;
        let mut buf = Vec::new();
        let mut positions = Vec::with_capacity(records.len());
        for r in records {
            positions.push(g.len + buf.len() as u64);
            buf.extend_from_slice(&frame(&serde_json::to_vec(r).map_err(io_err)?));
        }
        g.file.seek(SeekFrom::Start(g.len))?;
        g.file.write_all(&buf)?;
        g.len += buf.len() as u64;
        Ok(positions)
    }

    fn do_append(&self, entries: Vec<Entry<TypeConfig>>) -> std::io::Result<()> {
        let mut g = self.lock();
        let records: Vec<Record> = entries.into_iter().map(Record::Entry).collect();
        let positions = self.append_records(&mut g, &records)?;
        g.file.sync_data()?;
        for (r, pos) in records.into_iter().zip(positions) {
            if let Record::Entry(e) = r {
                let index = e.log_id.index;
                let _ = g.entries.split_off(&index);
                g.entries.insert(index, (e, pos));
            }
        }
        Ok(())
    }

    fn do_save_vote(&self, vote: Vote<NodeId>) -> std::io::Result<()> {
        let mut g = self.lock();
        self.append_records(&mut g, &[Record::Vote(vote)])?;
        g.file.sync_data()?;
        g.vote = Some(vote);
        Ok(())
    }

    fn do_save_committed(&self, committed: Option<LogId<NodeId>>) -> std::io::Result<()> {
        let mut g = self.lock();
        // Not fsynced: a lost committed id only means openraft learns it again.
        self.append_records(&mut g, &[Record::Committed(committed)])?;
        g.committed = committed;
        Ok(())
    }

    fn do_truncate(&self, from: u64) -> std::io::Result<()> {
        self.check_fenced()?;
        let mut g = self.lock();
        let removed = g.entries.split_off(&from);
        let Some((_, pos)) = removed.values().next() else {
            return Ok(());
        };
        let pos = *pos;
        g.file.set_len(pos)?;
        g.len = pos;
        // The cut may have taken the vote or committed frames written after `pos`.
        let mut again = Vec::new();
        if let Some(v) = g.vote {
            again.push(Record::Vote(v));
        }
        again.push(Record::Committed(g.committed));
        self.append_records(&mut g, &again)?;
        g.file.sync_data()?;
        Ok(())
    }

    fn do_purge(&self, upto: LogId<NodeId>) -> std::io::Result<()> {
        self.check_fenced()?;
        let mut g = self.lock();
        g.entries = g.entries.split_off(&(upto.index + 1));
        g.purged = Some(upto);
        let mut records = Vec::new();
        if let Some(v) = g.vote {
            records.push(Record::Vote(v));
        }
        records.push(Record::Committed(g.committed));
        records.push(Record::Purged(upto));
        let mut buf = Vec::new();
        for r in &records {
            buf.extend_from_slice(&frame(&serde_json::to_vec(r).map_err(io_err)?));
        }
        let mut new_pos = BTreeMap::new();
        for (&index, (e, _)) in &g.entries {
            new_pos.insert(index, buf.len() as u64);
            let payload = serde_json::to_vec(&Record::Entry(e.clone())).map_err(io_err)?;
            buf.extend_from_slice(&frame(&payload));
        }
        write_atomic(&self.shared.path, &buf)?;
        g.file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.shared.path)?;
        g.len = buf.len() as u64;
        for (index, pos) in new_pos {
            if let Some(slot) = g.entries.get_mut(&index) {
                slot.1 = pos;
            }
        }
        Ok(())
    }

    /// Runs a blocking write on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(LogStore) -> std::io::Result<T> + Send + 'static,
    ) -> std::io::Result<T> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(me))
            .await
            .map_err(io_err)?
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, SErr> {
        let g = self.lock();
        Ok(g.entries
            .range(range)
            .map(|(_, (e, _))| e.clone())
            .collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, SErr> {
        let last = self.last_log_id();
        Ok(LogState {
            last_purged_log_id: self.lock().purged,
            last_log_id: last,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), SErr> {
        let vote = *vote;
        self.blocking(move |s| s.do_save_vote(vote))
            .await
            .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, SErr> {
        Ok(self.lock().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<(), SErr> {
        self.do_save_committed(committed)
            .map_err(|e| StorageIOError::write(&e).into())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, SErr> {
        Ok(self.lock().committed)
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), SErr>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let entries: Vec<_> = entries.into_iter().collect();
        match self.blocking(move |s| s.do_append(entries)).await {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                let err = StorageIOError::write_logs(&e).into();
                callback.log_io_completed(Err(e));
                Err(err)
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), SErr> {
        self.blocking(move |s| s.do_truncate(log_id.index))
            .await
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), SErr> {
        self.blocking(move |s| s.do_purge(log_id))
            .await
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use openraft::{CommittedLeaderId, EntryPayload};

    use super::*;

    fn entry(term: u64, index: u64) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(CommittedLeaderId::new(term, 1), index),
            payload: EntryPayload::Blank,
        }
    }

    fn indexes(s: &LogStore) -> Vec<u64> {
        s.lock().entries.keys().copied().collect()
    }

    /// Entries, votes, truncation and purge survive a reopen; a torn tail is cut and the
    /// file appended to again.
    #[test]
    fn log_survives_reopen_truncate_purge_and_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        LogStore::create(dir.path()).unwrap();
        let s = LogStore::open(dir.path()).unwrap();
        s.do_append((0..10).map(|i| entry(1, i)).collect()).unwrap();
        let vote = Vote::new_committed(1, 1);
        s.do_save_vote(vote).unwrap();
        s.do_save_committed(Some(entry(1, 5).log_id)).unwrap();
        // Truncation cuts the file before the vote frame: the vote is written again.
        s.do_truncate(7).unwrap();
        s.do_append(vec![entry(2, 7)]).unwrap();
        drop(s);
        let s = LogStore::open(dir.path()).unwrap();
        assert_eq!(indexes(&s), (0..8).collect::<Vec<_>>());
        assert_eq!(s.lock().entries[&7].0.log_id.leader_id.term, 2);
        assert_eq!(s.lock().vote, Some(vote));
        assert_eq!(s.committed(), Some(entry(1, 5).log_id));

        s.do_purge(entry(1, 3).log_id).unwrap();
        assert_eq!(s.entries(2, 7, 100), None, "purged entries are not served");
        assert_eq!(s.entries(4, 5, 100).unwrap().len(), 2);
        drop(s);
        let s = LogStore::open(dir.path()).unwrap();
        assert_eq!(indexes(&s), (4..8).collect::<Vec<_>>());
        assert_eq!(s.lock().purged, Some(entry(1, 3).log_id));
        assert_eq!(s.lock().vote, Some(vote));
        assert_eq!(s.last_index(), Some(7));
        drop(s);

        // A torn frame (kill -9 mid-append).
        let path = dir.path().join(LOG_FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        let good = bytes.len();
        bytes.extend_from_slice(&frame(b"{\"Entry\":")[..12]);
        std::fs::write(&path, &bytes).unwrap();
        let s = LogStore::open(dir.path()).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), good as u64);
        s.do_append(vec![entry(2, 8)]).unwrap();
        drop(s);
        let s = LogStore::open(dir.path()).unwrap();
        assert_eq!(s.last_index(), Some(8));

        // Fenced (the node was dropped): nothing more is written.
        s.fence();
        assert!(s.do_append(vec![entry(2, 9)]).is_err());
        assert!(s.do_save_vote(Vote::new(3, 2)).is_err());
    }
}
