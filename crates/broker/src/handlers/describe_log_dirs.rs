//! DescribeLogDirs (key 35): the one log directory, its file system's total and usable
//! bytes, and the size of each partition in it. v5 adds IsCordoned (never, here).

use std::sync::Arc;

use gregor_protocol::kp::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use gregor_protocol::kp::messages::{
    ApiKey, DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName,
};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;

use super::{AclOperation, ApiSpec, RequestContext};
use crate::broker::Broker;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::DescribeLogDirs,
    min: 1,
    max: 5,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
    // Kafka: DESCRIBE on the cluster, else no log dirs; v3+ say why at the top.
    if !ctx.allowed_on_cluster(AclOperation::Describe) {
        return DescribeLogDirsResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code());
    }
    let image = broker.metadata.image();
    // None: every topic; Some: the named partitions that exist.
    let wanted: Vec<(String, Vec<i32>)> = match req.topics {
        None => image
            .topics
            .values()
            .map(|t| (t.name.clone(), t.partitions.keys().copied().collect()))
            .collect(),
        Some(ts) => ts
            .into_iter()
            .map(|t| (t.topic.to_string(), t.partitions))
            .collect(),
    };
    let mut topics = Vec::new();
    for (name, parts) in wanted {
        let partitions: Vec<DescribeLogDirsPartition> = parts
            .into_iter()
            .filter_map(|p| {
                let partition = broker.replicas.partition(&name, p)?;
                let size = partition.log().ok()?.size_bytes();
                // Kafka's lag of a (non-future) replica: how far its log end is below
                // the high watermark it knows.
                let lag = (partition.high_watermark() - partition.log_end_offset()).max(0);
                Some(
                    DescribeLogDirsPartition::default()
                        .with_partition_index(p)
                        .with_partition_size(size as i64)
                        .with_offset_lag(lag),
                )
            })
            .collect();
        if !partitions.is_empty() {
            topics.push(
                DescribeLogDirsTopic::default()
                    .with_name(TopicName(StrBytes::from_string(name)))
                    .with_partitions(partitions),
            );
        }
    }
    let dir = std::fs::canonicalize(&broker.config.data_dir)
        .unwrap_or_else(|_| broker.config.data_dir.clone());
    let (total, usable) = disk_space(&dir).unwrap_or((-1, -1));
    DescribeLogDirsResponse::default().with_results(vec![DescribeLogDirsResult::default()
        .with_log_dir(StrBytes::from_string(dir.display().to_string()))
        .with_topics(topics)
        .with_total_bytes(total)
        .with_usable_bytes(usable)])
}

/// The size of the file system holding `dir` and the bytes an unprivileged writer can
/// still use there (v4+; -1 when it cannot be read, as Kafka answers).
fn disk_space(dir: &std::path::Path) -> Option<(i64, i64)> {
    let st = rustix::fs::statvfs(dir).ok()?;
    let total = st.f_blocks.checked_mul(st.f_frsize)?;
    let usable = st.f_bavail.checked_mul(st.f_frsize)?;
    Some((i64::try_from(total).ok()?, i64::try_from(usable).ok()?))
}
