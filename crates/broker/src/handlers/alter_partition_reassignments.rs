//! AlterPartitionReassignments (key 45, KIP-455; v1 adds KIP-860's
//! allow_replication_factor_change): start, replace or cancel the reassignment of each
//! named partition. Each is checked against the metadata image (see
//! `gregor_metadata::reassignment`); the valid ones go to the controller as one
//! request, answered once committed. The move itself (new replicas catching up, the
//! leader moving, old replicas dropped) happens after the answer.

use std::sync::Arc;

use gregor_metadata::reassignment::{self, Reassignment};
use gregor_metadata::{ControllerError, ControllerRequest};
use gregor_protocol::kp::messages::alter_partition_reassignments_response::{
    ReassignablePartitionResponse, ReassignableTopicResponse,
};
use gregor_protocol::kp::messages::{
    AlterPartitionReassignmentsRequest, AlterPartitionReassignmentsResponse, ApiKey,
};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;

use super::{AclOperation, ApiSpec, RequestContext};
use crate::broker::Broker;
use crate::error::controller_error_code;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::AlterPartitionReassignments,
    min: 0,
    max: 1,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: AlterPartitionReassignmentsRequest,
) -> AlterPartitionReassignmentsResponse {
    if !ctx.allowed_on_cluster(AclOperation::Alter) {
        return refused(&req);
    }
    // v0 has no such field: a change of replication factor is allowed.
    let allow_rf_change = ctx.header.request_api_version < 1 || req.allow_replication_factor_change;
    let image = broker.metadata.image();
    let mut valid: Vec<Reassignment> = Vec::new();
    // (topic, partition, refusal)
    let mut checked: Vec<(usize, i32, Option<ControllerError>)> = Vec::new();
    for (ti, t) in req.topics.iter().enumerate() {
        let topic = image.topic(t.name.as_str());
        for p in &t.partitions {
            let target: Option<Vec<i32>> =
                p.replicas.as_ref().map(|r| r.iter().map(|b| b.0).collect());
            let outcome = match topic {
                None => Err(ControllerError::UnknownTopic),
                Some(tp) => reassignment::check(
                    &image,
                    tp.id,
                    p.partition_index,
                    target.as_deref(),
                    allow_rf_change,
                )
                .map(|()| tp.id),
            };
            match outcome {
                Ok(id) => {
                    valid.push((id, p.partition_index, target));
                    checked.push((ti, p.partition_index, None));
                }
                Err(e) => checked.push((ti, p.partition_index, Some(e))),
            }
        }
    }
    let failure = if valid.is_empty() {
        None
    } else {
        broker
            .commit_metadata(ControllerRequest::AlterReassignments {
                partitions: valid,
                allow_rf_change,
            })
            .await
            .err()
            .map(|e| crate::error::controller_failure(&e))
    };
    let mut responses: Vec<ReassignableTopicResponse> = req
        .topics
        .iter()
        .map(|t| ReassignableTopicResponse::default().with_name(t.name.clone()))
        .collect();
    for (ti, partition, refusal) in checked {
        let (code, message) = match (refusal, &failure) {
            (Some(e), _) => (Some(controller_error_code(&e)), Some(e.to_string())),
            (None, Some((code, msg))) => (Some(*code), Some(msg.clone())),
            (None, None) => (None, None),
        };
        if let Some(t) = responses.get_mut(ti) {
            t.partitions.push(
                ReassignablePartitionResponse::default()
                    .with_partition_index(partition)
                    .with_error_code(code.map_or(0, |c| c.code()))
                    .with_error_message(message.map(StrBytes::from_string)),
            );
        }
    }
    AlterPartitionReassignmentsResponse::default()
        .with_error_message(None)
        .with_allow_replication_factor_change(allow_rf_change)
        .with_responses(responses)
}

/// Kafka's answer without ALTER on the cluster: the error at the top and on every
/// partition asked for.
fn refused(req: &AlterPartitionReassignmentsRequest) -> AlterPartitionReassignmentsResponse {
    let code = ResponseError::ClusterAuthorizationFailed.code();
    let msg = || Some(StrBytes::from_static_str("Cluster authorization failed."));
    let responses = req
        .topics
        .iter()
        .map(|t| {
            ReassignableTopicResponse::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            ReassignablePartitionResponse::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code)
                                .with_error_message(msg())
                        })
                        .collect(),
                )
        })
        .collect();
    AlterPartitionReassignmentsResponse::default()
        .with_error_code(code)
        .with_error_message(msg())
        .with_responses(responses)
}
