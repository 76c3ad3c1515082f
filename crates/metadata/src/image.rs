//! The metadata image: the state that the metadata records describe.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use gregor_security::acl::{AclBinding, AclIndex, Authorizer, AuthorizerConfig};

use gregor_security::scram::{ScramCredential, ScramMechanism};
use uuid::Uuid;

use crate::records::{BrokerEndpoint, ConfigResource, MetadataRecord};

/// A registered broker, as the controller knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerImage {
    pub id: i32,
    pub incarnation_id: Uuid,
    /// The metadata offset of its registration.
    pub epoch: i64,
    pub endpoints: Vec<BrokerEndpoint>,
    pub rack: Option<String>,
    pub fenced: bool,
    pub in_controlled_shutdown: bool,
    /// Partitions (topic id, index) it reported in a failed log dir: it does not host
    /// them until it registers again.
    pub offline_partitions: std::collections::BTreeSet<(Uuid, i32)>,
}

impl BrokerImage {
    /// Whether it can host (serve, lead) this partition: not in a failed log dir.
    pub fn hosts(&self, topic_id: Uuid, partition: i32) -> bool {
        !self.offline_partitions.contains(&(topic_id, partition))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionImage {
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    /// An ongoing reassignment (KIP-455): replicas being added and replicas to drop once
    /// every target replica is in the ISR. Both empty when none is ongoing; the target is
    /// `replicas` minus `removing_replicas`.
    pub adding_replicas: Vec<i32>,
    pub removing_replicas: Vec<i32>,
    /// KIP-966: replicas out of the ISR that may still lead (see `crate::elr`).
    pub elr: Vec<i32>,
    pub last_known_elr: Vec<i32>,
}

impl PartitionImage {
    pub fn is_reassigning(&self) -> bool {
        !self.adding_replicas.is_empty() || !self.removing_replicas.is_empty()
    }

    /// Where an ongoing reassignment goes: `replicas` minus the replicas it drops.
    pub fn target_replicas(&self) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|r| !self.removing_replicas.contains(r))
            .collect()
    }

    /// Where an ongoing reassignment came from: `replicas` minus the replicas it adds.
    pub fn original_replicas(&self) -> Vec<i32> {
        self.replicas
            .iter()
            .copied()
            .filter(|r| !self.adding_replicas.contains(r))
            .collect()
    }
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
    /// Group configs (KIP-848/KIP-932) by group id; a group with none is absent.
    pub group_configs: BTreeMap<String, BTreeMap<String, String>>,
    /// Offset of the last applied record in the metadata log, -1 if none.
    pub offset: i64,
    /// The first producer id not yet handed out.
    pub next_producer_id: i64,
    /// Finalized feature levels (KIP-584), by feature name; a feature at level 0 is
    /// absent, as in Kafka.
    pub features: BTreeMap<String, i16>,
    /// Registered brokers by id.
    pub brokers: BTreeMap<i32, BrokerImage>,
    /// SCRAM credentials by user and mechanism (AlterUserScramCredentials).
    pub scram: BTreeMap<String, BTreeMap<ScramMechanism, ScramCredential>>,
    /// ACLs by id. The controller never gives one binding two ids, so `acl_index` (the
    /// same bindings, indexed for the authorizer) has exactly these bindings.
    pub acls: BTreeMap<Uuid, AclBinding>,
    /// Shared with every [`Authorizer`] taken from this image; copied on write, so an
    /// image clone is cheap and an authorizer never sees a half-applied entry.
    pub acl_index: Arc<AclIndex>,
    /// Client quotas by entity (AlterClientQuotas); an entity with none left is removed.
    pub client_quotas:
        BTreeMap<crate::quotas::QuotaEntity, BTreeMap<String, crate::quotas::QuotaValue>>,
}

impl MetadataImage {
    pub fn empty() -> Self {
        Self {
            offset: -1,
            ..Self::default()
        }
    }

    /// A user's SCRAM credential for one mechanism.
    pub fn scram_credential(
        &self,
        user: &str,
        mechanism: ScramMechanism,
    ) -> Option<&ScramCredential> {
        self.scram.get(user).and_then(|m| m.get(&mechanism))
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

    /// Brokers that replicas may be placed on and leaders elected from: registered,
    /// unfenced and not shutting down, in id order.
    pub fn live_brokers(&self) -> Vec<&BrokerImage> {
        self.brokers
            .values()
            .filter(|b| !b.fenced && !b.in_controlled_shutdown)
            .collect()
    }

    /// An authorizer over this image's ACLs (two reference counts: cheap per request).
    pub fn authorizer(&self, config: &Arc<AuthorizerConfig>) -> Authorizer {
        Authorizer::new(Arc::clone(&self.acl_index), Arc::clone(config))
    }

    /// Applies the records of the metadata log entry at `offset`: the image then
    /// reflects everything up to and including that entry.
    pub fn apply_entry(&mut self, offset: i64, records: &[MetadataRecord]) {
        self.offset = offset;
        for r in records {
            self.apply(r);
        }
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
                adding_replicas,
                removing_replicas,
                eligible_leader_replicas,
                last_known_elr,
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
                                adding_replicas: adding_replicas.clone(),
                                removing_replicas: removing_replicas.clone(),
                                elr: eligible_leader_replicas.clone(),
                                last_known_elr: last_known_elr.clone(),
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
                    ConfigResource::Group => {
                        self.group_configs.entry(resource_name.clone()).or_default()
                    }
                };
                match value {
                    Some(v) => {
                        map.insert(name.clone(), v.clone());
                    }
                    None => {
                        map.remove(name);
                    }
                }
                // An emptied set is dropped, so an image rebuilt from a snapshot (which
                // has no record for it) equals one that applied the log.
                if *resource == ConfigResource::Group
                    && self
                        .group_configs
                        .get(resource_name)
                        .is_some_and(BTreeMap::is_empty)
                {
                    self.group_configs.remove(resource_name);
                }
                if *resource == ConfigResource::ClientMetrics
                    && self
                        .client_metrics
                        .get(resource_name)
                        .is_some_and(BTreeMap::is_empty)
                {
                    self.client_metrics.remove(resource_name);
                }
                if *resource == ConfigResource::Broker
                    && self
                        .broker_configs
                        .get(resource_name)
                        .is_some_and(BTreeMap::is_empty)
                {
                    self.broker_configs.remove(resource_name);
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
            MetadataRecord::RegisterBrokerRecord {
                broker_id,
                incarnation_id,
                endpoints,
                rack,
                broker_epoch,
            } => {
                self.brokers.insert(
                    *broker_id,
                    BrokerImage {
                        id: *broker_id,
                        incarnation_id: *incarnation_id,
                        epoch: broker_epoch.unwrap_or(self.offset),
                        endpoints: endpoints.clone(),
                        rack: rack.clone(),
                        fenced: true,
                        in_controlled_shutdown: false,
                        offline_partitions: Default::default(),
                    },
                );
            }
            MetadataRecord::UnregisterBrokerRecord {
                broker_id,
                broker_epoch,
            } => {
                if self
                    .brokers
                    .get(broker_id)
                    .is_some_and(|b| b.epoch == *broker_epoch)
                {
                    self.brokers.remove(broker_id);
                }
            }
            MetadataRecord::BrokerRegistrationChangeRecord {
                broker_id,
                broker_epoch,
                fenced,
                in_controlled_shutdown,
            } => {
                if let Some(b) = self
                    .brokers
                    .get_mut(broker_id)
                    .filter(|b| b.epoch == *broker_epoch)
                {
                    if let Some(f) = fenced {
                        b.fenced = *f;
                    }
                    if let Some(s) = in_controlled_shutdown {
                        b.in_controlled_shutdown = *s;
                    }
                }
            }
            MetadataRecord::BrokerReplicasOfflineRecord {
                broker_id,
                broker_epoch,
                partitions,
            } => {
                if let Some(b) = self
                    .brokers
                    .get_mut(broker_id)
                    .filter(|b| b.epoch == *broker_epoch)
                {
                    b.offline_partitions.extend(partitions.iter().copied());
                }
            }
            MetadataRecord::PartitionChangeRecord {
                topic_id,
                partition,
                leader,
                isr,
                replicas,
                adding_replicas,
                removing_replicas,
                eligible_leader_replicas,
                last_known_elr,
            } => {
                let Some(p) = self
                    .topic_names
                    .get(topic_id)
                    .and_then(|n| self.topics.get_mut(n))
                    .and_then(|t| t.partitions.get_mut(partition))
                else {
                    return;
                };
                if let Some(l) = leader {
                    if *l != p.leader {
                        p.leader = *l;
                        p.leader_epoch += 1;
                    }
                }
                if let Some(isr) = isr {
                    p.isr = isr.clone();
                }
                if let Some(r) = replicas {
                    p.replicas = r.clone();
                }
                if let Some(a) = adding_replicas {
                    p.adding_replicas = a.clone();
                }
                if let Some(r) = removing_replicas {
                    p.removing_replicas = r.clone();
                }
                if let Some(e) = eligible_leader_replicas {
                    p.elr = e.clone();
                }
                if let Some(e) = last_known_elr {
                    p.last_known_elr = e.clone();
                }
                p.partition_epoch += 1;
            }
            MetadataRecord::UserScramCredentialRecord { name, credential } => {
                self.scram
                    .entry(name.clone())
                    .or_default()
                    .insert(credential.mechanism, credential.clone());
            }
            MetadataRecord::RemoveUserScramCredentialRecord { name, mechanism } => {
                if let Some(m) = self.scram.get_mut(name) {
                    m.remove(mechanism);
                    if m.is_empty() {
                        self.scram.remove(name);
                    }
                }
            }
            MetadataRecord::AccessControlEntryRecord { id, binding } => {
                let index = Arc::make_mut(&mut self.acl_index);
                if let Some(old) = self.acls.insert(*id, binding.clone()) {
                    index.remove(&old);
                }
                index.insert(binding.clone());
            }
            MetadataRecord::ClientQuotaRecord { entity, key, value } => {
                crate::quotas::apply(&mut self.client_quotas, entity, key, *value);
            }
            MetadataRecord::RemoveAccessControlEntryRecord { id } => {
                if let Some(old) = self.acls.remove(id) {
                    Arc::make_mut(&mut self.acl_index).remove(&old);
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
