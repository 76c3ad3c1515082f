//! IncrementalAlterConfigs (key 44, KIP-339): SET, DELETE, APPEND and SUBTRACT on topic,
//! broker, client-metrics and group (KIP-848/KIP-932) configs. Changes are metadata records, so they apply at once and survive restarts.

use std::sync::Arc;

use gregor_metadata::controller::ConfigOp;
use gregor_protocol::kp::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use gregor_protocol::kp::messages::{
    ApiKey, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use gregor_protocol::kp::ResponseError;

use super::describe_configs::{config_refusal, refusal_message, RESOURCE_BROKER, RESOURCE_TOPIC};
use super::{AclOperation, ApiSpec, RequestContext};
use crate::broker::Broker;
use crate::group_config::RESOURCE_GROUP;
use crate::telemetry::admin::RESOURCE_CLIENT_METRICS;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::IncrementalAlterConfigs,
    min: 0,
    max: 1,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
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
            RESOURCE_TOPIC | RESOURCE_BROKER | RESOURCE_CLIENT_METRICS | RESOURCE_GROUP => {
                let mut ops = Vec::with_capacity(r.configs.len());
                let mut bad_op = None;
                for c in &r.configs {
                    match ConfigOp::from_code(c.config_operation) {
                        Some(op) => ops.push((
                            c.name.to_string(),
                            op,
                            c.value.as_ref().map(|v| v.to_string()),
                        )),
                        None => bad_op = Some(c.config_operation),
                    }
                }
                match bad_op {
                    Some(code) => Err((
                        ResponseError::InvalidRequest,
                        format!("Unknown config operation {code}"),
                    )),
                    None if r.resource_type == RESOURCE_CLIENT_METRICS => {
                        crate::telemetry::admin::alter(
                            broker,
                            r.resource_name.to_string(),
                            ops,
                            req.validate_only,
                        )
                        .await
                    }
                    None if r.resource_type == RESOURCE_GROUP => {
                        crate::group_config::alter(
                            broker,
                            r.resource_name.to_string(),
                            ops,
                            req.validate_only,
                        )
                        .await
                    }
                    None if r.resource_type == RESOURCE_BROKER => {
                        broker
                            .alter_broker_configs(
                                r.resource_name.to_string(),
                                ops,
                                req.validate_only,
                            )
                            .await
                    }
                    None => {
                        let topic = r.resource_name.to_string();
                        broker
                            .decide(
                                req.validate_only,
                                gregor_metadata::ControllerRequest::AlterTopicConfigs {
                                    name: topic,
                                    ops,
                                },
                            )
                            .await
                    }
                }
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
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
