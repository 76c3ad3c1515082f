//! ListOffsets (key 2): earliest, latest, by timestamp, and max timestamp (KIP-734).
//!
//! The special target times of tiered storage are answered as Kafka answers them for a
//! topic without remote storage: earliest-local (-4, v8+) is the log start offset,
//! latest-tiered (-5, v9+) and earliest-pending-upload (-6, v11+, KIP-1023) are -1. A
//! negative target time the request's version does not know is UNSUPPORTED_VERSION for
//! that partition (Kafka's `isListOffsetsTimestampUnsupported`). v10 adds `timeout_ms`,
//! which only bounds remote-storage lookups, so it has nothing to wait for here.
//!
//! Each topic needs DESCRIBE, else TOPIC_AUTHORIZATION_FAILED for its partitions.

use std::sync::Arc;

use gregor_protocol::kp::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use gregor_protocol::kp::messages::{ApiKey, ListOffsetsRequest, ListOffsetsResponse};
use gregor_protocol::kp::ResponseError;

use super::{AclOperation, ApiSpec, RequestContext, ResourceType};
use crate::broker::Broker;
use crate::error::{replica_error_code, ReplicaError};
use crate::partition::Partition;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::ListOffsets,
    min: 1,
    max: 11,
};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;
const EARLIEST_PENDING_UPLOAD: i64 = -6;

/// The first version that may ask for a special (negative) target time; `None` for a
/// negative time that means nothing.
fn min_version_for(timestamp: i64) -> Option<i16> {
    match timestamp {
        LATEST | EARLIEST => Some(1),
        MAX_TIMESTAMP => Some(7),
        EARLIEST_LOCAL => Some(8),
        LATEST_TIERED => Some(9),
        EARLIEST_PENDING_UPLOAD => Some(11),
        _ => None,
    }
}

fn timestamp_unsupported(timestamp: i64, version: i16) -> bool {
    timestamp < 0 && min_version_for(timestamp).is_none_or(|min| version < min)
}

/// Checks the client's view of the leader epoch (-1: no check).
pub fn check_leader_epoch(p: &Partition, requested: i32) -> Result<(), ReplicaError> {
    let ours = p.leader_epoch();
    if requested < 0 || requested == ours {
        Ok(())
    } else if requested < ours {
        Err(ReplicaError::FencedLeaderEpoch)
    } else {
        Err(ReplicaError::UnknownLeaderEpoch)
    }
}

/// Offsets a reader at `isolation_level` may see end here: the last stable offset for
/// read_committed (1), the high watermark otherwise.
fn visible_end(p: &Partition, isolation_level: i8) -> i64 {
    let hw = p.high_watermark();
    if isolation_level == 1 {
        p.last_stable_offset().min(hw)
    } else {
        hw
    }
}

fn lookup(p: &Partition, timestamp: i64, isolation_level: i8) -> Result<(i64, i64), ReplicaError> {
    let end = visible_end(p, isolation_level);
    match timestamp {
        LATEST if p.high_watermark_below_epoch_start() => Err(ReplicaError::OffsetNotAvailable),
        LATEST => Ok((-1, end)),
        EARLIEST | EARLIEST_LOCAL => Ok((-1, p.log_start_offset())),
        // No remote storage: nothing is tiered and nothing waits for upload.
        LATEST_TIERED | EARLIEST_PENDING_UPLOAD => Ok((-1, -1)),
        MAX_TIMESTAMP => Ok(p
            .log()?
            .max_timestamp_offset()?
            .filter(|(o, _)| *o < end)
            .map_or((-1, -1), |(o, t)| (t, o))),
        ts => Ok(p
            .log()?
            .offset_for_timestamp(ts)?
            .filter(|(o, _)| *o < end)
            .map_or((-1, -1), |(o, t)| (t, o))),
    }
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: ListOffsetsRequest,
) -> ListOffsetsResponse {
    let version = ctx.header.request_api_version;
    // The leader epoch exists from v4; the generated encoder refuses it earlier.
    let with_epoch = version >= 4;
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            if !ctx.allowed(AclOperation::Describe, ResourceType::Topic, &t.name.0) {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|pr| {
                        ListOffsetsPartitionResponse::default()
                            .with_partition_index(pr.partition_index)
                            .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                            .with_offset(-1)
                            .with_timestamp(-1)
                    })
                    .collect();
                return ListOffsetsTopicResponse::default()
                    .with_name(t.name)
                    .with_partitions(partitions);
            }
            let hosted = broker.replicas.topic(&t.name.0);
            let partitions = t
                .partitions
                .iter()
                .map(|pr| {
                    let base = ListOffsetsPartitionResponse::default()
                        .with_partition_index(pr.partition_index);
                    if timestamp_unsupported(pr.timestamp, version) {
                        return base
                            .with_error_code(ResponseError::UnsupportedVersion.code())
                            .with_offset(-1)
                            .with_timestamp(-1);
                    }
                    let found = hosted
                        .as_ref()
                        .ok_or(ReplicaError::UnknownTopicOrPartition)
                        .and_then(|h| h.get(pr.partition_index).cloned());
                    let p = match found {
                        Ok(p) => p,
                        Err(e) => {
                            return base
                                .with_error_code(replica_error_code(&e).code())
                                .with_offset(-1)
                                .with_timestamp(-1)
                        }
                    };
                    match check_leader_epoch(&p, pr.current_leader_epoch)
                        .and_then(|()| lookup(&p, pr.timestamp, req.isolation_level))
                    {
                        // No offset, no epoch (Kafka answers -1 for the tiered times).
                        Ok((ts, -1)) => base.with_timestamp(ts).with_offset(-1),
                        Ok((ts, off)) => base
                            .with_timestamp(ts)
                            .with_offset(off)
                            .with_leader_epoch(if with_epoch { p.leader_epoch() } else { -1 }),
                        Err(e) => base
                            .with_error_code(replica_error_code(&e).code())
                            .with_offset(-1)
                            .with_timestamp(-1),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}
