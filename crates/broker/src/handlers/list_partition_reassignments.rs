//! ListPartitionReassignments (key 46, KIP-455): the ongoing reassignments, of every
//! partition or of the named ones, from the metadata image: the replicas (targets
//! first, then those being dropped) and which are being added and removed.

use std::sync::Arc;

use gregor_metadata::{PartitionImage, TopicImage};
use gregor_protocol::kp::messages::list_partition_reassignments_response::{
    OngoingPartitionReassignment, OngoingTopicReassignment,
};
use gregor_protocol::kp::messages::{
    ApiKey, BrokerId, ListPartitionReassignmentsRequest, ListPartitionReassignmentsResponse,
    TopicName,
};
use gregor_protocol::kp::protocol::StrBytes;

use gregor_protocol::kp::ResponseError;

use super::{AclOperation, ApiSpec, RequestContext};
use crate::broker::Broker;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::ListPartitionReassignments,
    min: 0,
    max: 0,
};

fn ids(v: &[i32]) -> Vec<BrokerId> {
    v.iter().copied().map(BrokerId).collect()
}

fn ongoing(index: i32, p: &PartitionImage) -> Option<OngoingPartitionReassignment> {
    p.is_reassigning().then(|| {
        OngoingPartitionReassignment::default()
            .with_partition_index(index)
            .with_replicas(ids(&p.replicas))
            .with_adding_replicas(ids(&p.adding_replicas))
            .with_removing_replicas(ids(&p.removing_replicas))
    })
}

fn topic_entry(
    t: &TopicImage,
    partitions: Vec<OngoingPartitionReassignment>,
) -> Option<OngoingTopicReassignment> {
    (!partitions.is_empty()).then(|| {
        OngoingTopicReassignment::default()
            .with_name(TopicName(StrBytes::from_string(t.name.clone())))
            .with_partitions(partitions)
    })
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: ListPartitionReassignmentsRequest,
) -> ListPartitionReassignmentsResponse {
    if !ctx.allowed_on_cluster(AclOperation::Describe) {
        return ListPartitionReassignmentsResponse::default()
            .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
            .with_error_message(Some(StrBytes::from_static_str(
                "Cluster authorization failed.",
            )));
    }
    let image = broker.metadata.image();
    let topics: Vec<OngoingTopicReassignment> = match &req.topics {
        // Named partitions that do not exist or are not moving are left out (Kafka).
        Some(asked) => asked
            .iter()
            .filter_map(|a| {
                let t = image.topic(a.name.as_str())?;
                let parts = a
                    .partition_indexes
                    .iter()
                    .filter_map(|i| ongoing(*i, t.partitions.get(i)?))
                    .collect();
                topic_entry(t, parts)
            })
            .collect(),
        None => image
            .topics
            .values()
            .filter_map(|t| {
                let parts = t
                    .partitions
                    .iter()
                    .filter_map(|(i, p)| ongoing(*i, p))
                    .collect();
                topic_entry(t, parts)
            })
            .collect(),
    };
    ListPartitionReassignmentsResponse::default()
        .with_error_message(None)
        .with_topics(topics)
}
