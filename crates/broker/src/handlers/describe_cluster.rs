//! DescribeCluster (key 60, KIP-700): the cluster id, the controller and the brokers.
//! v2 (KIP-1073) may ask for fenced brokers too; this broker is never fenced.

use std::sync::Arc;

use gregor_protocol::kp::messages::describe_cluster_response::DescribeClusterBroker;
use gregor_protocol::kp::messages::{
    ApiKey, BrokerId, DescribeClusterRequest, DescribeClusterResponse,
};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;

use super::{ApiSpec, RequestContext};
use crate::broker::Broker;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::DescribeCluster,
    min: 0,
    max: 2,
};

/// Endpoint types (v1+): 1 = brokers, 2 = controllers.
const BROKERS: i8 = 1;

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let mut resp = DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(broker.cluster_id.clone()))
        .with_controller_id(BrokerId(broker.config.node_id))
        .with_cluster_authorized_operations(i32::MIN);
    if ctx.version() >= 1 {
        resp.endpoint_type = req.endpoint_type;
        if req.endpoint_type != BROKERS && req.endpoint_type != 2 {
            return resp
                .with_error_code(ResponseError::UnsupportedEndpointType.code())
                .with_error_message(Some(StrBytes::from_static_str(
                    "Unsupported endpoint type.",
                )));
        }
    }
    // In single-node mode this broker is also the controller, so both endpoint types
    // name it.
    resp.with_brokers(vec![DescribeClusterBroker::default()
        .with_broker_id(BrokerId(broker.config.node_id))
        .with_host(StrBytes::from_string(broker.config.advertised_host.clone()))
        .with_port(i32::from(broker.advertised_port()))])
}
