//! Transaction markers: written here to the partitions this broker leads, and sent
//! with WriteTxnMarkers (API 27) to the leaders of the others, as Kafka's
//! `TransactionMarkerChannelManager` does. The receiving side is
//! `handlers::write_txn_markers`, which calls [`write_local`].
//!
//! A marker is acknowledged like an acks=all produce: once every ISR member has it.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use gregor_protocol::batch::{self, Marker};
use gregor_protocol::kp::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use gregor_protocol::kp::messages::{ProducerId, TopicName, WriteTxnMarkersRequest};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;
use gregor_storage::producer_state::ProducerError;
use gregor_storage::LogError;

use super::TxnLinks;
use crate::error::ReplicaError;
use crate::group::coordinator::OFFSETS_TOPIC;
use crate::host::Host;
use crate::replication::client::BrokerClient;
use crate::replication::ReplicatedAppendError;
use crate::util::now_ms;

/// One marker to write: the transaction's producer, its outcome, the coordinator epoch.
#[derive(Debug, Clone, Copy)]
pub struct MarkerSpec {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub commit: bool,
    pub coordinator_epoch: i32,
}

/// How long a marker write waits for the ISR, and a WriteTxnMarkers call for its answer.
const MARKER_TIMEOUT: Duration = Duration::from_secs(30);

/// Writes `spec`'s marker to `topic`-`index`, which this broker must lead, and waits
/// for the ISR. The error code is WriteTxnMarkers' per-partition answer.
pub(super) async fn write_local(
    links: &TxnLinks,
    topic: &str,
    index: i32,
    spec: MarkerSpec,
) -> Result<(), ResponseError> {
    let p = links
        .host
        .replicas
        .lookup(topic, index)
        .map_err(|e| crate::error::replica_error_code(&e))?;
    let marker = if spec.commit {
        Marker::Commit
    } else {
        Marker::Abort
    };
    let bytes = batch::build_marker(
        spec.producer_id,
        spec.producer_epoch,
        marker,
        spec.coordinator_epoch,
        now_ms(),
    )
    .map_err(|_| ResponseError::UnknownServerError)?;
    let mut scratch = Vec::new();
    let v = batch::validate(&bytes, &mut scratch, usize::MAX)
        .map_err(|_| ResponseError::UnknownServerError)?;
    let written =
        crate::replication::append_replicated(&p, &bytes, &v, p.leader_epoch(), MARKER_TIMEOUT)
            .await;
    match written {
        Ok(_) => {}
        Err(ReplicatedAppendError::Log(LogError::Producer(
            e @ ProducerError::CoordinatorFenced { .. },
        ))) => {
            // A newer coordinator already wrote a marker for this producer here: this
            // one is late (its coordinator lost the partition) and must not end a
            // transaction the newer one let begin.
            tracing::warn!(%topic, partition = index, error = %e, "marker of a fenced coordinator refused");
            return Err(ResponseError::TransactionCoordinatorFenced);
        }
        Err(ReplicatedAppendError::Log(LogError::Producer(e))) => {
            // A newer epoch already closed it here: nothing is left open.
            tracing::warn!(%topic, partition = index, error = %e, "marker refused");
            return Err(ResponseError::InvalidProducerEpoch);
        }
        Err(ReplicatedAppendError::NotLeader(_)) => return Err(ResponseError::NotLeaderOrFollower),
        Err(ReplicatedAppendError::NotEnoughReplicas(_)) => {
            return Err(ResponseError::NotEnoughReplicas)
        }
        Err(ReplicatedAppendError::Timeout(_)) => return Err(ResponseError::RequestTimedOut),
        Err(ReplicatedAppendError::Log(e)) => {
            tracing::error!(%topic, partition = index, error = %e, "cannot write a transaction marker");
            return Err(crate::error::log_error_code(&e));
        }
    }
    links.forget_remote(spec.producer_id);
    if topic == OFFSETS_TOPIC {
        links
            .offsets
            .complete_txn(spec.producer_id, spec.commit)
            .await;
    }
    Ok(())
}

/// Whether a partition's answer means its marker needs no retry: written, refused
/// because a newer producer epoch already closed the transaction there or a newer
/// coordinator wrote there (this one is fenced), or the topic is gone.
fn settled(code: Option<ResponseError>) -> bool {
    matches!(
        code,
        None | Some(ResponseError::InvalidProducerEpoch)
            | Some(ResponseError::TransactionCoordinatorFenced)
            | Some(ResponseError::UnknownTopicOrPartition)
            | Some(ResponseError::UnknownTopicId)
    )
}

/// Writes `spec`'s marker to every partition in `partitions` not yet in `marked`: the
/// ones this broker leads here, the others through their leaders. Each partition that
/// settles joins `marked`. Returns why some did not (they are retried by the caller).
pub(super) async fn write_all(
    links: &TxnLinks,
    partitions: &BTreeSet<(String, i32)>,
    spec: MarkerSpec,
    marked: &mut BTreeSet<(String, i32)>,
) -> Result<(), String> {
    let me = links.host.node_id;
    let image = links.host.metadata.image();
    let mut remote: BTreeMap<i32, Vec<(String, i32)>> = BTreeMap::new();
    let mut pending = None;
    for (topic, index) in partitions {
        if marked.contains(&(topic.clone(), *index)) {
            continue;
        }
        let leader = image
            .topic(topic)
            .and_then(|t| t.partitions.get(index))
            .map(|p| p.leader);
        match leader {
            // The topic was deleted: nothing is left to close there.
            None => {
                marked.insert((topic.clone(), *index));
            }
            Some(l) if l == me => match write_local(links, topic, *index, spec).await {
                Err(code) if !settled(Some(code)) => {
                    let why = if matches!(
                        links.host.replicas.lookup(topic, *index),
                        Err(ReplicaError::Offline)
                    ) {
                        format!("{topic}-{index} is offline")
                    } else {
                        format!("{topic}-{index}: {code:?}")
                    };
                    tracing::warn!(%topic, partition = index, reason = %why, "transaction marker not written yet");
                    pending.get_or_insert(why);
                }
                _ => {
                    marked.insert((topic.clone(), *index));
                }
            },
            Some(l) if l < 0 => {
                pending.get_or_insert_with(|| format!("{topic}-{index} has no leader"));
            }
            Some(l) => remote.entry(l).or_default().push((topic.clone(), *index)),
        }
    }
    for (leader, parts) in remote {
        if let Err(why) = send(&links.host, leader, &parts, spec, marked).await {
            tracing::warn!(leader, reason = %why, "transaction markers not delivered yet");
            pending.get_or_insert(why);
        }
    }
    pending.map_or(Ok(()), Err)
}

/// One WriteTxnMarkers request to `leader` for `parts`.
async fn send(
    host: &Host,
    leader: i32,
    parts: &[(String, i32)],
    spec: MarkerSpec,
    marked: &mut BTreeSet<(String, i32)>,
) -> Result<(), String> {
    let image = host.metadata.image();
    let endpoint = image
        .brokers
        .get(&leader)
        .and_then(|b| b.endpoints.first())
        .ok_or_else(|| format!("broker {leader} has no endpoint"))?;
    let mut topics: Vec<WritableTxnMarkerTopic> = Vec::new();
    for (topic, index) in parts {
        match topics.last_mut() {
            Some(t) if t.name.0.as_str() == topic => t.partition_indexes.push(*index),
            _ => topics.push(
                WritableTxnMarkerTopic::default()
                    .with_name(TopicName(StrBytes::from_string(topic.clone())))
                    .with_partition_indexes(vec![*index]),
            ),
        }
    }
    let req = WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
        .with_producer_id(ProducerId(spec.producer_id))
        .with_producer_epoch(spec.producer_epoch)
        .with_transaction_result(spec.commit)
        .with_coordinator_epoch(spec.coordinator_epoch)
        .with_topics(topics)]);
    let mut client = BrokerClient::connect(
        leader,
        &format!("{}:{}", endpoint.host, endpoint.port),
        format!("gregor-txn-markers-{}", host.node_id),
        Duration::from_secs(5),
        &host.inter_broker,
    )
    .await
    .map_err(|e| e.to_string())?;
    let resp = client
        .call(&req, 1, MARKER_TIMEOUT + Duration::from_secs(5))
        .await
        .map_err(|e| e.to_string())?;
    let mut pending = None;
    for m in resp.markers {
        for t in m.topics {
            for p in t.partitions {
                let code = ResponseError::try_from_code(p.error_code);
                if settled(code) {
                    marked.insert((t.name.0.to_string(), p.partition_index));
                } else {
                    pending.get_or_insert_with(|| {
                        format!(
                            "{}-{}: {code:?} from broker {leader}",
                            t.name.0, p.partition_index
                        )
                    });
                }
            }
        }
    }
    pending.map_or(Ok(()), Err)
}
