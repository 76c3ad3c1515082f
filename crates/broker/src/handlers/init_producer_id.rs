//! InitProducerId (key 22): a producer id and epoch for an idempotent or transactional
//! producer.
//!
//! Ids come from blocks reserved in the metadata log, so they are never reused, even
//! across restarts. A non-transactional producer always gets a new id at epoch 0 (as
//! Kafka does, also when it re-initialises after an error, KIP-360). A transactional id
//! goes to the transaction coordinator, which keeps its producer id and bumps the epoch,
//! fencing older instances and aborting their open transaction.

use std::sync::Arc;

use gregor_protocol::kp::messages::{
    ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProducerId,
};
use gregor_protocol::kp::ResponseError;

use super::{AclOperation, ApiSpec, RequestContext, ResourceType};
use crate::broker::Broker;
use crate::error::{fenced_code, txn_error_code};

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::InitProducerId,
    min: 0,
    max: 5,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let failed = |code: ResponseError| {
        InitProducerIdResponse::default()
            .with_error_code(code.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    if let Some(id) = req.transactional_id.as_ref().filter(|t| !t.is_empty()) {
        if !ctx.allowed(AclOperation::Write, ResourceType::TransactionalId, id) {
            return failed(ResponseError::TransactionalIdAuthorizationFailed);
        }
        // v3+ (KIP-360): a producer recovering from an error names its id and epoch.
        let expected = (req.producer_id.0 >= 0).then_some((req.producer_id.0, req.producer_epoch));
        return match broker
            .txns
            .init_producer(id, req.transaction_timeout_ms, expected)
            .await
        {
            Ok((pid, epoch)) => InitProducerIdResponse::default()
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch),
            Err(e) => failed(txn_error_code(&e, fenced_code(ctx.version(), 4))),
        };
    }
    // Idempotence: IDEMPOTENT_WRITE on the cluster, or WRITE on some topic (KIP-679).
    if !ctx.allowed_on_cluster(AclOperation::IdempotentWrite)
        && !ctx.allowed_on_any(AclOperation::Write, ResourceType::Topic)
    {
        return failed(ResponseError::ClusterAuthorizationFailed);
    }
    match broker.next_producer_id().await {
        Ok(id) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(e) => failed(crate::error::controller_failure_code(&e)),
    }
}
