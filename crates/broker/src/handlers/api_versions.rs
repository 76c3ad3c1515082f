//! ApiVersions (key 18): which APIs and versions this broker serves.

use gregor_protocol::kp::messages::api_versions_response::ApiVersion;
use gregor_protocol::kp::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse};
use gregor_protocol::kp::ResponseError;

use super::{encode_response, ApiSpec, Outcome, RequestContext, SUPPORTED};

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

pub async fn handle(ctx: &RequestContext, req: ApiVersionsRequest) -> ApiVersionsResponse {
    let mut resp = ApiVersionsResponse::default().with_api_keys(api_list());
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
