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
use crate::{client_metrics, features, placement};

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
    UpdateFeatures {
        updates: Vec<features::FeatureUpdate>,
    },
    AllocateProducerIds,
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
            ControllerRequest::UpdateFeatures { updates } => {
                features::update_features(image, updates)
            }
            ControllerRequest::AllocateProducerIds => controller::allocate_producer_ids(image),
        }
    }
}
