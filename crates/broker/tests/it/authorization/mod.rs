//! Every API in the registry against the authorizer, table-driven: with
//! `allow.everyone.if.no.acl.found=false` and no ACL, a request that touches a resource
//! must get the authorization error Kafka gives (TOPIC_, GROUP_, CLUSTER_ or
//! TRANSACTIONAL_ID_AUTHORIZATION_FAILED); with the ACLs its case grants, the same
//! request must get no authorization error. An API in the registry that no case module
//! knows fails this test, so a new handler cannot skip authorization unnoticed.
//!
//! The test client speaks PLAINTEXT, so its principal is `User:ANONYMOUS`; the ACLs are
//! committed through the broker's controller path directly (the client itself may not).
//! Cases live by theme: `data_groups` (produce, fetch, offsets, metadata, groups) and
//! `admin_cluster` (topics, configs, transactions, cluster operations, ACLs, SCRAM),
//! `share_groups` (KIP-932).

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use crate::common;

mod admin_cluster;
mod data_groups;
mod share_groups;

use bytes::{BufMut, Bytes, BytesMut};
use common::{Client, TestBroker};
use gregor_broker::handlers::SUPPORTED;
use gregor_metadata::ControllerRequest;
use gregor_protocol::kp::messages::*;
use gregor_protocol::kp::protocol::{Decodable, Encodable, StrBytes};
use gregor_security::acl::{
    AclBinding, AclBindingFilter, AclOperation, PatternType, PermissionType, ResourceType,
};

pub(crate) const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
pub(crate) const GROUP_AUTHORIZATION_FAILED: i16 = 30;
pub(crate) const CLUSTER_AUTHORIZATION_FAILED: i16 = 31;
pub(crate) const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = 53;
const AUTHORIZATION_ERRORS: [i16; 4] = [
    TOPIC_AUTHORIZATION_FAILED,
    GROUP_AUTHORIZATION_FAILED,
    CLUSTER_AUTHORIZATION_FAILED,
    TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
];

pub(crate) fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// What the cases may refer to: the broker's existing topic `t` (one partition, with
/// records) and its id.
pub(crate) struct Env {
    pub topic_id: uuid::Uuid,
    pub node_id: i32,
}

/// One API's authorization check.
pub(crate) enum Case {
    /// The request touches no protected resource (ApiVersions, SASL, telemetry).
    Exempt(&'static str),
    Checked {
        /// The request at a version.
        request: fn(&Env, i16) -> RequestKind,
        /// The error code it gets with no ACL (somewhere in the answer).
        denied: i16,
        /// What makes it pass: (operation, resource type, literal name).
        grants: &'static [(AclOperation, ResourceType, &'static str)],
    },
}

/// A checked case (the table's usual entry).
pub(crate) fn checked(
    request: fn(&Env, i16) -> RequestKind,
    denied: i16,
    grants: &'static [(AclOperation, ResourceType, &'static str)],
) -> Option<Case> {
    Some(Case::Checked {
        request,
        denied,
        grants,
    })
}

fn binding(op: AclOperation, rt: ResourceType, name: &str) -> AclBinding {
    AclBinding {
        resource_type: rt,
        resource_name: name.to_string(),
        pattern_type: PatternType::Literal,
        principal: "User:ANONYMOUS".to_string(),
        host: "*".to_string(),
        operation: op,
        permission: PermissionType::Allow,
    }
}

async fn set_acls(b: &TestBroker, grants: &[(AclOperation, ResourceType, &str)]) {
    b.broker
        .commit_metadata(ControllerRequest::DeleteAcls {
            filters: vec![AclBindingFilter::any()],
        })
        .await
        .unwrap();
    if !grants.is_empty() {
        let bindings = grants
            .iter()
            .map(|&(op, rt, n)| binding(op, rt, n))
            .collect();
        b.broker
            .commit_metadata(ControllerRequest::CreateAcls { bindings })
            .await
            .unwrap();
    }
}

fn encode_frame(key: ApiKey, v: i16, body: &RequestKind) -> Bytes {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(v)
        .with_correlation_id(7)
        .with_client_id(Some(s("gregor-authz")));
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    header
        .encode(&mut buf, key.request_header_version(v))
        .unwrap();
    body.encode(&mut buf, v).unwrap();
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    buf.freeze()
}

/// Every `error_code` value in a Debug rendering of a response.
fn error_codes(debug: &str) -> Vec<i16> {
    debug
        .match_indices("error_code: ")
        .filter_map(|(at, m)| {
            let rest = &debug[at + m.len()..];
            let end = rest
                .find(|c: char| c != '-' && !c.is_ascii_digit())
                .unwrap_or(rest.len());
            rest[..end].parse().ok()
        })
        .collect()
}

async fn answer(c: &mut Client, key: ApiKey, v: i16, req: &RequestKind) -> String {
    c.send_raw(&encode_frame(key, v, req)).await;
    let mut frame = c
        .read_frame()
        .await
        .unwrap_or_else(|| panic!("{key:?} v{v}: connection closed"));
    ResponseHeader::decode(&mut frame, key.response_header_version(v)).unwrap();
    let resp = ResponseKind::decode(key, &mut frame, v)
        .unwrap_or_else(|e| panic!("{key:?} v{v}: answer does not decode: {e}"));
    format!("{resp:?}")
}

#[tokio::test]
async fn every_api_is_refused_without_its_acl_and_served_with_it() {
    let b = TestBroker::start(&[
        ("allow.everyone.if.no.acl.found", "false"),
        ("group.initial.rebalance.delay.ms", "0"),
    ])
    .await;
    // Set up as an operator would: the topic exists before the test's ACLs bite.
    set_acls(
        &b,
        &[(AclOperation::Create, ResourceType::Cluster, "kafka-cluster")],
    )
    .await;
    let mut setup = b.connect().await;
    setup.create_topic("t", 1).await;
    let env = Env {
        topic_id: b.broker.metadata.image().topic("t").unwrap().id,
        node_id: b.broker.config.node_id,
    };
    let mut checked = Vec::new();
    for spec in SUPPORTED {
        let case = data_groups::case(spec.key)
            .or_else(|| admin_cluster::case(spec.key))
            .or_else(|| share_groups::case(spec.key))
            .unwrap_or_else(|| panic!("{:?} has no authorization case: add one", spec.key));
        let (request, denied, grants) = match case {
            Case::Checked {
                request,
                denied,
                grants,
            } => (request, denied, grants),
            Case::Exempt(why) => {
                eprintln!("{:?}: not in the table ({why})", spec.key);
                continue;
            }
        };
        // Produce v0-v2 are listed for librdkafka's feature detection only.
        let min = if spec.key == ApiKey::Produce {
            3
        } else {
            spec.min
        };
        for v in [min, spec.max] {
            let req = request(&env, v);
            set_acls(&b, &[]).await;
            let mut c = b.connect().await;
            let without = answer(&mut c, spec.key, v, &req).await;
            assert!(
                error_codes(&without).contains(&denied),
                "{:?} v{v} without ACLs must get {denied}: {without}",
                spec.key
            );
            set_acls(&b, grants).await;
            let mut c = b.connect().await;
            let with = answer(&mut c, spec.key, v, &req).await;
            let bad: Vec<i16> = error_codes(&with)
                .into_iter()
                .filter(|e| AUTHORIZATION_ERRORS.contains(e))
                .collect();
            assert!(
                bad.is_empty(),
                "{:?} v{v} with {grants:?} still refused: {with}",
                spec.key
            );
        }
        checked.push(spec.key);
    }
    assert!(checked.len() > 30, "only {} APIs checked", checked.len());
    b.stop().await;
}
