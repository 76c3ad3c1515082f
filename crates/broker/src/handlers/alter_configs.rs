//! AlterConfigs (key 33): the legacy form, which replaces a topic's overrides with
//! exactly the given set (anything not named returns to its default).

use std::sync::Arc;

use gregor_metadata::controller;
use gregor_protocol::kp::messages::alter_configs_response::AlterConfigsResourceResponse;
use gregor_protocol::kp::messages::{AlterConfigsRequest, AlterConfigsResponse, ApiKey};
use gregor_protocol::kp::ResponseError;

use super::describe_configs::{config_refusal, refusal_message, RESOURCE_BROKER, RESOURCE_TOPIC};
use super::{AclOperation, ApiSpec, RequestContext};
use crate::broker::Broker;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::AlterConfigs,
    min: 0,
    max: 2,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let mut responses = Vec::with_capacity(req.resources.len());
    for r in req.resources {
        let refusal = config_refusal(
            ctx,
            AclOperation::AlterConfigs,
            r.resource_type,
            &r.resource_name,
        );
        if let Some(error) = refusal {
            responses.push(
                AlterConfigsResourceResponse::default()
                    .with_resource_type(r.resource_type)
                    .with_resource_name(r.resource_name)
                    .with_error_code(error.code())
                    .with_error_message(Some(refusal_message(error))),
            );
            continue;
        }
        let outcome = match r.resource_type {
            RESOURCE_TOPIC => {
                let topic = r.resource_name.to_string();
                let configs: Vec<(String, Option<String>)> = r
                    .configs
                    .iter()
                    .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
                    .collect();
                broker
                    .decide(
                        req.validate_only,
                        gregor_metadata::ControllerRequest::ReplaceTopicConfigs {
                            name: topic,
                            configs,
                        },
                    )
                    .await
            }
            RESOURCE_BROKER => {
                // Legacy AlterConfigs replaces the whole dynamic set.
                let name = r.resource_name.to_string();
                let image = broker.metadata.image();
                let mut ops: Vec<(String, controller::ConfigOp, Option<String>)> = image
                    .broker_configs
                    .get(&name)
                    .map(|m| {
                        m.keys()
                            .map(|k| (k.clone(), controller::ConfigOp::Delete, None))
                            .collect()
                    })
                    .unwrap_or_default();
                ops.extend(r.configs.iter().filter_map(|c| {
                    c.value.as_ref().map(|v| {
                        (
                            c.name.to_string(),
                            controller::ConfigOp::Set,
                            Some(v.to_string()),
                        )
                    })
                }));
                broker
                    .alter_broker_configs(name, ops, req.validate_only)
                    .await
            }
            other => Err((
                ResponseError::InvalidRequest,
                format!("Unsupported resource type {other}"),
            )),
        };
        let (code, msg) = super::error_parts(outcome);
        responses.push(
            AlterConfigsResourceResponse::default()
                .with_resource_type(r.resource_type)
                .with_resource_name(r.resource_name)
                .with_error_code(code)
                .with_error_message(msg),
        );
    }
    AlterConfigsResponse::default().with_responses(responses)
}
