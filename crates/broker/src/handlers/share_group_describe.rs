//! ShareGroupDescribe (key 77, KIP-932): share groups, their epochs and members with
//! their subscriptions and assignments.
//!
//! Authorization is Kafka's: DESCRIBE on each group (else GROUP_AUTHORIZATION_FAILED
//! for that group). A group that is not a share group is GROUP_ID_NOT_FOUND.

use std::sync::Arc;

use gregor_protocol::kp::messages::share_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use gregor_protocol::kp::messages::{
    ApiKey, ShareGroupDescribeRequest, ShareGroupDescribeResponse, TopicName,
};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;

use super::metadata::authorized_operations;
use super::{AclOperation, ApiSpec, RequestContext, ResourceType};
use crate::broker::Broker;
use crate::error::share_failure;
use crate::share::ShareError;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::ShareGroupDescribe,
    min: 1,
    max: 1,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: ShareGroupDescribeRequest,
) -> ShareGroupDescribeResponse {
    let image = broker.metadata.image();
    let groups = req
        .group_ids
        .iter()
        .map(|id| {
            let base = DescribedGroup::default().with_group_id(id.clone());
            if !ctx.allowed(AclOperation::Describe, ResourceType::Group, id) {
                return base.with_error_code(ResponseError::GroupAuthorizationFailed.code());
            }
            let Some(g) = broker.shares.describe(id) else {
                let (c, m) = share_failure(&ShareError::GroupIdNotFound);
                return base.with_error_code(c).with_error_message(m);
            };
            let ops = if req.include_authorized_operations {
                authorized_operations(ctx, ResourceType::Group, id)
            } else {
                i32::MIN
            };
            base.with_group_state(StrBytes::from_static_str(g.state))
                .with_group_epoch(g.group_epoch)
                .with_assignment_epoch(g.assignment_epoch)
                .with_assignor_name(StrBytes::from_static_str("simple"))
                .with_authorized_operations(ops)
                .with_members(
                    g.members
                        .into_iter()
                        .map(|m| {
                            let tps = m
                                .assignment
                                .iter()
                                .map(|(id, ps)| {
                                    let name = image
                                        .topic_by_id(id)
                                        .map(|t| t.name.clone())
                                        .unwrap_or_default();
                                    TopicPartitions::default()
                                        .with_topic_id(*id)
                                        .with_topic_name(TopicName(StrBytes::from_string(name)))
                                        .with_partitions(ps.iter().copied().collect())
                                })
                                .collect();
                            Member::default()
                                .with_member_id(StrBytes::from_string(m.member_id))
                                .with_rack_id(m.rack_id.map(StrBytes::from_string))
                                .with_member_epoch(m.epoch)
                                .with_client_id(StrBytes::from_string(m.client_id))
                                .with_client_host(StrBytes::from_string(m.client_host))
                                .with_subscribed_topic_names(
                                    m.subscribed
                                        .into_iter()
                                        .map(|t| TopicName(StrBytes::from_string(t)))
                                        .collect(),
                                )
                                .with_assignment(Assignment::default().with_topic_partitions(tps))
                        })
                        .collect(),
                )
        })
        .collect();
    ShareGroupDescribeResponse::default().with_groups(groups)
}
