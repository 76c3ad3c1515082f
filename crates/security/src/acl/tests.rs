#![allow(clippy::unwrap_used)]

use std::collections::HashSet;
use std::sync::Arc;

use super::*;

fn binding(
    rt: ResourceType,
    name: &str,
    pt: PatternType,
    principal: &str,
    op: AclOperation,
    perm: PermissionType,
) -> AclBinding {
    AclBinding {
        resource_type: rt,
        resource_name: name.into(),
        pattern_type: pt,
        principal: principal.into(),
        host: "*".into(),
        operation: op,
        permission: perm,
    }
}

fn topic(name: &str, pt: PatternType, principal: &str, op: AclOperation) -> AclBinding {
    binding(
        ResourceType::Topic,
        name,
        pt,
        principal,
        op,
        PermissionType::Allow,
    )
}

fn deny(mut b: AclBinding) -> AclBinding {
    b.permission = PermissionType::Deny;
    b
}

fn authorizer(acls: Vec<AclBinding>, allow_if_none: bool, supers: &[&str]) -> Authorizer {
    let config = AuthorizerConfig {
        super_users: supers.iter().filter_map(|s| Principal::parse(s)).collect(),
        allow_everyone_if_no_acl_found: allow_if_none,
    };
    Authorizer::new(Arc::new(acls.into_iter().collect()), Arc::new(config))
}

fn alice() -> Principal {
    Principal::user("alice")
}

use AclOperation as Op;
use PatternType::{Literal, Prefixed};
use ResourceType::Topic;

#[test]
fn codes_and_names_round_trip() {
    for &op in AclOperation::ALL {
        assert_eq!(AclOperation::try_from(op.code()), Ok(op));
        assert_eq!(op.name().parse::<AclOperation>(), Ok(op));
    }
    assert_eq!("describe-configs".parse(), Ok(Op::DescribeConfigs));
    assert_eq!("IdempotentWrite".parse(), Ok(Op::IdempotentWrite));
    assert_eq!(ResourceType::try_from(2), Ok(Topic));
    assert_eq!(PatternType::try_from(4), Ok(Prefixed));
    assert_eq!(PermissionType::try_from(3), Ok(PermissionType::Allow));
    for bad in [0, 16, -1] {
        assert!(AclOperation::try_from(bad).is_err());
    }
    assert!(ResourceType::try_from(0).is_err());
    assert!(ResourceType::try_from(8).is_err());
    assert!(PatternType::try_from(5).is_err());
    assert!(PermissionType::try_from(4).is_err());
    assert!("reed".parse::<AclOperation>().is_err());
    assert_eq!(Op::TwoPhaseCommit.code(), 15);
}

#[test]
fn validation_follows_kafka() {
    let ok = topic("t", Literal, "User:alice", Op::Read);
    assert_eq!(ok.validate(), Ok(()));
    let msg = |b: AclBinding| match b.validate() {
        Err(AclError::Invalid(m)) => m,
        other => panic!("{other:?}"),
    };
    let mut b = ok.clone();
    b.resource_type = ResourceType::Any;
    assert_eq!(msg(b), "Invalid resourceType ANY");
    let mut b = ok.clone();
    b.pattern_type = PatternType::Match;
    assert_eq!(msg(b), "Invalid patternType MATCH");
    let mut b = ok.clone();
    b.operation = Op::Any;
    assert_eq!(msg(b), "Invalid operation ANY");
    let mut b = ok.clone();
    b.permission = PermissionType::Any;
    assert_eq!(msg(b), "Invalid permissionType ANY");
    let mut b = ok.clone();
    b.resource_type = ResourceType::Cluster;
    assert_eq!(
        msg(b.clone()),
        "The only valid name for the CLUSTER resource is kafka-cluster"
    );
    b.resource_name = CLUSTER_NAME.into();
    assert_eq!(b.validate(), Ok(()));
    let mut b = ok.clone();
    b.resource_name = String::new();
    assert_eq!(msg(b), "Invalid empty resource name");
    let mut b = ok.clone();
    b.principal = "alice".into();
    assert!(msg(b).starts_with("expected a string in format principalType:principalName"));
    // Kafka takes a PREFIXED `*` (it matches names starting with `*`).
    let b = topic("*", Prefixed, "User:*", Op::All);
    assert_eq!(b.validate(), Ok(()));
}

#[test]
fn filters_match_as_kafka() {
    let lit = topic("foo", Literal, "User:alice", Op::Read);
    let wild = topic("*", Literal, "User:bob", Op::Write);
    let pre = topic("fo", Prefixed, "User:alice", Op::Read);
    let other = topic("bar", Literal, "User:alice", Op::Read);
    let group = binding(
        ResourceType::Group,
        "foo",
        Literal,
        "User:alice",
        Op::Read,
        PermissionType::Allow,
    );
    let all = [&lit, &wild, &pre, &other, &group];
    let select = |f: &AclBindingFilter| -> Vec<&AclBinding> {
        all.iter().copied().filter(|b| f.matches(b)).collect()
    };
    assert_eq!(select(&AclBindingFilter::any()).len(), 5);
    let named = |pt: PatternType| AclBindingFilter {
        resource_type: Topic,
        resource_name: Some("foo".into()),
        pattern_type: pt,
        ..AclBindingFilter::any()
    };
    // MATCH: what applies to topic foo.
    assert_eq!(select(&named(PatternType::Match)), vec![&lit, &wild, &pre]);
    // ANY: the name compared exactly, any pattern type.
    assert_eq!(select(&named(PatternType::Any)), vec![&lit]);
    assert_eq!(select(&named(Literal)), vec![&lit]);
    assert!(select(&named(Prefixed)).is_empty());
    let prefixed = AclBindingFilter {
        pattern_type: Prefixed,
        ..AclBindingFilter::any()
    };
    assert_eq!(select(&prefixed), vec![&pre]);
    let by_principal = AclBindingFilter {
        principal: Some("User:bob".into()),
        ..AclBindingFilter::any()
    };
    assert_eq!(select(&by_principal), vec![&wild]);
    let by_op = AclBindingFilter {
        operation: Op::Write,
        permission: PermissionType::Allow,
        ..AclBindingFilter::any()
    };
    assert_eq!(select(&by_op), vec![&wild]);
    let by_host = AclBindingFilter {
        host: Some("10.0.0.1".into()),
        ..AclBindingFilter::any()
    };
    assert!(select(&by_host).is_empty());
    let groups = AclBindingFilter {
        resource_type: ResourceType::Group,
        ..AclBindingFilter::any()
    };
    assert_eq!(select(&groups), vec![&group]);
}

#[test]
fn no_acl_found_default_both_ways() {
    let a = authorizer(vec![], true, &[]);
    assert!(a.authorize(&alice(), "1.2.3.4", Op::Read, Topic, "t"));
    let a = authorizer(vec![], false, &[]);
    assert!(!a.authorize(&alice(), "1.2.3.4", Op::Read, Topic, "t"));
    // An ACL on another resource (or for someone else) does not count; one on this
    // resource does, even for another principal.
    let bob_t = topic("t", Literal, "User:bob", Op::Read);
    let a = authorizer(vec![bob_t.clone()], true, &[]);
    assert!(a.authorize(&alice(), "h", Op::Read, Topic, "other"));
    assert!(!a.authorize(&alice(), "h", Op::Read, Topic, "t"));
    assert!(a.authorize(&Principal::user("bob"), "h", Op::Read, Topic, "t"));
    assert!(a.authorize(&alice(), "h", Op::Read, ResourceType::Group, "t"));
}

#[test]
fn deny_wins_over_allow() {
    let acls = vec![
        topic("t", Literal, "User:alice", Op::Read),
        deny(topic("t", Prefixed, "User:*", Op::Read)),
    ];
    let a = authorizer(acls, true, &[]);
    assert!(!a.authorize(&alice(), "h", Op::Read, Topic, "t"));
    // DENY ALL beats an ALLOW READ too.
    let acls = vec![
        topic("*", Literal, "User:alice", Op::Read),
        deny(topic("t", Literal, "User:alice", Op::All)),
    ];
    let a = authorizer(acls, false, &[]);
    assert!(!a.authorize(&alice(), "h", Op::Read, Topic, "t"));
    assert!(a.authorize(&alice(), "h", Op::Read, Topic, "u"));
}

#[test]
fn prefixed_literal_and_wildcard_resources() {
    let acls = vec![
        topic("orders-", Prefixed, "User:alice", Op::Write),
        topic("exact", Literal, "User:alice", Op::Read),
        topic("*", Literal, "User:alice", Op::Describe),
    ];
    let a = authorizer(acls, false, &[]);
    assert!(a.authorize(&alice(), "h", Op::Write, Topic, "orders-eu"));
    assert!(a.authorize(&alice(), "h", Op::Write, Topic, "orders-"));
    assert!(!a.authorize(&alice(), "h", Op::Write, Topic, "orders"));
    assert!(a.authorize(&alice(), "h", Op::Read, Topic, "exact"));
    assert!(!a.authorize(&alice(), "h", Op::Read, Topic, "exact2"));
    assert!(!a.authorize(&alice(), "h", Op::Read, Topic, "exac"));
    assert!(a.authorize(&alice(), "h", Op::Describe, Topic, "anything"));
    // A literal ACL named `*`-something is no wildcard.
    let a = authorizer(
        vec![topic("*x", Literal, "User:alice", Op::Read)],
        false,
        &[],
    );
    assert!(!a.authorize(&alice(), "h", Op::Read, Topic, "y"));
    // Multi-byte names: prefixes are cut on character boundaries.
    let a = authorizer(
        vec![topic("é", Prefixed, "User:alice", Op::Read)],
        false,
        &[],
    );
    assert!(a.authorize(&alice(), "h", Op::Read, Topic, "été"));
    assert!(!a.authorize(&alice(), "h", Op::Read, Topic, "e"));
}

#[test]
fn wildcard_principal_and_host() {
    let mut b = topic("t", Literal, "User:*", Op::Read);
    b.host = "10.0.0.1".into();
    let a = authorizer(vec![b], false, &[]);
    assert!(a.authorize(&alice(), "10.0.0.1", Op::Read, Topic, "t"));
    assert!(!a.authorize(&alice(), "10.0.0.2", Op::Read, Topic, "t"));
    // Only `User:*` is the wildcard principal.
    let a = authorizer(vec![topic("t", Literal, "Group:*", Op::Read)], false, &[]);
    assert!(!a.authorize(&alice(), "h", Op::Read, Topic, "t"));
    let p = Principal::parse("Group:x").unwrap();
    let a = authorizer(vec![topic("t", Literal, "User:*", Op::Read)], false, &[]);
    assert!(a.authorize(&p, "h", Op::Read, Topic, "t"));
}

#[test]
fn implied_operations() {
    for op in [Op::Read, Op::Write, Op::Delete, Op::Alter] {
        let a = authorizer(vec![topic("t", Literal, "User:alice", op)], false, &[]);
        assert!(a.authorize(&alice(), "h", Op::Describe, Topic, "t"), "{op}");
        assert!(!a.authorize(&alice(), "h", Op::Create, Topic, "t"), "{op}");
    }
    let a = authorizer(
        vec![topic("t", Literal, "User:alice", Op::Create)],
        false,
        &[],
    );
    assert!(!a.authorize(&alice(), "h", Op::Describe, Topic, "t"));
    let a = authorizer(
        vec![topic("t", Literal, "User:alice", Op::AlterConfigs)],
        false,
        &[],
    );
    assert!(a.authorize(&alice(), "h", Op::DescribeConfigs, Topic, "t"));
    assert!(!a.authorize(&alice(), "h", Op::Describe, Topic, "t"));
    let a = authorizer(vec![topic("t", Literal, "User:alice", Op::All)], false, &[]);
    for &op in AclOperation::ALL.iter().filter(|o| **o != Op::Any) {
        assert!(a.authorize(&alice(), "h", op, Topic, "t"), "{op}");
    }
    // Implication only allows: a DENY READ leaves DESCRIBE to the ALLOW.
    let a = authorizer(
        vec![
            deny(topic("t", Literal, "User:alice", Op::Read)),
            topic("t", Literal, "User:alice", Op::Describe),
        ],
        false,
        &[],
    );
    assert!(a.authorize(&alice(), "h", Op::Describe, Topic, "t"));
    assert!(!a.authorize(&alice(), "h", Op::Read, Topic, "t"));
}

#[test]
fn super_users_pass_denies() {
    let supers = AuthorizerConfig::parse_super_users(" User:admin ; User:ops;").unwrap();
    assert_eq!(
        supers,
        HashSet::from([Principal::user("admin"), Principal::user("ops")])
    );
    assert!(AuthorizerConfig::parse_super_users("admin").is_err());
    let a = authorizer(
        vec![deny(topic("*", Literal, "User:*", Op::All))],
        false,
        &["User:admin"],
    );
    assert!(a.authorize(&Principal::user("admin"), "h", Op::Write, Topic, "t"));
    assert!(!a.authorize(&alice(), "h", Op::Write, Topic, "t"));
}

#[test]
fn by_resource_type() {
    let write = |acls: Vec<AclBinding>, allow_if_none: bool| {
        authorizer(acls, allow_if_none, &[]).authorize_by_resource_type(
            &alice(),
            "h",
            Op::Write,
            Topic,
        )
    };
    assert!(write(vec![], true));
    assert!(!write(vec![], false));
    assert!(write(
        vec![topic("t", Literal, "User:alice", Op::Write)],
        false
    ));
    assert!(write(vec![topic("t", Literal, "User:*", Op::All)], false));
    // An implied operation does not count, nor another principal.
    assert!(!write(
        vec![topic("t", Literal, "User:alice", Op::Read)],
        false
    ));
    assert!(!write(
        vec![topic("t", Literal, "User:bob", Op::Write)],
        false
    ));
    // A deny of the same literal, or of a prefix of it, dominates.
    let allow_t = topic("team-t", Literal, "User:alice", Op::Write);
    assert!(!write(
        vec![
            allow_t.clone(),
            deny(topic("team-t", Literal, "User:alice", Op::Write))
        ],
        false
    ));
    assert!(!write(
        vec![
            allow_t.clone(),
            deny(topic("team", Prefixed, "User:alice", Op::Write))
        ],
        false
    ));
    // A deny of a longer prefix does not.
    assert!(write(
        vec![
            topic("team", Prefixed, "User:alice", Op::Write),
            deny(topic("team-x", Prefixed, "User:alice", Op::Write))
        ],
        false
    ));
    // A wildcard deny denies; a wildcard allow allows.
    assert!(!write(
        vec![
            allow_t.clone(),
            deny(topic("*", Literal, "User:*", Op::Write))
        ],
        true
    ));
    assert!(write(
        vec![topic("*", Literal, "User:alice", Op::Write)],
        false
    ));
    // Super users pass.
    let a = authorizer(
        vec![deny(topic("*", Literal, "User:*", Op::All))],
        false,
        &["User:alice"],
    );
    assert!(a.authorize_by_resource_type(&alice(), "h", Op::Write, Topic));
}

#[test]
fn index_insert_remove_and_equality() {
    let a = topic("t", Literal, "User:alice", Op::Read);
    let p = topic("t", Prefixed, "User:alice", Op::Read);
    let mut idx = AclIndex::new();
    assert!(idx.insert(a.clone()));
    assert!(!idx.insert(a.clone()));
    assert!(idx.insert(p.clone()));
    assert_eq!(idx.len(), 2);
    let other: AclIndex = [p.clone(), a.clone()].into_iter().collect();
    assert_eq!(idx, other);
    assert!(idx.remove(&p));
    assert!(!idx.remove(&p));
    let auth = Authorizer::new(Arc::new(idx.clone()), Arc::default());
    assert!(!auth.authorize(&Principal::user("bob"), "h", Op::Read, Topic, "t"));
    assert!(auth.authorize(&Principal::user("bob"), "h", Op::Read, Topic, "tx"));
    assert!(idx.remove(&a));
    assert!(idx.is_empty());
    let auth = Authorizer::new(Arc::new(idx), Arc::default());
    assert!(auth.authorize(&Principal::user("bob"), "h", Op::Read, Topic, "t"));
}
