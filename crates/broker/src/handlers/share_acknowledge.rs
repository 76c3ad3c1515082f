//! ShareAcknowledge (key 79, KIP-932): acknowledgements outside a fetch. The request
//! continues the member's share session (epoch 0 cannot open one here) or, with -1,
//! closes it once its acknowledgements are applied, giving back what the member still
//! holds. An acknowledgement is answered only once it is durable.
//!
//! Version 2 (KIP-1222) adds RENEW (type 4), allowed only when the request sets
//! `IsRenewAck`: the member keeps the records and their locks restart. Its response
//! carries the lock duration.
//!
//! Authorization is Kafka's: READ on the group, READ on each topic.

use std::collections::BTreeMap;
use std::sync::Arc;

use gregor_protocol::kp::messages::share_acknowledge_response::{
    PartitionData, ShareAcknowledgeTopicResponse,
};
use gregor_protocol::kp::messages::{ApiKey, ShareAcknowledgeRequest, ShareAcknowledgeResponse};
use gregor_protocol::kp::ResponseError;
use uuid::Uuid;

use super::share_fetch::resolve;
use super::{AclOperation, ApiSpec, RequestContext, ResourceType};
use crate::broker::Broker;
use crate::error::{share_error_code, share_failure};
use crate::share::session::Tp;
use crate::share::{AckBatch, ShareError};

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::ShareAcknowledge,
    min: 1,
    max: 2,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: ShareAcknowledgeRequest,
) -> ShareAcknowledgeResponse {
    let group = req
        .group_id
        .as_ref()
        .map(|g| g.to_string())
        .unwrap_or_default();
    let member = req
        .member_id
        .as_ref()
        .map(|m| m.to_string())
        .unwrap_or_default();
    if !ctx.allowed(AclOperation::Read, ResourceType::Group, &group) {
        return ShareAcknowledgeResponse::default()
            .with_error_code(ResponseError::GroupAuthorizationFailed.code());
    }
    let fail = |e: &ShareError| {
        let (c, m) = share_failure(e);
        ShareAcknowledgeResponse::default()
            .with_error_code(c)
            .with_error_message(m)
    };
    if group.is_empty() || member.is_empty() {
        return fail(&ShareError::InvalidRequest(
            "group id and member id are required".into(),
        ));
    }
    let epoch = req.share_session_epoch;
    if let Err(e) = broker
        .shares
        .session_step(&group, &member, epoch, &[], &[], None)
    {
        return fail(&e);
    }
    let resolved = resolve(
        broker,
        ctx,
        req.topics.iter().map(|t| {
            (
                t.topic_id,
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        }),
    );
    let mut acks: Vec<(Tp, Vec<AckBatch>)> = Vec::new();
    for t in &req.topics {
        for p in &t.partitions {
            let tp = (t.topic_id, p.partition_index);
            if resolved.ok.contains(&tp) {
                let batches = p
                    .acknowledgement_batches
                    .iter()
                    .map(|b| (b.first_offset, b.last_offset, b.acknowledge_types.clone()))
                    .collect();
                acks.push((tp, batches));
            }
        }
    }
    let mut answers: BTreeMap<Tp, i16> = BTreeMap::new();
    for (tp, e) in resolved.refused {
        answers.insert(tp, e.code());
    }
    let renew = ctx.version() >= 2 && req.is_renew_ack;
    let cfg = broker.shares.group_config(&group);
    for (tp, r) in broker
        .shares
        .acknowledge(&group, &member, acks, renew, &cfg)
        .await
    {
        answers.insert(tp, r.err().map_or(0, |e| share_error_code(&e).code()));
    }
    if epoch == -1 {
        broker.shares.close_session(&group, &member);
    }
    let mut topics: BTreeMap<Uuid, Vec<PartitionData>> = BTreeMap::new();
    for ((t, p), code) in answers {
        topics.entry(t).or_default().push(
            PartitionData::default()
                .with_partition_index(p)
                .with_error_code(code),
        );
    }
    let lock_ms = if ctx.version() >= 2 {
        let ms = cfg.limits.lock_duration.as_millis();
        i32::try_from(ms).unwrap_or(i32::MAX)
    } else {
        0
    };
    ShareAcknowledgeResponse::default()
        .with_acquisition_lock_timeout_ms(lock_ms)
        .with_responses(
            topics
                .into_iter()
                .map(|(t, ps)| {
                    ShareAcknowledgeTopicResponse::default()
                        .with_topic_id(t)
                        .with_partitions(ps)
                })
                .collect(),
        )
}
