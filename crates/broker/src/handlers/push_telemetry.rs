//! PushTelemetry (key 72, KIP-714): a client instance's metrics, checked against its
//! subscription and kept in the broker's telemetry store.

use std::sync::Arc;
use std::time::Instant;

use gregor_protocol::kp::messages::{ApiKey, PushTelemetryRequest, PushTelemetryResponse};

use super::get_telemetry_subscriptions::client_info;
use super::{ApiSpec, RequestContext};
use crate::broker::Broker;
use crate::error::telemetry_error_code;
use crate::telemetry::Push;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::PushTelemetry,
    min: 0,
    max: 0,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: PushTelemetryRequest,
) -> PushTelemetryResponse {
    let image = broker.metadata.image();
    let push = Push {
        client_instance_id: req.client_instance_id,
        subscription_id: req.subscription_id,
        terminating: req.terminating,
        compression_type: req.compression_type,
        metrics: &req.metrics,
    };
    match broker
        .telemetry
        .push(&image, &push, &client_info(ctx), Instant::now())
    {
        Ok(()) => PushTelemetryResponse::default(),
        Err(e) => {
            tracing::debug!(client = %req.client_instance_id, error = %e, "push refused");
            PushTelemetryResponse::default().with_error_code(telemetry_error_code(&e).code())
        }
    }
}
