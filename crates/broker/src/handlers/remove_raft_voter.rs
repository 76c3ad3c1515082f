//! RemoveRaftVoter (key 81, KIP-853): a voter leaves the metadata quorum through a
//! membership change on the active controller; answered once committed. The removed
//! node stops voting and standing for election (it can be stopped, or added back).

use std::sync::Arc;

use gregor_metadata::active::ControllerRpc;
use gregor_protocol::kp::messages::{ApiKey, RemoveRaftVoterRequest, RemoveRaftVoterResponse};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;

use super::{AclOperation, ApiSpec, RequestContext};
use crate::broker::Broker;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::RemoveRaftVoter,
    min: 0,
    max: 0,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: RemoveRaftVoterRequest,
) -> RemoveRaftVoterResponse {
    if !ctx.allowed_on_cluster(AclOperation::Alter) {
        return RemoveRaftVoterResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "Cluster authorization failed.",
            )));
    }
    if let Some(id) = req.cluster_id.as_ref().filter(|id| !id.is_empty()) {
        if id.as_str() != broker.cluster_id {
            return RemoveRaftVoterResponse::default()
                .with_error_code(ResponseError::InconsistentClusterId.code())
                .with_error_message(Some(StrBytes::from_string(format!(
                    "cluster id {id} is not this cluster's"
                ))));
        }
    }
    let rpc = ControllerRpc::RemoveVoter {
        voter_id: req.voter_id,
    };
    match broker.metadata.change_voters(rpc).await {
        Ok(()) => RemoveRaftVoterResponse::default().with_error_message(None),
        Err(e) => {
            let (code, message) = crate::error::controller_failure(&e);
            RemoveRaftVoterResponse::default()
                .with_error_code(code.code())
                .with_error_message(Some(StrBytes::from_string(message)))
        }
    }
}
