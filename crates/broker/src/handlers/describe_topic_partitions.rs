//! DescribeTopicPartitions (key 75, KIP-966): topics with their partitions, a page at a
//! time.
//!
//! Paging is Kafka's: the topics asked for (all when the list is empty) are taken in
//! name order from the cursor's topic on, the cursor's partition index is where that
//! topic starts, and at most `min(response_partition_limit,
//! max.request.partition.size.limit)` partitions (at least one) are answered. When
//! the limit cuts a topic, `next_cursor` names the first partition left out; when it is
//! used up exactly at a topic boundary, `next_cursor` is the next topic at partition 0.
//! A cursor whose topic is not among the topics asked for, or whose partition index is
//! negative, makes the whole request INVALID_REQUEST (every topic gets the code).
//!
//! Authorization is Kafka's: DESCRIBE per topic. Listing all topics leaves out those the
//! principal may not describe; a named one is TOPIC_AUTHORIZATION_FAILED (no id, no
//! partitions) before its existence is looked at. Every topic answered carries its
//! authorized operations (KIP-430), as Kafka's answer always does.

use std::collections::BTreeSet;
use std::sync::Arc;

use gregor_metadata::controller::{self, INTERNAL_TOPICS};
use gregor_metadata::{MetadataImage, TopicImage};
use gregor_protocol::kp::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use gregor_protocol::kp::messages::{
    ApiKey, BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;
use uuid::Uuid;

use super::metadata::authorized_operations;
use super::{AclOperation, ApiSpec, RequestContext, ResourceType};
use crate::broker::Broker;
use crate::config::{BrokerConfig, ConfigError};

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::DescribeTopicPartitions,
    min: 0,
    max: 0,
};

/// Kafka's `max.request.partition.size.limit`: the most partitions one answer carries.
pub const PARTITION_LIMIT_CONFIG: &str = "max.request.partition.size.limit";
pub const DEFAULT_PARTITION_LIMIT: i32 = 2000;

/// `max.request.partition.size.limit` from the broker config: a positive integer.
pub fn partition_limit(config: &BrokerConfig) -> Result<i32, ConfigError> {
    match config.get(PARTITION_LIMIT_CONFIG) {
        None => Ok(DEFAULT_PARTITION_LIMIT),
        Some(v) => v
            .trim()
            .parse::<i32>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| ConfigError::Invalid {
                name: PARTITION_LIMIT_CONFIG.into(),
                value: v.to_string(),
                why: "expected a positive 32-bit integer".into(),
            }),
    }
}

fn name_of(n: &str) -> Option<TopicName> {
    Some(TopicName(StrBytes::from_string(n.to_string())))
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let image = broker.metadata.image();
    let fetch_all = req.topics.is_empty();
    let cursor = req
        .cursor
        .as_ref()
        .map(|c| (c.topic_name.0.to_string(), c.partition_index));
    let cursor_topic = cursor.as_ref().map_or("", |(t, _)| t.as_str());
    let names: BTreeSet<String> = if fetch_all {
        image
            .topics
            .keys()
            .filter(|n| n.as_str() >= cursor_topic)
            .cloned()
            .collect()
    } else {
        req.topics
            .iter()
            .map(|t| t.name.0.to_string())
            .filter(|n| n.as_str() >= cursor_topic)
            .collect()
    };
    let bad_cursor = cursor
        .as_ref()
        .is_some_and(|(t, p)| *p < 0 || (!fetch_all && !names.contains(t)));
    if bad_cursor {
        let topics = req
            .topics
            .iter()
            .map(|t| {
                DescribeTopicPartitionsResponseTopic::default()
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_name(Some(t.name.clone()))
            })
            .collect();
        return DescribeTopicPartitionsResponse::default().with_topics(topics);
    }
    let limit = partition_limit(&broker.config)
        .unwrap_or(DEFAULT_PARTITION_LIMIT)
        .min(req.response_partition_limit)
        .max(1);
    let offline = |topic: &str, idx: i32| {
        broker
            .replicas
            .topic(topic)
            .is_some_and(|h| h.offline.contains(&idx))
    };
    let access = |topic: &str| {
        ctx.allowed(AclOperation::Describe, ResourceType::Topic, topic)
            .then(|| authorized_operations(ctx, ResourceType::Topic, topic))
    };
    let page = Page {
        image: &image,
        node_id: broker.config.node_id,
        offline: &offline,
        access: &access,
    };
    page.answer(names, cursor.as_ref(), limit, fetch_all)
}

/// One answer's walk over the image.
struct Page<'a> {
    image: &'a MetadataImage,
    node_id: i32,
    offline: &'a dyn Fn(&str, i32) -> bool,
    /// The topic's authorized operations, or `None` when it may not be described.
    access: &'a dyn Fn(&str) -> Option<i32>,
}

impl Page<'_> {
    fn answer(
        &self,
        names: BTreeSet<String>,
        cursor: Option<&(String, i32)>,
        limit: i32,
        fetch_all: bool,
    ) -> DescribeTopicPartitionsResponse {
        let mut remaining = limit;
        let mut topics = Vec::new();
        let mut next = None;
        for name in names {
            if remaining <= 0 {
                next = Some((name, 0));
                break;
            }
            let Some(ops) = (self.access)(&name) else {
                if !fetch_all {
                    topics.push(
                        DescribeTopicPartitionsResponseTopic::default()
                            .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                            .with_name(name_of(&name))
                            .with_topic_id(Uuid::nil()),
                    );
                }
                continue;
            };
            let Some(t) = self.image.topic(&name) else {
                if !fetch_all {
                    let code = match controller::validate_topic_name(&name) {
                        Ok(()) => ResponseError::UnknownTopicOrPartition,
                        Err(_) => ResponseError::InvalidTopicException,
                    };
                    topics.push(
                        DescribeTopicPartitionsResponseTopic::default()
                            .with_error_code(code.code())
                            .with_name(name_of(&name))
                            .with_topic_id(Uuid::nil())
                            .with_is_internal(INTERNAL_TOPICS.contains(&name.as_str()))
                            .with_topic_authorized_operations(ops),
                    );
                }
                continue;
            };
            let start = match cursor {
                Some((topic, idx)) if *topic == name => *idx,
                _ => 0,
            };
            let count = i32::try_from(t.partitions.len()).unwrap_or(i32::MAX);
            let upper = count.min(start.saturating_add(remaining));
            let partitions: Vec<_> = (start..upper)
                .filter_map(|idx| self.partition(t, idx))
                .collect();
            let taken = i32::try_from(partitions.len()).unwrap_or(i32::MAX);
            topics.push(
                DescribeTopicPartitionsResponseTopic::default()
                    .with_name(name_of(&name))
                    .with_topic_id(t.id)
                    .with_is_internal(INTERNAL_TOPICS.contains(&name.as_str()))
                    .with_partitions(partitions)
                    .with_topic_authorized_operations(ops),
            );
            if upper < count {
                next = Some((name, upper));
                break;
            }
            remaining -= taken;
        }
        DescribeTopicPartitionsResponse::default()
            .with_topics(topics)
            .with_next_cursor(next.map(|(topic, idx)| {
                Cursor::default()
                    .with_topic_name(TopicName(StrBytes::from_string(topic)))
                    .with_partition_index(idx)
            }))
    }

    /// A partition's entry, with its eligible leader replicas and last known ELR
    /// (KIP-966; empty while `eligible.leader.replicas.version` is 0); a partition whose
    /// log is offline here has no leader and this broker as its offline replica.
    fn partition(
        &self,
        t: &TopicImage,
        idx: i32,
    ) -> Option<DescribeTopicPartitionsResponsePartition> {
        let p = t.partitions.get(&idx)?;
        let ids = |v: &[i32]| v.iter().map(|&r| BrokerId(r)).collect::<Vec<_>>();
        let entry = DescribeTopicPartitionsResponsePartition::default()
            .with_partition_index(idx)
            .with_leader_id(BrokerId(p.leader))
            .with_leader_epoch(p.leader_epoch)
            .with_replica_nodes(ids(&p.replicas))
            .with_isr_nodes(ids(&p.isr))
            .with_eligible_leader_replicas(Some(ids(&p.elr)))
            .with_last_known_elr(Some(ids(&p.last_known_elr)));
        Some(if (self.offline)(&t.name, idx) {
            entry
                .with_leader_id(BrokerId(-1))
                .with_offline_replicas(vec![BrokerId(self.node_id)])
        } else {
            entry
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use gregor_metadata::controller::{create_topic, NewTopic};

    fn image(topics: &[(&str, i32)]) -> MetadataImage {
        let mut image = MetadataImage::empty();
        for (name, n) in topics {
            let t = NewTopic {
                assignments: Vec::new(),
                name: name.to_string(),
                num_partitions: *n,
                replication_factor: 1,
                configs: Default::default(),
            };
            for r in create_topic(&image, &t, &[1]).unwrap() {
                image.apply(&r);
            }
        }
        image
    }

    fn walk(image: &MetadataImage, names: &[&str], limit: i32) -> Vec<(String, Vec<i32>)> {
        let page = Page {
            image,
            node_id: 1,
            offline: &|_, _| false,
            access: &|_| Some(0),
        };
        let fetch_all = names.is_empty();
        let all: BTreeSet<String> = if fetch_all {
            image.topics.keys().cloned().collect()
        } else {
            names.iter().map(|s| s.to_string()).collect()
        };
        let mut cursor: Option<(String, i32)> = None;
        let mut out = Vec::new();
        loop {
            let from = cursor.as_ref().map_or("", |(t, _)| t.as_str()).to_string();
            let names = all
                .iter()
                .filter(|n| n.as_str() >= from.as_str())
                .cloned()
                .collect();
            let resp = page.answer(names, cursor.as_ref(), limit, fetch_all);
            for t in resp.topics {
                let ps = t.partitions.iter().map(|p| p.partition_index).collect();
                out.push((t.name.unwrap().0.to_string(), ps));
            }
            match resp.next_cursor {
                Some(c) => cursor = Some((c.topic_name.0.to_string(), c.partition_index)),
                None => return out,
            }
        }
    }

    #[test]
    fn pages_cover_every_partition_once_in_order() {
        let img = image(&[("b", 5), ("a", 2), ("c", 1)]);
        let pages = walk(&img, &[], 3);
        let flat: Vec<(String, i32)> = pages
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |p| (t.clone(), *p)))
            .collect();
        let expected: Vec<(String, i32)> = [
            ("a", 0),
            ("a", 1),
            ("b", 0),
            ("b", 1),
            ("b", 2),
            ("b", 3),
            ("b", 4),
            ("c", 0),
        ]
        .iter()
        .map(|(t, p)| (t.to_string(), *p))
        .collect();
        assert_eq!(flat, expected);
        // "a" (2) + 1 of "b"; then 3 of "b"; then the last of "b" and "c".
        assert_eq!(pages.len(), 5, "{pages:?}");
    }

    #[test]
    fn a_limit_used_up_at_a_boundary_points_at_the_next_topic() {
        let img = image(&[("a", 2), ("b", 1)]);
        let page = Page {
            image: &img,
            node_id: 1,
            offline: &|_, _| false,
            access: &|_| Some(0),
        };
        let names = ["a", "b"].iter().map(|s| s.to_string()).collect();
        let resp = page.answer(names, None, 2, true);
        let c = resp.next_cursor.unwrap();
        assert_eq!((c.topic_name.0.as_str(), c.partition_index), ("b", 0));
        assert_eq!(resp.topics.len(), 1);
    }

    #[test]
    fn unknown_and_invalid_topics_are_reported_when_named() {
        let img = image(&[("a", 1)]);
        let pages = walk(&img, &["a", "nope", "bad/name"], 10);
        assert_eq!(pages.len(), 3);
        let page = Page {
            image: &img,
            node_id: 1,
            offline: &|_, _| false,
            access: &|_| Some(0),
        };
        let names = ["nope", "bad/name"].iter().map(|s| s.to_string()).collect();
        let resp = page.answer(names, None, 10, false);
        let codes: Vec<i16> = resp.topics.iter().map(|t| t.error_code).collect();
        assert_eq!(codes, vec![17, 3]);
    }

    #[test]
    fn hidden_topics_are_refused_when_named_and_left_out_of_all() {
        let img = image(&[("a", 1), ("hidden", 1)]);
        let page = Page {
            image: &img,
            node_id: 1,
            offline: &|_, _| false,
            access: &|t| (t != "hidden" && t != "hidden-nope").then_some(0),
        };
        let named = ["a", "hidden", "hidden-nope"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let resp = page.answer(named, None, 10, false);
        let seen: Vec<(i16, uuid::Uuid, usize)> = resp
            .topics
            .iter()
            .map(|t| (t.error_code, t.topic_id, t.partitions.len()))
            .collect();
        let a = img.topic("a").unwrap().id;
        // Existing or not, a hidden topic gets the same answer: no id, no partitions.
        assert_eq!(
            seen,
            vec![(0, a, 1), (29, Uuid::nil(), 0), (29, Uuid::nil(), 0)]
        );
        let all = ["a", "hidden"].iter().map(|s| s.to_string()).collect();
        let resp = page.answer(all, None, 10, true);
        assert_eq!(resp.topics.len(), 1);
    }
}
