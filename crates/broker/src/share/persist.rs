//! Durable share-partition state: one snapshot file per share-partition under
//! `<data dir>/__share_group_state/`, rewritten whole (temp file, fsync, rename, fsync of
//! the directory) by one writer thread.
//!
//! Kafka keeps this state in the `__share_group_state` topic behind a share
//! coordinator. A share-partition's state is small (its start offset and at most
//! `group.share.partition.max.record.locks` entries), so Gregor keeps only its latest
//! snapshot, on the broker that leads the partition (where ShareFetch is served). The
//! writer coalesces: snapshots queued while it writes are written together, the
//! newest per share-partition wins, and everyone waiting on any of them is told after
//! one directory fsync. An acknowledgement is answered only after its snapshot is
//! durable.
//!
//! File format (big-endian): `GSS1`, group id (u16 length + UTF-8), topic id (16
//! bytes), partition (i32), SPSO (i64), SPEO (i64), entry count (u32), then per entry
//! offset (i64), state (u8), delivery count (i16), and a trailing CRC-32C of all of it.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use bytes::{Buf, BufMut, BytesMut};
use tokio::sync::oneshot;
use uuid::Uuid;

use super::partition::RecordState;

pub const DIR: &str = "__share_group_state";
const MAGIC: &[u8; 4] = b"GSS1";

/// A share-partition's persisted state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub group: String,
    pub topic_id: Uuid,
    pub partition: i32,
    pub spso: i64,
    pub speo: i64,
    pub entries: Vec<(i64, RecordState, i16)>,
}

impl Snapshot {
    fn file_name(&self) -> String {
        let hex: String = self.group.bytes().map(|b| format!("{b:02x}")).collect();
        format!("{hex}-{}-{}.state", self.topic_id.simple(), self.partition)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut b = BytesMut::with_capacity(64 + self.entries.len() * 11);
        b.put_slice(MAGIC);
        let g = self.group.as_bytes();
        b.put_u16(u16::try_from(g.len()).unwrap_or(u16::MAX));
        b.put_slice(&g[..g.len().min(usize::from(u16::MAX))]);
        b.put_slice(self.topic_id.as_bytes());
        b.put_i32(self.partition);
        b.put_i64(self.spso);
        b.put_i64(self.speo);
        b.put_u32(u32::try_from(self.entries.len()).unwrap_or(u32::MAX));
        for (o, s, c) in &self.entries {
            b.put_i64(*o);
            b.put_u8(s.code());
            b.put_i16(*c);
        }
        let crc = crc32c::crc32c(&b);
        b.put_u32(crc);
        b.to_vec()
    }

    pub fn decode(data: &[u8]) -> Option<Self> {
        if data.len() < 8 || &data[..4] != MAGIC {
            return None;
        }
        let (body, tail) = data.split_at(data.len() - 4);
        if crc32c::crc32c(body) != u32::from_be_bytes([tail[0], tail[1], tail[2], tail[3]]) {
            return None;
        }
        let mut b = &body[4..];
        let need = |b: &&[u8], n: usize| b.remaining() >= n;
        if !need(&b, 2) {
            return None;
        }
        let glen = usize::from(b.get_u16());
        if !need(&b, glen + 16 + 4 + 8 + 8 + 4) {
            return None;
        }
        let group = String::from_utf8(b[..glen].to_vec()).ok()?;
        b.advance(glen);
        let mut id = [0u8; 16];
        b.copy_to_slice(&mut id);
        let partition = b.get_i32();
        let spso = b.get_i64();
        let speo = b.get_i64();
        let n = b.get_u32() as usize;
        if b.remaining() != n.checked_mul(11)? {
            return None;
        }
        let mut entries = Vec::with_capacity(n);
        for _ in 0..n {
            let o = b.get_i64();
            let s = RecordState::from_code(b.get_u8())?;
            entries.push((o, s, b.get_i16()));
        }
        Some(Self {
            group,
            topic_id: Uuid::from_bytes(id),
            partition,
            spso,
            speo,
            entries,
        })
    }
}

/// Reads every snapshot in `data_dir`; unreadable files are skipped with a warning.
pub fn load(data_dir: &Path) -> Vec<Snapshot> {
    let dir = data_dir.join(DIR);
    let Ok(rd) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in rd.flatten() {
        let path = entry.path();
        if path.extension().and_then(|e| e.to_str()) != Some("state") {
            continue;
        }
        match std::fs::read(&path).ok().and_then(|d| Snapshot::decode(&d)) {
            Some(s) => out.push(s),
            None => {
                tracing::warn!(file = %path.display(), "unreadable share-partition state skipped")
            }
        }
    }
    out
}

enum Job {
    Write(Snapshot, Option<oneshot::Sender<bool>>),
    Remove(Snapshot, Option<oneshot::Sender<bool>>),
}

/// The handle to the writer thread.
pub struct Store {
    tx: std::sync::Mutex<mpsc::Sender<Job>>,
}

impl Store {
    pub fn open(data_dir: &Path) -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        let dir = data_dir.join(DIR);
        let spawned = std::thread::Builder::new()
            .name("share-state".into())
            .spawn(move || writer(dir, rx));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start the share-state writer");
        }
        Self {
            tx: std::sync::Mutex::new(tx),
        }
    }

    fn send(&self, job: Job) {
        if let Ok(tx) = self.tx.lock() {
            let _ = tx.send(job);
        }
    }

    /// Queues a snapshot; the receiver answers once it is durable (false if the write
    /// failed).
    pub fn save(&self, s: Snapshot) -> oneshot::Receiver<bool> {
        let (done, rx) = oneshot::channel();
        self.send(Job::Write(s, Some(done)));
        rx
    }

    /// Queues a snapshot nobody waits for.
    pub fn save_later(&self, s: Snapshot) {
        self.send(Job::Write(s, None));
    }

    /// Removes a share-partition's file.
    pub fn remove(&self, s: Snapshot) -> oneshot::Receiver<bool> {
        let (done, rx) = oneshot::channel();
        self.send(Job::Remove(s, Some(done)));
        rx
    }
}

fn writer(dir: PathBuf, rx: mpsc::Receiver<Job>) {
    while let Ok(first) = rx.recv() {
        let mut latest: HashMap<String, Option<Snapshot>> = HashMap::new();
        let mut waiting = Vec::new();
        let mut order = Vec::new();
        for job in std::iter::once(first).chain(rx.try_iter()) {
            let (name, snap, done) = match job {
                Job::Write(s, d) => (s.file_name(), Some(s), d),
                Job::Remove(s, d) => (s.file_name(), None, d),
            };
            if !latest.contains_key(&name) {
                order.push(name.clone());
            }
            latest.insert(name, snap);
            waiting.extend(done);
        }
        let ok = write_all(&dir, &order, &latest);
        if let Err(e) = &ok {
            tracing::error!(error = %e, dir = %dir.display(), "share-partition state not written");
        }
        for w in waiting {
            let _ = w.send(ok.is_ok());
        }
    }
}

fn write_all(
    dir: &Path,
    order: &[String],
    latest: &HashMap<String, Option<Snapshot>>,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    for name in order {
        let path = dir.join(name);
        match latest.get(name) {
            Some(Some(s)) => {
                let tmp = dir.join(format!("{name}.tmp"));
                let mut f = std::fs::File::create(&tmp)?;
                f.write_all(&s.encode())?;
                f.sync_all()?;
                std::fs::rename(&tmp, &path)?;
            }
            _ => match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
                _ => {}
            },
        }
    }
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_round_trips_and_damage_is_refused() {
        let s = Snapshot {
            group: "g/ü".into(),
            topic_id: Uuid::new_v4(),
            partition: 3,
            spso: 10,
            speo: 20,
            entries: vec![
                (12, RecordState::Acknowledged, 1),
                (13, RecordState::Available, 4),
            ],
        };
        let mut bytes = s.encode();
        assert_eq!(Snapshot::decode(&bytes), Some(s.clone()));
        bytes[10] ^= 1;
        assert_eq!(Snapshot::decode(&bytes), None);
        assert_eq!(Snapshot::decode(b"GSS1"), None);
    }

    #[tokio::test]
    async fn the_writer_keeps_the_newest_and_removes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path());
        let mut s = Snapshot {
            group: "g".into(),
            topic_id: Uuid::new_v4(),
            partition: 0,
            spso: 1,
            speo: 1,
            entries: vec![],
        };
        store.save_later(s.clone());
        s.spso = 5;
        s.speo = 5;
        assert!(store.save(s.clone()).await.unwrap());
        assert_eq!(load(dir.path()), vec![s.clone()]);
        assert!(store.remove(s).await.unwrap());
        assert!(load(dir.path()).is_empty());
    }
}
