//! DeleteRecords (key 21): advances a partition's log start offset (the low
//! watermark). Consumers below it get OFFSET_OUT_OF_RANGE and reset; whole segments
//! below it are removed.

use std::sync::Arc;

use gregor_protocol::kp::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use gregor_protocol::kp::messages::{ApiKey, DeleteRecordsRequest, DeleteRecordsResponse};
use gregor_protocol::kp::ResponseError;

use super::{AclOperation, ApiSpec, RequestContext, ResourceType};
use crate::broker::Broker;
use crate::error::log_error_code;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::DeleteRecords,
    min: 0,
    max: 2,
};

/// `offset = -1` means "up to the high watermark".
const HIGH_WATERMARK: i64 = -1;

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            // Kafka: DELETE on the topic, checked before the topic's existence.
            let allowed = ctx.allowed(AclOperation::Delete, ResourceType::Topic, &t.name);
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let r = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_low_watermark(-1);
                    if !allowed {
                        return r.with_error_code(ResponseError::TopicAuthorizationFailed.code());
                    }
                    let part = match broker.replicas.lookup(&t.name, p.partition_index) {
                        Ok(part) => part,
                        Err(e) => {
                            return r.with_error_code(crate::error::replica_error_code(&e).code())
                        }
                    };
                    let hw = part.high_watermark();
                    let target = if p.offset == HIGH_WATERMARK {
                        hw
                    } else {
                        p.offset
                    };
                    if target < 0 || target > hw {
                        return r.with_error_code(ResponseError::OffsetOutOfRange.code());
                    }
                    match part.delete_records(target) {
                        Ok(low) => r.with_low_watermark(low),
                        Err(e) => r.with_error_code(log_error_code(&e).code()),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}
