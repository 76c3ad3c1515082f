//! Fetch (key 1), one partition at a time: what a fetch reads from a partition (or
//! why it cannot), where a follower's log diverges, how a follower's position is
//! recorded, and whether an answer is news to an incremental session.

use std::sync::Arc;

use gregor_storage::FileRange;

use super::list_offsets::check_leader_epoch;
use crate::broker::Broker;
use crate::error::ReplicaError;
use crate::fetch_session::SessionPartition;
use crate::partition::Partition;
use crate::replication::state::FetchClock;

/// One partition's answer before it is encoded.
pub(super) struct PartitionRead {
    pub(super) error: Option<ReplicaError>,
    pub(super) high_watermark: i64,
    pub(super) last_stable_offset: i64,
    pub(super) log_start_offset: i64,
    pub(super) records: Option<FileRange>,
    /// `(producer id, first offset)` of aborted transactions in the range (read_committed).
    pub(super) aborted: Option<Vec<(i64, i64)>>,
    /// A follower's log diverges from this leader's after `(epoch, end offset)`.
    pub(super) diverging: Option<(i32, i64)>,
    /// KIP-392: the consumer should read this partition from that replica instead.
    pub(super) preferred_read_replica: Option<i32>,
    /// A follower's fetch under the leader's replication throttle, at this rate.
    pub(super) throttle_rate: Option<u64>,
    /// Held back by that throttle (its bucket overdrawn): read again once it refills.
    pub(super) held: bool,
    /// The hosted partition read.
    pub(super) partition: Option<Arc<Partition>>,
    /// Nothing to send but watermarks, and the fetcher is where there is nothing more
    /// to read: the same request would get the same answer until the partition changes.
    pub(super) settles: bool,
}

/// The leader-side throttle rate for `replica`'s fetch of `p`, if that replica is
/// throttled: named in the topic's `leader.replication.throttled.replicas` for this
/// broker, a rate set, and the replica not in the ISR (Kafka's `shouldLeaderThrottle`).
fn leader_throttle_rate(broker: &Broker, p: &Partition, replica: i32) -> Option<u64> {
    use crate::replication::throttle;
    let image = broker.metadata.image();
    let me = broker.config.node_id;
    if !throttle::is_throttled(&image, &p.topic, p.index, me, throttle::LEADER_REPLICAS) {
        return None;
    }
    let rate = throttle::rate(
        &image,
        broker.config.node_id,
        throttle::LEADER_RATE,
        broker.config.get(throttle::LEADER_RATE),
    )?;
    (!p.assignment().isr.contains(&replica)).then_some(rate)
}

/// What a consumer's fetch says of where it may read (Fetch v11+, KIP-392).
#[derive(Debug, Clone, Copy)]
pub(super) struct ReadPolicy<'a> {
    /// The consumer may read from a follower (v11+: it knows `preferred_read_replica`).
    pub(super) followers_allowed: bool,
    /// `client.rack`, when the broker selects replicas by rack; empty otherwise.
    pub(super) rack: &'a str,
}

/// Who is fetching: a consumer, or a follower replica (by its broker id).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fetcher {
    Consumer { read_committed: bool },
    Follower(i32),
}

pub(super) fn read_partition(
    broker: &Broker,
    sp: &SessionPartition,
    fetcher: Fetcher,
    policy: ReadPolicy<'_>,
    remaining: &mut usize,
    min_one: &mut bool,
) -> PartitionRead {
    let read_committed = fetcher
        == Fetcher::Consumer {
            read_committed: true,
        };
    let mut out = PartitionRead {
        error: None,
        high_watermark: -1,
        last_stable_offset: -1,
        log_start_offset: -1,
        records: None,
        aborted: read_committed.then(Vec::new),
        diverging: None,
        preferred_read_replica: None,
        throttle_rate: None,
        held: false,
        partition: None,
        settles: false,
    };
    let is_consumer = matches!(fetcher, Fetcher::Consumer { .. });
    let p = match broker.replicas.lookup(&sp.topic, sp.partition) {
        Ok(p) => p,
        // A follower serves consumers that can be sent to it (KIP-392).
        Err(ReplicaError::NotLeaderOrFollower) if is_consumer && policy.followers_allowed => {
            match broker.replicas.partition(&sp.topic, sp.partition) {
                Some(p) => p,
                None => {
                    out.error = Some(ReplicaError::NotLeaderOrFollower);
                    return out;
                }
            }
        }
        Err(e) => {
            out.error = Some(e);
            return out;
        }
    };
    if let Err(e) = check_leader_epoch(&p, sp.current_leader_epoch) {
        out.error = Some(e);
        return out;
    }
    out.partition = Some(p.clone());
    let lso = p.last_stable_offset();
    let hw = p.high_watermark();
    let log_end = p.log_end_offset();
    out.high_watermark = hw;
    out.last_stable_offset = lso.min(hw);
    out.log_start_offset = p.log_start_offset();
    if is_consumer && !policy.rack.is_empty() {
        let image = broker.metadata.image();
        out.preferred_read_replica = crate::replication::selector::preferred_read_replica(
            &image,
            &p,
            policy.rack,
            sp.fetch_offset,
        );
        if out.preferred_read_replica.is_some() {
            return out;
        }
    }
    // Consumers read below the high watermark (the stable offset for read_committed);
    // followers read up to the log end.
    let upper = match fetcher {
        Fetcher::Consumer {
            read_committed: true,
        } => lso.min(hw),
        Fetcher::Consumer { .. } => hw,
        Fetcher::Follower(_) => i64::MAX,
    };
    let mut limit = (sp.max_bytes.max(0) as usize).min(*remaining);
    if let Fetcher::Follower(replica) = fetcher {
        if let Some(rate) = leader_throttle_rate(broker, &p, replica) {
            out.throttle_rate = Some(rate);
            if broker.throttles.leader.exhausted(rate) {
                out.held = true;
                return out;
            }
            limit = limit.min(crate::replication::throttle::chunk(rate));
        }
    }
    // Under the partition lock only the index and a few batch headers are read; the
    // data itself is sent later, from the file, with no lock held.
    let read = p.log().map_err(ReplicaError::from).and_then(|log| {
        if let Fetcher::Follower(_) = fetcher {
            if let Some(d) = divergence(&log, sp)? {
                out.diverging = Some(d);
                return Ok(None);
            }
        }
        let r = p.checked(log.read_range(sp.fetch_offset, limit, *min_one, upper))?;
        if let (true, Some(r)) = (read_committed, &r) {
            out.aborted = Some(log.aborted_between(sp.fetch_offset, r.end_offset));
        }
        Ok(r)
    });
    match read {
        Ok(r) => {
            if let Some(r) = &r {
                *min_one = false;
                *remaining = remaining.saturating_sub(r.len);
            }
            out.records = r;
        }
        Err(e) => out.error = Some(e),
    }
    // Where a caught-up fetcher is: the log end (followers), else its read limit.
    let caught_up = sp.fetch_offset >= upper.min(log_end);
    out.settles = caught_up
        && out.records.is_none()
        && out.error.is_none()
        && out.diverging.is_none()
        && out.throttle_rate.is_none()
        && out.preferred_read_replica.is_none()
        && (!is_consumer || policy.rack.is_empty());
    out
}

/// A follower's fetch first tells the leader where the follower is: that may move the
/// high watermark and grow the ISR; `broker_epoch` is the one its fetch carried
/// (KIP-903). Returns the high watermark after it.
pub(super) fn record_position(
    broker: &Broker,
    image: &gregor_metadata::MetadataImage,
    (replica, broker_epoch): (i32, i64),
    sp: &SessionPartition,
    session: (&FetchClock, i64),
) -> i64 {
    let Some(p) = broker.replicas.partition(&sp.topic, sp.partition) else {
        return -1;
    };
    // A follower whose log diverges from this one's is not where its fetch offset
    // says: it truncates first (the read tells it where), and only its next fetch
    // counts for the high watermark and the ISR.
    let diverges = p
        .log()
        .map_or(true, |log| !matches!(divergence(&log, sp), Ok(None)));
    if p.is_leader() && !diverges && check_leader_epoch(&p, sp.current_leader_epoch).is_ok() {
        if let Some(isr) =
            p.record_follower_fetch(replica, broker_epoch, sp.fetch_offset, Some(session))
        {
            // Only an unfenced broker may join an ISR (KIP-841): a restarted one still
            // catching up with the metadata is not proposed (the controller would
            // refuse it, once per fetch).
            let eligible = image
                .brokers
                .get(&replica)
                .is_some_and(|b| !b.fenced && !b.in_controlled_shutdown);
            if eligible {
                crate::replication::alter_partition(&broker.host, &p, isr);
            } else {
                p.alter_partition_failed();
            }
        }
    }
    p.high_watermark()
}

/// Where a follower's log diverges from this leader's (KIP-595, Kafka's
/// `Partition.readRecords`): the leader's largest epoch at or below the follower's last
/// fetched epoch, if it is older than that epoch or ends before the fetch offset.
/// An epoch this leader cannot place at all (newer than all of its own) is
/// OFFSET_OUT_OF_RANGE, as in Kafka: the follower falls back to the high watermark.
fn divergence(
    log: &gregor_storage::Log,
    sp: &SessionPartition,
) -> Result<Option<(i32, i64)>, ReplicaError> {
    if sp.last_fetched_epoch < 0 {
        return Ok(None);
    }
    let (epoch, end) = log.end_offset_for_epoch(sp.last_fetched_epoch);
    if epoch < 0 || end < 0 {
        return Err(ReplicaError::OffsetOutOfRange);
    }
    Ok((epoch < sp.last_fetched_epoch || end < sp.fetch_offset).then_some((epoch, end)))
}

pub(super) fn has_news(sp: &SessionPartition, r: &PartitionRead) -> bool {
    r.records.is_some()
        || r.error.is_some()
        || r.preferred_read_replica.is_some()
        || r.diverging.is_some()
        || r.high_watermark != sp.high_watermark
        || r.last_stable_offset != sp.last_stable_offset
        || r.log_start_offset != sp.log_start_offset
}
