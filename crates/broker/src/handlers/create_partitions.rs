//! CreatePartitions (key 37): grows a topic. New partitions get their logs before the
//! answer; existing ones are untouched.

use std::collections::HashSet;
use std::sync::Arc;

use gregor_protocol::kp::messages::create_partitions_response::CreatePartitionsTopicResult;
use gregor_protocol::kp::messages::{ApiKey, CreatePartitionsRequest, CreatePartitionsResponse};
use gregor_protocol::kp::ResponseError;

use super::{AclOperation, ApiSpec, RequestContext, ResourceType};
use crate::broker::Broker;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::CreatePartitions,
    min: 0,
    max: 3,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut seen = HashSet::new();
    let dupes: HashSet<String> = req
        .topics
        .iter()
        .filter(|t| !seen.insert(t.name.to_string()))
        .map(|t| t.name.to_string())
        .collect();
    let live = broker.live_brokers();
    let mut results = Vec::with_capacity(req.topics.len());
    for t in req.topics {
        let name = t.name.to_string();
        let outcome = if dupes.contains(&name) {
            Err((
                ResponseError::InvalidRequest,
                "Duplicate topic in request.".to_string(),
            ))
        } else if !ctx.allowed(AclOperation::Alter, ResourceType::Topic, &name) {
            Err((
                ResponseError::TopicAuthorizationFailed,
                "Topic authorization failed.".to_string(),
            ))
        } else if let Some(bad) = t
            .assignments
            .iter()
            .flatten()
            .flat_map(|a| a.broker_ids.iter())
            .find(|b| !live.contains(&b.0))
        {
            Err((
                ResponseError::InvalidReplicaAssignment,
                format!("Broker {} is not registered.", bad.0),
            ))
        } else {
            broker
                .decide(
                    req.validate_only,
                    gregor_metadata::ControllerRequest::CreatePartitions {
                        name,
                        count: t.count,
                    },
                )
                .await
        };
        let (code, msg) = super::error_parts(outcome);
        results.push(
            CreatePartitionsTopicResult::default()
                .with_name(t.name)
                .with_error_code(code)
                .with_error_message(msg),
        );
    }
    CreatePartitionsResponse::default().with_results(results)
}
