//! ConsumerGroupDescribe (key 69, KIP-848): epochs, assignor, and each member's current
//! and target assignment. A classic or unknown group is GROUP_ID_NOT_FOUND, which is
//! also how admin clients learn to fall back to DescribeGroups.
//!
//! Authorization is Kafka's: DESCRIBE on each group (else GROUP_AUTHORIZATION_FAILED for
//! it); a group whose members subscribe to or are assigned a topic the principal may
//! not describe is TOPIC_AUTHORIZATION_FAILED, with nothing of it shown. The group's
//! authorized operations are reported when asked (KIP-430).

use std::sync::Arc;

use gregor_protocol::kp::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use gregor_protocol::kp::messages::{
    ApiKey, ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, TopicName,
};
use gregor_protocol::kp::protocol::StrBytes;

use gregor_protocol::kp::ResponseError;

use super::metadata::authorized_operations;
use super::{AclOperation, ApiSpec, RequestContext, ResourceType};
use crate::broker::Broker;
use crate::error::group_code;
use crate::group::{ConsumerGroupDescription, GroupError};

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::ConsumerGroupDescribe,
    min: 0,
    max: 1,
};

fn assignment(parts: Vec<(uuid::Uuid, String, Vec<i32>)>) -> Assignment {
    Assignment::default().with_topic_partitions(
        parts
            .into_iter()
            .map(|(id, name, ps)| {
                TopicPartitions::default()
                    .with_topic_id(id)
                    .with_topic_name(TopicName(StrBytes::from_string(name)))
                    .with_partitions(ps)
            })
            .collect(),
    )
}

/// Does any member subscribe to, or hold or target, a topic the principal may not
/// describe? Each topic is asked about once.
fn uses_hidden_topics(ctx: &RequestContext, d: &ConsumerGroupDescription) -> bool {
    let mut topics: Vec<&str> = d
        .members
        .iter()
        .flat_map(|m| {
            let held = m.assignment.iter().chain(&m.target_assignment);
            m.subscribed_topic_names
                .iter()
                .chain(held.map(|(_, name, _)| name))
                .map(String::as_str)
        })
        .collect();
    topics.sort_unstable();
    topics.dedup();
    topics
        .iter()
        .any(|t| !ctx.allowed(AclOperation::Describe, ResourceType::Topic, t))
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: ConsumerGroupDescribeRequest,
) -> ConsumerGroupDescribeResponse {
    // v1 says what kind of member each is: 1 for a consumer (KIP-848) member.
    let member_type: i8 = if ctx.version() >= 1 { 1 } else { -1 };
    let mut groups = Vec::with_capacity(req.group_ids.len());
    for id in req.group_ids {
        let g = DescribedGroup::default()
            .with_group_id(id.clone())
            .with_authorized_operations(i32::MIN);
        if !ctx.allowed(AclOperation::Describe, ResourceType::Group, &id) {
            groups.push(g.with_error_code(ResponseError::GroupAuthorizationFailed.code()));
            continue;
        }
        let found = broker.groups.consumer_describe(&id).await;
        let hidden = matches!(&found, Ok(Some(d)) if uses_hidden_topics(ctx, d));
        if hidden {
            groups.push(
                g.with_error_code(ResponseError::TopicAuthorizationFailed.code())
                    .with_error_message(Some(StrBytes::from_static_str(
                        "The described group uses topics that the client is not authorized to describe.",
                    ))),
            );
            continue;
        }
        let ops = if req.include_authorized_operations {
            authorized_operations(ctx, ResourceType::Group, &id)
        } else {
            i32::MIN
        };
        let g = g.with_authorized_operations(ops);
        let described = match found {
            Err(e) => g.with_error_code(group_code(Some(&e))),
            Ok(None) => g
                .with_error_code(group_code(Some(&GroupError::GroupIdNotFound)))
                .with_error_message(Some(StrBytes::from_string(format!(
                    "Group {} not found or not a consumer group.",
                    id.as_str()
                )))),
            Ok(Some(d)) => g
                .with_group_state(StrBytes::from_static_str(d.state))
                .with_group_epoch(d.group_epoch)
                .with_assignment_epoch(d.assignment_epoch)
                .with_assignor_name(StrBytes::from_string(d.assignor))
                .with_members(
                    d.members
                        .into_iter()
                        .map(|m| {
                            Member::default()
                                .with_member_id(StrBytes::from_string(m.member_id))
                                .with_instance_id(m.instance_id.map(StrBytes::from_string))
                                .with_rack_id(m.rack_id.map(StrBytes::from_string))
                                .with_member_epoch(m.member_epoch)
                                .with_client_id(StrBytes::from_string(m.client_id))
                                .with_client_host(StrBytes::from_string(m.client_host))
                                .with_subscribed_topic_names(
                                    m.subscribed_topic_names
                                        .into_iter()
                                        .map(|t| TopicName(StrBytes::from_string(t)))
                                        .collect(),
                                )
                                .with_assignment(assignment(m.assignment))
                                .with_target_assignment(assignment(m.target_assignment))
                                .with_member_type(member_type)
                        })
                        .collect(),
                ),
        };
        groups.push(described);
    }
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}
