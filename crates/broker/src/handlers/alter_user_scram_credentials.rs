//! AlterUserScramCredentials (key 51, KIP-554): sets or deletes users' SCRAM
//! credentials. The client sends the salted password (PBKDF2 of the password, computed
//! on its side); the broker keeps only the stored key and server key derived from it,
//! as metadata records, so every broker authenticates the user at once.
//!
//! Per-user checks, with Kafka's codes: a (user, mechanism) named twice is
//! DUPLICATE_RESOURCE, an unknown mechanism UNSUPPORTED_SASL_MECHANISM, an empty name,
//! salt or salted password or an iteration count outside 4096..=16384
//! UNACCEPTABLE_CREDENTIAL, deleting a credential that does not exist
//! RESOURCE_NOT_FOUND. A user with any error has none of its changes applied.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use gregor_metadata::ControllerRequest;
use gregor_protocol::kp::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use gregor_protocol::kp::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, ApiKey,
};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;
use gregor_security::scram::{ScramCredential, ScramMechanism, MAX_ITERATIONS, MIN_ITERATIONS};

use super::{AclOperation, ApiSpec, RequestContext};
use crate::broker::Broker;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::AlterUserScramCredentials,
    min: 0,
    max: 0,
};

type Refusal = (ResponseError, String);

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    // Kafka: ALTER on the cluster, else the error for each user named, sorted.
    if !ctx.allowed_on_cluster(AclOperation::Alter) {
        let users: BTreeSet<&StrBytes> = req
            .deletions
            .iter()
            .map(|d| &d.name)
            .chain(req.upsertions.iter().map(|u| &u.name))
            .collect();
        let results = users
            .into_iter()
            .map(|u| {
                AlterUserScramCredentialsResult::default()
                    .with_user(u.clone())
                    .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
                    .with_error_message(Some(StrBytes::from_static_str(
                        "Cluster authorization failed.",
                    )))
            })
            .collect();
        return AlterUserScramCredentialsResponse::default().with_results(results);
    }
    let image = broker.metadata.image();
    // Users in request order, each with its first refusal.
    let mut users: BTreeMap<String, Option<Refusal>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut pairs = BTreeSet::new();
    let refuse = |users: &mut BTreeMap<String, Option<Refusal>>, user: &str, why: Refusal| {
        let slot = users.entry(user.to_string()).or_default();
        if slot.is_none() {
            *slot = Some(why);
        }
    };
    let mut deletions = Vec::new();
    let mut upsertions = Vec::new();
    let named = req
        .deletions
        .iter()
        .map(|d| (d.name.to_string(), d.mechanism, None))
        .chain(
            req.upsertions
                .iter()
                .map(|u| (u.name.to_string(), u.mechanism, Some(u))),
        );
    for (user, mechanism, upsert) in named {
        if !users.contains_key(&user) {
            order.push(user.clone());
            users.insert(user.clone(), None);
        }
        if user.is_empty() {
            refuse(
                &mut users,
                &user,
                (
                    ResponseError::UnacceptableCredential,
                    "Username must not be empty".into(),
                ),
            );
            continue;
        }
        let Some(m) = ScramMechanism::from_wire(mechanism) else {
            refuse(
                &mut users,
                &user,
                (
                    ResponseError::UnsupportedSaslMechanism,
                    "Unknown SCRAM mechanism".into(),
                ),
            );
            continue;
        };
        if !pairs.insert((user.clone(), m)) {
            refuse(
                &mut users,
                &user,
                (
                    ResponseError::DuplicateResource,
                    "A user credential cannot be altered twice in the same request".into(),
                ),
            );
            continue;
        }
        match upsert {
            None => {
                if image.scram_credential(&user, m).is_none() {
                    refuse(
                        &mut users,
                        &user,
                        (
                            ResponseError::ResourceNotFound,
                            "Attempt to delete a user credential that does not exist".into(),
                        ),
                    );
                } else {
                    deletions.push((user, m));
                }
            }
            Some(u) => {
                if u.iterations < MIN_ITERATIONS {
                    refuse(
                        &mut users,
                        &user,
                        (
                            ResponseError::UnacceptableCredential,
                            "Too few iterations".into(),
                        ),
                    );
                } else if u.iterations > MAX_ITERATIONS {
                    refuse(
                        &mut users,
                        &user,
                        (
                            ResponseError::UnacceptableCredential,
                            "Too many iterations".into(),
                        ),
                    );
                } else if u.salt.is_empty() || u.salted_password.is_empty() {
                    refuse(
                        &mut users,
                        &user,
                        (
                            ResponseError::UnacceptableCredential,
                            "Salt and salted password must not be empty".into(),
                        ),
                    );
                } else {
                    let c = ScramCredential::from_salted_password(
                        m,
                        u.salt.to_vec(),
                        &u.salted_password,
                        u.iterations,
                    );
                    upsertions.push((user, c));
                }
            }
        }
    }
    deletions.retain(|(u, _)| users.get(u).is_some_and(Option::is_none));
    upsertions.retain(|(u, _)| users.get(u).is_some_and(Option::is_none));
    let mut failure = None;
    if !deletions.is_empty() || !upsertions.is_empty() {
        let asked = ControllerRequest::AlterScramCredentials {
            deletions,
            upsertions,
        };
        if let Err(e) = broker.commit_metadata(asked).await {
            failure = Some(crate::error::controller_failure(&e));
        }
    }
    let results = order
        .into_iter()
        .map(|user| {
            let refusal = users
                .get(&user)
                .cloned()
                .flatten()
                .or_else(|| failure.clone());
            let r =
                AlterUserScramCredentialsResult::default().with_user(StrBytes::from_string(user));
            match refusal {
                None => r.with_error_message(None),
                Some((code, message)) => r
                    .with_error_code(code.code())
                    .with_error_message(Some(StrBytes::from_string(message))),
            }
        })
        .collect();
    AlterUserScramCredentialsResponse::default().with_results(results)
}
