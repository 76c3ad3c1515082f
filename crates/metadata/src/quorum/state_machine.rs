//! The state machine: the metadata image, and its snapshots.
//!
//! `apply` sees committed entries only (openraft's contract). A snapshot is the image as
//! records ([`crate::snapshot::image_records`]) plus openraft's snapshot metadata, one
//! CRC frame in `raft.snapshot` (temp file, fsync, rename). The same bytes are what a
//! lagging voter or a [`super::MetadataFollower`] receives. A snapshot is asked for every
//! `snapshot_bytes` of applied entries; openraft then purges the log behind it.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, RaftSnapshotBuilder, StorageError, StorageIOError,
    StoredMembership,
};
use serde::{Deserialize, Serialize};
use tokio::sync::{watch, Notify};

use super::log_store::{frame, unframe, write_atomic};
use super::{MetaEntry, MetaResponse, TypeConfig};
use crate::image::MetadataImage;
use crate::records::MetadataRecord;

pub(crate) const SNAPSHOT_FILE: &str = "raft.snapshot";

type NodeId = u64;
type SErr = StorageError<NodeId>;

/// What a snapshot file holds.
#[derive(Serialize, Deserialize)]
struct SnapshotBody {
    meta: SnapshotMeta<NodeId, BasicNode>,
    records: Vec<MetadataRecord>,
}

/// Applies the entry at `index` to `image`: `Some(entry)` is a metadata entry (applied
/// only when its expected offset is the image's), `None` a blank or membership entry.
/// Returns whether records were applied.
pub(crate) fn apply_to_image(
    image: &mut MetadataImage,
    index: u64,
    entry: Option<&MetaEntry>,
) -> bool {
    let offset = index as i64;
    match entry {
        Some(e) if e.expected_offset == image.offset => {
            image.apply_entry(offset, &e.records);
            true
        }
        _ => {
            image.offset = offset;
            false
        }
    }
}

/// Encodes a snapshot of `image` (whose offset is `meta.last_log_id`'s index).
pub(crate) fn encode_snapshot(
    meta: &SnapshotMeta<NodeId, BasicNode>,
    image: &MetadataImage,
) -> Result<Vec<u8>, serde_json::Error> {
    let body = SnapshotBody {
        meta: meta.clone(),
        records: crate::snapshot::image_records(image),
    };
    Ok(frame(&serde_json::to_vec(&body)?))
}

/// Decodes snapshot bytes into their metadata and the image; `Err` on any damage.
pub(crate) fn decode_snapshot(
    bytes: &[u8],
) -> Result<(SnapshotMeta<NodeId, BasicNode>, MetadataImage), String> {
    let (payload, size) = unframe(bytes).ok_or("snapshot: bad or torn frame")?;
    if size != bytes.len() {
        return Err("snapshot: trailing bytes".into());
    }
    let body: SnapshotBody =
        serde_json::from_slice(payload).map_err(|e| format!("snapshot: {e}"))?;
    let mut image = MetadataImage::empty();
    for r in &body.records {
        image.apply(r);
    }
    image.offset = body.meta.last_log_id.map_or(-1, |l| l.index as i64);
    Ok((body.meta, image))
}

/// A snapshot's metadata and its bytes (the file's content).
type StoredSnapshot = (SnapshotMeta<NodeId, BasicNode>, Arc<Vec<u8>>);

struct State {
    image: Arc<MetadataImage>,
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    /// Bytes of entries applied since the last snapshot.
    since_snapshot: u64,
    snapshot: Option<StoredSnapshot>,
}

pub(crate) struct SmShared {
    state: Mutex<State>,
    image_tx: watch::Sender<Arc<MetadataImage>>,
    dir: PathBuf,
    snapshot_bytes: u64,
    /// Notified when `snapshot_bytes` were applied since the last snapshot.
    pub(crate) want_snapshot: Notify,
    /// Serialises writes of the snapshot file (a build and an install may overlap) and
    /// remembers the newest written, so an older one never replaces it.
    file: Mutex<SnapshotFile>,
}

#[derive(Default)]
struct SnapshotFile {
    newest: Option<LogId<NodeId>>,
    /// Set at shutdown: a build still running (openraft does not wait for it) writes
    /// nothing.
    closed: bool,
}

/// Writes `bytes` as the snapshot file unless a newer one is there; returns whether
/// it did.
fn write_snapshot_file(
    shared: &SmShared,
    last: Option<LogId<NodeId>>,
    bytes: &[u8],
) -> std::io::Result<bool> {
    let mut file = match shared.file.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    if file.closed {
        return Err(std::io::Error::other("the metadata quorum was stopped"));
    }
    if file.newest.is_some() && file.newest > last {
        return Ok(false);
    }
    write_atomic(&shared.dir.join(SNAPSHOT_FILE), bytes)?;
    file.newest = last;
    Ok(true)
}

/// The state machine handed to openraft; clones share the state.
#[derive(Clone)]
pub(crate) struct StateMachine {
    pub(crate) shared: Arc<SmShared>,
}

impl StateMachine {
    /// Loads the snapshot in `dir`, if any. A damaged snapshot is an error: the log
    /// behind it may be purged.
    pub(crate) fn open(dir: &Path, snapshot_bytes: u64) -> Result<Self, String> {
        let path = dir.join(SNAPSHOT_FILE);
        let mut state = State {
            image: Arc::new(MetadataImage::empty()),
            last_applied: None,
            membership: StoredMembership::default(),
            since_snapshot: 0,
            snapshot: None,
        };
        match std::fs::read(&path) {
            Ok(bytes) => {
                let (meta, image) =
                    decode_snapshot(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
                state.image = Arc::new(image);
                state.last_applied = meta.last_log_id;
                state.membership = meta.last_membership.clone();
                state.snapshot = Some((meta, Arc::new(bytes)));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
        let written = state.snapshot.as_ref().and_then(|(m, _)| m.last_log_id);
        let (image_tx, _) = watch::channel(state.image.clone());
        Ok(Self {
            shared: Arc::new(SmShared {
                state: Mutex::new(state),
                image_tx,
                dir: dir.to_path_buf(),
                snapshot_bytes: snapshot_bytes.max(1),
                want_snapshot: Notify::new(),
                file: Mutex::new(SnapshotFile {
                    newest: written,
                    closed: false,
                }),
            }),
        })
    }
}

impl SmShared {
    fn lock(&self) -> MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    pub(crate) fn image(&self) -> Arc<MetadataImage> {
        self.image_tx.borrow().clone()
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.image_tx.subscribe()
    }

    /// The current snapshot's bytes and last index.
    pub(crate) fn snapshot(&self) -> Option<(i64, Arc<Vec<u8>>)> {
        self.lock()
            .snapshot
            .as_ref()
            .map(|(m, b)| (m.last_log_id.map_or(-1, |l| l.index as i64), b.clone()))
    }

    /// No snapshot file is written after this returns (waits for one being written).
    pub(crate) fn close(&self) {
        match self.file.lock() {
            Ok(mut g) => g.closed = true,
            Err(p) => p.into_inner().closed = true,
        }
    }

    fn publish(&self, image: Arc<MetadataImage>) {
        self.image_tx.send_replace(image);
    }
}

/// Builds snapshots of the current image.
pub(crate) struct SnapshotBuilder {
    shared: Arc<SmShared>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, SErr> {
        let (image, last_applied, membership) = {
            let mut g = self.shared.lock();
            g.since_snapshot = 0;
            (g.image.clone(), g.last_applied, g.membership.clone())
        };
        let meta = SnapshotMeta {
            last_log_id: last_applied,
            last_membership: membership,
            snapshot_id: format!(
                "{}-{}",
                last_applied.map_or(-1, |l| l.index as i64),
                super::now_ms()
            ),
        };
        let bytes = encode_snapshot(&meta, &image)
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        let shared = self.shared.clone();
        let to_write = bytes.clone();
        let written = tokio::task::spawn_blocking(move || {
            write_snapshot_file(&shared, last_applied, &to_write)
        })
        .await
        .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?
        .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        if written {
            tracing::info!(index = ?last_applied.map(|l| l.index), bytes = bytes.len(), "metadata snapshot written");
            let mut g = self.shared.lock();
            if g.snapshot
                .as_ref()
                .is_none_or(|(m, _)| m.last_log_id <= last_applied)
            {
                g.snapshot = Some((meta.clone(), Arc::new(bytes.clone())));
            }
        }
        Ok(Snapshot {
            meta,
            snapshot: Box::new(bytes),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), SErr> {
        let g = self.shared.lock();
        Ok((g.last_applied, g.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<MetaResponse>, SErr>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + openraft::OptionalSend,
        I::IntoIter: openraft::OptionalSend,
    {
        let mut responses = Vec::new();
        let image = {
            let mut g = self.shared.lock();
            let mut image = (*g.image).clone();
            let mut bytes = 0u64;
            for entry in entries {
                let index = entry.log_id.index;
                let applied = match &entry.payload {
                    EntryPayload::Normal(e) => {
                        bytes += serde_json::to_vec(&e.records).map_or(0, |v| v.len() as u64);
                        apply_to_image(&mut image, index, Some(e))
                    }
                    EntryPayload::Membership(m) => {
                        g.membership = StoredMembership::new(Some(entry.log_id), m.clone());
                        apply_to_image(&mut image, index, None)
                    }
                    EntryPayload::Blank => apply_to_image(&mut image, index, None),
                };
                g.last_applied = Some(entry.log_id);
                responses.push(MetaResponse { applied });
            }
            g.since_snapshot += bytes;
            if g.since_snapshot >= self.shared.snapshot_bytes {
                self.shared.want_snapshot.notify_one();
            }
            let image = Arc::new(image);
            g.image = image.clone();
            image
        };
        self.shared.publish(image);
        Ok(responses)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            shared: self.shared.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Vec<u8>>, SErr> {
        Ok(Box::default())
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Vec<u8>>,
    ) -> Result<(), SErr> {
        let bytes = *snapshot;
        let (stored_meta, image) = decode_snapshot(&bytes).map_err(|e| {
            StorageIOError::read_snapshot(Some(meta.signature()), &std::io::Error::other(e))
        })?;
        if stored_meta.last_log_id != meta.last_log_id {
            return Err(StorageIOError::read_snapshot(
                Some(meta.signature()),
                &std::io::Error::other("snapshot bytes do not match their metadata"),
            )
            .into());
        }
        let shared = self.shared.clone();
        let to_write = bytes.clone();
        let last = meta.last_log_id;
        tokio::task::spawn_blocking(move || write_snapshot_file(&shared, last, &to_write))
            .await
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))?;
        let image = Arc::new(image);
        {
            let mut g = self.shared.lock();
            g.image = image.clone();
            g.last_applied = meta.last_log_id;
            g.membership = meta.last_membership.clone();
            g.since_snapshot = 0;
            g.snapshot = Some((meta.clone(), Arc::new(bytes)));
        }
        tracing::info!(index = ?meta.last_log_id.map(|l| l.index), "metadata snapshot installed");
        self.shared.publish(image);
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, SErr> {
        let g = self.shared.lock();
        Ok(g.snapshot.as_ref().map(|(meta, bytes)| Snapshot {
            meta: meta.clone(),
            snapshot: Box::new((**bytes).clone()),
        }))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::records::MetadataRecord;

    fn producer_ids(n: i64, expected_offset: i64) -> MetaEntry {
        MetaEntry {
            expected_offset,
            records: vec![MetadataRecord::ProducerIdsRecord {
                next_producer_id: n,
            }],
        }
    }

    /// The compare-and-set: an entry decided on the image's offset applies; one decided
    /// on an older image (a blank entry of a new term came in between) applies nothing;
    /// either way the offset is the entry's index.
    #[test]
    fn stale_entries_apply_nothing() {
        let mut image = MetadataImage::empty();
        assert!(!apply_to_image(&mut image, 0, None));
        assert!(apply_to_image(&mut image, 1, Some(&producer_ids(1000, 0))));
        assert_eq!((image.offset, image.next_producer_id), (1, 1000));
        assert!(!apply_to_image(&mut image, 2, None));
        assert!(!apply_to_image(&mut image, 3, Some(&producer_ids(5000, 1))));
        assert_eq!((image.offset, image.next_producer_id), (3, 1000));
        assert!(apply_to_image(&mut image, 4, Some(&producer_ids(2000, 3))));
        assert_eq!((image.offset, image.next_producer_id), (4, 2000));
    }

    /// A snapshot decodes to the image it was made of; any damage is refused.
    #[test]
    fn snapshot_round_trip_and_damage() {
        let mut image = MetadataImage::empty();
        apply_to_image(&mut image, 7, Some(&producer_ids(3000, -1)));
        let meta = SnapshotMeta {
            last_log_id: Some(LogId::new(openraft::CommittedLeaderId::new(2, 1), 7)),
            last_membership: StoredMembership::default(),
            snapshot_id: "7-0".into(),
        };
        let bytes = encode_snapshot(&meta, &image).unwrap();
        let (m, back) = decode_snapshot(&bytes).unwrap();
        assert_eq!(m, meta);
        assert_eq!(back, image);
        let mut bad = bytes.clone();
        let n = bad.len();
        bad[n - 2] ^= 0x20;
        assert!(decode_snapshot(&bad).is_err());
        assert!(decode_snapshot(&bytes[..n - 1]).is_err());
    }
}
