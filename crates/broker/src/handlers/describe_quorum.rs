//! DescribeQuorum (key 55, KIP-595/KIP-853): the metadata quorum's leader, epoch, high
//! watermark, and each voter's and observer's log end offset and last fetch. Any broker
//! answers: it asks the active controller, which knows the replication state.

use std::sync::Arc;

use gregor_protocol::kp::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use gregor_protocol::kp::messages::{
    ApiKey, BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName,
};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;
use uuid::Uuid;

use super::{AclOperation, ApiSpec, RequestContext};
use crate::broker::Broker;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::DescribeQuorum,
    min: 0,
    max: 2,
};

/// The metadata log, as KRaft names it.
pub const METADATA_TOPIC: &str = "__cluster_metadata";

fn replica(row: &(i32, i64, i64, i64)) -> ReplicaState {
    ReplicaState::default()
        .with_replica_id(BrokerId(row.0))
        .with_replica_directory_id(Uuid::nil())
        .with_log_end_offset(row.1)
        .with_last_fetch_timestamp(row.2)
        .with_last_caught_up_timestamp(row.3)
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: DescribeQuorumRequest,
) -> DescribeQuorumResponse {
    let version = ctx.version();
    let mut resp = DescribeQuorumResponse::default().with_error_message(None);
    if !ctx.allowed_on_cluster(AclOperation::Describe) {
        resp.error_code = ResponseError::ClusterAuthorizationFailed.code();
        return resp;
    }
    let quorum = broker.metadata.describe_quorum().await;
    let info = match quorum {
        Ok(q) => q,
        Err(e) => {
            let (code, msg) = crate::error::controller_failure(&e);
            resp.error_code = code.code();
            if version >= 2 {
                resp.error_message = Some(StrBytes::from_string(msg));
            }
            return resp;
        }
    };
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let d = PartitionData::default()
                        .with_partition_index(p.partition_index)
                        .with_error_message(None);
                    if t.topic_name.0.as_str() != METADATA_TOPIC || p.partition_index != 0 {
                        return d
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_error_message((version >= 2).then(|| {
                                StrBytes::from_static_str(
                                    "This server does not host this topic-partition.",
                                )
                            }));
                    }
                    d.with_leader_id(BrokerId(info.leader_id))
                        .with_leader_epoch(info.leader_epoch)
                        .with_high_watermark(info.high_watermark)
                        .with_current_voters(info.voters.iter().map(replica).collect())
                        .with_observers(info.observers.iter().map(replica).collect())
                })
                .collect();
            TopicData::default()
                .with_topic_name(TopicName(t.topic_name.0.clone()))
                .with_partitions(partitions)
        })
        .collect();
    resp.topics = topics;
    if version >= 2 {
        // Voters' controller endpoints (KIP-853).
        resp.nodes = broker
            .config
            .cluster
            .voters
            .iter()
            .filter_map(|(&id, addr)| {
                let (host, port) = addr.rsplit_once(':')?;
                Some(Node::default().with_node_id(BrokerId(id)).with_listeners(
                    vec![Listener::default()
                            .with_name(StrBytes::from_static_str("CONTROLLER"))
                            .with_host(StrBytes::from_string(host.to_string()))
                            .with_port(port.parse().ok()?)],
                ))
            })
            .collect();
    }
    resp
}
