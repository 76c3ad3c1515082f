//! OffsetCommit (key 8): store a group's consumed positions in `__consumer_offsets`.
//! Partitions of unknown topics are refused one by one; a group-level problem
//! (unknown member, stale generation, rebalance in progress) applies to every partition.
//! v10 names topics by id (in the request and the response); a topic id this cluster
//! does not know is UNKNOWN_TOPIC_ID for each of its partitions.

use std::sync::Arc;

use gregor_protocol::kp::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use gregor_protocol::kp::messages::{ApiKey, OffsetCommitRequest, OffsetCommitResponse};
use gregor_protocol::kp::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::broker::Broker;
use crate::error::group_code;
use crate::group::{CommitRequest, OffsetCommit};

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::OffsetCommit,
    min: 2,
    max: 10,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let v = ctx.version();
    // v10+: each topic's name comes from its id; None for an id nobody knows.
    let names: Vec<Option<String>> = if v >= 10 {
        let image = broker.metadata.image();
        req.topics
            .iter()
            .map(|t| {
                image
                    .topic_by_id(&t.topic_id)
                    .map(|found| found.name.clone())
            })
            .collect()
    } else {
        req.topics
            .iter()
            .map(|t| Some(t.name.to_string()))
            .collect()
    };
    // One slot per requested partition of a named topic: Some(error) is decided here,
    // None goes to the group.
    let requested = req.topics.iter().zip(&names).flat_map(|(t, name)| {
        let name = name.as_ref();
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
        broker.groups.commit(broker, &req.group_id, commit).await
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
                    let code = match name {
                        Some(_) => group_code(errors.next().flatten().as_ref()),
                        None => ResponseError::UnknownTopicId.code(),
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
