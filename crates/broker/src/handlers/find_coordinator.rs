//! FindCoordinator (key 10), including batched keys (KIP-699, v4). v5 only allows the
//! TRANSACTION_ABORTABLE error (KIP-890); v6 adds the share key type (KIP-932): the
//! key `group:topicId:partition` names a share-partition, whose share coordinator is
//! the leader of its `__share_group_state` partition.
//!
//! In a single-node cluster this broker coordinates every group and every
//! transactional id, except those whose internal-topic partition is offline
//! (COORDINATOR_NOT_AVAILABLE).
//! Besides consumer groups, librdkafka needs this API listed to enable LZ4 at all.
//!
//! Authorization is Kafka's, per key: DESCRIBE on the GROUP (GROUP_AUTHORIZATION_FAILED)
//! or on the TRANSACTIONAL_ID (TRANSACTIONAL_ID_AUTHORIZATION_FAILED); a share key needs
//! CLUSTER_ACTION on the cluster (CLUSTER_AUTHORIZATION_FAILED): only brokers look
//! share coordinators up.

use std::sync::Arc;

use gregor_protocol::kp::messages::find_coordinator_response::Coordinator;
use gregor_protocol::kp::messages::{
    ApiKey, BrokerId, FindCoordinatorRequest, FindCoordinatorResponse,
};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;

use super::{AclOperation, ApiSpec, RequestContext, ResourceType};
use crate::broker::Broker;
use crate::coordinator_partition::{owner, Owner};
use crate::group::coordinator::OFFSETS_TOPIC;
use crate::share::state::STATE_TOPIC;
use crate::txn::coordinator::TXN_TOPIC;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::FindCoordinator,
    min: 0,
    max: 6,
};

const GROUP: i8 = 0;
/// Kafka answers a found coordinator with the error message "NONE" (its
/// `Errors.NONE.message()`), not null, at every version that has the field.
const FOUND: &str = "NONE";
const TRANSACTION: i8 = 1;
const SHARE: i8 = 2;

/// Kafka's refusal of one key, with its exception's message, or `None` when the
/// principal may look its coordinator up.
fn refused(ctx: &RequestContext, key: &str, key_type: i8) -> Option<(ResponseError, &'static str)> {
    let (allowed, refusal) = match key_type {
        GROUP => (
            ctx.allowed(AclOperation::Describe, ResourceType::Group, key),
            (
                ResponseError::GroupAuthorizationFailed,
                "Not authorized to access group: Group authorization failed.",
            ),
        ),
        TRANSACTION => (
            ctx.allowed(AclOperation::Describe, ResourceType::TransactionalId, key),
            (
                ResponseError::TransactionalIdAuthorizationFailed,
                "Transactional Id authorization failed.",
            ),
        ),
        SHARE => (
            ctx.allowed_on_cluster(AclOperation::ClusterAction),
            (
                ResponseError::ClusterAuthorizationFailed,
                "Cluster authorization failed.",
            ),
        ),
        _ => return None,
    };
    (!allowed).then_some(refusal)
}

/// The coordinator for one key: `Ok((node, host, port))` or an error with its message.
fn locate(
    broker: &Broker,
    listener: &str,
    key: &str,
    key_type: i8,
) -> Result<(i32, String, i32), (ResponseError, &'static str)> {
    match key_type {
        GROUP if key.is_empty() => Err((
            ResponseError::InvalidRequest,
            "The group id must not be empty.",
        )),
        TRANSACTION if key.is_empty() => Err((
            ResponseError::InvalidRequest,
            "The transactional id must not be empty.",
        )),
        TRANSACTION if crate::txn::coordinator::validate_id(key).is_err() => Err((
            ResponseError::InvalidRequest,
            "The transactional id is longer than 32767 bytes.",
        )),
        SHARE if !valid_share_key(key) => Err((
            ResponseError::InvalidRequest,
            "The share coordinator key must be group:topicId:partition.",
        )),
        GROUP | TRANSACTION | SHARE => {
            // The id's partition of the internal topic, over the topic's partition
            // count: if that one partition is offline, only its ids are unavailable.
            let owner = match key_type {
                GROUP => owner(
                    &broker.host,
                    OFFSETS_TOPIC,
                    key,
                    broker.config.group.offsets_partitions,
                ),
                TRANSACTION => owner(
                    &broker.host,
                    TXN_TOPIC,
                    key,
                    broker.config.txn.state_partitions,
                ),
                _ => owner(
                    &broker.host,
                    STATE_TOPIC,
                    key,
                    broker.shares.share_state.config().partitions,
                ),
            };
            let unavailable = (
                ResponseError::CoordinatorNotAvailable,
                "The coordinator is not available.",
            );
            match owner {
                Owner::Unavailable(_) => Err(unavailable),
                // The topic is created on first use (see `handle`); until then this
                // broker answers, as a single node does.
                Owner::Online(_) | Owner::NoTopic(_) => broker
                    .endpoints()
                    .into_iter()
                    .find(|e| e.name == listener)
                    .map(|e| (broker.config.node_id, e.host, i32::from(e.port)))
                    .ok_or(unavailable),
                Owner::Elsewhere { leader, .. } => {
                    let image = broker.metadata.image();
                    crate::cluster::live_brokers(&image, listener)
                        .into_iter()
                        .find(|b| b.id == leader)
                        .map(|b| (b.id, b.host, b.port))
                        .ok_or(unavailable)
                }
            }
        }
        _ => Err((
            ResponseError::InvalidRequest,
            "Unknown coordinator key type.",
        )),
    }
}

/// Kafka's share coordinator key: `group:topicId:partition`, a non-empty group (which
/// may itself contain colons), a topic id and a partition number.
fn valid_share_key(key: &str) -> bool {
    let mut parts = key.rsplitn(3, ':');
    let (Some(partition), Some(topic), Some(group)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    !group.is_empty() && !topic.is_empty() && partition.parse::<i32>().is_ok_and(|p| p >= 0)
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let version = ctx.header.request_api_version;
    let keys: Vec<&str> = if version >= 4 {
        req.coordinator_keys.iter().map(|k| k.as_str()).collect()
    } else {
        vec![req.key.as_str()]
    };
    let refusals: Vec<_> = keys.iter().map(|k| refused(ctx, k, req.key_type)).collect();
    // In a cluster the coordinator is the leader of the id's partition, so the internal
    // topic must exist before the answer can name it (Kafka creates it here too, for a
    // key the principal may look up).
    if broker.metadata.image().brokers.len() > 1 && refusals.iter().any(Option::is_none) {
        let (topic, partitions, rf) = match req.key_type {
            TRANSACTION => (
                TXN_TOPIC,
                broker.config.txn.state_partitions,
                broker.config.cluster.txn_replication_factor,
            ),
            SHARE => {
                let c = broker.shares.share_state.config();
                (STATE_TOPIC, c.partitions, c.replication_factor)
            }
            _ => (
                OFFSETS_TOPIC,
                broker.config.group.offsets_partitions,
                broker.config.cluster.offsets_replication_factor,
            ),
        };
        if broker.metadata.image().topic(topic).is_none() {
            if let Err(e) = broker.ensure_internal_topic(topic, partitions, rf).await {
                tracing::warn!(topic, error = %e, "cannot create the coordinator topic yet");
            }
        }
    }
    if version >= 4 {
        let coordinators = req
            .coordinator_keys
            .iter()
            .zip(refusals)
            .map(|(key, refusal)| {
                let c = Coordinator::default().with_key(key.clone());
                let found = match refusal {
                    Some(refusal) => Err(refusal),
                    None => locate(broker, &ctx.listener, key, req.key_type),
                };
                match found {
                    Ok((node, host, port)) => c
                        .with_error_message(Some(StrBytes::from_static_str(FOUND)))
                        .with_node_id(BrokerId(node))
                        .with_host(StrBytes::from_string(host))
                        .with_port(port),
                    Err((code, msg)) => c
                        .with_error_code(code.code())
                        .with_error_message(Some(StrBytes::from_static_str(msg)))
                        .with_node_id(BrokerId(-1))
                        .with_port(-1),
                }
            })
            .collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let found = match refusals.into_iter().next().flatten() {
        Some(refusal) => Err(refusal),
        None => locate(broker, &ctx.listener, &req.key, req.key_type),
    };
    match found {
        Ok((node, host, port)) => FindCoordinatorResponse::default()
            .with_error_message((version >= 1).then(|| StrBytes::from_static_str(FOUND)))
            .with_node_id(BrokerId(node))
            .with_host(StrBytes::from_string(host))
            .with_port(port),
        Err((code, msg)) => {
            let mut r = FindCoordinatorResponse::default()
                .with_error_code(code.code())
                .with_node_id(BrokerId(-1))
                .with_port(-1);
            if version >= 1 {
                r.error_message = Some(StrBytes::from_static_str(msg));
            }
            r
        }
    }
}
