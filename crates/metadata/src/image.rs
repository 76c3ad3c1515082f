//! The metadata image: the state that the metadata records describe.

use std::collections::{BTreeMap, HashMap};

use uuid::Uuid;

use crate::records::{ConfigResource, MetadataRecord};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionImage {
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicImage {
    pub name: String,
    pub id: Uuid,
    pub partitions: BTreeMap<i32, PartitionImage>,
    /// Topic-level overrides only; defaults come from the broker config.
    pub configs: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataImage {
    pub topics: BTreeMap<String, TopicImage>,
    pub topic_names: HashMap<Uuid, String>,
    /// Dynamic broker configs by broker id ("" for the cluster-wide default).
    pub broker_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// Client-metrics subscriptions (KIP-714) by name; a subscription with no config
    /// left is removed.
    pub client_metrics: BTreeMap<String, BTreeMap<String, String>>,
    /// Offset of the last applied record in the metadata log, -1 if none.
    pub offset: i64,
    /// The first producer id not yet handed out.
    pub next_producer_id: i64,
    /// Finalized feature levels (KIP-584), by feature name; a feature at level 0 is
    /// absent, as in Kafka.
    pub features: BTreeMap<String, i16>,
}

impl MetadataImage {
    pub fn empty() -> Self {
        Self {
            offset: -1,
            ..Self::default()
        }
    }

    /// A feature's finalized level, 0 when it is not finalized.
    pub fn feature_level(&self, name: &str) -> i16 {
        self.features.get(name).copied().unwrap_or(0)
    }

    /// The finalized features' epoch: as in KRaft, the offset of the metadata the
    /// image reflects (it only grows, and a client compares epochs to pick the newer
    /// answer).
    pub fn features_epoch(&self) -> i64 {
        self.offset
    }

    pub fn topic(&self, name: &str) -> Option<&TopicImage> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, id: &Uuid) -> Option<&TopicImage> {
        self.topic_names.get(id).and_then(|n| self.topics.get(n))
    }

    /// Applies one record. Records that refer to unknown topics are ignored, as a
    /// replayed log may contain records for a topic removed later in the same batch.
    pub fn apply(&mut self, record: &MetadataRecord) {
        match record {
            MetadataRecord::TopicRecord { name, topic_id } => {
                self.topic_names.insert(*topic_id, name.clone());
                self.topics.insert(
                    name.clone(),
                    TopicImage {
                        name: name.clone(),
                        id: *topic_id,
                        partitions: BTreeMap::new(),
                        configs: BTreeMap::new(),
                    },
                );
            }
            MetadataRecord::PartitionRecord {
                topic_id,
                partition,
                replicas,
                isr,
                leader,
                leader_epoch,
                partition_epoch,
            } => {
                if let Some(name) = self.topic_names.get(topic_id) {
                    if let Some(t) = self.topics.get_mut(name) {
                        t.partitions.insert(
                            *partition,
                            PartitionImage {
                                replicas: replicas.clone(),
                                isr: isr.clone(),
                                leader: *leader,
                                leader_epoch: *leader_epoch,
                                partition_epoch: *partition_epoch,
                            },
                        );
                    }
                }
            }
            MetadataRecord::ConfigRecord {
                resource,
                resource_name,
                name,
                value,
            } => {
                let map = match resource {
                    ConfigResource::Topic => match self.topics.get_mut(resource_name) {
                        Some(t) => &mut t.configs,
                        None => return,
                    },
                    ConfigResource::Broker => self
                        .broker_configs
                        .entry(resource_name.clone())
                        .or_default(),
                    ConfigResource::ClientMetrics => self
                        .client_metrics
                        .entry(resource_name.clone())
                        .or_default(),
                };
                match value {
                    Some(v) => {
                        map.insert(name.clone(), v.clone());
                    }
                    None => {
                        map.remove(name);
                    }
                }
                if *resource == ConfigResource::ClientMetrics
                    && self
                        .client_metrics
                        .get(resource_name)
                        .is_some_and(BTreeMap::is_empty)
                {
                    self.client_metrics.remove(resource_name);
                }
            }
            MetadataRecord::ProducerIdsRecord { next_producer_id } => {
                self.next_producer_id = self.next_producer_id.max(*next_producer_id);
            }
            MetadataRecord::FeatureLevelRecord {
                name,
                feature_level,
            } => {
                if *feature_level <= 0 {
                    self.features.remove(name);
                } else {
                    self.features.insert(name.clone(), *feature_level);
                }
            }
            MetadataRecord::RemoveTopicRecord { topic_id } => {
                if let Some(name) = self.topic_names.remove(topic_id) {
                    self.topics.remove(&name);
                }
            }
        }
    }
}
