//! DeleteAcls (key 31; v1 adds KIP-290's pattern type filter, v2 is flexible): the
//! valid filters go to the controller as one request, which removes every ACL any of
//! them matches in its image at commit time and names the removed ACLs in its answer;
//! each filter then lists the removed ACLs it matches (an ACL two filters match is
//! listed under both, as in Kafka). A filter with an unknown code is INVALID_REQUEST.

use std::sync::Arc;

use gregor_metadata::ControllerRequest;
use gregor_protocol::kp::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use gregor_protocol::kp::messages::{ApiKey, DeleteAclsRequest, DeleteAclsResponse};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;
use gregor_security::acl::{AclBinding, AclBindingFilter, AclError};

use super::describe_acls::filter;
use super::{AclOperation, ApiSpec, RequestContext};
use crate::broker::Broker;
use crate::error::{acl_error_code, controller_failure};

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::DeleteAcls,
    min: 1,
    max: 3,
};

fn matching(b: &AclBinding) -> DeleteAclsMatchingAcl {
    DeleteAclsMatchingAcl::default()
        .with_error_message(None)
        .with_resource_type(b.resource_type.code())
        .with_resource_name(StrBytes::from_string(b.resource_name.clone()))
        .with_pattern_type(b.pattern_type.code())
        .with_principal(StrBytes::from_string(b.principal.clone()))
        .with_host(StrBytes::from_string(b.host.clone()))
        .with_operation(b.operation.code())
        .with_permission_type(b.permission.code())
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: DeleteAclsRequest,
) -> DeleteAclsResponse {
    // Kafka: ALTER on the cluster, else every filter fails.
    if !ctx.allowed_on_cluster(AclOperation::Alter) {
        let refused = DeleteAclsFilterResult::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "Cluster authorization failed.",
            )));
        return DeleteAclsResponse::default().with_filter_results(vec![refused; req.filters.len()]);
    }
    let checked: Vec<Result<AclBindingFilter, AclError>> = req
        .filters
        .iter()
        .map(|f| {
            filter(
                (
                    f.resource_type_filter,
                    f.resource_name_filter.as_ref(),
                    f.pattern_type_filter,
                ),
                (f.principal_filter.as_ref(), f.host_filter.as_ref()),
                (f.operation, f.permission_type),
            )
        })
        .collect();
    let valid: Vec<AclBindingFilter> = checked.iter().filter_map(|r| r.clone().ok()).collect();
    let outcome = if valid.is_empty() {
        Ok(Vec::new())
    } else {
        broker
            .metadata
            .commit_removing_acls(ControllerRequest::DeleteAcls { filters: valid })
            .await
            .map(|(_, mut removed)| {
                removed.sort();
                removed
            })
            .map_err(|e| controller_failure(&e))
    };
    let results = checked
        .iter()
        .map(|r| match (r, &outcome) {
            (Err(e), _) => DeleteAclsFilterResult::default()
                .with_error_code(acl_error_code(e).code())
                .with_error_message(Some(StrBytes::from_string(e.to_string()))),
            (Ok(_), Err((code, msg))) => DeleteAclsFilterResult::default()
                .with_error_code(code.code())
                .with_error_message(Some(StrBytes::from_string(msg.clone()))),
            (Ok(f), Ok(removed)) => DeleteAclsFilterResult::default()
                .with_error_message(None)
                .with_matching_acls(
                    removed
                        .iter()
                        .filter(|b| f.matches(b))
                        .map(matching)
                        .collect(),
                ),
        })
        .collect();
    DeleteAclsResponse::default().with_filter_results(results)
}
