//! GetTelemetrySubscriptions (key 71, KIP-714): a client instance id for a client that
//! has none, and the metrics it is asked to push, how often and how.

use std::sync::Arc;
use std::time::Instant;

use gregor_protocol::kp::messages::{
    ApiKey, GetTelemetrySubscriptionsRequest, GetTelemetrySubscriptionsResponse,
};
use gregor_protocol::kp::protocol::StrBytes;

use super::{ApiSpec, RequestContext};
use crate::broker::Broker;
use crate::error::telemetry_error_code;
use crate::telemetry::{ClientInfo, ACCEPTED_COMPRESSION};

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::GetTelemetrySubscriptions,
    min: 0,
    max: 0,
};

/// What subscriptions can match this request's client on. The software name and
/// version (sent in ApiVersions) and the source port are not tracked per connection
/// yet, so patterns on them see an empty value.
pub(super) fn client_info(ctx: &RequestContext) -> ClientInfo {
    ClientInfo {
        client_id: ctx.client_id(),
        source_address: ctx.client_host.trim_start_matches('/').to_string(),
        ..ClientInfo::default()
    }
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: GetTelemetrySubscriptionsRequest,
) -> GetTelemetrySubscriptionsResponse {
    let image = broker.metadata.image();
    let answer = broker.telemetry.subscribe(
        &image,
        req.client_instance_id,
        &client_info(ctx),
        Instant::now(),
    );
    match answer {
        Err(e) => GetTelemetrySubscriptionsResponse::default()
            .with_error_code(telemetry_error_code(&e).code()),
        Ok(s) => GetTelemetrySubscriptionsResponse::default()
            .with_client_instance_id(s.client_instance_id)
            .with_subscription_id(s.assignment.subscription_id)
            .with_accepted_compression_types(ACCEPTED_COMPRESSION.to_vec())
            .with_push_interval_ms(s.assignment.interval_ms)
            .with_telemetry_max_bytes(i32::try_from(s.max_bytes).unwrap_or(i32::MAX))
            .with_delta_temporality(true)
            .with_requested_metrics(
                s.assignment
                    .metrics
                    .into_iter()
                    .map(StrBytes::from_string)
                    .collect(),
            ),
    }
}
