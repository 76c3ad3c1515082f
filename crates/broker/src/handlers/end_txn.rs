//! EndTxn (key 26): commit or abort the producer's open transaction. Answered once the
//! markers are in every partition of the transaction.

use std::sync::Arc;

use gregor_protocol::kp::messages::{ApiKey, EndTxnRequest, EndTxnResponse};

use super::{ApiSpec, RequestContext};
use crate::broker::Broker;
use crate::error::{fenced_code, txn_error_code};

/// v5 (KIP-890 part 2, an epoch bump per transaction) is not offered.
pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::EndTxn,
    min: 0,
    max: 4,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: EndTxnRequest,
) -> EndTxnResponse {
    let ended = broker
        .txns
        .end_txn(
            broker,
            &req.transactional_id,
            req.producer_id.0,
            req.producer_epoch,
            req.committed,
        )
        .await;
    let code = match ended {
        Ok(()) => 0,
        Err(e) => txn_error_code(&e, fenced_code(ctx.version(), 2)).code(),
    };
    EndTxnResponse::default().with_error_code(code)
}
