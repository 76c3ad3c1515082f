//! OffsetFetch (key 9): a group's committed offsets, for the requested partitions or
//! all of them. v8+ asks for several groups at once (KIP-709). v10 names topics by id in
//! the request and the response: a requested id this cluster does not know is
//! UNKNOWN_TOPIC_ID for each of its partitions.

use std::sync::Arc;

use gregor_protocol::kp::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use gregor_protocol::kp::messages::{ApiKey, OffsetFetchRequest, OffsetFetchResponse, TopicName};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;

use super::{ApiSpec, RequestContext};
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

async fn fetch(
    broker: &Arc<Broker>,
    group: &str,
    wanted: Option<Vec<(String, Vec<i32>)>>,
    member: Option<(String, i32)>,
) -> Result<Vec<(String, Vec<CommittedOffset>)>, GroupError> {
    broker
        .groups
        .fetch_offsets(broker, group, wanted, member)
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
            let mut unknown_ids = Vec::new();
            let wanted = g.topics.map(|ts| {
                ts.into_iter()
                    .filter_map(|t| match &image {
                        None => Some((t.name.to_string(), t.partition_indexes)),
                        Some(image) => match image.topic_by_id(&t.topic_id) {
                            Some(found) => Some((found.name.clone(), t.partition_indexes)),
                            None => {
                                unknown_ids.push((t.topic_id, t.partition_indexes));
                                None
                            }
                        },
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
                topics.extend(unknown_ids.into_iter().map(|(id, partitions)| {
                    OffsetFetchResponseTopics::default()
                        .with_topic_id(id)
                        .with_partitions(
                            partitions
                                .into_iter()
                                .map(|p| {
                                    OffsetFetchResponsePartitions::default()
                                        .with_partition_index(p)
                                        .with_committed_offset(-1)
                                        .with_metadata(Some(StrBytes::from_static_str("")))
                                        .with_error_code(ResponseError::UnknownTopicId.code())
                                })
                                .collect(),
                        )
                }));
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
    let wanted = req.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.to_string(), t.partition_indexes))
            .collect()
    });
    let (error, topics) = match fetch(broker, &req.group_id, wanted, None).await {
        Ok(t) => (None, t),
        Err(e) => (Some(e), Vec::new()),
    };
    let topics = topics
        .into_iter()
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
    let mut resp = OffsetFetchResponse::default().with_topics(topics);
    if v >= 2 {
        resp.error_code = group_code(error.as_ref());
    }
    resp
}
