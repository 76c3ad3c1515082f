//! Partition sizes on disk: DescribeLogDirs on every broker (raw protocol, `wire`;
//! librdkafka has no such admin call). Optional on the topic page: when it cannot be
//! asked (TLS/SASL, a broker down) the sizes are simply not shown.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::describe_log_dirs_request::DescribableLogDirTopic;
use kafka_protocol::messages::{DescribeLogDirsRequest, TopicName};
use kafka_protocol::protocol::StrBytes;

use crate::cluster::{check_code, Cluster};
use crate::error::Result;
use crate::wire::Wire;

impl Cluster {
    /// Bytes of each replica of `topic`'s `partitions`, by (broker, partition); future
    /// replicas (a move between log dirs in progress) are left out.
    pub(crate) async fn replica_sizes(
        self: &Arc<Self>,
        topic: &str,
        partitions: Vec<i32>,
    ) -> Result<BTreeMap<(i32, i32), i64>> {
        let mut sizes = BTreeMap::new();
        let req = DescribeLogDirsRequest::default().with_topics(Some(vec![
            DescribableLogDirTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(partitions),
        ]));
        for (broker, addr) in self.broker_addrs().await? {
            let mut w = Wire::connect(&addr, self.timeout).await?;
            let resp = w.call(&req, 1).await?;
            for dir in resp.results {
                check_code(dir.error_code, || {
                    format!("log dir {} on broker {broker}", dir.log_dir.as_str())
                })?;
                for t in dir.topics.iter().filter(|t| t.name.0.as_str() == topic) {
                    for p in t.partitions.iter().filter(|p| !p.is_future_key) {
                        *sizes.entry((broker, p.partition_index)).or_insert(0) += p.partition_size;
                    }
                }
            }
        }
        Ok(sizes)
    }
}
