//! The operations a broker asks of the active controller, as data.
//!
//! A broker that is not the active controller cannot run a decision locally: it sends
//! the request to the controller (over the quorum's RPC), which decides against its own
//! image and commits. So every metadata write is one of these values; `decide` turns it
//! into records against an image (the controller's, at commit time).

use serde::{Deserialize, Serialize};

use crate::controller::{self, ConfigOp, ControllerError, NewTopic};
use crate::image::MetadataImage;
use crate::records::MetadataRecord;
use crate::{acls, client_metrics, election, features, group_config, placement, reassignment};
use gregor_security::acl::{AclBinding, AclBindingFilter};

/// One config operation: name, op, value.
pub type ConfigOps = Vec<(String, ConfigOp, Option<String>)>;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ControllerRequest {
    /// CreateTopics. `if_absent`: an existing topic is success (auto-creation and the
    /// internal topics, where a racing creator is fine), not TOPIC_ALREADY_EXISTS.
    /// A replication factor of -1 takes `default_replication_factor`, capped by the live
    /// brokers when `cap_replication` (internal topics), else an error when too large.
    CreateTopic {
        topic: NewTopic,
        if_absent: bool,
        cap_replication: bool,
    },
    DeleteTopic {
        name: String,
    },
    CreatePartitions {
        name: String,
        count: i32,
    },
    AlterTopicConfigs {
        name: String,
        ops: ConfigOps,
    },
    ReplaceTopicConfigs {
        name: String,
        configs: Vec<(String, Option<String>)>,
    },
    AlterBrokerConfigs {
        name: String,
        ops: ConfigOps,
    },
    AlterClientMetrics {
        name: String,
        ops: ConfigOps,
    },
    /// IncrementalAlterConfigs on a GROUP resource.
    AlterGroupConfigs {
        group: String,
        ops: ConfigOps,
    },
    UpdateFeatures {
        updates: Vec<features::FeatureUpdate>,
    },
    AllocateProducerIds,
    /// ElectLeaders: the elections of `kind` these partitions still need when decided
    /// (see `election`); the others are left as they are.
    ElectLeaders {
        kind: election::ElectionType,
        partitions: Vec<(uuid::Uuid, i32)>,
    },
    /// AlterPartitionReassignments (KIP-455): start, replace or cancel (`None`) the
    /// reassignment of each partition; partitions refused when decided are left alone
    /// (the broker checked them against its image before asking).
    AlterReassignments {
        partitions: Vec<reassignment::Reassignment>,
        allow_rf_change: bool,
    },
    /// UnregisterBroker (KIP-631): a stopped (fenced) broker's registration goes, after
    /// it leaves every ISR and leadership as if fenced.
    UnregisterBroker {
        broker_id: i32,
    },
    /// AlterUserScramCredentials: deletions then upsertions, each already checked by the
    /// broker (a deletion of a credential that is gone by now is skipped).
    AlterScramCredentials {
        deletions: Vec<(String, gregor_security::scram::ScramMechanism)>,
        upsertions: Vec<(String, gregor_security::scram::ScramCredential)>,
    },
    /// CreateAcls: each valid binding not already present gets an id (the broker
    /// answers the invalid ones itself; they are skipped here too).
    CreateAcls {
        bindings: Vec<AclBinding>,
    },
    /// DeleteAcls: removes every ACL some filter matches in the image at commit time
    /// (the committed reply names them, see `active::ControllerRpcReply`).
    DeleteAcls {
        filters: Vec<AclBindingFilter>,
    },
    /// AlterClientQuotas: each entity's keys set or removed (already checked by the
    /// broker); only changes become records.
    AlterClientQuotas {
        entries: Vec<crate::quotas::QuotaAlteration>,
    },
}

impl ControllerRequest {
    /// The records this request makes against `image`, or why it is refused.
    pub fn decide(&self, image: &MetadataImage) -> Result<Vec<MetadataRecord>, ControllerError> {
        match self {
            ControllerRequest::CreateTopic {
                topic,
                if_absent,
                cap_replication,
            } => {
                if *if_absent && image.topic(&topic.name).is_some() {
                    return Ok(Vec::new());
                }
                let order = placement::placement_order(image);
                let mut t = topic.clone();
                if *cap_replication {
                    let live = i16::try_from(order.len()).unwrap_or(i16::MAX).max(1);
                    t.replication_factor = t.replication_factor.clamp(1, live);
                }
                controller::create_topic(image, &t, &order)
            }
            ControllerRequest::DeleteTopic { name } => controller::delete_topic(image, name),
            ControllerRequest::CreatePartitions { name, count } => {
                let order = placement::placement_order(image);
                controller::create_partitions(image, name, *count, &order)
            }
            ControllerRequest::AlterTopicConfigs { name, ops } => {
                controller::alter_topic_configs(image, name, ops)
            }
            ControllerRequest::ReplaceTopicConfigs { name, configs } => {
                controller::replace_topic_configs(image, name, configs)
            }
            ControllerRequest::AlterBrokerConfigs { name, ops } => {
                if !name.is_empty() {
                    let known = name
                        .parse::<i32>()
                        .ok()
                        .is_some_and(|id| image.brokers.contains_key(&id));
                    if !known {
                        return Err(ControllerError::InvalidRequest(format!(
                            "Unknown broker {name}"
                        )));
                    }
                }
                controller::alter_broker_configs(image, name, ops)
            }
            ControllerRequest::AlterClientMetrics { name, ops } => {
                client_metrics::alter(image, name, ops)
            }
            ControllerRequest::AlterGroupConfigs { group, ops } => {
                group_config::alter(image, group, ops)
            }
            ControllerRequest::UpdateFeatures { updates } => {
                features::update_features(image, updates)
            }
            ControllerRequest::AllocateProducerIds => controller::allocate_producer_ids(image),
            ControllerRequest::ElectLeaders { kind, partitions } => {
                Ok(election::election_records(image, *kind, partitions))
            }
            ControllerRequest::AlterReassignments {
                partitions,
                allow_rf_change,
            } => {
                // Each against the image as the previous ones left it, so a partition
                // named twice ends as the last entry says.
                let mut next = image.clone();
                let mut out = Vec::new();
                for r in partitions {
                    if let Ok(recs) = reassignment::records(&next, r, *allow_rf_change) {
                        next.apply_entry(next.offset, &recs);
                        out.extend(recs);
                    }
                }
                Ok(out)
            }
            ControllerRequest::UnregisterBroker { broker_id } => {
                let b = image
                    .brokers
                    .get(broker_id)
                    .ok_or(ControllerError::BrokerIdNotRegistered(*broker_id))?;
                // Kafka unregisters a live broker too, which then registers again at
                // once; refusing says what happened instead.
                if !b.fenced {
                    return Err(ControllerError::InvalidRequest(format!(
                        "Broker {broker_id} is still live: stop it before unregistering it"
                    )));
                }
                let mut out = crate::active::fence_records(image, *broker_id);
                out.push(MetadataRecord::UnregisterBrokerRecord {
                    broker_id: *broker_id,
                    broker_epoch: b.epoch,
                });
                Ok(out)
            }
            ControllerRequest::AlterScramCredentials {
                deletions,
                upsertions,
            } => {
                let mut out: Vec<MetadataRecord> = deletions
                    .iter()
                    .filter(|(name, m)| image.scram_credential(name, *m).is_some())
                    .map(
                        |(name, m)| MetadataRecord::RemoveUserScramCredentialRecord {
                            name: name.clone(),
                            mechanism: *m,
                        },
                    )
                    .collect();
                out.extend(upsertions.iter().map(|(name, c)| {
                    MetadataRecord::UserScramCredentialRecord {
                        name: name.clone(),
                        credential: c.clone(),
                    }
                }));
                Ok(out)
            }
            ControllerRequest::CreateAcls { bindings } => Ok(acls::create_records(image, bindings)),
            ControllerRequest::DeleteAcls { filters } => Ok(acls::delete_records(image, filters)),
            ControllerRequest::AlterClientQuotas { entries } => {
                Ok(crate::quotas::alter_records(image, entries))
            }
        }
    }
}
