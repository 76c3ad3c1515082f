//! AddOffsetsToTxn (key 25): the group's `__consumer_offsets` partition joins the
//! producer's open transaction, so TxnOffsetCommit may write there and the
//! transaction's markers reach it.

use std::sync::Arc;

use gregor_protocol::kp::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse, ApiKey};

use super::{ApiSpec, RequestContext};
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
    let txns = &broker.txns;
    let added = if req.transactional_id.is_empty() {
        // Checked first, as Kafka does before it looks at the group.
        Err(crate::txn::TxnError::EmptyTransactionalId)
    } else {
        match txns.offsets_partition(broker, &req.group_id).await {
            Ok(p) => {
                txns.add_partitions(
                    broker,
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
