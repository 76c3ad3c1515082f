//! DescribeShareGroupOffsets (key 90, KIP-932): each share-partition's start offset
//! (SPSO), for the topics named or, when none are, for every share-partition of the
//! group. A partition the group never consumed has start offset -1.
//!
//! Authorization is Kafka's: DESCRIBE on the group (else GROUP_AUTHORIZATION_FAILED
//! for that group), DESCRIBE on each topic (else TOPIC_AUTHORIZATION_FAILED).

use std::collections::BTreeMap;
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
    let groups = req
        .groups
        .into_iter()
        .map(|g| {
            let base = RGroup::default().with_group_id(g.group_id.clone());
            if !ctx.allowed(AclOperation::Describe, ResourceType::Group, &g.group_id) {
                return base.with_error_code(ResponseError::GroupAuthorizationFailed.code());
            }
            let Some(stored) = broker.shares.offsets(&g.group_id) else {
                let (c, m) = share_failure(&ShareError::GroupIdNotFound);
                return base.with_error_code(c).with_error_message(m);
            };
            let spso: BTreeMap<(Uuid, i32), i64> = stored
                .iter()
                .map(|o| ((o.topic_id, o.partition), o.start_offset))
                .collect();
            // The topics asked for, or every topic the group has state for.
            let wanted: Vec<(String, Vec<i32>)> = match g.topics {
                Some(ts) => ts
                    .into_iter()
                    .map(|t| (t.topic_name.to_string(), t.partitions))
                    .collect(),
                None => {
                    let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
                    for o in &stored {
                        if let Some(t) = image.topic_by_id(&o.topic_id) {
                            by_topic
                                .entry(t.name.clone())
                                .or_default()
                                .push(o.partition);
                        }
                    }
                    by_topic.into_iter().collect()
                }
            };
            let topics = wanted
                .into_iter()
                .map(|(name, parts)| {
                    let topic = image.topic(&name);
                    let id = topic.map(|t| t.id).unwrap_or_default();
                    let err = if !ctx.allowed(AclOperation::Describe, ResourceType::Topic, &name) {
                        Some(ResponseError::TopicAuthorizationFailed)
                    } else if topic.is_none() {
                        Some(ResponseError::UnknownTopicOrPartition)
                    } else {
                        None
                    };
                    let partitions = parts
                        .into_iter()
                        .map(|p| {
                            let r = RPartition::default()
                                .with_partition_index(p)
                                .with_leader_epoch(-1);
                            match err {
                                Some(e) => r.with_error_code(e.code()).with_start_offset(-1),
                                None => {
                                    r.with_start_offset(spso.get(&(id, p)).copied().unwrap_or(-1))
                                }
                            }
                        })
                        .collect();
                    RTopic::default()
                        .with_topic_name(TopicName(StrBytes::from_string(name)))
                        .with_topic_id(id)
                        .with_partitions(partitions)
                })
                .collect();
            base.with_topics(topics)
        })
        .collect();
    DescribeShareGroupOffsetsResponse::default().with_groups(groups)
}
