//! DescribeLogDirs (key 35): every log directory (`log.dirs`); an online one with its
//! file system's total and usable bytes and the size and lag of each partition in it,
//! an offline one with KAFKA_STORAGE_ERROR. v5 adds IsCordoned (never, here).

use std::collections::HashSet;
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
    // None: every partition; Some: the named ones.
    let wanted: Option<HashSet<(String, i32)>> = req.topics.map(|ts| {
        ts.into_iter()
            .flat_map(|t| {
                let name = t.topic.to_string();
                t.partitions.into_iter().map(move |p| (name.clone(), p))
            })
            .collect()
    });
    let by_dir = broker.replicas.partitions_by_dir();
    let results = broker
        .replicas
        .log_dirs()
        .all()
        .iter()
        .zip(by_dir)
        .map(|(dir, parts)| {
            let path = std::fs::canonicalize(&dir.path).unwrap_or_else(|_| dir.path.clone());
            let result = DescribeLogDirsResult::default()
                .with_log_dir(StrBytes::from_string(path.display().to_string()));
            if !dir.is_online() {
                // Kafka: an offline dir is listed with KAFKA_STORAGE_ERROR and nothing else.
                return result
                    .with_error_code(ResponseError::KafkaStorageError.code())
                    .with_total_bytes(-1)
                    .with_usable_bytes(-1);
            }
            let parts = parts
                .into_iter()
                .filter(|k| wanted.as_ref().is_none_or(|w| w.contains(k)));
            let (total, usable) = disk_space(&path).unwrap_or((-1, -1));
            result
                .with_topics(topics(broker, parts))
                .with_total_bytes(total)
                .with_usable_bytes(usable)
        })
        .collect();
    DescribeLogDirsResponse::default().with_results(results)
}

/// The hosted partitions among `parts` (sorted by topic), with their sizes and lags.
fn topics(
    broker: &Broker,
    parts: impl Iterator<Item = (String, i32)>,
) -> Vec<DescribeLogDirsTopic> {
    let mut topics: Vec<DescribeLogDirsTopic> = Vec::new();
    for (name, p) in parts {
        let Some(partition) = broker.replicas.partition(&name, p) else {
            continue;
        };
        let Ok(size) = partition.log().map(|l| l.size_bytes()) else {
            continue;
        };
        // Kafka's lag of a (non-future) replica: how far its log end is below the high
        // watermark it knows.
        let lag = (partition.high_watermark() - partition.log_end_offset()).max(0);
        let entry = DescribeLogDirsPartition::default()
            .with_partition_index(p)
            .with_partition_size(size as i64)
            .with_offset_lag(lag);
        match topics.last_mut() {
            Some(t) if t.name.0.as_str() == name => t.partitions.push(entry),
            _ => topics.push(
                DescribeLogDirsTopic::default()
                    .with_name(TopicName(StrBytes::from_string(name)))
                    .with_partitions(vec![entry]),
            ),
        }
    }
    topics
}

/// The size of the file system holding `dir` and the bytes an unprivileged writer can
/// still use there (v4+; -1 when it cannot be read, as Kafka answers).
fn disk_space(dir: &std::path::Path) -> Option<(i64, i64)> {
    let st = rustix::fs::statvfs(dir).ok()?;
    let total = st.f_blocks.checked_mul(st.f_frsize)?;
    let usable = st.f_bavail.checked_mul(st.f_frsize)?;
    Some((i64::try_from(total).ok()?, i64::try_from(usable).ok()?))
}
