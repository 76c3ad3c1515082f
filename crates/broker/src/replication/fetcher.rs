//! Followers: one fetcher task per leader broker, fetching every partition this broker
//! follows on that leader in one Fetch request (replica id and broker epoch set, as
//! Kafka's `ReplicaFetcherThread` does). The leader parks the fetch until it has data
//! (`replica.fetch.wait.max.ms`), so an idle follower costs one parked request, not a
//! poll. The fetches form an incremental fetch session (KIP-227, [`super::session`]), so
//! a round lists only the partitions whose position moved. Batches are appended byte for byte; a `DivergingEpoch` answer truncates the
//! divergent tail (KIP-595/KIP-279) before fetching again.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use gregor_protocol::kp::messages::fetch_request::{
    FetchPartition, FetchTopic, ForgottenTopic, ReplicaState,
};
use gregor_protocol::kp::messages::{BrokerId, FetchRequest};
use gregor_protocol::kp::ResponseError;
use tokio::sync::Notify;
use uuid::Uuid;

use super::client::{BrokerClient, ClientError};
use super::session::{FetchSession, FetchState};
use crate::host::Host;
use crate::partition::Partition;

/// Fetch v15: topic ids, the replica state (id and broker epoch, KIP-903) and the
/// last fetched epoch for divergence checks.
const FETCH_VERSION: i16 = 15;

type PartitionKey = (Uuid, i32);

struct Fetcher {
    partitions: Arc<Mutex<BTreeMap<PartitionKey, Arc<Partition>>>>,
    wake: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

/// The fetcher tasks of this broker, one per leader it follows.
#[derive(Default)]
pub struct ReplicaFetchers {
    fetchers: Mutex<HashMap<i32, Fetcher>>,
}

impl ReplicaFetchers {
    /// Brings the fetchers in line with the hosted partitions: each partition this
    /// broker follows is fetched from its current leader; fetchers left with nothing
    /// stop.
    pub fn sync(&self, host: &Arc<Host>) {
        let me = host.node_id;
        let mut wanted: HashMap<i32, BTreeMap<PartitionKey, Arc<Partition>>> = HashMap::new();
        for p in host.replicas.all_partitions() {
            let a = p.assignment();
            if a.leader >= 0 && a.leader != me && a.replicas.contains(&me) {
                wanted
                    .entry(a.leader)
                    .or_default()
                    .insert((p.topic_id, p.index), p);
            }
        }
        let Ok(mut fetchers) = self.fetchers.lock() else {
            return;
        };
        fetchers.retain(|leader, f| {
            let keep = wanted.contains_key(leader) && !f.task.is_finished();
            if !keep {
                f.task.abort();
            }
            keep
        });
        for (leader, parts) in wanted {
            let f = fetchers.entry(leader).or_insert_with(|| {
                let partitions = Arc::new(Mutex::new(BTreeMap::new()));
                let wake = Arc::new(Notify::new());
                let task = tokio::spawn(run(
                    Arc::downgrade(host),
                    leader,
                    partitions.clone(),
                    wake.clone(),
                ));
                Fetcher {
                    partitions,
                    wake,
                    task,
                }
            });
            if let Ok(mut current) = f.partitions.lock() {
                *current = parts;
            }
            f.wake.notify_one();
        }
    }

    /// Stops every fetcher (shutdown).
    pub fn stop(&self) {
        if let Ok(mut fetchers) = self.fetchers.lock() {
            for (_, f) in fetchers.drain() {
                f.task.abort();
            }
        }
    }
}

/// One fetcher: loops fetching from `leader` while it has partitions.
async fn run(
    host: Weak<Host>,
    leader: i32,
    partitions: Arc<Mutex<BTreeMap<PartitionKey, Arc<Partition>>>>,
    wake: Arc<Notify>,
) {
    let mut conn: Option<BrokerClient> = None;
    let mut session = FetchSession::default();
    loop {
        let Some(b) = host.upgrade() else { return };
        let backoff = Duration::from_millis(b.cluster.replication.fetch_backoff_ms);
        let parts: Vec<Arc<Partition>> = partitions
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default();
        if parts.is_empty() {
            drop(b);
            wake.notified().await;
            continue;
        }
        let client = match conn.as_mut() {
            Some(c) => c,
            None => match connect(&b, leader).await {
                Ok(c) => conn.insert(c),
                Err(e @ ClientError::Auth { .. }) => {
                    // A configuration problem an operator must see (credentials, mechanism).
                    tracing::warn!(leader, error = %e, "replica fetcher cannot log in");
                    drop(b);
                    pause(&wake, backoff).await;
                    continue;
                }
                Err(e) => {
                    tracing::debug!(leader, error = %e, "replica fetcher cannot connect");
                    drop(b);
                    pause(&wake, backoff).await;
                    continue;
                }
            },
        };
        let (req, sent, held) = build_request(&b, &parts, &mut session);
        if sent.is_empty() {
            // Every partition is throttled and the quota is spent: wait for it.
            let wait = b.throttles.follower.wait_time(held.unwrap_or(1));
            drop(b);
            pause(
                &wake,
                wait.clamp(Duration::from_millis(10), Duration::from_secs(1)),
            )
            .await;
            continue;
        }
        let timeout = Duration::from_millis(u64::try_from(req.max_wait_ms).unwrap_or(0) + 30_000);
        let resp = match client.call(&req, FETCH_VERSION, timeout).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(leader, error = %e, "replica fetch failed; reconnecting");
                session.failed();
                conn = None;
                drop(b);
                pause(&wake, backoff).await;
                continue;
            }
        };
        session.answered(resp.error_code, resp.session_id);
        if resp.error_code != 0 {
            drop(b);
            pause(&wake, backoff).await;
            continue;
        }
        let mut progressed = false;
        let mut failed = 0usize;
        for t in resp.responses {
            for pd in t.partitions {
                let key = (t.topic_id, pd.partition_index);
                let Some((p, epoch, throttle)) = sent.get(&key) else {
                    continue;
                };
                if let (Some(rate), Some(records)) = (throttle, &pd.records) {
                    b.throttles.follower.record(*rate, records.len());
                }
                // The answer is for the leadership the request named; a partition that
                // changed role or epoch since is left to its next fetch.
                if p.is_leader() || p.leader_epoch() != *epoch {
                    continue;
                }
                match handle_partition(p, &pd) {
                    Ok(true) => progressed = true,
                    // An error or divergence answer that changed nothing: back off
                    // before asking again.
                    Ok(false) if pd.error_code != 0 || pd.diverging_epoch.epoch >= 0 => failed += 1,
                    Ok(false) => {}
                    Err(e) => {
                        failed += 1;
                        tracing::warn!(topic = %p.topic, partition = p.index, leader, error = %e, "replica fetch of a partition failed");
                    }
                }
            }
        }
        drop(b);
        if failed > 0 && !progressed {
            pause(&wake, backoff).await;
        }
    }
}

/// Waits for the backoff or for a change of this fetcher's partitions.
async fn pause(wake: &Notify, backoff: Duration) {
    let _ = tokio::time::timeout(backoff, wake.notified()).await;
}

async fn connect(b: &Host, leader: i32) -> Result<BrokerClient, ClientError> {
    let image = b.metadata.image();
    let endpoint = image
        .brokers
        .get(&leader)
        .and_then(|r| r.endpoints.first())
        .ok_or(ClientError::NoEndpoint(leader))?;
    let addr = format!("{}:{}", endpoint.host, endpoint.port);
    BrokerClient::connect(
        leader,
        &addr,
        format!("gregor-replica-fetcher-{}", b.node_id),
        Duration::from_secs(5),
        &b.inter_broker,
    )
    .await
}

/// The partitions asked for: the replica, the leader epoch named, and the follower
/// throttle rate when the partition is throttled.
type Sent = BTreeMap<PartitionKey, (Arc<Partition>, i32, Option<u64>)>;

/// The follower-side throttle rate for `p`, if it is throttled here: named in the
/// topic's `follower.replication.throttled.replicas` for this broker, a rate set, and
/// this replica not in the ISR (Kafka's `shouldFollowerThrottle`).
fn follower_throttle_rate(
    b: &Host,
    image: &gregor_metadata::MetadataImage,
    p: &Partition,
) -> Option<u64> {
    use super::throttle;
    let me = b.node_id;
    if !throttle::is_throttled(image, &p.topic, p.index, me, throttle::FOLLOWER_REPLICAS) {
        return None;
    }
    let rate = b.follower_rate(image)?;
    (!p.assignment().isr.contains(&me)).then_some(rate)
}

/// The fetch for `parts` in the fetch session with the leader, leaving out throttled
/// partitions while the follower quota is spent; the third value is the throttle rate
/// when some were left out. `Sent` holds every partition the session covers (an
/// incremental answer may carry any of them), not only those the request lists.
fn build_request(
    b: &Host,
    parts: &[Arc<Partition>],
    session: &mut FetchSession,
) -> (FetchRequest, Sent, Option<u64>) {
    let cfg = &b.cluster.replication;
    let image = b.metadata.image();
    let mut wanted = BTreeMap::new();
    let mut sent = Sent::new();
    let mut held = None;
    for p in parts {
        let throttle = follower_throttle_rate(b, &image, p);
        let mut max_bytes = cfg.fetch_max_bytes;
        if let Some(rate) = throttle {
            if b.throttles.follower.exhausted(rate) {
                // Left out, so forgotten by the session until the quota refills.
                held = Some(rate);
                continue;
            }
            max_bytes =
                max_bytes.min(i32::try_from(super::throttle::chunk(rate)).unwrap_or(i32::MAX));
        }
        let epoch = p.leader_epoch();
        let key = (p.topic_id, p.index);
        wanted.insert(
            key,
            FetchState {
                fetch_offset: p.log_end_offset(),
                last_fetched_epoch: p.latest_epoch().ok().flatten().unwrap_or(-1),
                log_start_offset: p.log_start_offset(),
                max_bytes,
                current_leader_epoch: epoch,
            },
        );
        sent.insert(key, (p.clone(), epoch, throttle));
    }
    let plan = session.plan(wanted);
    let mut topics: Vec<FetchTopic> = Vec::new();
    for ((topic_id, index), st) in plan.partitions {
        let fp = FetchPartition::default()
            .with_partition(index)
            .with_current_leader_epoch(st.current_leader_epoch)
            .with_fetch_offset(st.fetch_offset)
            .with_last_fetched_epoch(st.last_fetched_epoch)
            .with_log_start_offset(st.log_start_offset)
            .with_partition_max_bytes(st.max_bytes);
        match topics.last_mut() {
            Some(t) if t.topic_id == topic_id => t.partitions.push(fp),
            _ => topics.push(
                FetchTopic::default()
                    .with_topic_id(topic_id)
                    .with_partitions(vec![fp]),
            ),
        }
    }
    let mut forgotten: Vec<ForgottenTopic> = Vec::new();
    for (topic_id, index) in plan.forgotten {
        match forgotten.last_mut() {
            Some(t) if t.topic_id == topic_id => t.partitions.push(index),
            _ => forgotten.push(
                ForgottenTopic::default()
                    .with_topic_id(topic_id)
                    .with_partitions(vec![index]),
            ),
        }
    }
    let req = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_replica_state(
            ReplicaState::default()
                .with_replica_id(BrokerId(b.node_id))
                .with_replica_epoch(b.metadata.broker_epoch()),
        )
        .with_max_wait_ms(cfg.fetch_wait_max_ms)
        .with_min_bytes(cfg.fetch_min_bytes)
        .with_max_bytes(cfg.fetch_response_max_bytes)
        .with_isolation_level(0)
        .with_session_id(plan.session_id)
        .with_session_epoch(plan.epoch)
        .with_topics(topics)
        .with_forgotten_topics_data(forgotten);
    (req, sent, held)
}

/// Applies one partition's answer. Returns whether the log moved.
fn handle_partition(
    p: &Partition,
    pd: &gregor_protocol::kp::messages::fetch_response::PartitionData,
) -> Result<bool, gregor_storage::LogError> {
    match ResponseError::try_from_code(pd.error_code) {
        None => {}
        Some(ResponseError::OffsetOutOfRange) => {
            let end = p.log_end_offset();
            // Below the leader's log start: nothing here is on the leader any more.
            if end < pd.log_start_offset {
                p.truncate_fully_and_start_at(pd.log_start_offset)?;
                return Ok(true);
            }
            // Past what the leader can place (an epoch it does not know, or an offset
            // beyond its log): what is above its high watermark was never committed;
            // start again from there.
            let target = pd.high_watermark.max(p.high_watermark());
            if pd.high_watermark >= 0 && end > target {
                p.truncate_to(target)?;
                return Ok(true);
            }
            return Ok(false);
        }
        // Not the leader (yet or any more), an epoch mismatch, an unknown partition:
        // the metadata will say what changed.
        Some(_) => return Ok(false),
    }
    if pd.diverging_epoch.epoch >= 0 && pd.diverging_epoch.end_offset >= 0 {
        let target = truncation_offset(p, pd.diverging_epoch.epoch, pd.diverging_epoch.end_offset)?;
        // A truncation that changes neither the log end nor the last epoch leaves the
        // next fetch where this one was: that is no progress (the fetcher backs off
        // rather than asking the leader the same question in a busy loop).
        let before = (p.log_end_offset(), p.latest_epoch()?);
        p.truncate_to(target)?;
        return Ok((p.log_end_offset(), p.latest_epoch()?) != before);
    }
    let records = pd.records.as_deref().unwrap_or(&[]);
    let appended = p.append_replica(records, pd.high_watermark, pd.log_start_offset)?;
    Ok(appended.batches > 0)
}

/// Where a follower truncates when the leader says its log diverges after
/// (`leader_epoch`, `leader_end`): if this replica knows that epoch, the smaller of the
/// two ends of it; if not, the end of its largest epoch below, and the next fetch
/// checks again (Kafka's `getOffsetTruncationState`).
fn truncation_offset(
    p: &Partition,
    leader_epoch: i32,
    leader_end: i64,
) -> Result<i64, gregor_storage::LogError> {
    let end = p.log_end_offset();
    let (epoch, epoch_end) = p.end_offset_for_epoch(leader_epoch)?;
    Ok(if epoch < 0 {
        leader_end.min(end)
    } else if epoch != leader_epoch {
        epoch_end.min(end)
    } else {
        epoch_end.min(leader_end).min(end)
    })
}
