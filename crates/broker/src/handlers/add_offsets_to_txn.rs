//! AddOffsetsToTxn (key 25): the group's `__consumer_offsets` partition joins the
//! producer's open transaction, so TxnOffsetCommit may write there and the
//! transaction's markers reach it.

use std::sync::Arc;

use gregor_protocol::kp::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, ApiKey};
use gregor_protocol::kp::ResponseError;

use super::{AclOperation, ApiSpec, RequestContext, ResourceType};
use crate::broker::Broker;
use crate::error::{fenced_code, txn_error_code};

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::AddOffsetsToTxn,
    min: 0,
    max: 4,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    // Kafka: WRITE on the transactional id, then READ on the group.
    let refusal = if !ctx.allowed(
        AclOperation::Write,
        ResourceType::TransactionalId,
        &req.transactional_id,
    ) {
        Some(ResponseError::TransactionalIdAuthorizationFailed)
    } else if !ctx.allowed(AclOperation::Read, ResourceType::Group, &req.group_id) {
        Some(ResponseError::GroupAuthorizationFailed)
    } else {
        None
    };
    if let Some(error) = refusal {
        return AddOffsetsToTxnResponse::default().with_error_code(error.code());
    }
    let txns = &broker.txns;
    let added = if req.transactional_id.is_empty() {
        // Checked first, as Kafka does before it looks at the group.
        Err(crate::txn::TxnError::EmptyTransactionalId)
    } else {
        match txns.offsets_partition(&req.group_id).await {
            Ok(p) => {
                txns.add_partitions(
                    &req.transactional_id,
                    req.producer_id.0,
                    req.producer_epoch,
                    vec![p],
                    false,
                )
                .await
            }
            Err(e) => Err(e),
        }
    };
    let code = match added {
        Ok(()) => 0,
        Err(e) => txn_error_code(&e, fenced_code(ctx.version(), 2)).code(),
    };
    AddOffsetsToTxnResponse::default().with_error_code(code)
}
