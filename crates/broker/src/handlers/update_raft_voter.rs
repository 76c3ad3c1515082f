//! UpdateRaftVoter (key 82, KIP-853): a voter's controller listener changed (it was
//! restarted on another address); the active controller sets the new address in the
//! membership in the log, which is where peers look addresses up.

use std::sync::Arc;

use gregor_metadata::active::ControllerRpc;
use gregor_protocol::kp::messages::update_raft_voter_response::CurrentLeader;
use gregor_protocol::kp::messages::{
    ApiKey, BrokerId, UpdateRaftVoterRequest, UpdateRaftVoterResponse,
};
use gregor_protocol::kp::ResponseError;

use super::{AclOperation, ApiSpec, RequestContext};
use crate::broker::Broker;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::UpdateRaftVoter,
    min: 0,
    max: 0,
};

fn answer(code: ResponseError) -> UpdateRaftVoterResponse {
    UpdateRaftVoterResponse::default()
        .with_error_code(code.code())
        .with_current_leader(
            CurrentLeader::default()
                .with_leader_id(BrokerId(-1))
                .with_leader_epoch(-1),
        )
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: UpdateRaftVoterRequest,
) -> UpdateRaftVoterResponse {
    if !ctx.allowed_on_cluster(AclOperation::ClusterAction) {
        return answer(ResponseError::ClusterAuthorizationFailed);
    }
    if let Some(id) = req.cluster_id.as_ref().filter(|id| !id.is_empty()) {
        if id.as_str() != broker.cluster_id {
            return answer(ResponseError::InconsistentClusterId);
        }
    }
    let listeners: Vec<(&str, &str, u16)> = req
        .listeners
        .iter()
        .map(|l| (l.name.as_str(), l.host.as_str(), l.port))
        .collect();
    let Some(addr) = super::add_raft_voter::controller_listener(broker, &listeners) else {
        return answer(ResponseError::InvalidRequest);
    };
    let rpc = ControllerRpc::UpdateVoter {
        voter_id: req.voter_id,
        addr,
    };
    match broker.metadata.change_voters(rpc).await {
        Ok(()) => UpdateRaftVoterResponse::default().with_current_leader(
            CurrentLeader::default()
                .with_leader_id(BrokerId(-1))
                .with_leader_epoch(-1),
        ),
        Err(e) => answer(crate::error::controller_failure(&e).0),
    }
}
