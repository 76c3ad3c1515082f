//! DeleteTopics (key 20): by name (all versions) or by topic id (v6+).

use std::sync::Arc;

use gregor_metadata::controller;
use gregor_protocol::kp::messages::delete_topics_response::DeletableTopicResult;
use gregor_protocol::kp::messages::{ApiKey, DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;
use uuid::Uuid;

use super::{AclOperation, ApiSpec, RequestContext, ResourceType};
use crate::broker::Broker;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::DeleteTopics,
    min: 1,
    max: 6,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: DeleteTopicsRequest,
) -> DeleteTopicsResponse {
    let targets: Vec<(Option<String>, Uuid)> = if ctx.header.request_api_version >= 6 {
        req.topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        req.topic_names
            .iter()
            .map(|n| (Some(n.0.to_string()), Uuid::nil()))
            .collect()
    };
    // Kafka: DELETE on the cluster covers every topic, else DELETE per topic. A name the
    // principal may not even DESCRIBE is refused before its existence is told; a topic
    // id that resolves to such a name is refused without the name.
    let cluster_delete = ctx.allowed_on_cluster(AclOperation::Delete);
    let may = |op: AclOperation, topic: &str| {
        cluster_delete || ctx.allowed(op, ResourceType::Topic, topic)
    };
    let mut responses = Vec::with_capacity(targets.len());
    for (name, id) in targets {
        let image = broker.metadata.image();
        let resolved = match &name {
            Some(n) => image
                .topic(n)
                .map(|t| (t.name.clone(), t.id))
                .ok_or(ResponseError::UnknownTopicOrPartition),
            None => image
                .topic_by_id(&id)
                .map(|t| (t.name.clone(), t.id))
                .ok_or(ResponseError::UnknownTopicId),
        };
        let mut r = DeletableTopicResult::default()
            .with_name(name.clone().map(|n| TopicName(StrBytes::from_string(n))))
            .with_topic_id(id);
        let refused = match (&name, &resolved) {
            (Some(n), _) if !may(AclOperation::Describe, n) => Some(None),
            (_, Ok((topic, _))) if !may(AclOperation::Delete, topic) => {
                Some(may(AclOperation::Describe, topic).then(|| topic.clone()))
            }
            _ => None,
        };
        if let Some(shown) = refused {
            r.name = name
                .clone()
                .or(shown)
                .map(|n| TopicName(StrBytes::from_string(n)));
            r.error_code = ResponseError::TopicAuthorizationFailed.code();
            r.error_message = Some(StrBytes::from_static_str("Topic authorization failed."));
            responses.push(r);
            continue;
        }
        match resolved {
            Err(code) => {
                r.error_code = code.code();
                r.error_message = Some(StrBytes::from_static_str(
                    if code == ResponseError::UnknownTopicId {
                        "This server does not host this topic ID."
                    } else {
                        "This server does not host this topic-partition."
                    },
                ));
            }
            Ok((topic, _)) if controller::INTERNAL_TOPICS.contains(&topic.as_str()) => {
                r.error_code = ResponseError::InvalidRequest.code();
                r.error_message = Some(StrBytes::from_string(format!(
                    "Topic {topic} is an internal topic and cannot be deleted."
                )));
            }
            Ok((topic, topic_id)) => {
                r.name = Some(TopicName(StrBytes::from_string(topic.clone())));
                r.topic_id = topic_id;
                let name = topic.clone();
                match broker
                    .commit_metadata(gregor_metadata::ControllerRequest::DeleteTopic { name })
                    .await
                {
                    Ok(_) => broker.groups.topic_deleted(&topic).await,
                    Err(e) => {
                        r.error_code = crate::error::controller_failure_code(&e).code();
                        r.error_message = Some(StrBytes::from_string(e.to_string()));
                    }
                }
            }
        }
        responses.push(r);
    }
    DeleteTopicsResponse::default().with_responses(responses)
}
