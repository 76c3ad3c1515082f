//! DescribeAcls (key 29; v1 adds KIP-290's pattern type filter, v2 is flexible): the
//! ACLs a filter selects, from this broker's metadata image, grouped by resource.
//! Versions from 1: Kafka 4 dropped v0 (KIP-896), and so does the codec.

use std::sync::Arc;

use gregor_protocol::kp::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use gregor_protocol::kp::messages::{ApiKey, DescribeAclsRequest, DescribeAclsResponse};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;
use gregor_security::acl::{
    AclBinding, AclBindingFilter, AclError, AclOperation, PatternType, PermissionType, ResourceType,
};

use super::{ApiSpec, RequestContext};
use crate::broker::Broker;
use crate::error::acl_error_code;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::DescribeAcls,
    min: 1,
    max: 3,
};

/// A filter from its wire fields (shared with DeleteAcls, whose filter has the same
/// fields). An unknown code (Kafka's UNKNOWN) refuses the filter.
pub(super) fn filter(
    (resource_type, resource_name, pattern_type): (i8, Option<&StrBytes>, i8),
    (principal, host): (Option<&StrBytes>, Option<&StrBytes>),
    (operation, permission): (i8, i8),
) -> Result<AclBindingFilter, AclError> {
    Ok(AclBindingFilter {
        resource_type: ResourceType::try_from(resource_type)?,
        resource_name: resource_name.map(|s| s.to_string()),
        pattern_type: PatternType::try_from(pattern_type)?,
        principal: principal.map(|s| s.to_string()),
        host: host.map(|s| s.to_string()),
        operation: AclOperation::try_from(operation)?,
        permission: PermissionType::try_from(permission)?,
    })
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: DescribeAclsRequest,
) -> DescribeAclsResponse {
    if !ctx.allowed_on_cluster(AclOperation::Describe) {
        return DescribeAclsResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "Cluster authorization failed.",
            )));
    }
    let f = match filter(
        (
            req.resource_type_filter,
            req.resource_name_filter.as_ref(),
            req.pattern_type_filter,
        ),
        (req.principal_filter.as_ref(), req.host_filter.as_ref()),
        (req.operation, req.permission_type),
    ) {
        Ok(f) => f,
        Err(e) => {
            return DescribeAclsResponse::default()
                .with_error_code(acl_error_code(&e).code())
                .with_error_message(Some(StrBytes::from_string(e.to_string())))
        }
    };
    let image = broker.metadata.image();
    DescribeAclsResponse::default()
        .with_error_message(None)
        .with_resources(resources(image.acl_index.matching(&f)))
}

/// Bindings (sorted by resource, as the index yields them) grouped per resource.
fn resources<'a>(bindings: impl Iterator<Item = &'a AclBinding>) -> Vec<DescribeAclsResource> {
    let mut out: Vec<DescribeAclsResource> = Vec::new();
    for b in bindings {
        let same = out.last().is_some_and(|r| {
            r.resource_type == b.resource_type.code()
                && r.pattern_type == b.pattern_type.code()
                && r.resource_name.as_str() == b.resource_name
        });
        if !same {
            out.push(
                DescribeAclsResource::default()
                    .with_resource_type(b.resource_type.code())
                    .with_resource_name(StrBytes::from_string(b.resource_name.clone()))
                    .with_pattern_type(b.pattern_type.code()),
            );
        }
        if let Some(r) = out.last_mut() {
            r.acls.push(
                AclDescription::default()
                    .with_principal(StrBytes::from_string(b.principal.clone()))
                    .with_host(StrBytes::from_string(b.host.clone()))
                    .with_operation(b.operation.code())
                    .with_permission_type(b.permission.code()),
            );
        }
    }
    out
}
