//! OffsetFetch (key 9): a group's committed offsets, for the requested partitions or
//! all of them. v8+ asks for several groups at once (KIP-709). v10 names topics by id in
//! the request and the response: a requested id this cluster does not know is
//! UNKNOWN_TOPIC_ID for each of its partitions.
//!
//! Authorization is Kafka's: DESCRIBE on each group (else GROUP_AUTHORIZATION_FAILED for
//! that group), and DESCRIBE on each topic: a named topic the principal may not describe
//! is TOPIC_AUTHORIZATION_FAILED for its partitions; a fetch of all the group's offsets
//! leaves such topics out.

use std::sync::Arc;

use gregor_protocol::kp::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use gregor_protocol::kp::messages::{ApiKey, OffsetFetchRequest, OffsetFetchResponse, TopicName};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;

use super::{AclOperation, ApiSpec, RequestContext, ResourceType};
use crate::broker::Broker;
use crate::error::group_code;
use crate::group::{CommittedOffset, GroupError};

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::OffsetFetch,
    min: 1,
    max: 10,
};

/// Committed offsets grouped by topic, in first-seen order.
fn by_topic(offsets: Vec<CommittedOffset>) -> Vec<(String, Vec<CommittedOffset>)> {
    let mut out: Vec<(String, Vec<CommittedOffset>)> = Vec::new();
    for o in offsets {
        match out.iter_mut().find(|(t, _)| *t == o.topic) {
            Some((_, v)) => v.push(o),
            None => out.push((o.topic.clone(), vec![o])),
        }
    }
    out
}

/// KIP-447: a reader that requires stable offsets gets UNSTABLE_OFFSET_COMMIT (and
/// retries) while an open transaction holds an offset for the partition.
fn stable(o: &CommittedOffset, require_stable: bool) -> (i16, i64) {
    if require_stable && o.unstable {
        (ResponseError::UnstableOffsetCommit.code(), -1)
    } else {
        (0, o.offset)
    }
}

fn describable(ctx: &RequestContext, topic: &str) -> bool {
    ctx.allowed(AclOperation::Describe, ResourceType::Topic, topic)
}

/// A refused or unknown topic's entry (v8+): every partition gets `code`.
fn topic_error(
    name: TopicName,
    id: uuid::Uuid,
    partitions: Vec<i32>,
    code: ResponseError,
) -> OffsetFetchResponseTopics {
    OffsetFetchResponseTopics::default()
        .with_name(name)
        .with_topic_id(id)
        .with_partitions(
            partitions
                .into_iter()
                .map(|p| {
                    OffsetFetchResponsePartitions::default()
                        .with_partition_index(p)
                        .with_committed_offset(-1)
                        .with_metadata(Some(StrBytes::from_static_str("")))
                        .with_error_code(code.code())
                })
                .collect(),
        )
}

/// A refused topic's entry before v8: every partition gets `code`.
fn legacy_topic_error(
    name: TopicName,
    partitions: Vec<i32>,
    code: ResponseError,
) -> OffsetFetchResponseTopic {
    OffsetFetchResponseTopic::default()
        .with_name(name)
        .with_partitions(
            partitions
                .into_iter()
                .map(|p| {
                    OffsetFetchResponsePartition::default()
                        .with_partition_index(p)
                        .with_committed_offset(-1)
                        .with_committed_leader_epoch(-1)
                        .with_metadata(Some(StrBytes::from_static_str("")))
                        .with_error_code(code.code())
                })
                .collect(),
        )
}

async fn fetch(
    broker: &Arc<Broker>,
    group: &str,
    wanted: Option<Vec<(String, Vec<i32>)>>,
    member: Option<(String, i32)>,
) -> Result<Vec<(String, Vec<CommittedOffset>)>, GroupError> {
    broker
        .groups
        .fetch_offsets(group, wanted, member)
        .await
        .map(by_topic)
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: OffsetFetchRequest,
) -> OffsetFetchResponse {
    let v = ctx.version();
    let epoch = |e: i32| if v >= 5 { e } else { -1 };
    if v >= 8 {
        // v10+: topics are named by id, both ways.
        let image = (v >= 10).then(|| broker.metadata.image());
        let mut groups = Vec::with_capacity(req.groups.len());
        for g in req.groups {
            if !ctx.allowed(AclOperation::Describe, ResourceType::Group, &g.group_id) {
                groups.push(
                    OffsetFetchResponseGroup::default()
                        .with_group_id(g.group_id)
                        .with_error_code(ResponseError::GroupAuthorizationFailed.code()),
                );
                continue;
            }
            let fetch_all = g.topics.is_none();
            // Topics answered here: unknown ids and topics the principal may not describe.
            let mut refused: Vec<OffsetFetchResponseTopics> = Vec::new();
            let wanted = g.topics.map(|ts| {
                ts.into_iter()
                    .filter_map(|t| {
                        let name = match &image {
                            None => t.name.to_string(),
                            Some(image) => match image.topic_by_id(&t.topic_id) {
                                Some(found) => found.name.clone(),
                                None => {
                                    refused.push(topic_error(
                                        TopicName::default(),
                                        t.topic_id,
                                        t.partition_indexes,
                                        ResponseError::UnknownTopicId,
                                    ));
                                    return None;
                                }
                            },
                        };
                        if !describable(ctx, &name) {
                            refused.push(topic_error(
                                t.name,
                                t.topic_id,
                                t.partition_indexes,
                                ResponseError::TopicAuthorizationFailed,
                            ));
                            return None;
                        }
                        Some((name, t.partition_indexes))
                    })
                    .collect()
            });
            // v9 (KIP-848): a member fetching for its own consumer group proves it is
            // current with its member id and epoch.
            let member = g.member_id.map(|m| (m.to_string(), g.member_epoch));
            let (error, topics) = match fetch(broker, &g.group_id, wanted, member).await {
                Ok(t) => (None, t),
                Err(e) => (Some(e), Vec::new()),
            };
            let mut topics: Vec<OffsetFetchResponseTopics> = topics
                .into_iter()
                // All the group's offsets: topics the principal may not describe are
                // left out.
                .filter(|(name, _)| !fetch_all || describable(ctx, name))
                .filter_map(|(name, offsets)| {
                    // v10: a stored topic that has no id any more (deleted) is left out.
                    let topic_id = match &image {
                        Some(image) => image.topic(&name)?.id,
                        None => uuid::Uuid::nil(),
                    };
                    Some(
                        OffsetFetchResponseTopics::default()
                            .with_name(TopicName(StrBytes::from_string(name)))
                            .with_topic_id(topic_id)
                            .with_partitions(
                                offsets
                                    .into_iter()
                                    .map(|o| {
                                        let (code, offset) = stable(&o, req.require_stable);
                                        OffsetFetchResponsePartitions::default()
                                            .with_partition_index(o.partition)
                                            .with_committed_offset(offset)
                                            .with_error_code(code)
                                            .with_committed_leader_epoch(o.leader_epoch)
                                            .with_metadata(Some(StrBytes::from_string(o.metadata)))
                                    })
                                    .collect(),
                            ),
                    )
                })
                .collect();
            if error.is_none() {
                topics.extend(refused);
            }
            groups.push(
                OffsetFetchResponseGroup::default()
                    .with_group_id(g.group_id)
                    .with_topics(topics)
                    .with_error_code(group_code(error.as_ref())),
            );
        }
        return OffsetFetchResponse::default().with_groups(groups);
    }
    if !ctx.allowed(AclOperation::Describe, ResourceType::Group, &req.group_id) {
        // v2+: the group's error; v1 has none, so every requested partition carries it.
        let code = ResponseError::GroupAuthorizationFailed;
        if v >= 2 {
            return OffsetFetchResponse::default().with_error_code(code.code());
        }
        let topics = req
            .topics
            .unwrap_or_default()
            .into_iter()
            .map(|t| legacy_topic_error(t.name, t.partition_indexes, code))
            .collect();
        return OffsetFetchResponse::default().with_topics(topics);
    }
    let fetch_all = req.topics.is_none();
    let mut refused: Vec<OffsetFetchResponseTopic> = Vec::new();
    let wanted = req.topics.map(|ts| {
        ts.into_iter()
            .filter_map(|t| {
                if describable(ctx, &t.name) {
                    Some((t.name.to_string(), t.partition_indexes))
                } else {
                    refused.push(legacy_topic_error(
                        t.name,
                        t.partition_indexes,
                        ResponseError::TopicAuthorizationFailed,
                    ));
                    None
                }
            })
            .collect()
    });
    let (error, topics) = match fetch(broker, &req.group_id, wanted, None).await {
        Ok(t) => (None, t),
        Err(e) => (Some(e), Vec::new()),
    };
    let mut topics: Vec<OffsetFetchResponseTopic> = topics
        .into_iter()
        .filter(|(name, _)| !fetch_all || describable(ctx, name))
        .map(|(name, offsets)| {
            OffsetFetchResponseTopic::default()
                .with_name(TopicName(StrBytes::from_string(name)))
                .with_partitions(
                    offsets
                        .into_iter()
                        .map(|o| {
                            let (code, offset) = stable(&o, v >= 7 && req.require_stable);
                            OffsetFetchResponsePartition::default()
                                .with_partition_index(o.partition)
                                .with_committed_offset(offset)
                                .with_error_code(code)
                                .with_committed_leader_epoch(epoch(o.leader_epoch))
                                .with_metadata(Some(StrBytes::from_string(o.metadata)))
                        })
                        .collect(),
                )
        })
        .collect();
    if error.is_none() {
        topics.extend(refused);
    }
    let mut resp = OffsetFetchResponse::default().with_topics(topics);
    if v >= 2 {
        resp.error_code = group_code(error.as_ref());
    }
    resp
}
