//! ListConfigResources (key 74; KIP-1000 as ListClientMetricsResources, KIP-1142 v1):
//! the names of config resources by type.
//!
//! v0 lists client-metrics subscriptions only. v1 takes the types wanted (none: every
//! type) among topics (2), brokers (4), broker loggers (8), client metrics (16) and
//! groups (32); any other type makes the answer UNSUPPORTED_VERSION with nothing
//! listed, as Kafka answers. Groups are listed when they have configs of their own;
//! Gregor has no group configs yet, so none are. Resources come in Kafka's order:
//! groups, client metrics, broker loggers, brokers, topics.

use std::sync::Arc;

use gregor_protocol::kp::messages::list_config_resources_response::ConfigResource;
use gregor_protocol::kp::messages::{
    ApiKey, ListConfigResourcesRequest, ListConfigResourcesResponse,
};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;

use super::{AclOperation, ApiSpec, RequestContext};
use crate::broker::Broker;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::ListConfigResources,
    min: 0,
    max: 1,
};

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;
const CLIENT_METRICS: i8 = crate::telemetry::admin::RESOURCE_CLIENT_METRICS;
const GROUP: i8 = 32;
const SUPPORTED_V1: [i8; 5] = [TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP];

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: ListConfigResourcesRequest,
) -> ListConfigResourcesResponse {
    // Kafka: DESCRIBE_CONFIGS on the cluster.
    if !ctx.allowed_on_cluster(AclOperation::DescribeConfigs) {
        return ListConfigResourcesResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let wanted: Vec<i8> = match ctx.version() {
        0 => vec![CLIENT_METRICS],
        _ if req.resource_types.is_empty() => SUPPORTED_V1.to_vec(),
        _ => req.resource_types,
    };
    if wanted.iter().any(|t| !SUPPORTED_V1.contains(t)) {
        return ListConfigResourcesResponse::default()
            .with_error_code(ResponseError::UnsupportedVersion.code());
    }
    let image = broker.metadata.image();
    let node = broker.config.node_id.to_string();
    let mut out = Vec::new();
    let mut add = |kind: i8, names: &mut dyn Iterator<Item = String>| {
        if wanted.contains(&kind) {
            out.extend(names.map(|n| {
                ConfigResource::default()
                    .with_resource_name(StrBytes::from_string(n))
                    .with_resource_type(kind)
            }));
        }
    };
    // Groups with configs of their own.
    add(GROUP, &mut image.group_configs.keys().cloned());
    add(CLIENT_METRICS, &mut image.client_metrics.keys().cloned());
    add(BROKER_LOGGER, &mut std::iter::once(node.clone()));
    add(BROKER, &mut std::iter::once(node));
    add(TOPIC, &mut image.topics.keys().cloned());
    ListConfigResourcesResponse::default().with_config_resources(out)
}
