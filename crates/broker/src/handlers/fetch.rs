//! Fetch (key 1): byte ranges of whole batches, long-polled on append notifications,
//! with KIP-74 size limits and KIP-227 incremental sessions.
//!
//! The handler never decodes records: each partition's answer is the bytes of the batches
//! from the one that holds the fetch offset, up to the partition and response limits, and
//! below the high watermark (the last stable offset for read_committed, which also gets
//! the aborted transactions that overlap the bytes sent). When less than `min_bytes` is available it parks on a
//! `Notify` registered with every partition in the request, until an append wakes it or
//! `max_wait_ms` passes.
//!
//! Record data is never read here: each partition's answer is a file range, and the
//! response is sent with the ranges spliced in from the page cache (`crate::frame`).
//! Partitions that do not exist are answered without entering a fetch session.
//! An incremental round reads only the partitions its request lists and those that
//! changed since the session last found nothing new there (`fetch_session`); one
//! read per partition is `fetch_read`. A partition refused for a leader change names
//! its current leader (KIP-951).
//!
//! Authorization is Kafka's: a follower's fetch needs CLUSTER_ACTION on the cluster
//! (without it every partition is TOPIC_AUTHORIZATION_FAILED); a consumer's needs READ
//! on each topic (TOPIC_AUTHORIZATION_FAILED for its partitions, checked before the
//! topic's existence; a v13+ topic id nobody knows stays UNKNOWN_TOPIC_ID). Refused
//! partitions never enter a session, like unknown ones; an incremental fetch whose
//! session holds a topic the principal may no longer read ends that session
//! (FETCH_SESSION_ID_NOT_FOUND), so the client's next full fetch gets the refusal.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use gregor_protocol::kp::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint,
    PartitionData,
};
use gregor_protocol::kp::messages::{
    ApiKey, BrokerId, FetchRequest, FetchResponse, ProducerId, TopicName,
};
use gregor_protocol::kp::protocol::StrBytes;
use gregor_protocol::kp::ResponseError;
use gregor_storage::FileRange;
use tokio::sync::Notify;
use uuid::Uuid;

use super::fetch_read::{
    has_news, read_partition, record_position, Fetcher, PartitionRead, ReadPolicy,
};
use super::leader_hint::LeaderHints;
use super::{encode_response, AclOperation, ApiSpec, Outcome, RequestContext, ResourceType};
use crate::broker::Broker;
use crate::error::replica_error_code;
use crate::fetch_session::{new_clock, Held, SessionError, SessionPartition};
use crate::frame::{marker, FileFrame};
use crate::partition::Partition;

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::Fetch,
    min: 4,
    max: 18,
};

const READ_COMMITTED: i8 = 1;

/// A follower without CLUSTER_ACTION: every requested partition is refused.
fn refuse_follower(ctx: &RequestContext, req: &FetchRequest) -> Outcome {
    let topics = req
        .topics
        .iter()
        .map(|t| {
            FetchableTopicResponse::default()
                .with_topic(t.topic.clone())
                .with_topic_id(t.topic_id)
                .with_partitions(
                    t.partitions
                        .iter()
                        .map(|p| {
                            PartitionData::default()
                                .with_partition_index(p.partition)
                                .with_error_code(ResponseError::TopicAuthorizationFailed.code())
                                .with_high_watermark(-1)
                        })
                        .collect(),
                )
        })
        .collect();
    respond(ctx, &FetchResponse::default().with_responses(topics))
}

fn readable(ctx: &RequestContext, topic: &str) -> bool {
    ctx.allowed(AclOperation::Read, ResourceType::Topic, topic)
}

/// KIP-951: each partition refused for a leader change names its current leader
/// (v12+), and the answer lists those leaders' endpoints (v16+).
fn leader_hints(
    broker: &Broker,
    listener: &str,
    topics: &mut [FetchableTopicResponse],
) -> Vec<NodeEndpoint> {
    let moved = |c: i16| {
        c == ResponseError::NotLeaderOrFollower.code()
            || c == ResponseError::FencedLeaderEpoch.code()
    };
    if !topics
        .iter()
        .any(|t| t.partitions.iter().any(|p| moved(p.error_code)))
    {
        return Vec::new();
    }
    let mut hints = LeaderHints::new(broker.metadata.image());
    for t in topics.iter_mut() {
        for p in &mut t.partitions {
            if let Some((id, epoch)) = hints.leader(&t.topic.0, p.partition_index, p.error_code) {
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

fn top_level_error(ctx: &RequestContext, code: ResponseError) -> Outcome {
    respond(ctx, &FetchResponse::default().with_error_code(code.code()))
}

fn respond(ctx: &RequestContext, resp: &FetchResponse) -> Outcome {
    use gregor_protocol::kp::protocol::HeaderVersion;
    let v = ctx.header.request_api_version;
    encode_response(
        ctx.header.correlation_id,
        v,
        FetchResponse::header_version(v),
        resp,
    )
}

/// Fetch versions whose `bytes` fields are compact (flexible versions).
const FIRST_FLEXIBLE_VERSION: i16 = 12;

pub async fn handle(broker: &Arc<Broker>, ctx: &RequestContext, req: FetchRequest) -> Outcome {
    let version = ctx.header.request_api_version;
    let image = broker.metadata.image();
    let by_id = version >= 13;
    let replica_id = if version >= 15 {
        req.replica_state.replica_id.0
    } else {
        req.replica_id.0
    };
    let is_follower = replica_id >= 0;
    // The fetching broker's epoch (KIP-903, v15+), which AlterPartition passes on.
    let replica_epoch = if version >= 15 {
        req.replica_state.replica_epoch
    } else {
        -1
    };
    if is_follower && !ctx.allowed_on_cluster(AclOperation::ClusterAction) {
        return refuse_follower(ctx, &req);
    }
    // Resolve the request's partitions; topics that cannot be resolved or read are
    // answered with an error and never enter a session.
    let mut unresolved: Vec<(String, Uuid, i32, ResponseError)> = Vec::new();
    let mut wanted: Vec<SessionPartition> = Vec::new();
    for t in &req.topics {
        let resolved = if by_id {
            image.topic_by_id(&t.topic_id)
        } else {
            image.topic(&t.topic.0)
        };
        // By name the refusal comes first, so a hidden topic's existence does not leak;
        // by id an unknown id is UNKNOWN_TOPIC_ID first (ids are not secret).
        let refused = !is_follower
            && match (by_id, resolved) {
                (true, Some(found)) => !readable(ctx, &found.name),
                (true, None) => false,
                (false, _) => !readable(ctx, &t.topic.0),
            };
        if refused {
            unresolved.extend(t.partitions.iter().map(|p| {
                (
                    t.topic.0.to_string(),
                    if by_id { t.topic_id } else { Uuid::nil() },
                    p.partition,
                    ResponseError::TopicAuthorizationFailed,
                )
            }));
            continue;
        }
        let name: Option<Arc<str>> = resolved.map(|x| Arc::from(x.name.as_str()));
        for p in &t.partitions {
            match (resolved, &name) {
                (Some(topic), Some(name)) if topic.partitions.contains_key(&p.partition) => wanted
                    .push(SessionPartition {
                        topic: name.clone(),
                        topic_id: topic.id,
                        partition: p.partition,
                        fetch_offset: p.fetch_offset,
                        max_bytes: p.partition_max_bytes,
                        current_leader_epoch: p.current_leader_epoch,
                        last_fetched_epoch: if version >= 12 {
                            p.last_fetched_epoch
                        } else {
                            -1
                        },
                        high_watermark: -1,
                        last_stable_offset: -1,
                        log_start_offset: -1,
                        held: None,
                    }),
                _ if by_id && resolved.is_none() => unresolved.push((
                    String::new(),
                    t.topic_id,
                    p.partition,
                    ResponseError::UnknownTopicId,
                )),
                _ => unresolved.push((
                    t.topic.0.to_string(),
                    resolved.map_or(Uuid::nil(), |x| x.id),
                    p.partition,
                    ResponseError::UnknownTopicOrPartition,
                )),
            }
        }
    }
    let forgotten: Vec<(Uuid, String, i32)> = req
        .forgotten_topics_data
        .iter()
        .flat_map(|f| {
            let name = if by_id {
                image
                    .topic_by_id(&f.topic_id)
                    .map_or_else(String::new, |t| t.name.clone())
            } else {
                f.topic.0.to_string()
            };
            f.partitions
                .iter()
                .map(move |&p| (f.topic_id, name.clone(), p))
        })
        .collect();

    let sessions = &broker.fetch_sessions;
    let (plan, incremental, dropped, watch, clock) = match (req.session_id, req.session_epoch) {
        (id, -1) | (id, 0) => {
            if id != 0 {
                sessions.remove(id);
            }
            let watch = Arc::new(Notify::new());
            (wanted, false, Vec::new(), watch, new_clock())
        }
        // An incremental request that names a partition that does not exist: the
        // session cannot hold it, and silently leaving it out would leave the client
        // believing it is fetched. End the session; the client's next full fetch gets
        // the error for it and no session while it is unknown.
        (id, _) if !unresolved.is_empty() => {
            sessions.remove(id);
            return top_level_error(ctx, ResponseError::FetchSessionIdNotFound);
        }
        (id, epoch) => match sessions.update(id, epoch, wanted, &forgotten) {
            Ok(r) => (r.plan, true, r.forgotten, r.watch, r.clock),
            Err(SessionError::NotFound) => {
                return top_level_error(ctx, ResponseError::FetchSessionIdNotFound)
            }
            Err(SessionError::InvalidEpoch) => {
                return top_level_error(ctx, ResponseError::InvalidFetchSessionEpoch)
            }
        },
    };

    // A session may hold topics read under ACLs since revoked: end it, as for an
    // unknown partition, so the client's next full fetch gets the refusal.
    if incremental && !is_follower {
        let mut last: Option<&str> = None;
        let revoked = plan.iter().any(|sp| {
            let seen = last == Some(&*sp.topic);
            last = Some(&sp.topic);
            !seen && !readable(ctx, &sp.topic)
        });
        if revoked {
            sessions.remove(req.session_id);
            return top_level_error(ctx, ResponseError::FetchSessionIdNotFound);
        }
    }

    // A follower's fetch first tells the leader where the follower is: that may move
    // the high watermark and grow the ISR.
    let fetcher = if replica_id >= 0 {
        Fetcher::Follower(replica_id)
    } else {
        Fetcher::Consumer {
            read_committed: req.isolation_level == READ_COMMITTED,
        }
    };
    let policy = ReadPolicy {
        followers_allowed: version >= 11,
        rack: if version >= 11 && broker.config.cluster.replication.rack_aware_reads {
            req.rack_id.as_str()
        } else {
            ""
        },
    };
    // A full fetch that may open a session registers its `Notify` as the session's.
    let opening = !incremental && req.session_epoch == 0 && version >= 7;
    // The follower's fetch is a fetch at the session's offsets now (see `FetchClock`).
    let previous_round = clock.swap(crate::util::now_ms(), Ordering::AcqRel);
    if let Fetcher::Follower(replica) = fetcher {
        for sp in &dropped {
            if let Some(h) = &sp.held {
                h.partition
                    .end_fetch_session(replica, &clock, previous_round);
            }
        }
    }

    // Read, and if there is not yet enough, park until a change or the deadline (a
    // follower's fetch also returns when the high watermark moved: that is news to it).
    // A session round looks only at partitions listed, unsettled or changed since they
    // settled (see `fetch_session`); one skipped at first is looked at once it changes.
    let max_wait = std::time::Duration::from_millis(req.max_wait_ms.max(0) as u64);
    let deadline = tokio::time::Instant::now() + max_wait;
    // Per plan entry once looked at: the high watermark the follower knew then, and the
    // hosted partition with its change counter as of the read.
    let mut start_hw: Vec<Option<i64>> = vec![None; plan.len()];
    // The hosted partition and its change counter when first looked at, before the
    // follower's position is recorded and before any read: a change after that (even
    // one this round's parked read sees) makes the next round look again, so every
    // change is followed by a round that records the position and reads.
    let mut first_seen: Vec<Option<(Arc<Partition>, u64)>> = vec![None; plan.len()];
    let mut first_pass = true;
    let (reads, looked, seen) = loop {
        for (i, sp) in plan.iter().enumerate() {
            if start_hw[i].is_some() || (incremental && sp.skippable()) {
                continue;
            }
            first_seen[i] = broker.replicas.partition(&sp.topic, sp.partition).map(|p| {
                let v = p.version();
                let registered = sp
                    .held
                    .as_ref()
                    .is_some_and(|h| Arc::ptr_eq(&h.partition, &p));
                if opening || (incremental && !registered) {
                    p.register_watcher(&watch);
                }
                (p, v)
            });
            start_hw[i] = Some(match fetcher {
                Fetcher::Follower(replica) => {
                    let hw = record_position(
                        broker,
                        &image,
                        (replica, replica_epoch),
                        sp,
                        (&clock, previous_round),
                    );
                    // Skipped at first, so unchanged then: it knew what it was last told.
                    if first_pass {
                        hw
                    } else {
                        sp.high_watermark
                    }
                }
                Fetcher::Consumer { .. } => -1,
            });
        }
        first_pass = false;
        let looked: Vec<usize> = (0..plan.len()).filter(|&i| start_hw[i].is_some()).collect();
        let seen: Vec<Option<(Arc<Partition>, u64)>> =
            looked.iter().map(|&i| first_seen[i].clone()).collect();
        if !incremental && !opening {
            for (p, _) in seen.iter().flatten() {
                p.register_waiter(&watch);
            }
        }
        let mut remaining = (req.max_bytes.max(0) as usize).min(broker.config.fetch_max_bytes);
        let mut min_one = true;
        let reads: Vec<PartitionRead> = looked
            .iter()
            .map(|&i| {
                read_partition(
                    broker,
                    &plan[i],
                    fetcher,
                    policy,
                    &mut remaining,
                    &mut min_one,
                )
            })
            .collect();
        let hw_moved = matches!(fetcher, Fetcher::Follower(_))
            && reads
                .iter()
                .zip(&looked)
                .any(|(r, &i)| Some(r.high_watermark) != start_hw[i]);
        let bytes: usize = reads
            .iter()
            .map(|r| r.records.as_ref().map_or(0, |r| r.len))
            .sum();
        let errored = reads.iter().any(|r| {
            r.error.is_some() || r.diverging.is_some() || r.preferred_read_replica.is_some()
        }) || !unresolved.is_empty();
        if bytes >= req.min_bytes.max(0) as usize
            || errored
            || hw_moved
            || plan.is_empty()
            || tokio::time::Instant::now() >= deadline
        {
            break (reads, looked, seen);
        }
        // A partition held back by the replication throttle is read again as soon as
        // the bucket has refilled, not at the fetch's deadline.
        let wake_at = reads
            .iter()
            .filter(|r| r.held)
            .filter_map(|r| r.throttle_rate)
            .map(|rate| broker.throttles.leader.wait_time(rate))
            .min()
            .map_or(deadline, |w| {
                deadline
                    .min(tokio::time::Instant::now() + w.max(std::time::Duration::from_millis(1)))
            });
        let parked = broker.metrics.operations.park_fetch();
        let woken = tokio::time::timeout_at(wake_at, watch.notified()).await;
        drop(parked);
        if woken.is_err() {
            // Deadline (or refill) passed: one more read picks up anything that raced
            // the timer.
            continue;
        }
    };

    for r in &reads {
        if let (Some(rate), Some(range)) = (r.throttle_rate, &r.records) {
            broker.throttles.leader.record(rate, range.len);
        }
    }

    // A consumer over its `consumer_byte_rate`: Kafka answers with no data and the
    // throttle time (the bytes are taken back, they were not sent) and mutes the
    // connection; the client fetches the same offsets again afterwards.
    if !is_follower {
        let bytes: usize = reads
            .iter()
            .map(|r| r.records.as_ref().map_or(0, |r| r.len))
            .sum();
        let recorded = broker.client_quotas.record(
            &image,
            crate::quota::QuotaKind::Fetch,
            &ctx.principal.name,
            ctx.header.client_id.as_deref().unwrap_or(""),
            bytes as f64,
        );
        if !recorded.throttle.is_zero() {
            broker.client_quotas.unrecord(&recorded);
            ctx.note_throttle(recorded.throttle);
            let session_id = if incremental { req.session_id } else { 0 };
            let resp = FetchResponse::default()
                .with_throttle_time_ms(crate::quota::throttle_ms(recorded.throttle))
                .with_session_id(session_id);
            return respond(ctx, &resp);
        }
    }

    // Build the response: every partition for a full fetch, only news for an incremental one.
    let mut sent: Vec<SessionPartition> = Vec::new();
    let mut topics: Vec<FetchableTopicResponse> = Vec::new();
    let mut ranges: Vec<FileRange> = Vec::new();
    // Bytes sent to consumers, by topic (the plan lists a topic's partitions together).
    let mut bytes_out: Option<(&str, crate::metrics::TopicCounters)> = None;
    for ((&i, r), seen) in looked.iter().zip(reads).zip(seen) {
        let sp = &plan[i];
        let news = has_news(sp, &r);
        let mut updated = sp.clone();
        updated.high_watermark = r.high_watermark;
        updated.last_stable_offset = r.last_stable_offset;
        updated.log_start_offset = r.log_start_offset;
        // Settled: the answer is empty but for watermarks it now tells, the client is
        // caught up, and the read was of the partition whose counter was read first.
        updated.held = seen.map(|(p, version)| {
            let same = r.partition.as_ref().is_some_and(|q| Arc::ptr_eq(q, &p));
            Held {
                partition: p,
                settled: (same && r.settles).then_some(version),
            }
        });
        sent.push(updated);
        if incremental && !news {
            continue;
        }
        let mut data = PartitionData::default()
            .with_partition_index(sp.partition)
            .with_high_watermark(r.high_watermark)
            .with_last_stable_offset(r.last_stable_offset)
            .with_log_start_offset(r.log_start_offset)
            .with_aborted_transactions(r.aborted.map(|a| {
                a.into_iter()
                    .map(|(pid, first)| {
                        AbortedTransaction::default()
                            .with_producer_id(ProducerId(pid))
                            .with_first_offset(first)
                    })
                    .collect()
            }))
            .with_records(Some(match r.records {
                Some(range) => {
                    if !is_follower {
                        if bytes_out.as_ref().is_none_or(|(t, _)| *t != &*sp.topic) {
                            bytes_out = broker
                                .metrics
                                .topics
                                .topic(&sp.topic)
                                .map(|c| (&*sp.topic, c));
                        }
                        if let Some((_, c)) = &bytes_out {
                            c.record_fetched(range.len as u64);
                        }
                    }
                    ranges.push(range);
                    marker()
                }
                None => Bytes::new(),
            }));
        if let Some(e) = &r.error {
            data.error_code = replica_error_code(e).code();
        }
        if let Some(replica) = r.preferred_read_replica {
            data.preferred_read_replica = BrokerId(replica);
        }
        if let Some((epoch, end_offset)) = r.diverging {
            data.diverging_epoch = EpochEndOffset::default()
                .with_epoch(epoch)
                .with_end_offset(end_offset);
        }
        match topics.last_mut() {
            Some(t) if t.topic.0.as_str() == &*sp.topic => t.partitions.push(data),
            _ => topics.push(
                FetchableTopicResponse::default()
                    .with_topic(TopicName(StrBytes::from_string(sp.topic.to_string())))
                    .with_topic_id(sp.topic_id)
                    .with_partitions(vec![data]),
            ),
        }
    }
    let unresolved_count = unresolved.len();
    for (name, id, partition, code) in unresolved {
        let data = PartitionData::default()
            .with_partition_index(partition)
            .with_error_code(code.code())
            .with_high_watermark(-1);
        topics.push(
            FetchableTopicResponse::default()
                .with_topic(TopicName(StrBytes::from_string(name)))
                .with_topic_id(id)
                .with_partitions(vec![data]),
        );
    }

    let session_id = if incremental {
        sessions.note_looked(sent.len());
        sessions.commit(req.session_id, &sent);
        req.session_id
    } else if opening && unresolved_count == 0 {
        sessions.create(sent, watch, clock)
    } else {
        0
    };
    let endpoints = leader_hints(broker, &ctx.listener, &mut topics);
    let resp = FetchResponse::default()
        .with_session_id(session_id)
        .with_responses(topics)
        .with_node_endpoints(endpoints);
    if ranges.is_empty() {
        return respond(ctx, &resp);
    }
    let flexible = version >= FIRST_FLEXIBLE_VERSION;
    match FileFrame::build(ctx.header.correlation_id, version, &resp, flexible, ranges) {
        Ok(frame) => Outcome::RespondFile(frame),
        Err(e) => Outcome::Close(e.to_string()),
    }
}
