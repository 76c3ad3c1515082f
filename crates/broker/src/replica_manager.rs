//! The partitions this broker hosts, kept in step with the metadata image.
//!
//! `apply_image` is how metadata reaches storage: a topic in the image gets its logs
//! opened (or created), a topic gone from the image gets its logs deleted. Produce,
//! fetch and list-offsets look partitions up here by topic name.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use gregor_metadata::MetadataImage;
use gregor_protocol::batch;
use gregor_storage::{AppendInfo, FileCache, Log, LogError};
use uuid::Uuid;

use crate::config::BrokerConfig;
use crate::error::ReplicaError;
use crate::log_dirs::{LogDir, LogDirs};
use crate::partition::Partition;
use crate::replication::state::Assignment;
use crate::topic_settings::TopicSettings;
use crate::util::now_ms;

/// Largest decompressed size accepted for one batch, whatever the topic allows.
const DECOMPRESS_CAP: usize = 256 << 20;
/// How far a batch may inflate relative to `max.message.bytes` (which bounds its
/// compressed size). Real producer data compresses 2-20x; Java's producer sizes batches
/// by an estimated compressed size, so a highly compressible batch may go further.
const DECOMPRESS_RATIO: usize = 64;

/// The decompressed size one produced batch may reach on a topic: what bounds the
/// connection's scratch buffer while the batch is validated, so a compression bomb is
/// refused (CORRUPT_MESSAGE) before it can make the broker allocate more.
pub fn decompress_limit(max_message_bytes: usize) -> usize {
    max_message_bytes
        .saturating_mul(DECOMPRESS_RATIO)
        .min(DECOMPRESS_CAP)
}

pub struct HostedTopic {
    pub id: Uuid,
    pub partitions: BTreeMap<i32, Arc<Partition>>,
    /// Partitions whose log could not be opened (a damaged or unreadable directory):
    /// they answer KAFKA_STORAGE_ERROR while the rest of the broker serves on.
    pub offline: BTreeSet<i32>,
    /// Partitions of the topic that other brokers host (NOT_LEADER_OR_FOLLOWER here).
    pub elsewhere: BTreeSet<i32>,
}

impl HostedTopic {
    /// One partition this broker leads, or why not: offline (its log failed to open),
    /// led by another broker, or unknown.
    pub fn get(&self, partition: i32) -> Result<&Arc<Partition>, ReplicaError> {
        match self.partitions.get(&partition) {
            Some(p) if !p.dir_online() => Err(ReplicaError::Offline),
            Some(p) if !p.is_leader() => Err(ReplicaError::NotLeaderOrFollower),
            Some(p) => Ok(p),
            None if self.offline.contains(&partition) => Err(ReplicaError::Offline),
            None if self.elsewhere.contains(&partition) => Err(ReplicaError::NotLeaderOrFollower),
            None => Err(ReplicaError::UnknownTopicOrPartition),
        }
    }
}

pub struct ReplicaManager {
    node_id: i32,
    /// Every `log.dirs` entry, online or not.
    dirs: Arc<LogDirs>,
    /// Which dir each partition lives in (by index into `dirs`): found by the startup
    /// scan, or chosen when a replica is first created here. A partition is in exactly
    /// one dir.
    locations: Mutex<HashMap<(String, i32), usize>>,
    /// Serializes `apply_image` and `take_failed_dirs_offline` (each replaces `topics`
    /// from what it read).
    updating: Mutex<()>,
    clean_startup: bool,
    /// The budget of open segment files all logs share (`log.max.open.files`).
    files: Arc<FileCache>,
    topics: RwLock<HashMap<String, Arc<HostedTopic>>>,
    /// Bumped after every `apply_image`: partitions may have opened (an offline one
    /// repaired) or closed. The transaction coordinator waits on it to retry markers.
    changes: tokio::sync::watch::Sender<u64>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl ReplicaManager {
    /// `locations` is where the startup scan found each partition (`log_dirs::scan`).
    pub fn new(
        node_id: i32,
        dirs: Arc<LogDirs>,
        locations: HashMap<(String, i32), usize>,
        clean_startup: bool,
        max_open_files: usize,
    ) -> Self {
        Self {
            node_id,
            dirs,
            locations: Mutex::new(locations),
            updating: Mutex::new(()),
            clean_startup,
            files: Arc::new(FileCache::new(max_open_files)),
            topics: RwLock::new(HashMap::new()),
            changes: tokio::sync::watch::Sender::new(0),
        }
    }

    fn read_topics(&self) -> HashMap<String, Arc<HostedTopic>> {
        match self.topics.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    pub fn topic(&self, name: &str) -> Option<Arc<HostedTopic>> {
        match self.topics.read() {
            Ok(g) => g.get(name).cloned(),
            Err(p) => p.into_inner().get(name).cloned(),
        }
    }

    pub fn partition(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        self.topic(topic)
            .and_then(|t| t.partitions.get(&partition).cloned())
    }

    /// A hosted partition, or why not: unknown, or offline (its log failed to open).
    pub fn lookup(&self, topic: &str, partition: i32) -> Result<Arc<Partition>, ReplicaError> {
        self.topic(topic)
            .ok_or(ReplicaError::UnknownTopicOrPartition)?
            .get(partition)
            .cloned()
    }

    /// Notified whenever the hosted partitions change (see `apply_image`).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The broker's log directories.
    pub fn log_dirs(&self) -> &Arc<LogDirs> {
        &self.dirs
    }

    /// The dir a partition lives in, or the one a new replica goes to (the online dir
    /// with the fewest partitions); `None` when every dir is offline.
    fn dir_for(&self, topic: &str, partition: i32) -> Option<Arc<LogDir>> {
        let mut locations = lock(&self.locations);
        let key = (topic.to_string(), partition);
        if let Some(&i) = locations.get(&key) {
            return self.dirs.get(i).cloned();
        }
        let mut counts = vec![0usize; self.dirs.all().len()];
        for &i in locations.values() {
            if let Some(c) = counts.get_mut(i) {
                *c += 1;
            }
        }
        let i = crate::log_dirs::place(&counts, &self.dirs.online())?;
        locations.insert(key, i);
        self.dirs.get(i).cloned()
    }

    /// Partitions this broker hosts whose log directory is offline: what it tells the
    /// controller it can no longer host (KIP-858's offline dirs, as partitions).
    pub fn offline_dir_partitions(&self) -> Vec<(Uuid, i32)> {
        let locations = lock(&self.locations).clone();
        let offline = |name: &str, idx: i32| {
            locations
                .get(&(name.to_string(), idx))
                .and_then(|&i| self.dirs.get(i))
                .is_some_and(|d| !d.is_online())
        };
        let mut out: Vec<(Uuid, i32)> = self
            .read_topics()
            .iter()
            .flat_map(|(name, h)| {
                h.offline
                    .iter()
                    .filter(|&&i| offline(name, i))
                    .map(|&i| (h.id, i))
                    .collect::<Vec<_>>()
            })
            .collect();
        out.sort();
        out
    }

    /// Partitions per dir (index into `log_dirs().all()`), as `(topic, partition)`.
    pub fn partitions_by_dir(&self) -> Vec<Vec<(String, i32)>> {
        let mut out = vec![Vec::new(); self.dirs.all().len()];
        for ((t, p), i) in lock(&self.locations).iter() {
            if let Some(v) = out.get_mut(*i) {
                v.push((t.clone(), *p));
            }
        }
        for v in &mut out {
            v.sort();
        }
        out
    }

    /// After a dir failed: every hosted partition in an offline dir stops serving and
    /// moves to its topic's `offline` set (so fetchers, flushers and coordinators stop
    /// using it). Returns how many partitions went offline.
    pub fn take_failed_dirs_offline(&self) -> usize {
        let _updating = lock(&self.updating);
        let current = self.read_topics();
        let mut stopped = Vec::new();
        let mut next = HashMap::with_capacity(current.len());
        for (name, h) in current {
            if h.partitions.values().all(|p| p.dir_online()) {
                next.insert(name, h);
                continue;
            }
            let mut partitions = BTreeMap::new();
            let mut offline = h.offline.clone();
            for (&i, p) in &h.partitions {
                if p.dir_online() {
                    partitions.insert(i, p.clone());
                } else {
                    offline.insert(i);
                    stopped.push(p.clone());
                }
            }
            next.insert(
                name,
                Arc::new(HostedTopic {
                    id: h.id,
                    partitions,
                    offline,
                    elsewhere: h.elsewhere.clone(),
                }),
            );
        }
        match self.topics.write() {
            Ok(mut g) => *g = next,
            Err(p) => *p.into_inner() = next,
        }
        for p in &stopped {
            tracing::error!(topic = %p.topic, partition = p.index, dir = %p.log_dir().path.display(), "partition offline: its log directory failed");
            p.stop_serving();
        }
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
        stopped.len()
    }

    pub fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.read_topics()
            .values()
            .flat_map(|t| t.partitions.values().cloned())
            .collect()
    }

    /// Brings hosted partitions in line with `image`: opens or creates logs for new
    /// partitions, updates settings and leader epochs, deletes logs of removed topics
    /// and of replicas reassigned to other brokers.
    pub fn apply_image(
        &self,
        image: &MetadataImage,
        config: &BrokerConfig,
    ) -> Result<(), LogError> {
        let _updating = lock(&self.updating);
        let current = self.read_topics();
        let mut next: HashMap<String, Arc<HostedTopic>> = HashMap::new();
        for (name, t) in &image.topics {
            let defaults = crate::topic_settings::BrokerDefaults::new(config, image);
            let settings = Arc::new(TopicSettings::resolve(Some(t), &defaults));
            let existing = current.get(name).filter(|h| h.id == t.id);
            let mut partitions = BTreeMap::new();
            let mut offline = BTreeSet::new();
            let mut elsewhere = BTreeSet::new();
            for (&idx, p) in &t.partitions {
                if !p.replicas.contains(&self.node_id) {
                    elsewhere.insert(idx);
                    continue;
                }
                let assignment = Assignment {
                    leader: p.leader,
                    leader_epoch: p.leader_epoch,
                    partition_epoch: p.partition_epoch,
                    replicas: p.replicas.clone(),
                    isr: p.isr.clone(),
                    strict_min_isr: gregor_metadata::elr::enabled(image)
                        .then(|| settings.min_insync_replicas.min(p.replicas.len()).max(1)),
                };
                let part = match existing.and_then(|h| h.partitions.get(&idx)) {
                    Some(part) if !part.dir_online() => {
                        part.stop_serving();
                        offline.insert(idx);
                        continue;
                    }
                    Some(part) => {
                        part.apply_assignment(&assignment)?;
                        if *part.settings() != *settings {
                            part.set_settings(settings.clone())?;
                        }
                        part.clone()
                    }
                    None => {
                        let Some(log_dir) = self.dir_for(name, idx).filter(|d| d.is_online())
                        else {
                            // Its dir is offline (or every dir is): not served here.
                            offline.insert(idx);
                            continue;
                        };
                        let dir = log_dir.path.join(format!("{name}-{idx}"));
                        let opened = Log::open_with(
                            &dir,
                            settings.log_config.clone(),
                            self.clean_startup,
                            now_ms(),
                            self.files.clone(),
                        );
                        let log = match opened {
                            Ok(log) => log,
                            Err(e) => {
                                // Kafka takes the log directory offline; here the one
                                // partition is, and the next metadata change retries it.
                                tracing::error!(dir = %dir.display(), error = %e, "cannot open partition log: partition offline");
                                offline.insert(idx);
                                continue;
                            }
                        };
                        let part = Partition::new(
                            self.node_id,
                            name.clone(),
                            t.id,
                            idx,
                            log,
                            p.leader_epoch,
                            settings.clone(),
                            log_dir,
                        );
                        if p.replicas.len() > 1 {
                            part.start_high_watermark_at_log_start();
                        }
                        part.apply_assignment(&assignment)?;
                        Arc::new(part)
                    }
                };
                partitions.insert(idx, part);
            }
            next.insert(
                name.clone(),
                Arc::new(HostedTopic {
                    id: t.id,
                    partitions,
                    offline,
                    elsewhere,
                }),
            );
        }
        // Replicas moved off this broker (a completed or cancelled reassignment, KIP-455):
        // their logs go, as Kafka's StopReplica with deletion does.
        let dropped: Vec<Arc<Partition>> = current
            .iter()
            .filter_map(|(n, h)| Some((h, next.get(n).filter(|x| x.id == h.id)?)))
            .flat_map(|(old, new)| {
                old.partitions
                    .iter()
                    .filter(|(i, _)| new.elsewhere.contains(i))
                    .map(|(_, p)| p.clone())
                    .collect::<Vec<_>>()
            })
            .collect();
        let removed: Vec<Arc<HostedTopic>> = current
            .iter()
            .filter(|(n, h)| next.get(*n).is_none_or(|x| x.id != h.id))
            .map(|(_, h)| h.clone())
            .collect();
        {
            let mut locations = lock(&self.locations);
            for (name, h) in &current {
                for &i in h.partitions.keys().chain(&h.offline) {
                    let moved = next.get(name).is_some_and(|x| x.elsewhere.contains(&i));
                    if !next.contains_key(name) || moved {
                        locations.remove(&(name.clone(), i));
                    }
                }
            }
        }
        match self.topics.write() {
            Ok(mut g) => *g = next,
            Err(p) => *p.into_inner() = next,
        }
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
        // Fetch sessions holding them look them up again (and find them gone).
        for p in removed
            .iter()
            .flat_map(|h| h.partitions.values())
            .chain(&dropped)
        {
            p.retire();
        }
        for h in removed {
            for p in h.partitions.values().filter(|p| p.dir_online()) {
                let log = p.log()?;
                tracing::info!(topic = %p.topic, partition = p.index, "deleting log of removed topic");
                log.delete()?;
            }
        }
        for p in dropped.into_iter().filter(|p| p.dir_online()) {
            let log = p.log()?;
            tracing::info!(topic = %p.topic, partition = p.index, "deleting log of a replica moved to other brokers");
            log.delete()?;
        }
        Ok(())
    }

    /// Validates and appends one produced batch to `partition`. Returns the append and
    /// whether the flush policy asks for an fsync before acknowledging.
    pub fn append(
        &self,
        partition: &Partition,
        records: &[u8],
        scratch: &mut Vec<u8>,
    ) -> Result<(AppendInfo, bool), ReplicaError> {
        let settings = partition.settings();
        if records.len() > settings.max_message_bytes {
            return Err(ReplicaError::MessageTooLarge(records.len()));
        }
        let limit = decompress_limit(settings.max_message_bytes);
        let v = batch::validate(records, scratch, limit)?;
        if v.header.is_control() {
            return Err(ReplicaError::InvalidRecord(
                "Clients are not allowed to write control records".into(),
            ));
        }
        if settings.compact && v.has_null_key {
            return Err(ReplicaError::InvalidRecord(
                "Compacted topic cannot accept message without key".into(),
            ));
        }
        let now = now_ms();
        let log_append_time = if settings.log_append_time {
            Some(now)
        } else {
            if now.saturating_sub(v.min_timestamp) > settings.timestamp_before_max_ms {
                return Err(ReplicaError::InvalidTimestamp(format!(
                    "Timestamp {} of message is out of range. The timestamp should be within [{}, {}]",
                    v.min_timestamp,
                    now.saturating_sub(settings.timestamp_before_max_ms),
                    now.saturating_add(settings.timestamp_after_max_ms)
                )));
            }
            if v.max_timestamp.saturating_sub(now) > settings.timestamp_after_max_ms {
                return Err(ReplicaError::InvalidTimestamp(format!(
                    "Timestamp {} of message is out of range. The timestamp should be within [{}, {}]",
                    v.max_timestamp,
                    now.saturating_sub(settings.timestamp_before_max_ms),
                    now.saturating_add(settings.timestamp_after_max_ms)
                )));
            }
            None
        };
        // A topic-level compression.type other than `producer` is one of the few places
        // where the broker re-encodes (as Kafka does): the stored batch gets the topic's
        // codec. Otherwise the producer's bytes are stored as sent.
        if let Some(codec) = settings.compression {
            if v.header.codec()? != codec {
                let mut tmp = Vec::new();
                let converted =
                    gregor_protocol::filter::recompress(records, &mut tmp, limit, codec)?;
                let v2 = batch::validate(&converted, scratch, limit)?;
                return Ok(partition.append(&converted, &v2, log_append_time)?);
            }
        }
        Ok(partition.append(records, &v, log_append_time)?)
    }

    /// The shared budget of open segment files.
    pub fn file_cache(&self) -> &Arc<FileCache> {
        &self.files
    }

    /// Makes every log durable for a clean shutdown: one `syncfs` of the data
    /// directory's filesystem covers every partition's data and indexes (an fsync per
    /// file costs milliseconds each, minutes for 50,000 partitions); then each log
    /// records its recovery point and producer snapshot, and a second `syncfs` makes
    /// those durable. A log that fails does not stop the others; the first error is
    /// returned, so the broker leaves no clean-shutdown marker and the next start
    /// recovers.
    pub fn shutdown(&self) -> Result<(), LogError> {
        let partitions = self.all_partitions();
        let mut first = None;
        let mut ends = Vec::with_capacity(partitions.len());
        for p in &partitions {
            match p.log() {
                Ok(mut l) => {
                    // Writes queued under the lock and not yet run: now, before the sync;
                    // from here on the log writes inline.
                    l.set_defer_writes(false);
                    ends.push(Some(l.log_end_offset()))
                }
                Err(e) => {
                    first.get_or_insert(e);
                    ends.push(None);
                }
            }
        }
        self.sync_dirs()?;
        for (p, upto) in partitions.iter().zip(ends) {
            let Some(upto) = upto else { continue };
            if let Err(e) = p.log().and_then(|mut l| {
                l.mark_synced(upto, now_ms())?;
                l.snapshot_producers();
                Ok(())
            }) {
                tracing::error!(topic = %p.topic, partition = p.index, error = %e, "flush at shutdown failed");
                first.get_or_insert(e);
            }
        }
        self.sync_dirs()?;
        if let Some(d) = self.dirs.all().iter().find(|d| !d.is_online()) {
            // Its partitions were not flushed: no clean-shutdown marker, so the next
            // start recovers them (once the dir is repaired).
            first.get_or_insert(LogError::Io(std::io::Error::other(format!(
                "log directory {} is offline",
                d.path.display()
            ))));
        }
        first.map_or(Ok(()), Err)
    }

    /// One `syncfs` per online log dir (dirs on one file system are synced once each;
    /// cheap when nothing is dirty).
    fn sync_dirs(&self) -> Result<(), LogError> {
        for d in self.dirs.all().iter().filter(|d| d.is_online()) {
            if let Err(e) = gregor_storage::sync_filesystem(&d.path) {
                d.note_error(&LogError::Io(e));
                if d.is_online() {
                    return Err(LogError::Io(std::io::Error::other(format!(
                        "sync of {} failed",
                        d.path.display()
                    ))));
                }
            }
        }
        Ok(())
    }
}
