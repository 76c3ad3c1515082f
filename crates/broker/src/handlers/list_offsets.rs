//! ListOffsets (key 2): earliest, latest, by timestamp, and max timestamp (KIP-734).

use std::sync::Arc;

use gregor_protocol::kp::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use gregor_protocol::kp::messages::{ApiKey, ListOffsetsRequest, ListOffsetsResponse};

use super::{ApiSpec, RequestContext};
use crate::broker::Broker;
use crate::error::{replica_error_code, ReplicaError};
use crate::partition::Partition;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::ListOffsets,
    min: 1,
    max: 8,
};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;

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
        LATEST => Ok((-1, end)),
        EARLIEST | EARLIEST_LOCAL => Ok((-1, p.log_start_offset())),
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
    // The leader epoch exists from v4; the generated encoder refuses it earlier.
    let with_epoch = ctx.header.request_api_version >= 4;
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let hosted = broker.replicas.topic(&t.name.0);
            let partitions = t
                .partitions
                .iter()
                .map(|pr| {
                    let base = ListOffsetsPartitionResponse::default()
                        .with_partition_index(pr.partition_index);
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
