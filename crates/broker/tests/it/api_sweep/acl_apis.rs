//! ACLs: CreateAcls makes one ACL per version (and a PREFIXED one, and refuses a bad
//! one), DescribeAcls finds them with a MATCH filter, DeleteAcls removes each.

use gregor_protocol::kp::messages::*;

use super::common::Client;
use super::support::{s, Sweep, INVALID_REQUEST};

fn creation(
    name: &str,
    pattern: i8,
    principal: &str,
    permission: i8,
) -> create_acls_request::AclCreation {
    create_acls_request::AclCreation::default()
        .with_resource_type(2)
        .with_resource_name(s(name))
        .with_resource_pattern_type(pattern)
        .with_principal(s(principal))
        .with_host(s("*"))
        .with_operation(3)
        .with_permission_type(permission)
}

pub(crate) async fn create_acls(c: &mut Client, cx: &Sweep<'_>, (min, max): (i16, i16)) {
    for v in [min, max] {
        let req = CreateAclsRequest::default().with_creations(vec![
            creation(&format!("sweep-acl-{v}"), 3, "User:alice", 3),
            creation("sweep-", 4, "User:bob", 2),
            // CLUSTER with another name than kafka-cluster.
            creation("sweep", 3, "User:alice", 3).with_resource_type(4),
        ]);
        let r = c.call(&req, v).await;
        let codes: Vec<i16> = r.results.iter().map(|x| x.error_code).collect();
        assert_eq!(codes, vec![0, 0, INVALID_REQUEST], "v{v}: {r:?}");
        assert_eq!(r.results[0].error_message, None, "v{v}");
        assert_eq!(
            r.results[2].error_message.as_ref().map(|m| m.to_string()),
            Some("The only valid name for the CLUSTER resource is kafka-cluster".into())
        );
    }
    // The PREFIXED binding, created twice, is one ACL.
    assert_eq!(cx.b.broker.metadata.image().acls.len(), 3);
}

fn describe(name: Option<&str>, pattern: i8) -> DescribeAclsRequest {
    DescribeAclsRequest::default()
        .with_resource_type_filter(2)
        .with_resource_name_filter(name.map(s))
        .with_pattern_type_filter(pattern)
        .with_principal_filter(None)
        .with_host_filter(None)
        .with_operation(1)
        .with_permission_type(1)
}

pub(crate) async fn describe_acls(c: &mut Client, _cx: &Sweep<'_>, (min, max): (i16, i16)) {
    for v in [min, max] {
        let r = c.call(&describe(Some("sweep-acl-1"), 2), v).await;
        assert_eq!(r.error_code, 0, "v{v}: {r:?}");
        assert_eq!(r.error_message, None);
        let found: Vec<(String, i8, String, i8)> = r
            .resources
            .iter()
            .flat_map(|res| {
                res.acls.iter().map(|a| {
                    (
                        res.resource_name.to_string(),
                        res.pattern_type,
                        a.principal.to_string(),
                        a.permission_type,
                    )
                })
            })
            .collect();
        assert_eq!(
            found,
            vec![
                ("sweep-".into(), 4, "User:bob".into(), 2),
                ("sweep-acl-1".into(), 3, "User:alice".into(), 3),
            ],
            "v{v}"
        );
        // LITERAL with no name: both literal ACLs, nothing else.
        let r = c.call(&describe(None, 3), v).await;
        assert_eq!(r.resources.len(), 2, "v{v}: {r:?}");
        // An unknown resource type (Kafka's UNKNOWN, 0) is refused.
        let r = c
            .call(&describe(None, 3).with_resource_type_filter(0), v)
            .await;
        assert_eq!(r.error_code, INVALID_REQUEST, "v{v}");
        assert!(r.resources.is_empty());
    }
}

pub(crate) async fn delete_acls(c: &mut Client, cx: &Sweep<'_>, (min, max): (i16, i16)) {
    for v in [min, max] {
        let filter = delete_acls_request::DeleteAclsFilter::default()
            .with_resource_type_filter(2)
            .with_resource_name_filter(Some(s(&format!("sweep-acl-{v}"))))
            .with_pattern_type_filter(1)
            .with_principal_filter(None)
            .with_host_filter(None)
            .with_operation(1)
            .with_permission_type(1);
        let bad = filter.clone().with_operation(0);
        let r = c
            .call(
                &DeleteAclsRequest::default().with_filters(vec![filter, bad]),
                v,
            )
            .await;
        let f = &r.filter_results;
        assert_eq!(f.len(), 2, "v{v}: {r:?}");
        assert_eq!((f[0].error_code, f[0].error_message.as_ref()), (0, None));
        let m: Vec<(String, String, i8)> = f[0]
            .matching_acls
            .iter()
            .map(|a| {
                (
                    a.resource_name.to_string(),
                    a.principal.to_string(),
                    a.operation,
                )
            })
            .collect();
        assert_eq!(m, vec![(format!("sweep-acl-{v}"), "User:alice".into(), 3)]);
        assert_eq!(f[1].error_code, INVALID_REQUEST, "v{v}");
    }
    // The PREFIXED one is left.
    let image = cx.b.broker.metadata.image();
    let left: Vec<&str> = image
        .acls
        .values()
        .map(|b| b.resource_name.as_str())
        .collect();
    assert_eq!(left, vec!["sweep-"]);
}
