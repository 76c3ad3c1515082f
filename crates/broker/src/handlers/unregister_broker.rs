//! UnregisterBroker (key 64, KIP-631): removes a broker's registration, after which it
//! is no longer a member of the cluster (DescribeCluster and Metadata stop listing it).
//! Meant for a broker that has been shut down for good with its replicas moved away
//! (`gregor cluster decommission`); a broker still running registers again.

use std::sync::Arc;

use gregor_metadata::ControllerRequest;
use gregor_protocol::kp::messages::{ApiKey, UnregisterBrokerRequest, UnregisterBrokerResponse};
use gregor_protocol::kp::protocol::StrBytes;

use gregor_protocol::kp::ResponseError;

use super::{AclOperation, ApiSpec, RequestContext};
use crate::broker::Broker;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::UnregisterBroker,
    min: 0,
    max: 0,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: UnregisterBrokerRequest,
) -> UnregisterBrokerResponse {
    if !ctx.allowed_on_cluster(AclOperation::Alter) {
        return UnregisterBrokerResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "Cluster authorization failed.",
            )));
    }
    let asked = ControllerRequest::UnregisterBroker {
        broker_id: req.broker_id.0,
    };
    match broker.commit_metadata(asked).await {
        Ok(_) => UnregisterBrokerResponse::default().with_error_message(None),
        Err(e) => {
            let (code, message) = crate::error::controller_failure(&e);
            UnregisterBrokerResponse::default()
                .with_error_code(code.code())
                .with_error_message(Some(StrBytes::from_string(message)))
        }
    }
}
