//! The durable metadata log and the current image.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use gregor_protocol::batch::{self, BatchHeader, NewRecord};
use gregor_protocol::compression::Codec;
use gregor_protocol::records::RecordWalker;
use gregor_storage::{Log, LogConfig};

use crate::controller::ControllerError;
use crate::image::MetadataImage;
use crate::records::MetadataRecord;
use crate::{features, snapshot, MetadataError};

/// Directory of the metadata log inside the data directory, as in KRaft.
pub const METADATA_LOG_DIR: &str = "__cluster_metadata-0";

/// How the metadata log is kept (Kafka's names).
#[derive(Debug, Clone, Copy)]
pub struct MetadataLogConfig {
    /// `metadata.log.max.record.bytes.between.snapshots`: a snapshot is written once this
    /// many bytes were appended since the last one.
    pub snapshot_bytes: u64,
    /// `metadata.log.segment.bytes`: the log is cut in segments of this size, so the part
    /// below the snapshots can be deleted.
    pub segment_bytes: u64,
}

impl Default for MetadataLogConfig {
    fn default() -> Self {
        Self {
            snapshot_bytes: 20 << 20,
            segment_bytes: 8 << 20,
        }
    }
}

/// The metadata log plus the image it produces. The mutex serialises commits (a
/// single-voter quorum has a single writer); readers take `Arc` snapshots of the image.
pub struct MetadataStore {
    inner: Mutex<Inner>,
    image: RwLock<Arc<MetadataImage>>,
    config: MetadataLogConfig,
    dir: PathBuf,
}

struct Inner {
    log: Log,
    /// Bytes appended since the newest snapshot.
    since_snapshot: u64,
    /// End offsets of the snapshots on disk, newest first.
    snapshots: Vec<i64>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl MetadataStore {
    /// Opens the log under `data_dir` with default settings.
    pub fn open(data_dir: &Path, clean_shutdown: bool) -> Result<Self, MetadataError> {
        Self::open_with(data_dir, clean_shutdown, MetadataLogConfig::default())
    }

    /// Opens the log under `data_dir`: loads the newest readable snapshot and replays the
    /// log after it.
    pub fn open_with(
        data_dir: &Path,
        clean_shutdown: bool,
        config: MetadataLogConfig,
    ) -> Result<Self, MetadataError> {
        Self::open_dir(&data_dir.join(METADATA_LOG_DIR), clean_shutdown, config)
    }

    /// Opens the log in `dir` itself (the quorum's migration reads an old log that was
    /// moved aside).
    pub fn open_dir(
        dir: &Path,
        clean_shutdown: bool,
        config: MetadataLogConfig,
    ) -> Result<Self, MetadataError> {
        let dir = dir.to_path_buf();
        let log = Log::open(
            &dir,
            LogConfig {
                segment_bytes: config.segment_bytes,
                ..LogConfig::default()
            },
            clean_shutdown,
            now_ms(),
        )?;
        let snapshots = snapshot::list(&dir)?;
        let mut image = MetadataImage::empty();
        for &end in &snapshots {
            match snapshot::read(&dir, end) {
                Ok(img) => {
                    image = img;
                    break;
                }
                Err(e) => {
                    tracing::warn!(snapshot = end, error = %e, "metadata snapshot unreadable; trying an older one")
                }
            }
        }
        let end = log.log_end_offset();
        let mut offset = log.log_start_offset().max(image.offset + 1);
        if log.log_start_offset() > image.offset + 1 {
            return Err(MetadataError::Corrupt(format!(
                "the metadata log starts at {} but no readable snapshot reaches it",
                log.log_start_offset()
            )));
        }
        while offset < end {
            let bytes = log.read(offset, 1 << 20, true, end)?.bytes;
            if bytes.is_empty() {
                break;
            }
            let mut at = 0;
            while at < bytes.len() {
                let h = BatchHeader::parse(&bytes[at..])?;
                let payload = &bytes[at + batch::HEADER_LEN..at + h.total_size()];
                for rec in RecordWalker::new(payload, h.record_count) {
                    let rec = rec?;
                    let value = rec
                        .value
                        .ok_or_else(|| MetadataError::Corrupt("record without value".into()))?;
                    let record = MetadataRecord::decode(value)
                        .map_err(|e| MetadataError::Corrupt(e.to_string()))?;
                    if h.base_offset + i64::from(rec.offset_delta) >= offset {
                        image.apply(&record);
                    }
                }
                image.offset = h.last_offset();
                offset = h.last_offset() + 1;
                at += h.total_size();
            }
        }
        tracing::debug!(
            records = end,
            snapshot = snapshots.first().copied().unwrap_or(-1),
            topics = image.topics.len(),
            "metadata log replayed"
        );
        let since_snapshot = log.size_bytes();
        // An empty log is a new cluster; records without metadata.version are a data
        // directory from before features (see `features` for the levels each gets).
        let new_cluster = image.offset < 0;
        let store = Self {
            inner: Mutex::new(Inner {
                log,
                since_snapshot,
                snapshots,
            }),
            image: RwLock::new(Arc::new(image)),
            config,
            dir,
        };
        store.commit_with(|img| Ok(features::bootstrap_records(img, new_cluster)))?;
        Ok(store)
    }

    /// The current image.
    pub fn image(&self) -> Arc<MetadataImage> {
        match self.image.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Decides and commits atomically: `decide` sees the latest image under the commit
    /// lock, so two racing operations cannot both pass validation. The records are
    /// written as one batch, fsynced, then applied.
    pub fn commit_with<F>(&self, decide: F) -> Result<Arc<MetadataImage>, MetadataError>
    where
        F: FnOnce(&MetadataImage) -> Result<Vec<MetadataRecord>, ControllerError>,
    {
        let mut inner = self
            .inner
            .lock()
            .map_err(|_| MetadataError::Corrupt("metadata lock poisoned".into()))?;
        let current = self.image();
        let records = decide(&current)?;
        if records.is_empty() {
            return Ok(current);
        }
        let values = records
            .iter()
            .map(MetadataRecord::encode)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| MetadataError::Corrupt(e.to_string()))?;
        let now = now_ms();
        let recs: Vec<NewRecord<'_>> = values
            .iter()
            .map(|v| NewRecord {
                key: None,
                value: Some(v),
                timestamp: now,
                headers: &[],
            })
            .collect();
        let bytes = batch::build(0, Codec::None, &recs)?;
        let mut scratch = Vec::new();
        let validated = batch::validate(&bytes, &mut scratch, usize::MAX / 4)?;
        let info = inner.log.append(&bytes, &validated, 0, None, now)?;
        inner.log.flush(now)?;
        inner.since_snapshot += bytes.len() as u64;
        let mut next = (*current).clone();
        next.apply_entry(info.last_offset, &records);
        let next = Arc::new(next);
        match self.image.write() {
            Ok(mut g) => *g = next.clone(),
            Err(poisoned) => *poisoned.into_inner() = next.clone(),
        }
        if inner.since_snapshot >= self.config.snapshot_bytes {
            // The commit is already durable: a failed snapshot only means a longer replay.
            if let Err(e) = self.snapshot(&mut inner, &next, now) {
                tracing::warn!(error = %e, "cannot write a metadata snapshot; will retry");
            }
        }
        Ok(next)
    }

    /// Writes a snapshot of `image`, keeps the two newest and deletes the log below the
    /// older of them.
    fn snapshot(
        &self,
        inner: &mut Inner,
        image: &MetadataImage,
        now: i64,
    ) -> Result<(), MetadataError> {
        let end = image.offset + 1;
        snapshot::write(&self.dir, image, end, now)?;
        inner.since_snapshot = 0;
        inner.snapshots.insert(0, end);
        for old in inner.snapshots.split_off(2.min(inner.snapshots.len())) {
            let _ = std::fs::remove_file(snapshot::path(&self.dir, old));
        }
        if let Some(&cut) = inner.snapshots.get(1) {
            let (_, doomed) = inner.log.delete_records_before(cut)?;
            for f in doomed {
                let _ = std::fs::remove_file(f);
            }
        }
        tracing::info!(end_offset = end, "metadata snapshot written");
        Ok(())
    }

    /// The log start offset and the snapshots' end offsets, newest first (tests).
    pub fn log_state(&self) -> (i64, Vec<i64>) {
        match self.inner.lock() {
            Ok(g) => (g.log.log_start_offset(), g.snapshots.clone()),
            Err(p) => {
                let g = p.into_inner();
                (g.log.log_start_offset(), g.snapshots.clone())
            }
        }
    }

    /// Flushes the log (clean shutdown).
    pub fn close(&self) -> Result<(), MetadataError> {
        let mut inner = self
            .inner
            .lock()
            .map_err(|_| MetadataError::Corrupt("metadata lock poisoned".into()))?;
        inner.log.flush(now_ms())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::{create_topic, NewTopic};

    #[test]
    fn image_survives_reopen_clean_and_unclean() {
        let dir = tempfile::tempdir().unwrap();
        let store = MetadataStore::open(dir.path(), true).unwrap();
        for name in ["a", "b"] {
            let t = NewTopic {
                assignments: Vec::new(),
                name: name.into(),
                num_partitions: 2,
                replication_factor: 1,
                configs: Default::default(),
            };
            store
                .commit_with(|img| create_topic(img, &t, &[1]))
                .unwrap();
        }
        let dup = NewTopic {
            assignments: Vec::new(),
            name: "a".into(),
            num_partitions: 2,
            replication_factor: 1,
            configs: Default::default(),
        };
        assert!(store
            .commit_with(|img| create_topic(img, &dup, &[1]))
            .is_err());
        let before = store.image();
        drop(store);
        let reopened = MetadataStore::open(dir.path(), false).unwrap();
        assert_eq!(*reopened.image(), *before);
        assert_eq!(reopened.image().topics.len(), 2);
    }

    /// A new directory is formatted with Kafka 4.2's levels; a log with records but no
    /// feature levels (a directory from before features) gets the levels that keep its
    /// behaviour; a change survives a reopen.
    #[test]
    fn feature_levels_are_bootstrapped_and_durable() {
        use crate::features::{GROUP_VERSION, METADATA_VERSION, TRANSACTION_VERSION};
        let dir = tempfile::tempdir().unwrap();
        let store = MetadataStore::open(dir.path(), true).unwrap();
        let img = store.image();
        assert_eq!(img.feature_level(METADATA_VERSION), 29);
        assert_eq!(img.feature_level(TRANSACTION_VERSION), 2);
        assert_eq!(img.feature_level(GROUP_VERSION), 1);
        assert_eq!(img.features_epoch(), img.offset);
        // Remove every level: what a pre-features directory looks like.
        let cleared: Vec<MetadataRecord> = [
            METADATA_VERSION,
            TRANSACTION_VERSION,
            GROUP_VERSION,
            crate::elr::ELR_VERSION,
        ]
        .iter()
        .map(|n| MetadataRecord::FeatureLevelRecord {
            name: n.to_string(),
            feature_level: 0,
        })
        .collect();
        store.commit_with(|_| Ok(cleared)).unwrap();
        assert!(store.image().features.is_empty());
        drop(store);
        let store = MetadataStore::open(dir.path(), false).unwrap();
        let img = store.image();
        assert_eq!(img.feature_level(METADATA_VERSION), 29);
        assert_eq!(img.feature_level(TRANSACTION_VERSION), 0);
        assert_eq!(img.feature_level(GROUP_VERSION), 1);
        assert_eq!(img.feature_level(crate::elr::ELR_VERSION), 0);
        let upgrade = [crate::features::FeatureUpdate {
            name: TRANSACTION_VERSION.into(),
            level: 2,
            upgrade: Some(crate::features::UpgradeType::Upgrade),
        }];
        store
            .commit_with(|img| crate::features::update_features(img, &upgrade))
            .unwrap();
        let before = store.image();
        drop(store);
        let reopened = MetadataStore::open(dir.path(), true).unwrap();
        assert_eq!(*reopened.image(), *before);
        assert_eq!(reopened.image().feature_level(TRANSACTION_VERSION), 2);
    }

    /// With snapshots every few KiB and small segments, the log is cut below the older
    /// snapshot, the directory stays small, and reopening (clean, unclean, and with the
    /// newest snapshot damaged) rebuilds exactly the same image.
    #[test]
    fn snapshots_bound_the_log_and_rebuild_the_image() {
        let dir = tempfile::tempdir().unwrap();
        let config = MetadataLogConfig {
            snapshot_bytes: 4096,
            segment_bytes: 8192,
        };
        let store = MetadataStore::open_with(dir.path(), true, config).unwrap();
        for i in 0..400 {
            let t = NewTopic {
                assignments: Vec::new(),
                name: format!("t{}", i % 50),
                num_partitions: 2,
                replication_factor: 1,
                configs: Default::default(),
            };
            // Create, or delete when it exists: the log grows, the image stays small.
            let exists = store.image().topic(&t.name).is_some();
            if exists {
                let id = store.image().topic(&t.name).unwrap().id;
                store
                    .commit_with(|_| Ok(vec![MetadataRecord::RemoveTopicRecord { topic_id: id }]))
                    .unwrap();
            } else {
                store
                    .commit_with(|img| create_topic(img, &t, &[1]))
                    .unwrap();
            }
        }
        let (start, snaps) = store.log_state();
        assert_eq!(snaps.len(), 2, "two snapshots kept");
        assert_eq!(start, snaps[1], "log cut at the older snapshot");
        let log_dir = dir.path().join(METADATA_LOG_DIR);
        let segments = std::fs::read_dir(&log_dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".log"))
            })
            .count();
        assert!(segments <= 3, "old segments deleted, {segments} left");
        let before = store.image();
        drop(store);
        for clean in [true, false] {
            let reopened = MetadataStore::open_with(dir.path(), clean, config).unwrap();
            assert_eq!(*reopened.image(), *before);
        }
        // Damage the newest snapshot: the older one plus the log still give the image.
        let newest = snapshot::path(&log_dir, snaps[0]);
        let mut bytes = std::fs::read(&newest).unwrap();
        bytes[70] ^= 0xff;
        std::fs::write(&newest, bytes).unwrap();
        let reopened = MetadataStore::open_with(dir.path(), false, config).unwrap();
        assert_eq!(*reopened.image(), *before);
    }
}
