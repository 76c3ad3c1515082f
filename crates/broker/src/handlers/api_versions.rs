//! ApiVersions (key 18): which APIs and versions this broker serves, and (v3+,
//! KIP-584) the features it supports and their finalized levels. Clients read the
//! finalized levels to pick protocols: a producer uses transactions v2 (KIP-890 part
//! 2) only when `transaction.version` >= 2 is finalized.

use std::sync::Arc;

use gregor_protocol::kp::messages::api_versions_response::{
    ApiVersion, FinalizedFeatureKey, SupportedFeatureKey,
};
use gregor_protocol::kp::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;

use super::{encode_response, ApiSpec, Outcome, RequestContext, SUPPORTED};
use crate::broker::Broker;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::ApiVersions,
    min: 0,
    max: 4,
};

fn api_list() -> Vec<ApiVersion> {
    SUPPORTED
        .iter()
        .map(|s| {
            ApiVersion::default()
                .with_api_key(s.key as i16)
                .with_min_version(s.min)
                .with_max_version(s.max)
        })
        .collect()
}

/// KIP-511 client software names: `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?`.
fn valid_software_field(s: &str) -> bool {
    let b = s.as_bytes();
    let edge = |c: &u8| c.is_ascii_alphanumeric();
    match (b.first(), b.last()) {
        (Some(f), Some(l)) => {
            edge(f)
                && edge(l)
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || *c == b'-' || *c == b'.')
        }
        _ => false,
    }
}

/// The supported ranges and the finalized levels (min = max = the level, as KRaft
/// reports them), with the finalized features' epoch.
fn with_features(resp: ApiVersionsResponse, broker: &Broker) -> ApiVersionsResponse {
    let image = broker.metadata.image();
    let supported = gregor_metadata::features::SUPPORTED
        .iter()
        .map(|f| {
            SupportedFeatureKey::default()
                .with_name(StrBytes::from_static_str(f.name))
                .with_min_version(f.min)
                .with_max_version(f.max)
        })
        .collect();
    let finalized = image
        .features
        .iter()
        .map(|(name, &level)| {
            FinalizedFeatureKey::default()
                .with_name(StrBytes::from_string(name.clone()))
                .with_min_version_level(level)
                .with_max_version_level(level)
        })
        .collect();
    resp.with_supported_features(supported)
        .with_finalized_features(finalized)
        .with_finalized_features_epoch(image.features_epoch())
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: ApiVersionsRequest,
) -> ApiVersionsResponse {
    let mut resp = ApiVersionsResponse::default().with_api_keys(api_list());
    if ctx.header.request_api_version >= 3 {
        resp = with_features(resp, broker);
    }
    if ctx.header.request_api_version >= 3
        && !(valid_software_field(&req.client_software_name)
            && valid_software_field(&req.client_software_version))
    {
        resp.error_code = ResponseError::InvalidRequest.code();
    }
    resp
}

/// The answer to an ApiVersions request at a version we do not know: error
/// UNSUPPORTED_VERSION and our list, in the v0 encoding every client can read.
pub fn unsupported_version(correlation_id: i32) -> Outcome {
    let resp = ApiVersionsResponse::default()
        .with_error_code(ResponseError::UnsupportedVersion.code())
        .with_api_keys(api_list());
    encode_response(correlation_id, 0, 0, &resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn software_names() {
        assert!(valid_software_field("librdkafka"));
        assert!(valid_software_field("2.0.2"));
        assert!(valid_software_field("confluent-kafka-python"));
        assert!(!valid_software_field(""));
        assert!(!valid_software_field("-bad"));
        assert!(!valid_software_field("bad name"));
    }

    #[test]
    fn produce_v0_to_v2_stay_listed() {
        let produce = SUPPORTED.iter().find(|s| s.key == ApiKey::Produce).unwrap();
        assert_eq!(produce.min, 0);
    }
}
