//! DescribeTransactions (key 65): an operator's view of transactional ids: state,
//! producer id and epoch, timeout, start time and the partitions in the transaction.

use std::sync::Arc;

use gregor_protocol::kp::messages::describe_transactions_response::{TopicData, TransactionState};
use gregor_protocol::kp::messages::{
    ApiKey, DescribeTransactionsRequest, DescribeTransactionsResponse, ProducerId, TopicName,
};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;

use super::{AclOperation, ApiSpec, RequestContext, ResourceType};
use crate::broker::Broker;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::DescribeTransactions,
    min: 0,
    max: 0,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let states = req
        .transactional_ids
        .into_iter()
        .map(|id| {
            let base = TransactionState::default().with_transactional_id(id.clone());
            // Kafka: DESCRIBE on the id; the partitions listed are only those of topics
            // the principal may DESCRIBE.
            if !ctx.allowed(AclOperation::Describe, ResourceType::TransactionalId, &id) {
                return base
                    .with_error_code(ResponseError::TransactionalIdAuthorizationFailed.code());
            }
            let Some(m) = broker.txns.describe(&id) else {
                return base
                    .with_error_code(ResponseError::TransactionalIdNotFound.code())
                    .with_producer_id(ProducerId(-1))
                    .with_producer_epoch(-1)
                    .with_transaction_start_time_ms(-1);
            };
            let mut topics: Vec<TopicData> = Vec::new();
            for (t, p) in &m.partitions {
                if !ctx.allowed(AclOperation::Describe, ResourceType::Topic, t) {
                    continue;
                }
                match topics.last_mut() {
                    Some(d) if d.topic.0.as_str() == t => d.partitions.push(*p),
                    _ => topics.push(
                        TopicData::default()
                            .with_topic(TopicName(StrBytes::from_string(t.clone())))
                            .with_partitions(vec![*p]),
                    ),
                }
            }
            base.with_transaction_state(StrBytes::from_static_str(m.state.name()))
                .with_transaction_timeout_ms(m.timeout_ms)
                .with_transaction_start_time_ms(m.start_ms)
                .with_producer_id(ProducerId(m.producer_id))
                .with_producer_epoch(m.producer_epoch)
                .with_topics(topics)
        })
        .collect();
    DescribeTransactionsResponse::default().with_transaction_states(states)
}
