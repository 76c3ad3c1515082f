//! DescribeUserScramCredentials (key 50, KIP-554): which SCRAM mechanisms each user has
//! a credential for, with the iteration counts (never salts or keys). No users named:
//! every user with a credential.

use std::collections::BTreeSet;
use std::sync::Arc;

use gregor_protocol::kp::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use gregor_protocol::kp::messages::{
    ApiKey, DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;

use super::{AclOperation, ApiSpec, RequestContext};
use crate::broker::Broker;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::DescribeUserScramCredentials,
    min: 0,
    max: 0,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    // Kafka: DESCRIBE on the cluster, else the error at the top and for each user named.
    if !ctx.allowed_on_cluster(AclOperation::Describe) {
        let code = ResponseError::ClusterAuthorizationFailed.code();
        let msg = || Some(StrBytes::from_static_str("Cluster authorization failed."));
        let results = req
            .users
            .iter()
            .flatten()
            .map(|u| {
                DescribeUserScramCredentialsResult::default()
                    .with_user(u.name.clone())
                    .with_error_code(code)
                    .with_error_message(msg())
            })
            .collect();
        return DescribeUserScramCredentialsResponse::default()
            .with_error_code(code)
            .with_error_message(msg())
            .with_results(results);
    }
    let image = broker.metadata.image();
    let asked: Vec<String> = match &req.users {
        Some(users) if !users.is_empty() => users.iter().map(|u| u.name.to_string()).collect(),
        _ => image.scram.keys().cloned().collect(),
    };
    let mut seen = BTreeSet::new();
    let duplicates: BTreeSet<&String> = asked.iter().filter(|u| !seen.insert(*u)).collect();
    let mut reported = BTreeSet::new();
    let results = asked
        .iter()
        .filter(|u| reported.insert(*u))
        .map(|user| {
            let result = DescribeUserScramCredentialsResult::default()
                .with_user(StrBytes::from_string(user.clone()));
            if duplicates.contains(user) {
                return failed(
                    result,
                    ResponseError::DuplicateResource,
                    format!("Cannot describe SCRAM credentials for the same user twice in a single request: {user}"),
                );
            }
            match image.scram.get(user) {
                Some(creds) => result.with_credential_infos(
                    creds
                        .values()
                        .map(|c| {
                            CredentialInfo::default()
                                .with_mechanism(c.mechanism.wire())
                                .with_iterations(c.iterations)
                        })
                        .collect(),
                ),
                None => failed(
                    result,
                    ResponseError::ResourceNotFound,
                    format!("Attempt to describe a user credential that does not exist: {user}"),
                ),
            }
        })
        .collect();
    DescribeUserScramCredentialsResponse::default()
        .with_error_message(None)
        .with_results(results)
}

fn failed(
    result: DescribeUserScramCredentialsResult,
    code: ResponseError,
    message: String,
) -> DescribeUserScramCredentialsResult {
    result
        .with_error_code(code.code())
        .with_error_message(Some(StrBytes::from_string(message)))
}
