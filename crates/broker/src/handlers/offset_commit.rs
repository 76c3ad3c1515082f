//! OffsetCommit (key 8): store a group's consumed positions in `__consumer_offsets`.
//! Partitions of unknown topics are refused one by one; a group-level problem
//! (unknown member, stale generation, rebalance in progress) applies to every partition.
//! v10 names topics by id (in the request and the response); a topic id this cluster
//! does not know is UNKNOWN_TOPIC_ID for each of its partitions.
//!
//! Authorization is Kafka's: READ on the group (else GROUP_AUTHORIZATION_FAILED for
//! every partition), then READ on each topic (else TOPIC_AUTHORIZATION_FAILED for its
//! partitions, before the topic's existence is looked at).

use std::sync::Arc;

use gregor_protocol::kp::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use gregor_protocol::kp::messages::{ApiKey, OffsetCommitRequest, OffsetCommitResponse};
use gregor_protocol::kp::ResponseError;

use super::{AclOperation, ApiSpec, RequestContext, ResourceType};
use crate::broker::Broker;
use crate::error::group_code;
use crate::group::{CommitRequest, OffsetCommit};

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::OffsetCommit,
    min: 2,
    max: 10,
};

/// Every partition of the request gets `code` (Kafka's `getErrorResponse`).
fn refuse_all(req: OffsetCommitRequest, code: ResponseError) -> OffsetCommitResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code.code())
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_topic_id(t.topic_id)
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let v = ctx.version();
    if !ctx.allowed(AclOperation::Read, ResourceType::Group, &req.group_id) {
        return refuse_all(req, ResponseError::GroupAuthorizationFailed);
    }
    // v10+: each topic's name comes from its id (UNKNOWN_TOPIC_ID for an id nobody
    // knows); a topic the principal may not read is refused here.
    let image = broker.metadata.image();
    let names: Vec<Result<String, ResponseError>> = req
        .topics
        .iter()
        .map(|t| {
            let name = if v >= 10 {
                image
                    .topic_by_id(&t.topic_id)
                    .map(|found| found.name.clone())
                    .ok_or(ResponseError::UnknownTopicId)?
            } else {
                t.name.to_string()
            };
            if ctx.allowed(AclOperation::Read, ResourceType::Topic, &name) {
                Ok(name)
            } else {
                Err(ResponseError::TopicAuthorizationFailed)
            }
        })
        .collect();
    // One slot per requested partition of a named topic: Some(error) is decided here,
    // None goes to the group.
    let requested = req.topics.iter().zip(&names).flat_map(|(t, name)| {
        let name = name.as_ref().ok();
        t.partitions.iter().filter_map(move |p| {
            Some(OffsetCommit {
                topic: name?.clone(),
                partition: p.partition_index,
                offset: p.committed_offset,
                leader_epoch: if v >= 6 { p.committed_leader_epoch } else { -1 },
                metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
            })
        })
    });
    let (early, offsets) =
        crate::group::split_known(requested, |t, p| broker.partition_exists(t, p));
    let commit = CommitRequest {
        member_id: req.member_id.to_string(),
        group_instance_id: req.group_instance_id.map(|s| s.to_string()),
        generation_id: req.generation_id_or_member_epoch,
        offsets,
        version: v,
    };
    let outcome = if commit.offsets.is_empty() {
        Ok(Vec::new())
    } else {
        broker.groups.commit(&req.group_id, commit).await
    };
    let mut errors = crate::group::merge_partition_results(early, outcome).into_iter();
    let topics = req
        .topics
        .into_iter()
        .zip(names)
        .map(|(t, name)| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let code = match &name {
                        Ok(_) => group_code(errors.next().flatten().as_ref()),
                        Err(refused) => refused.code(),
                    };
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_topic_id(t.topic_id)
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}
