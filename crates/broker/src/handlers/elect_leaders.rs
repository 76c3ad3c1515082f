//! ElectLeaders (key 43, KIP-183/KIP-460): a preferred or unclean leader election on the
//! named partitions (all partitions when none are named). The outcome of each is
//! decided against the metadata image (see `gregor_metadata::election`); the elections
//! to make go to the controller as one request and are answered once applied here.

use std::sync::Arc;

use gregor_metadata::election::{self, ElectionOutcome, ElectionType};
use gregor_metadata::ControllerRequest;
use gregor_protocol::kp::messages::elect_leaders_response::{
    PartitionResult, ReplicaElectionResult,
};
use gregor_protocol::kp::messages::{ApiKey, ElectLeadersRequest, ElectLeadersResponse, TopicName};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;
use uuid::Uuid;

use super::{AclOperation, ApiSpec, RequestContext};
use crate::broker::Broker;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::ElectLeaders,
    min: 0,
    max: 2,
};

/// One partition asked for: its topic's id (when the topic exists) and the outcome.
struct Asked {
    topic: TopicName,
    topic_id: Option<Uuid>,
    partition: i32,
    outcome: ElectionOutcome,
}

/// The partition's error, `None` when it is to be elected.
fn error_of(outcome: ElectionOutcome) -> Option<ResponseError> {
    match outcome {
        ElectionOutcome::Elect(_) | ElectionOutcome::ElectUnclean(_) => None,
        ElectionOutcome::NotNeeded => Some(ResponseError::ElectionNotNeeded),
        ElectionOutcome::PreferredNotAvailable => Some(ResponseError::PreferredLeaderNotAvailable),
        ElectionOutcome::EligibleNotAvailable => Some(ResponseError::EligibleLeadersNotAvailable),
        ElectionOutcome::UnknownPartition => Some(ResponseError::UnknownTopicOrPartition),
    }
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: ElectLeadersRequest,
) -> ElectLeadersResponse {
    if !ctx.allowed_on_cluster(AclOperation::Alter) {
        return refused(&req, ctx.version());
    }
    let Some(kind) = ElectionType::from_code(req.election_type) else {
        return ElectLeadersResponse::default()
            .with_error_code(ResponseError::InvalidRequest.code());
    };
    let image = broker.metadata.image();
    let all = req.topic_partitions.is_none();
    let mut asked: Vec<Asked> = Vec::new();
    match &req.topic_partitions {
        Some(topics) => {
            for t in topics {
                let topic = image.topics.get(t.topic.as_str());
                for &partition in &t.partitions {
                    asked.push(Asked {
                        topic: t.topic.clone(),
                        topic_id: topic.map(|t| t.id),
                        partition,
                        outcome: topic.map_or(ElectionOutcome::UnknownPartition, |tp| {
                            election::outcome_of(&image, tp.id, partition, kind)
                        }),
                    });
                }
            }
        }
        None => {
            for t in image.topics.values() {
                for (&partition, p) in &t.partitions {
                    asked.push(Asked {
                        topic: TopicName(StrBytes::from_string(t.name.clone())),
                        topic_id: Some(t.id),
                        partition,
                        outcome: election::outcome(&image, p, kind),
                    });
                }
            }
        }
    }
    let to_elect: Vec<(Uuid, i32)> = asked
        .iter()
        .filter(|a| error_of(a.outcome).is_none())
        .filter_map(|a| a.topic_id.map(|id| (id, a.partition)))
        .collect();
    let failure = if to_elect.is_empty() {
        None
    } else {
        broker
            .commit_metadata(ControllerRequest::ElectLeaders {
                kind,
                partitions: to_elect,
            })
            .await
            .err()
            .map(|e| crate::error::controller_failure(&e))
    };

    let mut results: Vec<ReplicaElectionResult> = Vec::new();
    for a in asked {
        let (code, message) = match (error_of(a.outcome), &failure) {
            (None, Some((code, msg))) => (Some(*code), Some(msg.clone())),
            (code, _) => (code, None),
        };
        // Asked for everything, the partitions that needed nothing are left out (Kafka).
        if all && code == Some(ResponseError::ElectionNotNeeded) {
            continue;
        }
        let result = PartitionResult::default()
            .with_partition_id(a.partition)
            .with_error_code(code.map_or(0, |c| c.code()))
            .with_error_message(message.map(StrBytes::from_string));
        match results.last_mut() {
            Some(r) if r.topic == a.topic => r.partition_result.push(result),
            _ => results.push(
                ReplicaElectionResult::default()
                    .with_topic(a.topic)
                    .with_partition_result(vec![result]),
            ),
        }
    }
    ElectLeadersResponse::default().with_replica_election_results(results)
}

/// Kafka's answer without ALTER on the cluster: the error at the top (v1+) and on every
/// partition named (none when all were asked for).
fn refused(req: &ElectLeadersRequest, version: i16) -> ElectLeadersResponse {
    let code = ResponseError::ClusterAuthorizationFailed.code();
    let results = req
        .topic_partitions
        .iter()
        .flatten()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|&p| {
                    PartitionResult::default()
                        .with_partition_id(p)
                        .with_error_code(code)
                        .with_error_message(Some(StrBytes::from_static_str(
                            "Cluster authorization failed.",
                        )))
                })
                .collect();
            ReplicaElectionResult::default()
                .with_topic(t.topic.clone())
                .with_partition_result(partitions)
        })
        .collect();
    ElectLeadersResponse::default()
        .with_error_code(if version >= 1 { code } else { 0 })
        .with_replica_election_results(results)
}
