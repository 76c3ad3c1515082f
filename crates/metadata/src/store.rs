//! The durable metadata log and the current image.

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};

use gregor_protocol::batch::{self, BatchHeader, NewRecord};
use gregor_protocol::compression::Codec;
use gregor_protocol::records::RecordWalker;
use gregor_storage::{Log, LogConfig};

use crate::controller::ControllerError;
use crate::image::MetadataImage;
use crate::records::MetadataRecord;
use crate::MetadataError;

/// Directory of the metadata log inside the data directory, as in KRaft.
pub const METADATA_LOG_DIR: &str = "__cluster_metadata-0";

/// The metadata log plus the image it produces. The mutex serialises commits (a
/// single-voter quorum has a single writer); readers take `Arc` snapshots of the image.
pub struct MetadataStore {
    log: Mutex<Log>,
    image: RwLock<Arc<MetadataImage>>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl MetadataStore {
    /// Opens the log under `data_dir` and replays it into an image.
    pub fn open(data_dir: &Path, clean_shutdown: bool) -> Result<Self, MetadataError> {
        let log = Log::open(
            &data_dir.join(METADATA_LOG_DIR),
            LogConfig::default(),
            clean_shutdown,
            now_ms(),
        )?;
        let mut image = MetadataImage::empty();
        let end = log.log_end_offset();
        let mut offset = log.log_start_offset();
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
                    image.apply(&record);
                }
                image.offset = h.last_offset();
                offset = h.last_offset() + 1;
                at += h.total_size();
            }
        }
        tracing::debug!(
            records = end,
            topics = image.topics.len(),
            "metadata log replayed"
        );
        Ok(Self {
            log: Mutex::new(log),
            image: RwLock::new(Arc::new(image)),
        })
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
        let mut log = self
            .log
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
        let info = log.append(&bytes, &validated, 0, None, now)?;
        log.flush(now)?;
        let mut next = (*current).clone();
        for r in &records {
            next.apply(r);
        }
        next.offset = info.last_offset;
        let next = Arc::new(next);
        match self.image.write() {
            Ok(mut g) => *g = next.clone(),
            Err(poisoned) => *poisoned.into_inner() = next.clone(),
        }
        Ok(next)
    }

    /// Flushes the log (clean shutdown).
    pub fn close(&self) -> Result<(), MetadataError> {
        let mut log = self
            .log
            .lock()
            .map_err(|_| MetadataError::Corrupt("metadata lock poisoned".into()))?;
        log.flush(now_ms())?;
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
}
