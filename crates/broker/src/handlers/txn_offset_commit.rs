//! TxnOffsetCommit (key 28): a transactional producer commits a group's offsets inside
//! its transaction. They are written to `__consumer_offsets` with the producer's id and
//! epoch and become the group's committed offsets only when the commit marker lands.
//! The group's offsets partition must be in the transaction (AddOffsetsToTxn first);
//! v5 with `transaction.version` 2 (KIP-890 part 2) adds it to the transaction itself.

use std::sync::Arc;

use gregor_protocol::kp::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use gregor_protocol::kp::messages::{ApiKey, TxnOffsetCommitRequest, TxnOffsetCommitResponse};
use gregor_protocol::kp::ResponseError;

use super::{AclOperation, ApiSpec, RequestContext, ResourceType};
use crate::broker::Broker;
use crate::error::{fenced_code, group_error_code, txn_error_code};
use crate::group::{CommitRequest, GroupError, OffsetCommit};

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::TxnOffsetCommit,
    min: 0,
    max: 5,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    let v = ctx.version();
    // Kafka: WRITE on the transactional id, then READ on the group (either refusal for
    // every partition), then READ per topic (refused before unknown).
    let refusal = if !ctx.allowed(
        AclOperation::Write,
        ResourceType::TransactionalId,
        &req.transactional_id,
    ) {
        Some(ResponseError::TransactionalIdAuthorizationFailed)
    } else if !ctx.allowed(AclOperation::Read, ResourceType::Group, &req.group_id) {
        Some(ResponseError::GroupAuthorizationFailed)
    } else {
        None
    };
    if let Some(error) = refusal {
        return every_partition(req, error.code());
    }
    let readable = |topic: &str| ctx.allowed(AclOperation::Read, ResourceType::Topic, topic);
    let fenced = fenced_code(v, 3);
    let requested = req.topics.iter().flat_map(|t| {
        t.partitions.iter().map(move |p| OffsetCommit {
            topic: t.name.to_string(),
            partition: p.partition_index,
            offset: p.committed_offset,
            leader_epoch: if v >= 2 { p.committed_leader_epoch } else { -1 },
            metadata: p.committed_metadata.as_ref().map(|m| m.to_string()),
        })
    });
    let (early, offsets) = crate::group::split_known(requested, |t, p| {
        readable(t) && broker.partition_exists(t, p)
    });
    let (pid, epoch) = (req.producer_id.0, req.producer_epoch);
    // The transaction must hold the group's offsets partition: checked with the
    // transaction coordinator (the KIP-890 verification), so offsets never land outside
    // a transaction that will write a marker for them. Under transactions v2 the
    // coordinator adds it (the client sends no AddOffsetsToTxn).
    let verify_only = !(v >= 5 && crate::txn::v2_finalized(&broker.metadata));
    // The transactional id's coordinator may be another broker: asked over the
    // inter-broker AddPartitionsToTxn, as Kafka's group coordinator does.
    let verified = match broker.txns.offsets_partition(&req.group_id).await {
        Ok(p) => match broker.txns.coordinator_elsewhere(&req.transactional_id) {
            Some(coordinator) => {
                crate::txn::remote::add_partitions(
                    &broker.host,
                    coordinator,
                    &req.transactional_id,
                    pid,
                    epoch,
                    vec![p],
                    verify_only,
                )
                .await
            }
            None => {
                broker
                    .txns
                    .add_partitions(&req.transactional_id, pid, epoch, vec![p], verify_only)
                    .await
            }
        },
        Err(e) => Err(e),
    };
    let mut txn_code = None;
    let outcome = match verified {
        Err(e) => {
            txn_code = Some(txn_error_code(&e, fenced).code());
            Err(GroupError::InvalidRequest)
        }
        Ok(()) if offsets.is_empty() => Ok(Vec::new()),
        Ok(()) => {
            let commit = CommitRequest {
                member_id: req.member_id.to_string(),
                group_instance_id: req.group_instance_id.map(|s| s.to_string()),
                generation_id: if v >= 3 { req.generation_id } else { -1 },
                offsets,
                version: v,
            };
            broker
                .groups
                .txn_commit(&req.group_id, pid, epoch, commit)
                .await
        }
    };
    let code = |e: Option<GroupError>| -> i16 {
        match (e, txn_code) {
            (Some(GroupError::UnknownTopicOrPartition), _) => {
                group_error_code(&GroupError::UnknownTopicOrPartition).code()
            }
            (_, Some(c)) => c,
            (None, None) => 0,
            (Some(GroupError::ProducerFenced), None) => fenced.code(),
            (Some(e), None) => group_error_code(&e).code(),
        }
    };
    let mut errors = crate::group::merge_partition_results(early, outcome).into_iter();
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let refused = !readable(&t.name);
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let code = code(errors.next().flatten());
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(if refused {
                            ResponseError::TopicAuthorizationFailed.code()
                        } else {
                            code
                        })
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

/// The same code for every partition asked for.
fn every_partition(req: TxnOffsetCommitRequest, code: i16) -> TxnOffsetCommitResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}
