//! Produce (key 0): validate each partition's batch, append it, honour acks.
//!
//! v0-v2 are listed for librdkafka's feature detection but refused at dispatch (message
//! format v2 only). With acks=0 nothing is sent back; if any partition failed, the
//! connection is closed so the client notices, as Kafka does. v12 is v11 (it only tells
//! the broker the client may use transactions v2); v13 names topics by id in the request
//! and the response, and an unknown id is UNKNOWN_TOPIC_ID for each of its partitions.
//! A partition refused for a leader change names its current leader (KIP-951, v10+).
//!
//! Authorization is Kafka's: a request with transactional batches needs WRITE on its
//! transactional id (else every partition is TRANSACTIONAL_ID_AUTHORIZATION_FAILED),
//! and each topic needs WRITE (else TOPIC_AUTHORIZATION_FAILED for its partitions,
//! before its existence is looked at).

use std::sync::Arc;

use gregor_protocol::kp::messages::produce_response::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse,
    TopicProduceResponse,
};
use gregor_protocol::kp::messages::{ApiKey, BrokerId, ProduceRequest, ProduceResponse};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;

use super::leader_hint::LeaderHints;
use super::{AclOperation, ApiSpec, RequestContext, ResourceType};
use crate::broker::Broker;
use crate::error::{log_error_code, replica_error_code, ReplicaError};
use crate::partition::Partition;
use crate::schema_validation::{Refusal, Refusals};

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::Produce,
    min: 0,
    max: 13,
};

pub enum Reply {
    Response(ProduceResponse),
    None,
    Close(String),
    /// Appended; the answer waits for the flush policy's fsync and, with acks=all, for
    /// the ISR to have the batches.
    AfterFlush(PendingProduce),
}

/// One partition's append that the answer waits on: `(partition, offset the wait
/// must reach, topic index, partition index in the response)`.
type Waiting = (Arc<Partition>, i64, usize, usize);

/// A produce whose batches are in the log but not yet acknowledgeable: they must be
/// fsynced first (`flush.messages` / `flush.ms`), and with acks=all the high watermark
/// must pass them (every ISR member has them). Each fsync is shared with every other
/// request waiting on the same partition (group commit), and the wait for the ISR parks
/// on the partition's high-watermark notification; the connection keeps reading while
/// this waits, so pipelined requests share both.
pub struct PendingProduce {
    responses: Vec<TopicProduceResponse>,
    to_flush: Vec<Waiting>,
    /// acks=all appends with the leader epoch they were written under.
    to_replicate: Vec<(Waiting, i32)>,
    acks: i16,
    any_error: bool,
    version: i16,
    timeout: std::time::Duration,
    /// Counted in the Produce purgatory while acks=all waits for the ISR.
    parked: Option<crate::metrics::Parked>,
    /// For the leader hints of the answer (KIP-951).
    broker: Arc<Broker>,
    listener: Arc<str>,
}

impl PendingProduce {
    fn fail(&mut self, ti: usize, pi: usize, code: ResponseError, message: Option<String>) {
        self.any_error = true;
        if let Some(r) = self
            .responses
            .get_mut(ti)
            .and_then(|t| t.partition_responses.get_mut(pi))
        {
            *r = error_response(r.index, code, message, self.version);
        }
    }

    pub async fn complete(mut self) -> Reply {
        let deadline = tokio::time::Instant::now() + self.timeout;
        for (partition, upto, ti, pi) in std::mem::take(&mut self.to_flush) {
            if let Err(e) = partition.ensure_flushed(upto).await {
                tracing::error!(topic = %partition.topic, partition = partition.index, error = %e, "flush failed");
                self.fail(ti, pi, log_error_code(&e), Some(e.to_string()));
            }
        }
        for ((partition, upto, ti, pi), epoch) in std::mem::take(&mut self.to_replicate) {
            let mut hw = partition.watch_high_watermark();
            let reached = tokio::time::timeout_at(
                deadline,
                hw.wait_for(|s| s.high_watermark >= upto || !s.leader || s.leader_epoch != epoch),
            )
            .await;
            match reached {
                Ok(Ok(s)) if s.high_watermark >= upto && s.leader && s.leader_epoch == epoch => {
                    // Written everywhere the ISR is, but the ISR shrank under the minimum.
                    let min = partition.settings().min_insync_replicas;
                    if partition.assignment().isr.len() < min {
                        self.fail(ti, pi, ResponseError::NotEnoughReplicasAfterAppend, None);
                    }
                }
                // The leadership moved before the ISR had the batch: whether the new
                // leader has it is unknown, and the client retries (idempotence makes
                // that safe).
                Ok(_) => self.fail(ti, pi, ResponseError::NotLeaderOrFollower, None),
                Err(_) => self.fail(ti, pi, ResponseError::RequestTimedOut, None),
            }
        }
        drop(self.parked.take());
        finish(
            &self.broker,
            &self.listener,
            self.responses,
            self.acks,
            self.any_error,
        )
    }
}

fn finish(
    broker: &Broker,
    listener: &str,
    mut responses: Vec<TopicProduceResponse>,
    acks: i16,
    any_error: bool,
) -> Reply {
    if acks == 0 {
        return if any_error {
            Reply::Close("acks=0 produce failed; closing so the client notices".into())
        } else {
            Reply::None
        };
    }
    let endpoints = if any_error {
        leader_hints(broker, listener, &mut responses)
    } else {
        Vec::new()
    };
    Reply::Response(
        ProduceResponse::default()
            .with_responses(responses)
            .with_node_endpoints(endpoints),
    )
}

/// KIP-951: each partition refused for a leader change names its current leader, and
/// the answer lists those leaders' endpoints.
fn leader_hints(
    broker: &Broker,
    listener: &str,
    responses: &mut [TopicProduceResponse],
) -> Vec<NodeEndpoint> {
    let image = broker.metadata.image();
    let mut hints = LeaderHints::new(image.clone());
    for t in responses.iter_mut() {
        let name = if t.name.0.is_empty() {
            image.topic_by_id(&t.topic_id).map(|x| x.name.clone())
        } else {
            Some(t.name.0.to_string())
        };
        let Some(name) = name else { continue };
        for p in &mut t.partition_responses {
            if let Some((id, epoch)) = hints.leader(&name, p.index, p.error_code) {
                p.current_leader = LeaderIdAndEpoch::default()
                    .with_leader_id(BrokerId(id))
                    .with_leader_epoch(epoch);
            }
        }
    }
    hints
        .endpoints(listener)
        .into_iter()
        .map(|b| {
            NodeEndpoint::default()
                .with_node_id(BrokerId(b.id))
                .with_host(StrBytes::from_string(b.host))
                .with_port(b.port)
                .with_rack(b.rack.map(StrBytes::from_string))
        })
        .collect()
}

fn error_response(
    index: i32,
    code: ResponseError,
    message: Option<String>,
    version: i16,
) -> PartitionProduceResponse {
    let mut r = PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(code.code())
        .with_base_offset(-1)
        .with_log_start_offset(-1);
    if version >= 8 {
        if code == ResponseError::InvalidRecord {
            r.record_errors = vec![BatchIndexAndErrorMessage::default()
                .with_batch_index(0)
                .with_batch_index_error_message(message.clone().map(StrBytes::from_string))];
        }
        r.error_message = message.map(StrBytes::from_string);
    }
    r
}

/// A transactional batch must come with its transactional id and go to a partition of
/// its producer's open transaction (KIP-890 verification).
fn verify_transactional(
    broker: &Broker,
    transactional_id: &Option<gregor_protocol::kp::messages::TransactionalId>,
    topic: &str,
    partition: i32,
    records: &[u8],
) -> Result<(), ResponseError> {
    let Ok(h) = gregor_protocol::batch::BatchHeader::parse(records) else {
        return Ok(()); // validation reports it
    };
    if !h.is_transactional() || h.is_control() {
        return Ok(());
    }
    let Some(id) = transactional_id.as_ref().filter(|t| !t.is_empty()) else {
        return Err(ResponseError::InvalidTxnState);
    };
    broker
        .txns
        .verify_produce(id, h.producer_id, h.producer_epoch, topic, partition)
        .map_err(|e| match e {
            crate::txn::TxnError::ProducerFenced => ResponseError::InvalidProducerEpoch,
            other => crate::error::txn_error_code(&other, ResponseError::InvalidProducerEpoch),
        })
}

/// Does any batch of the request belong to a transaction (Kafka's
/// `hasTransactionalRecords`)? Only each partition's first batch header is read.
pub fn has_transactional_records(req: &ProduceRequest) -> bool {
    req.topic_data
        .iter()
        .flat_map(|t| &t.partition_data)
        .filter_map(|pd| pd.records.as_ref())
        .filter_map(|r| gregor_protocol::batch::BatchHeader::parse(r).ok())
        .any(|h| h.is_transactional())
}

/// WRITE on the request's transactional id, when it has transactional batches.
pub fn transactional_id_authorized(ctx: &RequestContext, req: &ProduceRequest) -> bool {
    !has_transactional_records(req)
        || req.transactional_id.as_ref().is_some_and(|id| {
            ctx.allowed(
                AclOperation::Write,
                ResourceType::TransactionalId,
                id.as_str(),
            )
        })
}

/// The answer when the transactional id is refused: every partition gets the error.
fn refuse_transactional(
    broker: &Broker,
    listener: &str,
    req: ProduceRequest,
    version: i16,
) -> Reply {
    let responses = req
        .topic_data
        .into_iter()
        .map(|topic| {
            let parts = topic
                .partition_data
                .iter()
                .map(|pd| {
                    error_response(
                        pd.index,
                        ResponseError::TransactionalIdAuthorizationFailed,
                        None,
                        version,
                    )
                })
                .collect();
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_topic_id(topic.topic_id)
                .with_partition_responses(parts)
        })
        .collect();
    finish(broker, listener, responses, req.acks, true)
}

/// Records the request's bytes against the client's `producer_byte_rate` (Kafka counts
/// the whole request) and its handling time against `request_percentage`; returns the
/// throttle its response carries (the connection is muted for as long, even at acks=0).
pub fn record_quota(broker: &Arc<Broker>, ctx: &RequestContext) -> std::time::Duration {
    let image = broker.metadata.image();
    let recorded = broker.client_quotas.record(
        &image,
        crate::quota::QuotaKind::Produce,
        &ctx.principal.name,
        ctx.header.client_id.as_deref().unwrap_or(""),
        ctx.request_size as f64,
    );
    ctx.note_throttle(recorded.throttle);
    super::throttle::request_throttle(broker, ctx)
}

pub fn handle(
    broker: &Arc<Broker>,
    ctx: &mut RequestContext,
    req: ProduceRequest,
    refusals: &Refusals,
) -> Reply {
    let version = ctx.header.request_api_version;
    if !transactional_id_authorized(ctx, &req) {
        return refuse_transactional(broker, &ctx.listener, req, version);
    }
    let acks = req.acks;
    let timeout_ms = req.timeout_ms;
    let mut any_error = false;
    let mut to_flush: Vec<Waiting> = Vec::new();
    let mut to_replicate: Vec<(Waiting, i32)> = Vec::new();
    let mut responses = Vec::with_capacity(req.topic_data.len());
    let image = (version >= 13).then(|| broker.metadata.image());
    for (ti, topic) in req.topic_data.into_iter().enumerate() {
        // v13+: the topic is named by id only.
        let name = match &image {
            Some(image) => image.topic_by_id(&topic.topic_id).map(|t| t.name.clone()),
            None => Some(topic.name.0.to_string()),
        };
        let Some(name) = name else {
            any_error = true;
            let parts = topic
                .partition_data
                .iter()
                .map(|pd| error_response(pd.index, ResponseError::UnknownTopicId, None, version))
                .collect();
            responses.push(
                TopicProduceResponse::default()
                    .with_topic_id(topic.topic_id)
                    .with_partition_responses(parts),
            );
            continue;
        };
        if !ctx.allowed(AclOperation::Write, ResourceType::Topic, &name) {
            any_error = true;
            let parts = topic
                .partition_data
                .iter()
                .map(|pd| {
                    error_response(
                        pd.index,
                        ResponseError::TopicAuthorizationFailed,
                        None,
                        version,
                    )
                })
                .collect();
            responses.push(
                TopicProduceResponse::default()
                    .with_name(topic.name)
                    .with_topic_id(topic.topic_id)
                    .with_partition_responses(parts),
            );
            continue;
        }
        let hosted = broker.replicas.topic(&name);
        let counters = hosted
            .as_ref()
            .and_then(|_| broker.metrics.topics.topic(&name));
        let mut parts = Vec::with_capacity(topic.partition_data.len());
        for pd in topic.partition_data {
            if !matches!(acks, -1..=1) {
                any_error = true;
                parts.push(error_response(
                    pd.index,
                    ResponseError::InvalidRequiredAcks,
                    None,
                    version,
                ));
                continue;
            }
            let found = hosted
                .as_ref()
                .ok_or(ReplicaError::UnknownTopicOrPartition)
                .and_then(|h| h.get(pd.index).cloned());
            let partition = match found {
                Ok(p) => p,
                Err(e) => {
                    any_error = true;
                    parts.push(error_response(
                        pd.index,
                        replica_error_code(&e),
                        None,
                        version,
                    ));
                    continue;
                }
            };
            let Some(records) = pd.records.as_ref().filter(|r| !r.is_empty()) else {
                any_error = true;
                parts.push(error_response(
                    pd.index,
                    ResponseError::InvalidRecord,
                    Some("Produce request has no records".into()),
                    version,
                ));
                continue;
            };
            if let Some(refusal) = refusals.get(&(ti, pd.index)) {
                any_error = true;
                let (code, message) = match refusal {
                    Refusal::Invalid(m) => (ResponseError::InvalidRecord, m),
                    Refusal::Unavailable(m) => (ResponseError::RequestTimedOut, m),
                };
                parts.push(error_response(
                    pd.index,
                    code,
                    Some(message.clone()),
                    version,
                ));
                continue;
            }
            if let Err(code) =
                verify_transactional(broker, &req.transactional_id, &name, pd.index, records)
            {
                any_error = true;
                parts.push(error_response(pd.index, code, None, version));
                continue;
            }
            if acks == -1 {
                // min.insync.replicas: refused before anything is appended.
                let isr = partition.assignment().isr.len();
                if isr < partition.settings().min_insync_replicas {
                    any_error = true;
                    parts.push(error_response(
                        pd.index,
                        ResponseError::NotEnoughReplicas,
                        None,
                        version,
                    ));
                    continue;
                }
            }
            let epoch = partition.leader_epoch();
            match broker
                .replicas
                .append(&partition, records, &mut ctx.scratch)
            {
                Ok((info, flush_due)) => {
                    if let Some(c) = counters.as_ref().filter(|_| !info.duplicate) {
                        let records_appended = info.last_offset - info.base_offset + 1;
                        c.record_produced(
                            records.len() as u64,
                            u64::try_from(records_appended).unwrap_or(0),
                        );
                    }
                    if flush_due {
                        to_flush.push((partition.clone(), info.last_offset + 1, ti, parts.len()));
                    }
                    if acks == -1 && partition.high_watermark() <= info.last_offset {
                        to_replicate.push((
                            (partition.clone(), info.last_offset + 1, ti, parts.len()),
                            epoch,
                        ));
                    }
                    parts.push(
                        PartitionProduceResponse::default()
                            .with_index(pd.index)
                            .with_base_offset(info.base_offset)
                            .with_log_append_time_ms(info.log_append_time)
                            .with_log_start_offset(info.log_start_offset),
                    );
                }
                Err(e) => {
                    any_error = true;
                    match &e {
                        // A producer's sequence or epoch refused: the client's state, not
                        // the broker's health.
                        ReplicaError::Storage(gregor_storage::LogError::Producer(_)) => {
                            tracing::info!(topic = %name, partition = pd.index, error = %e, "append refused");
                        }
                        ReplicaError::Storage(_) => {
                            tracing::error!(topic = %name, partition = pd.index, error = %e, "append failed");
                        }
                        _ => {}
                    }
                    parts.push(error_response(
                        pd.index,
                        replica_error_code(&e),
                        Some(e.to_string()),
                        version,
                    ));
                }
            }
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_topic_id(topic.topic_id)
                .with_partition_responses(parts),
        );
    }
    if to_flush.is_empty() && to_replicate.is_empty() {
        return finish(broker, &ctx.listener, responses, acks, any_error);
    }
    let parked = (!to_replicate.is_empty()).then(|| broker.metrics.operations.park_produce());
    Reply::AfterFlush(PendingProduce {
        responses,
        to_flush,
        to_replicate,
        parked,
        acks,
        any_error,
        version,
        timeout: std::time::Duration::from_millis(u64::try_from(timeout_ms).unwrap_or(0)),
        broker: broker.clone(),
        listener: ctx.listener.clone(),
    })
}
