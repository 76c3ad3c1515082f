//! OffsetCommit (key 8): store a group's consumed positions in `__consumer_offsets`.
//! Partitions of unknown topics are refused one by one; a group-level problem
//! (unknown member, stale generation, rebalance in progress) applies to every partition.

use std::sync::Arc;

use gregor_protocol::kp::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use gregor_protocol::kp::messages::{ApiKey, OffsetCommitRequest, OffsetCommitResponse};

use super::{ApiSpec, RequestContext};
use crate::broker::Broker;
use crate::error::group_code;
use crate::group::{CommitRequest, OffsetCommit};

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::OffsetCommit,
    min: 2,
    max: 9,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let v = ctx.version();
    // One slot per requested partition: Some(error) is decided here, None goes to the group.
    let requested = req.topics.iter().flat_map(|t| {
        t.partitions.iter().map(move |p| OffsetCommit {
            topic: t.name.to_string(),
            partition: p.partition_index,
            offset: p.committed_offset,
            leader_epoch: if v >= 6 { p.committed_leader_epoch } else { -1 },
            metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
        })
    });
    let (early, offsets) =
        crate::group::split_known(requested, |t, p| broker.replicas.partition(t, p).is_some());
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
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let err = errors.next().flatten();
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(group_code(err.as_ref()))
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}
