//! InitProducerId (key 22): a producer id and epoch for an idempotent producer.
//!
//! Ids come from blocks reserved in the metadata log, so they are never reused, even
//! across restarts. A non-transactional producer always gets a new id at epoch 0 (as
//! Kafka does, also when it re-initialises after an error, KIP-360). Transactional ids
//! need the transaction coordinator, which is not built yet: they get
//! COORDINATOR_NOT_AVAILABLE, as FindCoordinator already answers for them.

use std::sync::Arc;

use gregor_protocol::kp::messages::{
    ApiKey, InitProducerIdRequest, InitProducerIdResponse, ProducerId,
};
use gregor_protocol::kp::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::broker::Broker;
use crate::error::metadata_failure;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::InitProducerId,
    min: 0,
    max: 5,
};

pub async fn handle(
    broker: &Arc<Broker>,
    _ctx: &RequestContext,
    req: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let failed = |code: ResponseError| {
        InitProducerIdResponse::default()
            .with_error_code(code.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    if req.transactional_id.as_ref().is_some_and(|t| !t.is_empty()) {
        return failed(ResponseError::CoordinatorNotAvailable);
    }
    match broker.next_producer_id().await {
        Ok(id) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(e) => failed(metadata_failure(&e).0),
    }
}
