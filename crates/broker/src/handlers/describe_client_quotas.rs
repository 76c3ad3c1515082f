//! DescribeClientQuotas (key 48, KIP-546): the client quotas whose entities match a
//! filter. Each component names an entity type and matches one name, the type's
//! default, or any named entity; `strict` keeps only entities with no other types.
//! A bad filter is INVALID_REQUEST (an unknown entity or match type
//! UNSUPPORTED_VERSION) for the whole response, as in Kafka.

use std::sync::Arc;

use gregor_metadata::quotas::{self, FilterError};
use gregor_protocol::kp::messages::describe_client_quotas_response::{
    EntityData, EntryData, ValueData,
};
use gregor_protocol::kp::messages::{
    ApiKey, DescribeClientQuotasRequest, DescribeClientQuotasResponse,
};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;

use super::{AclOperation, ApiSpec, RequestContext};
use crate::broker::Broker;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::DescribeClientQuotas,
    min: 0,
    max: 1,
};

fn failed(code: ResponseError, message: String) -> DescribeClientQuotasResponse {
    DescribeClientQuotasResponse::default()
        .with_error_code(code.code())
        .with_error_message(Some(StrBytes::from_string(message)))
        .with_entries(None)
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: DescribeClientQuotasRequest,
) -> DescribeClientQuotasResponse {
    // Kafka: DESCRIBE_CONFIGS on the cluster.
    if !ctx.allowed_on_cluster(AclOperation::DescribeConfigs) {
        return failed(
            ResponseError::ClusterAuthorizationFailed,
            "Cluster authorization failed.".into(),
        );
    }
    let mut components = Vec::with_capacity(req.components.len());
    for c in &req.components {
        match quotas::component(&c.entity_type, c.match_type, c._match.as_deref()) {
            Ok(component) => components.push(component),
            Err(FilterError::Invalid(m)) => return failed(ResponseError::InvalidRequest, m),
            Err(FilterError::Unsupported(m)) => {
                return failed(ResponseError::UnsupportedVersion, m)
            }
        }
    }
    let image = broker.metadata.image();
    let found = match quotas::describe(&image, &components, req.strict) {
        Ok(found) => found,
        Err(FilterError::Invalid(m)) => return failed(ResponseError::InvalidRequest, m),
        Err(FilterError::Unsupported(m)) => return failed(ResponseError::UnsupportedVersion, m),
    };
    let entries = found
        .into_iter()
        .map(|(entity, values)| {
            EntryData::default()
                .with_entity(
                    entity
                        .parts()
                        .into_iter()
                        .map(|(t, name)| {
                            EntityData::default()
                                .with_entity_type(StrBytes::from_static_str(t))
                                .with_entity_name(name.map(|n| StrBytes::from_string(n.into())))
                        })
                        .collect(),
                )
                .with_values(
                    values
                        .into_iter()
                        .map(|(k, v)| {
                            ValueData::default()
                                .with_key(StrBytes::from_string(k))
                                .with_value(v)
                        })
                        .collect(),
                )
        })
        .collect();
    DescribeClientQuotasResponse::default()
        .with_error_message(None)
        .with_entries(Some(entries))
}
