//! EndTxn (key 26): commit or abort the producer's open transaction. Answered once the
//! markers are in every partition of the transaction. v5 with `transaction.version` 2
//! (KIP-890 part 2) bumps the producer epoch at every end and answers with the new
//! producer id and epoch; v5 without it, and v0-v4, keep the v1 protocol.

use std::sync::Arc;

use gregor_protocol::kp::messages::{ApiKey, EndTxnRequest, EndTxnResponse, ProducerId};
use gregor_protocol::kp::ResponseError;

use super::{AclOperation, ApiSpec, RequestContext, ResourceType};
use crate::broker::Broker;
use crate::error::{fenced_code, txn_error_code};

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::EndTxn,
    min: 0,
    max: 5,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: EndTxnRequest,
) -> EndTxnResponse {
    if !ctx.allowed(
        AclOperation::Write,
        ResourceType::TransactionalId,
        &req.transactional_id,
    ) {
        return EndTxnResponse::default()
            .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1);
    }
    let v2 = ctx.version() >= 5 && crate::txn::v2_finalized(&broker.metadata);
    let ended = broker
        .txns
        .end_txn(
            &req.transactional_id,
            req.producer_id.0,
            req.producer_epoch,
            req.committed,
            v2,
        )
        .await;
    match ended {
        Ok((pid, epoch)) => EndTxnResponse::default()
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(epoch),
        Err(e) => EndTxnResponse::default()
            .with_error_code(txn_error_code(&e, fenced_code(ctx.version(), 2)).code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1),
    }
}
