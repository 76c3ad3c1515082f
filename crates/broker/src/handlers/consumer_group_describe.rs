//! ConsumerGroupDescribe (key 69, KIP-848): epochs, assignor, and each member's current
//! and target assignment. A classic or unknown group is GROUP_ID_NOT_FOUND, which is
//! also how admin clients learn to fall back to DescribeGroups.

use std::sync::Arc;

use gregor_protocol::kp::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use gregor_protocol::kp::messages::{
    ApiKey, ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, TopicName,
};
use gregor_protocol::kp::protocol::StrBytes;

use super::{ApiSpec, RequestContext};
use crate::broker::Broker;
use crate::error::group_code;
use crate::group::GroupError;

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
        let described = match broker.groups.consumer_describe(broker, &id).await {
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
