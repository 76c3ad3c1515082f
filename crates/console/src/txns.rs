//! Transactions: ListTransactions on every broker (each lists the transactional ids it
//! coordinates), then DescribeTransactions on the same broker. Raw protocol (`wire`):
//! librdkafka has no transaction admin API.

use std::sync::Arc;

use kafka_protocol::messages::{
    DescribeTransactionsRequest, ListTransactionsRequest, TransactionalId,
};

use crate::cluster::{check_code, Cluster};
use crate::error::Result;
use crate::model::Transaction;
use crate::wire::Wire;

impl Cluster {
    pub(crate) async fn transactions(self: &Arc<Self>) -> Result<Vec<Transaction>> {
        let mut out = Vec::new();
        for (broker, addr) in self.broker_addrs().await? {
            let mut w = Wire::connect(&addr, self.timeout).await?;
            let listed = w.call(&ListTransactionsRequest::default(), 0).await?;
            check_code(listed.error_code, || {
                format!("ListTransactions on broker {broker}")
            })?;
            if listed.transaction_states.is_empty() {
                continue;
            }
            let ids: Vec<TransactionalId> = listed
                .transaction_states
                .iter()
                .map(|t| t.transactional_id.clone())
                .collect();
            let described = w
                .call(
                    &DescribeTransactionsRequest::default().with_transactional_ids(ids),
                    0,
                )
                .await?;
            for t in described.transaction_states {
                if t.error_code != 0 {
                    continue; // gone between the two requests
                }
                out.push(Transaction {
                    transactional_id: t.transactional_id.0.to_string(),
                    producer_id: t.producer_id.0,
                    producer_epoch: t.producer_epoch,
                    state: t.transaction_state.to_string(),
                    coordinator: broker,
                    timeout_ms: t.transaction_timeout_ms,
                    start_ms: t.transaction_start_time_ms,
                    partitions: t
                        .topics
                        .iter()
                        .map(|p| (p.topic.0.to_string(), p.partitions.clone()))
                        .collect(),
                });
            }
        }
        out.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        Ok(out)
    }
}
