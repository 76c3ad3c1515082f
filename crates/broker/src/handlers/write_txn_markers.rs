//! WriteTxnMarkers (key 27): a transaction coordinator on another broker asks this one
//! to write commit or abort markers to partitions it leads (Kafka's inter-broker
//! request). Each marker is written as an acks=all produce would be: the answer for a
//! partition waits until its ISR has the marker. Markers for `__consumer_offsets`
//! partitions also apply or drop the transaction's offsets in the group coordinator.

use std::sync::Arc;

use gregor_protocol::kp::messages::write_txn_markers_response::{
    WritableTxnMarkerPartitionResult, WritableTxnMarkerResult, WritableTxnMarkerTopicResult,
};
use gregor_protocol::kp::messages::{ApiKey, WriteTxnMarkersRequest, WriteTxnMarkersResponse};
use gregor_protocol::kp::ResponseError;

use super::{AclOperation, ApiSpec, RequestContext};
use crate::broker::Broker;
use crate::txn::markers::MarkerSpec;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::WriteTxnMarkers,
    min: 1,
    max: 1,
};

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: WriteTxnMarkersRequest,
) -> WriteTxnMarkersResponse {
    // Kafka: CLUSTER_ACTION on the cluster (an inter-broker request), else every
    // partition of every marker gets CLUSTER_AUTHORIZATION_FAILED.
    let allowed = ctx.allowed_on_cluster(AclOperation::ClusterAction);
    let mut markers = Vec::with_capacity(req.markers.len());
    for m in req.markers {
        let spec = MarkerSpec {
            producer_id: m.producer_id.0,
            producer_epoch: m.producer_epoch,
            commit: m.transaction_result,
            coordinator_epoch: m.coordinator_epoch,
        };
        let mut topics = Vec::with_capacity(m.topics.len());
        for t in m.topics {
            let mut partitions = Vec::with_capacity(t.partition_indexes.len());
            for &index in &t.partition_indexes {
                let code = if !allowed {
                    ResponseError::ClusterAuthorizationFailed.code()
                } else {
                    match broker.txns.write_marker(&t.name.0, index, spec).await {
                        Ok(()) => 0,
                        Err(e) => e.code(),
                    }
                };
                partitions.push(
                    WritableTxnMarkerPartitionResult::default()
                        .with_partition_index(index)
                        .with_error_code(code),
                );
            }
            topics.push(
                WritableTxnMarkerTopicResult::default()
                    .with_name(t.name)
                    .with_partitions(partitions),
            );
        }
        markers.push(
            WritableTxnMarkerResult::default()
                .with_producer_id(m.producer_id)
                .with_topics(topics),
        );
    }
    WriteTxnMarkersResponse::default().with_markers(markers)
}
