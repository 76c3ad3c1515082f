//! DescribeShareGroupOffsets (key 90, KIP-932): each share-partition's start offset
//! (SPSO), for the topics named or, when none are, for every share-partition of the
//! group known here and every partition of the topics its members subscribe to. A
//! share-partition neither led nor coordinated here is read from its share coordinator
//! (ReadShareGroupStateSummary). A partition the group never consumed has start offset
//! -1.
//!
//! Authorization is Kafka's: DESCRIBE on the group (else GROUP_AUTHORIZATION_FAILED
//! for that group), DESCRIBE on each topic (else TOPIC_AUTHORIZATION_FAILED).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use gregor_protocol::kp::messages::describe_share_group_offsets_response::{
    DescribeShareGroupOffsetsResponseGroup as RGroup,
    DescribeShareGroupOffsetsResponsePartition as RPartition,
    DescribeShareGroupOffsetsResponseTopic as RTopic,
};
use gregor_protocol::kp::messages::{
    ApiKey, DescribeShareGroupOffsetsRequest, DescribeShareGroupOffsetsResponse, TopicName,
};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;
use uuid::Uuid;

use super::{AclOperation, ApiSpec, RequestContext, ResourceType};
use crate::broker::Broker;
use crate::error::share_failure;
use crate::share::ShareError;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::DescribeShareGroupOffsets,
    min: 0,
    max: 0,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: DescribeShareGroupOffsetsRequest,
) -> DescribeShareGroupOffsetsResponse {
    let image = broker.metadata.image();
    let mut groups = Vec::with_capacity(req.groups.len());
    for g in req.groups {
        let base = RGroup::default().with_group_id(g.group_id.clone());
        if !ctx.allowed(AclOperation::Describe, ResourceType::Group, &g.group_id) {
            groups.push(base.with_error_code(ResponseError::GroupAuthorizationFailed.code()));
            continue;
        }
        let group = g.group_id.to_string();
        let Some(stored) = broker.shares.offsets(&group) else {
            let (c, m) = share_failure(&ShareError::GroupIdNotFound);
            groups.push(base.with_error_code(c).with_error_message(m));
            continue;
        };
        // What this broker holds: share-partitions it leads, and state it coordinates.
        let local: BTreeMap<(Uuid, i32), i64> = stored
            .iter()
            .map(|o| ((o.topic_id, o.partition), o.start_offset))
            .collect();
        // The topics asked for, or every topic the group has state for here or its
        // members subscribe to (all their partitions).
        let named = g.topics.is_some();
        let wanted: Vec<(String, Vec<i32>)> = match g.topics {
            Some(ts) => ts
                .into_iter()
                .map(|t| (t.topic_name.to_string(), t.partitions))
                .collect(),
            None => {
                let mut by_topic: BTreeMap<String, BTreeSet<i32>> = BTreeMap::new();
                for o in &stored {
                    if let Some(t) = image.topic_by_id(&o.topic_id) {
                        by_topic
                            .entry(t.name.clone())
                            .or_default()
                            .insert(o.partition);
                    }
                }
                for name in broker.shares.subscribed_topics(&group) {
                    if let Some(t) = image.topic(&name) {
                        by_topic
                            .entry(name)
                            .or_default()
                            .extend(t.partitions.keys().copied());
                    }
                }
                by_topic
                    .into_iter()
                    .map(|(n, ps)| (n, ps.into_iter().collect()))
                    .collect()
            }
        };
        let mut topics = Vec::with_capacity(wanted.len());
        for (name, parts) in wanted {
            let topic = image.topic(&name);
            let id = topic.map(|t| t.id).unwrap_or_default();
            let err = if !ctx.allowed(AclOperation::Describe, ResourceType::Topic, &name) {
                Some(ResponseError::TopicAuthorizationFailed)
            } else if topic.is_none() {
                Some(ResponseError::UnknownTopicOrPartition)
            } else {
                None
            };
            let mut partitions = Vec::with_capacity(parts.len());
            for p in parts {
                let r = RPartition::default()
                    .with_partition_index(p)
                    .with_leader_epoch(-1);
                partitions.push(match err {
                    Some(e) => r.with_error_code(e.code()).with_start_offset(-1),
                    None => {
                        let start = match local.get(&(id, p)) {
                            Some(o) => *o,
                            // Held elsewhere: ask the share-partition's coordinator
                            // (ReadShareGroupStateSummary).
                            None => broker
                                .shares
                                .coordinated_start_offset(&group, id, p)
                                .await
                                .unwrap_or(-1),
                        };
                        if !named && start < 0 {
                            // Not named, and never initialized (or its offsets were
                            // deleted): not one of the group's share-partitions.
                            continue;
                        }
                        r.with_start_offset(start)
                    }
                });
            }
            if !named && partitions.is_empty() {
                continue;
            }
            topics.push(
                RTopic::default()
                    .with_topic_name(TopicName(StrBytes::from_string(name)))
                    .with_topic_id(id)
                    .with_partitions(partitions),
            );
        }
        groups.push(base.with_topics(topics));
    }
    DescribeShareGroupOffsetsResponse::default().with_groups(groups)
}
