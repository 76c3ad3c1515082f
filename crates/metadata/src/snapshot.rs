//! Metadata snapshots: the image written as records, so the log before it can go.
//!
//! As in KRaft, a snapshot is a file `<end offset>-<epoch>.checkpoint` in the metadata log
//! directory holding record batches (CRC-protected, the same format as the log) whose
//! records rebuild the image as of `end offset - 1`. It is written to a `.part` file,
//! fsynced, renamed and the directory fsynced, so a crash leaves either no snapshot or a
//! whole one. Two snapshots are kept and the log is cut only below the older one, so a
//! damaged newest snapshot still leaves a way back: the older one plus the log after it.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use gregor_protocol::batch::{self, BatchHeader, NewRecord};
use gregor_protocol::compression::Codec;
use gregor_protocol::records::RecordWalker;

use crate::image::MetadataImage;
use crate::records::{ConfigResource, MetadataRecord};
use crate::MetadataError;

const SUFFIX: &str = ".checkpoint";
const PART_SUFFIX: &str = ".checkpoint.part";
/// Records per batch in a snapshot file.
const RECORDS_PER_BATCH: usize = 1000;

/// The records that rebuild `image` from an empty one.
pub fn image_records(image: &MetadataImage) -> Vec<MetadataRecord> {
    let mut out = Vec::new();
    // Features first, as KRaft writes metadata.version first: a reader knows the
    // levels before any other record.
    for (name, &level) in &image.features {
        out.push(MetadataRecord::FeatureLevelRecord {
            name: name.clone(),
            feature_level: level,
        });
    }
    if image.next_producer_id > 0 {
        out.push(MetadataRecord::ProducerIdsRecord {
            next_producer_id: image.next_producer_id,
        });
    }
    // Brokers before partitions, each with the epoch of its registration and its
    // fencing state.
    for b in image.brokers.values() {
        out.push(MetadataRecord::RegisterBrokerRecord {
            broker_id: b.id,
            incarnation_id: b.incarnation_id,
            endpoints: b.endpoints.clone(),
            rack: b.rack.clone(),
            broker_epoch: Some(b.epoch),
        });
        out.push(MetadataRecord::BrokerRegistrationChangeRecord {
            broker_id: b.id,
            broker_epoch: b.epoch,
            fenced: Some(b.fenced),
            in_controlled_shutdown: Some(b.in_controlled_shutdown),
        });
        if !b.offline_partitions.is_empty() {
            out.push(MetadataRecord::BrokerReplicasOfflineRecord {
                broker_id: b.id,
                broker_epoch: b.epoch,
                partitions: b.offline_partitions.iter().copied().collect(),
            });
        }
    }
    for t in image.topics.values() {
        out.push(MetadataRecord::TopicRecord {
            name: t.name.clone(),
            topic_id: t.id,
        });
        for (&partition, p) in &t.partitions {
            out.push(MetadataRecord::PartitionRecord {
                topic_id: t.id,
                partition,
                replicas: p.replicas.clone(),
                isr: p.isr.clone(),
                leader: p.leader,
                leader_epoch: p.leader_epoch,
                partition_epoch: p.partition_epoch,
                adding_replicas: p.adding_replicas.clone(),
                removing_replicas: p.removing_replicas.clone(),
                eligible_leader_replicas: p.elr.clone(),
                last_known_elr: p.last_known_elr.clone(),
            });
        }
        for (name, value) in &t.configs {
            out.push(MetadataRecord::ConfigRecord {
                resource: ConfigResource::Topic,
                resource_name: t.name.clone(),
                name: name.clone(),
                value: Some(value.clone()),
            });
        }
    }
    for (broker, configs) in &image.broker_configs {
        for (name, value) in configs {
            out.push(MetadataRecord::ConfigRecord {
                resource: ConfigResource::Broker,
                resource_name: broker.clone(),
                name: name.clone(),
                value: Some(value.clone()),
            });
        }
    }
    for (name, credentials) in &image.scram {
        for credential in credentials.values() {
            out.push(MetadataRecord::UserScramCredentialRecord {
                name: name.clone(),
                credential: credential.clone(),
            });
        }
    }
    for (group, configs) in &image.group_configs {
        for (name, value) in configs {
            out.push(MetadataRecord::ConfigRecord {
                resource: ConfigResource::Group,
                resource_name: group.clone(),
                name: name.clone(),
                value: Some(value.clone()),
            });
        }
    }
    for (subscription, configs) in &image.client_metrics {
        for (name, value) in configs {
            out.push(MetadataRecord::ConfigRecord {
                resource: ConfigResource::ClientMetrics,
                resource_name: subscription.clone(),
                name: name.clone(),
                value: Some(value.clone()),
            });
        }
    }
    out.extend(crate::acls::image_records(image));
    out.extend(crate::quotas::image_records(image));
    out
}

fn file_name(end_offset: i64) -> String {
    format!("{end_offset:020}-{:010}{SUFFIX}", 0)
}

/// End offsets of the snapshots in `dir`, newest first. Leftover `.part` files (a crash
/// while writing) are removed.
pub fn list(dir: &Path) -> Result<Vec<i64>, MetadataError> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(PART_SUFFIX) {
            let _ = std::fs::remove_file(dir.join(name));
        } else if let Some(stem) = name.strip_suffix(SUFFIX) {
            if let Some(Ok(end)) = stem.split('-').next().map(str::parse::<i64>) {
                out.push(end);
            }
        }
    }
    out.sort_unstable_by(|a, b| b.cmp(a));
    Ok(out)
}

pub fn path(dir: &Path, end_offset: i64) -> PathBuf {
    dir.join(file_name(end_offset))
}

/// Writes a snapshot of `image` (which reflects every record below `end_offset`).
pub fn write(
    dir: &Path,
    image: &MetadataImage,
    end_offset: i64,
    now_ms: i64,
) -> Result<PathBuf, MetadataError> {
    let records = image_records(image);
    let mut bytes = Vec::new();
    let mut offset = 0i64;
    for chunk in records.chunks(RECORDS_PER_BATCH) {
        let values = chunk
            .iter()
            .map(MetadataRecord::encode)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| MetadataError::Corrupt(e.to_string()))?;
        let recs: Vec<NewRecord<'_>> = values
            .iter()
            .map(|v| NewRecord {
                key: None,
                value: Some(v),
                timestamp: now_ms,
                headers: &[],
            })
            .collect();
        bytes.extend_from_slice(&batch::build(offset, Codec::None, &recs)?);
        offset += chunk.len() as i64;
    }
    let part = dir.join(format!("{}{}", file_name(end_offset), ".part"));
    let mut f = File::create(&part)?;
    f.write_all(&bytes)?;
    f.sync_all()?;
    drop(f);
    let done = path(dir, end_offset);
    std::fs::rename(&part, &done)?;
    File::open(dir)?.sync_all()?;
    Ok(done)
}

/// Reads a snapshot into an image; any damage (a bad CRC, a torn batch, a record that
/// does not decode) is an error, so the caller falls back to an older snapshot.
pub fn read(dir: &Path, end_offset: i64) -> Result<MetadataImage, MetadataError> {
    let bytes = std::fs::read(path(dir, end_offset))?;
    let mut image = MetadataImage::empty();
    let mut at = 0;
    let mut scratch = Vec::new();
    while at < bytes.len() {
        let h = BatchHeader::parse(&bytes[at..])?;
        let end = at
            .checked_add(h.total_size())
            .filter(|&e| e <= bytes.len())
            .ok_or_else(|| MetadataError::Corrupt("torn snapshot batch".into()))?;
        batch::validate_stored(&bytes[at..end], &mut scratch, usize::MAX / 4)?;
        let payload = &bytes[at + batch::HEADER_LEN..end];
        for rec in RecordWalker::new(payload, h.record_count) {
            let value = rec?
                .value
                .ok_or_else(|| MetadataError::Corrupt("snapshot record without value".into()))?;
            let record =
                MetadataRecord::decode(value).map_err(|e| MetadataError::Corrupt(e.to_string()))?;
            image.apply(&record);
        }
        at = end;
    }
    image.offset = end_offset - 1;
    Ok(image)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::controller::{create_topic, NewTopic};

    #[test]
    fn image_round_trips_through_a_snapshot() {
        let mut image = MetadataImage::empty();
        let t = NewTopic {
            assignments: Vec::new(),
            name: "t".into(),
            num_partitions: 3,
            replication_factor: 1,
            configs: [("cleanup.policy".to_string(), "compact".to_string())].into(),
        };
        for r in create_topic(&image, &t, &[1]).unwrap() {
            image.apply(&r);
        }
        image.apply(&MetadataRecord::ConfigRecord {
            resource: ConfigResource::Broker,
            resource_name: String::new(),
            name: "log.retention.ms".into(),
            value: Some("1000".into()),
        });
        image.apply(&MetadataRecord::ConfigRecord {
            resource: ConfigResource::ClientMetrics,
            resource_name: "sub".into(),
            name: "interval.ms".into(),
            value: Some("1000".into()),
        });
        image.apply(&MetadataRecord::ProducerIdsRecord {
            next_producer_id: 5000,
        });
        for r in crate::acls::tests::sample_records() {
            image.apply(&r);
        }
        assert_eq!(image.acls.len(), 2);
        for r in crate::features::bootstrap_records(&image, true) {
            image.apply(&r);
        }
        assert_eq!(image.feature_level(crate::features::TRANSACTION_VERSION), 2);
        image.offset = 41;
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &image, 42, 0).unwrap();
        assert_eq!(list(dir.path()).unwrap(), vec![42]);
        assert_eq!(read(dir.path(), 42).unwrap(), image);
        // A flipped byte is detected, not applied.
        let p = path(dir.path(), 42);
        let mut bytes = std::fs::read(&p).unwrap();
        let n = bytes.len();
        bytes[n - 3] ^= 0xff;
        std::fs::write(&p, bytes).unwrap();
        assert!(read(dir.path(), 42).is_err());
    }
}
