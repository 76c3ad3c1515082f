//! DescribeCluster (key 60, KIP-700): the cluster id, the controller and the brokers.
//! v2 (KIP-1073) may ask for fenced brokers too.

use std::sync::Arc;

use gregor_protocol::kp::messages::describe_cluster_response::DescribeClusterBroker;
use gregor_protocol::kp::messages::{
    ApiKey, BrokerId, DescribeClusterRequest, DescribeClusterResponse,
};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;

use super::{AclOperation, ApiSpec, RequestContext};
use crate::broker::Broker;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::DescribeCluster,
    min: 0,
    max: 2,
};

/// The operations Kafka reports for the cluster resource (`AclEntry.supportedOperations`).
const CLUSTER_OPERATIONS: [AclOperation; 7] = [
    AclOperation::Create,
    AclOperation::ClusterAction,
    AclOperation::DescribeConfigs,
    AclOperation::AlterConfigs,
    AclOperation::IdempotentWrite,
    AclOperation::Alter,
    AclOperation::Describe,
];

/// Kafka's `cluster_authorized_operations`: not asked, `i32::MIN`; without DESCRIBE on
/// the cluster, 0; else a bit (1 << code) per operation the principal may do on it.
fn cluster_authorized_operations(ctx: &RequestContext, asked: bool) -> i32 {
    if !asked {
        return i32::MIN;
    }
    if !ctx.allowed_on_cluster(AclOperation::Describe) {
        return 0;
    }
    CLUSTER_OPERATIONS
        .iter()
        .filter(|op| ctx.allowed_on_cluster(**op))
        .fold(0, |bits, op| bits | (1 << op.code()))
}

/// Endpoint types (v1+): 1 = brokers, 2 = controllers.
const BROKERS: i8 = 1;

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let image = broker.metadata.image();
    let controller =
        crate::cluster::controller_id_for_clients(&broker.metadata, &image, broker.config.node_id);
    let mut resp = DescribeClusterResponse::default()
        .with_cluster_id(StrBytes::from_string(broker.cluster_id.clone()))
        .with_controller_id(BrokerId(controller))
        .with_cluster_authorized_operations(cluster_authorized_operations(
            ctx,
            req.include_cluster_authorized_operations,
        ));
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
    // Controllers speak only the quorum's RPC, so clients are given the brokers for
    // both endpoint types (a combined node is both; in single-node mode it is the one).
    // v2 (KIP-1073) may ask for the fenced brokers too, marked as such.
    let include_fenced = ctx.version() >= 2 && req.include_fenced_brokers;
    let brokers = image
        .brokers
        .values()
        .filter(|b| include_fenced || !b.fenced)
        .filter(|b| req.endpoint_type != 2 || b.id == controller)
        .filter_map(|b| {
            let e = crate::cluster::endpoint_on(&b.endpoints, &ctx.listener)?;
            Some(
                DescribeClusterBroker::default()
                    .with_broker_id(BrokerId(b.id))
                    .with_host(StrBytes::from_string(e.host.clone()))
                    .with_port(i32::from(e.port))
                    .with_rack(b.rack.clone().map(StrBytes::from_string))
                    .with_is_fenced(b.fenced),
            )
        })
        .collect();
    resp.with_brokers(brokers)
}
