//! Metadata records, named after KRaft's. Serialized as JSON values inside ordinary
//! record batches of the metadata log, which keeps the log inspectable with any Kafka
//! tool that can dump a segment.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A config resource, as in Kafka's ConfigRecord.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ConfigResource {
    Topic,
    Broker,
    /// A client-metrics subscription (KIP-714), by name.
    ClientMetrics,
    /// A group's configs (KIP-848, KIP-932), by group id.
    Group,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum MetadataRecord {
    /// A topic exists with this name and id.
    TopicRecord { name: String, topic_id: Uuid },
    /// A partition of a topic, its replicas and leadership.
    PartitionRecord {
        topic_id: Uuid,
        partition: i32,
        replicas: Vec<i32>,
        isr: Vec<i32>,
        leader: i32,
        leader_epoch: i32,
        partition_epoch: i32,
        /// Replicas being added by an ongoing reassignment (KIP-455); they are in
        /// `replicas` too. Empty when none is ongoing (and absent from older logs).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        adding_replicas: Vec<i32>,
        /// Replicas an ongoing reassignment will drop once the targets are in sync.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        removing_replicas: Vec<i32>,
        /// KIP-966's eligible leader replicas: replicas that left an ISR below
        /// `min.insync.replicas` and still hold every record below the high watermark.
        /// Empty unless `eligible.leader.replicas.version` is 1 (absent from older logs).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        eligible_leader_replicas: Vec<i32>,
        /// KIP-966's last known ELR: replicas that were in the ISR or ELR while it was
        /// below min ISR and have left both (an unclean shutdown), kept for recovery.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        last_known_elr: Vec<i32>,
    },
    /// Sets (`Some`) or removes (`None`) one config of a resource.
    ConfigRecord {
        resource: ConfigResource,
        resource_name: String,
        name: String,
        value: Option<String>,
    },
    /// Removes a topic, its partitions and its configs.
    RemoveTopicRecord { topic_id: Uuid },
    /// Producer ids below `next_producer_id` are handed out (KRaft's ProducerIdsRecord):
    /// the broker takes a block at a time, so ids are unique across restarts.
    ProducerIdsRecord { next_producer_id: i64 },
    /// A feature's finalized level (KIP-584, Kafka's FeatureLevelRecord); level 0
    /// removes the feature from the finalized set.
    FeatureLevelRecord { name: String, feature_level: i16 },
    /// A broker registered (KRaft's RegisterBrokerRecord). Its broker epoch is the
    /// metadata offset of the entry that holds this record (set when applied), so a
    /// new registration always has a larger epoch. A broker starts fenced.
    RegisterBrokerRecord {
        broker_id: i32,
        incarnation_id: Uuid,
        endpoints: Vec<BrokerEndpoint>,
        rack: Option<String>,
        /// Set only in snapshots, which restore an older registration's epoch; a live
        /// registration takes its entry's offset.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        broker_epoch: Option<i64>,
    },
    /// A broker left the cluster (UnregisterBroker, or replaced by a new registration).
    UnregisterBrokerRecord { broker_id: i32, broker_epoch: i64 },
    /// Fencing changes of a registered broker (KRaft's BrokerRegistrationChangeRecord):
    /// `fenced` true on session expiry, false once it caught up with the metadata log;
    /// `in_controlled_shutdown` while it moves its leaderships away. Applied only when
    /// `broker_epoch` is the broker's current one.
    BrokerRegistrationChangeRecord {
        broker_id: i32,
        broker_epoch: i64,
        fenced: Option<bool>,
        in_controlled_shutdown: Option<bool>,
    },
    /// Partitions a broker can no longer host because their log directory failed
    /// (KIP-858's offline dirs in BrokerHeartbeat, kept here by partition). Added to the
    /// broker's set; applied only at its current epoch. A new registration (a restart)
    /// starts with none.
    BrokerReplicasOfflineRecord {
        broker_id: i32,
        broker_epoch: i64,
        partitions: Vec<(Uuid, i32)>,
    },
    /// A change of one partition's leadership or replica sets (KRaft's
    /// PartitionChangeRecord). `None` leaves a field as it is. A new leader bumps the
    /// leader epoch; every change bumps the partition epoch.
    PartitionChangeRecord {
        topic_id: Uuid,
        partition: i32,
        leader: Option<i32>,
        isr: Option<Vec<i32>>,
        replicas: Option<Vec<i32>>,
        /// A reassignment's replica sets (see PartitionRecord); `None` leaves them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        adding_replicas: Option<Vec<i32>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        removing_replicas: Option<Vec<i32>>,
        /// The ELR and last known ELR (see PartitionRecord); `None` leaves them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        eligible_leader_replicas: Option<Vec<i32>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last_known_elr: Option<Vec<i32>>,
    },
    /// A user's SCRAM credential for one mechanism, set or replaced (Kafka's
    /// UserScramCredentialRecord): salt, stored key, server key, iterations; never the
    /// password.
    UserScramCredentialRecord {
        name: String,
        credential: gregor_security::scram::ScramCredential,
    },
    /// A user's SCRAM credential for one mechanism removed.
    RemoveUserScramCredentialRecord {
        name: String,
        mechanism: gregor_security::scram::ScramMechanism,
    },
    /// An ACL, by the id the controller gave it (Kafka's AccessControlEntryRecord).
    AccessControlEntryRecord {
        id: Uuid,
        binding: gregor_security::acl::AclBinding,
    },
    /// Removes the ACL with this id (Kafka's RemoveAccessControlEntryRecord).
    RemoveAccessControlEntryRecord { id: Uuid },
    /// Sets (`Some`) or removes (`None`) one quota of a client-quota entity (Kafka's
    /// ClientQuotaRecord).
    ClientQuotaRecord {
        entity: crate::quotas::QuotaEntity,
        key: String,
        value: Option<crate::quotas::QuotaValue>,
    },
}

/// One listener of a registered broker, as in BrokerRegistration's Listeners.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerEndpoint {
    pub name: String,
    pub host: String,
    pub port: u16,
    pub security_protocol: i16,
}

impl MetadataRecord {
    pub fn encode(&self) -> Result<Vec<u8>, serde_json::Error> {
        serde_json::to_vec(self)
    }
    pub fn decode(bytes: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(bytes)
    }
}

/// The ConfigRecords that take one resource's configs from `current` to `next`: a
/// removal for each config gone, a set for each one new or changed.
pub fn config_changes(
    resource: ConfigResource,
    resource_name: &str,
    current: &std::collections::BTreeMap<String, String>,
    next: &std::collections::BTreeMap<String, String>,
) -> Vec<MetadataRecord> {
    let record = |key: &str, value: Option<String>| MetadataRecord::ConfigRecord {
        resource,
        resource_name: resource_name.to_string(),
        name: key.to_string(),
        value,
    };
    let mut out: Vec<MetadataRecord> = current
        .keys()
        .filter(|k| !next.contains_key(*k))
        .map(|k| record(k, None))
        .collect();
    for (key, v) in next {
        if current.get(key) != Some(v) {
            out.push(record(key, Some(v.clone())));
        }
    }
    out
}
