//! AddRaftVoter (key 80, KIP-853): a controller that started outside the voter set
//! (`controller.quorum.bootstrap.servers`, its id not among them) becomes a voter of the
//! metadata quorum. The active controller adds it as a learner, waits until it has
//! caught up with the metadata log, then changes the membership (openraft's joint
//! consensus). Answered once the new voter set is committed.

use std::sync::Arc;

use gregor_metadata::active::ControllerRpc;
use gregor_protocol::kp::messages::{AddRaftVoterRequest, AddRaftVoterResponse, ApiKey};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;

use super::{AclOperation, ApiSpec, RequestContext};
use crate::broker::Broker;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::AddRaftVoter,
    min: 0,
    max: 0,
};

/// The `host:port` of a voter's controller listener among `(name, host, port)`
/// entries (AddRaftVoter's and UpdateRaftVoter's listener lists): the one named like
/// this cluster's (`controller.listener.names`), else the only one given.
pub(super) fn controller_listener(
    broker: &Broker,
    listeners: &[(&str, &str, u16)],
) -> Option<String> {
    let names = broker
        .config
        .get("controller.listener.names")
        .unwrap_or("CONTROLLER");
    listeners
        .iter()
        .find(|(name, _, _)| names.split(',').any(|n| n.trim() == *name))
        .or_else(|| (listeners.len() == 1).then(|| &listeners[0]))
        .map(|(_, host, port)| format!("{host}:{port}"))
}

fn refused(code: ResponseError, message: String) -> AddRaftVoterResponse {
    AddRaftVoterResponse::default()
        .with_error_code(code.code())
        .with_error_message(Some(StrBytes::from_string(message)))
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: AddRaftVoterRequest,
) -> AddRaftVoterResponse {
    if !ctx.allowed_on_cluster(AclOperation::Alter) {
        return refused(
            ResponseError::ClusterAuthorizationFailed,
            "Cluster authorization failed.".into(),
        );
    }
    if let Some(id) = req.cluster_id.as_ref().filter(|id| !id.is_empty()) {
        if id.as_str() != broker.cluster_id {
            return refused(
                ResponseError::InconsistentClusterId,
                format!("cluster id {id} is not this cluster's"),
            );
        }
    }
    let listeners: Vec<(&str, &str, u16)> = req
        .listeners
        .iter()
        .map(|l| (l.name.as_str(), l.host.as_str(), l.port))
        .collect();
    let Some(addr) = controller_listener(broker, &listeners) else {
        return refused(
            ResponseError::InvalidRequest,
            "the new voter's controller listener is missing".into(),
        );
    };
    let rpc = ControllerRpc::AddVoter {
        voter_id: req.voter_id,
        addr,
    };
    match broker.metadata.change_voters(rpc).await {
        Ok(()) => AddRaftVoterResponse::default().with_error_message(None),
        Err(e) => {
            let (code, message) = crate::error::controller_failure(&e);
            refused(code, message)
        }
    }
}
