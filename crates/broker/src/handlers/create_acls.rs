//! CreateAcls (key 30; v1 adds KIP-290's pattern type, v2 is flexible): each binding is
//! checked here (Kafka's checks and messages, INVALID_REQUEST per binding); the valid
//! ones go to the controller as one request, answered once this broker applied it. A
//! binding that already exists is success, as in Kafka.

use std::sync::Arc;

use gregor_metadata::ControllerRequest;
use gregor_protocol::kp::messages::create_acls_request::AclCreation;
use gregor_protocol::kp::messages::create_acls_response::AclCreationResult;
use gregor_protocol::kp::messages::{ApiKey, CreateAclsRequest, CreateAclsResponse};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;
use gregor_security::acl::{
    AclBinding, AclError, AclOperation, PatternType, PermissionType, ResourceType,
};

use super::{ApiSpec, RequestContext};
use crate::broker::Broker;
use crate::error::{acl_error_code, controller_failure};

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::CreateAcls,
    min: 1,
    max: 3,
};

fn binding(c: &AclCreation) -> Result<AclBinding, AclError> {
    let b = AclBinding {
        resource_type: ResourceType::try_from(c.resource_type)?,
        resource_name: c.resource_name.to_string(),
        pattern_type: PatternType::try_from(c.resource_pattern_type)?,
        principal: c.principal.to_string(),
        host: c.host.to_string(),
        operation: AclOperation::try_from(c.operation)?,
        permission: PermissionType::try_from(c.permission_type)?,
    };
    b.validate()?;
    Ok(b)
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: CreateAclsRequest,
) -> CreateAclsResponse {
    // Kafka: ALTER on the cluster, else every creation fails.
    if !ctx.allowed_on_cluster(AclOperation::Alter) {
        let refused = AclCreationResult::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "Cluster authorization failed.",
            )));
        return CreateAclsResponse::default().with_results(vec![refused; req.creations.len()]);
    }
    let checked: Vec<Result<AclBinding, AclError>> = req.creations.iter().map(binding).collect();
    let valid: Vec<AclBinding> = checked.iter().filter_map(|r| r.clone().ok()).collect();
    let failure = if valid.is_empty() {
        None
    } else {
        broker
            .commit_metadata(ControllerRequest::CreateAcls { bindings: valid })
            .await
            .err()
            .map(|e| controller_failure(&e))
    };
    let results = checked
        .into_iter()
        .map(|r| {
            let (code, message) = match (r, &failure) {
                (Err(e), _) => (acl_error_code(&e).code(), Some(e.to_string())),
                (Ok(_), Some((code, msg))) => (code.code(), Some(msg.clone())),
                (Ok(_), None) => (0, None),
            };
            AclCreationResult::default()
                .with_error_code(code)
                .with_error_message(message.map(StrBytes::from_string))
        })
        .collect();
    CreateAclsResponse::default().with_results(results)
}
