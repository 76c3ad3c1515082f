//! ShareFetch (key 78, KIP-932): a share group member's fetch. It opens, continues or
//! closes the member's share session, applies the acknowledgements it carries, then
//! acquires records for the member from the session's partitions and answers the
//! stored batch bytes with the ranges acquired (and their delivery counts).
//!
//! When nothing can be acquired it parks, up to `max_wait_ms`, on the partitions'
//! append notifications and on the share coordinator's releases (an acknowledgement,
//! a lock expiring, a member leaving), never on a sleep.
//!
//! A share session's opening fetch for a consumer or classic group's id is
//! GROUP_ID_NOT_FOUND.
//!
//! Version 2: `IsRenewAck` (KIP-1222) makes the request acknowledgements only, RENEW
//! among them, answered at once without fetching (its fetch limits must be 0 and every
//! partition must carry acknowledgements, else INVALID_REQUEST); `ShareAcquireMode`
//! (KIP-1206) is 0 (batch-optimized) or 1 (record-limit). Gregor never acquires more
//! than `MaxRecords` in either mode, which batch-optimized permits.
//!
//! Authorization is Kafka's: READ on the group (else GROUP_AUTHORIZATION_FAILED for the
//! request), READ on each topic (TOPIC_AUTHORIZATION_FAILED for its partitions, which
//! never enter the session).

use std::collections::BTreeMap;
use std::sync::Arc;

use gregor_protocol::kp::messages::share_fetch_response::{
    AcquiredRecords, LeaderIdAndEpoch, PartitionData, ShareFetchableTopicResponse,
};
use gregor_protocol::kp::messages::{ApiKey, ShareFetchRequest, ShareFetchResponse};
use gregor_protocol::kp::ResponseError;
use tokio::sync::Notify;
use uuid::Uuid;

use super::{AclOperation, ApiSpec, RequestContext, ResourceType};
use crate::broker::Broker;
use crate::error::{replica_error_code, share_error_code, share_failure};
use crate::share::session::Tp;
use crate::share::{AckBatch, ShareError};

pub const SPEC: ApiSpec = ApiSpec {
    key: ApiKey::ShareFetch,
    min: 1,
    max: 2,
};

/// The records one fetch acquires when the client sets no limit.
const DEFAULT_MAX_RECORDS: usize = 500;

/// A request's partitions sorted into those it may use and those it may not.
pub struct Resolved {
    pub ok: Vec<Tp>,
    pub refused: Vec<(Tp, ResponseError)>,
}

/// Resolves topic ids and checks READ on each topic.
pub fn resolve(
    broker: &Broker,
    ctx: &RequestContext,
    topics: impl IntoIterator<Item = (Uuid, Vec<i32>)>,
) -> Resolved {
    let image = broker.metadata.image();
    let mut out = Resolved {
        ok: Vec::new(),
        refused: Vec::new(),
    };
    for (id, parts) in topics {
        let err = match image.topic_by_id(&id) {
            None => Some(ResponseError::UnknownTopicId),
            Some(t) if !ctx.allowed(AclOperation::Read, ResourceType::Topic, &t.name) => {
                Some(ResponseError::TopicAuthorizationFailed)
            }
            Some(t) => parts
                .iter()
                .any(|p| !t.partitions.contains_key(p))
                .then_some(ResponseError::UnknownTopicOrPartition),
        };
        for p in parts {
            match err {
                Some(e) => out.refused.push(((id, p), e)),
                None => out.ok.push((id, p)),
            }
        }
    }
    out
}

fn top_level(
    code: i16,
    msg: Option<gregor_protocol::kp::protocol::StrBytes>,
) -> ShareFetchResponse {
    ShareFetchResponse::default()
        .with_error_code(code)
        .with_error_message(msg)
}

pub async fn handle(
    broker: &Arc<Broker>,
    ctx: &RequestContext,
    req: ShareFetchRequest,
) -> ShareFetchResponse {
    let group = req
        .group_id
        .as_ref()
        .map(|g| g.to_string())
        .unwrap_or_default();
    let member = req
        .member_id
        .as_ref()
        .map(|m| m.to_string())
        .unwrap_or_default();
    if !ctx.allowed(AclOperation::Read, ResourceType::Group, &group) {
        return top_level(ResponseError::GroupAuthorizationFailed.code(), None);
    }
    if group.is_empty() || member.is_empty() {
        let e = ShareError::InvalidRequest("group id and member id are required".into());
        let (c, m) = share_failure(&e);
        return top_level(c, m);
    }
    let renew = ctx.version() >= 2 && req.is_renew_ack;
    if let Err(e) = check_v2(&req, renew) {
        let (c, m) = share_failure(&e);
        return top_level(c, m);
    }
    let epoch = req.share_session_epoch;
    // A group id of another type is GROUP_ID_NOT_FOUND. The share group itself may live
    // on another broker (its coordinator), so its absence here is no error: a fetch
    // keeps only share-partition state on the partition's leader, never a group.
    if epoch == 0
        && !broker.shares.is_share_group(&group)
        && matches!(broker.groups.describe(&group).await, Ok(Some(_)))
    {
        let (c, m) = share_failure(&ShareError::GroupIdNotFound);
        return top_level(c, m);
    }
    let requested = resolve(
        broker,
        ctx,
        req.topics.iter().map(|t| {
            (
                t.topic_id,
                t.partitions.iter().map(|p| p.partition_index).collect(),
            )
        }),
    );
    let mut acks: Vec<(Tp, Vec<AckBatch>)> = Vec::new();
    for t in &req.topics {
        for p in &t.partitions {
            let tp = (t.topic_id, p.partition_index);
            if !p.acknowledgement_batches.is_empty() && requested.ok.contains(&tp) {
                let batches = p
                    .acknowledgement_batches
                    .iter()
                    .map(|b| (b.first_offset, b.last_offset, b.acknowledge_types.clone()))
                    .collect();
                acks.push((tp, batches));
            }
        }
    }
    if epoch == 0 && !acks.is_empty() {
        let e = ShareError::InvalidRequest("acknowledgements need an open share session".into());
        let (c, m) = share_failure(&e);
        return top_level(c, m);
    }
    let forgotten: Vec<Tp> = req
        .forgotten_topics_data
        .iter()
        .flat_map(|t| t.partitions.iter().map(move |p| (t.topic_id, *p)))
        .collect();
    let session = match broker.shares.session_step(
        &group,
        &member,
        epoch,
        &requested.ok,
        &forgotten,
        Some(ctx.connection_id),
    ) {
        Ok(s) => s,
        Err(e) => {
            let (c, m) = share_failure(&e);
            return top_level(c, m);
        }
    };
    let cfg = broker.shares.group_config(&group);
    let acked = broker
        .shares
        .acknowledge(&group, &member, acks, renew, &cfg)
        .await;
    let mut answers: BTreeMap<Tp, PartitionData> = BTreeMap::new();
    for (tp, e) in &requested.refused {
        answers.insert(*tp, partition(tp.1).with_error_code(e.code()));
    }
    for tp in &requested.ok {
        answers.entry(*tp).or_insert_with(|| partition(tp.1));
    }
    for (tp, r) in acked {
        let d = answers.entry(tp).or_insert_with(|| partition(tp.1));
        if let Err(e) = r {
            d.acknowledge_error_code = share_error_code(&e).code();
        }
    }
    if epoch == -1 {
        broker.shares.close_session(&group, &member);
        return respond(&cfg, answers);
    }
    if renew {
        // Fetching could outlast the locks just renewed: acknowledgements only.
        return respond(&cfg, answers);
    }
    fetch(broker, &req, &group, &member, &session, &cfg, &mut answers).await;
    respond(&cfg, answers)
}

/// What version 2 adds must make sense: a known acquire mode, and a renewing request
/// that only acknowledges.
fn check_v2(req: &ShareFetchRequest, renew: bool) -> Result<(), ShareError> {
    if !matches!(req.share_acquire_mode, 0 | 1) {
        return Err(ShareError::InvalidRequest(format!(
            "unknown share acquire mode {}",
            req.share_acquire_mode
        )));
    }
    if renew {
        if req.max_bytes != 0 || req.min_bytes != 0 || req.max_records != 0 || req.max_wait_ms != 0
        {
            return Err(ShareError::InvalidRequest(
                "a renewing share fetch must not fetch: its limits must be 0".into(),
            ));
        }
        let bare = req.topics.iter().any(|t| {
            t.partitions
                .iter()
                .any(|p| p.acknowledgement_batches.is_empty())
        });
        if bare {
            return Err(ShareError::InvalidRequest(
                "a renewing share fetch carries acknowledgements for every partition".into(),
            ));
        }
    }
    Ok(())
}

/// Acquires records from the session's partitions, parking until some are acquired
/// or `max_wait_ms` passes.
async fn fetch(
    broker: &Arc<Broker>,
    req: &ShareFetchRequest,
    group: &str,
    member: &str,
    session: &[Tp],
    cfg: &crate::share::ShareConfig,
    answers: &mut BTreeMap<Tp, PartitionData>,
) {
    let image = broker.metadata.image();
    let mut parts = Vec::new();
    for tp in session {
        let name = image.topic_by_id(&tp.0).map(|t| t.name.clone());
        match name.map(|n| broker.replicas.lookup(&n, tp.1)) {
            Some(Ok(p)) => {
                // read_committed groups read below the last stable offset.
                let hw = p.high_watermark();
                let upper = if cfg.read_committed {
                    p.last_stable_offset().min(hw)
                } else {
                    hw
                };
                parts.push((*tp, p, upper));
            }
            Some(Err(e)) => {
                let d = answers.entry(*tp).or_insert_with(|| partition(tp.1));
                d.error_code = replica_error_code(&e).code();
            }
            None => {
                let d = answers.entry(*tp).or_insert_with(|| partition(tp.1));
                d.error_code = ResponseError::UnknownTopicId.code();
            }
        }
    }
    // A share-partition served here for the first time (or under a new leader epoch)
    // is read from its share coordinator first.
    broker.shares.ensure_loaded(group, &parts).await;
    let max_records = usize::try_from(req.max_records)
        .ok()
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_MAX_RECORDS);
    let max_bytes = usize::try_from(req.max_bytes)
        .ok()
        .filter(|n| *n > 0)
        .unwrap_or(broker.config.fetch_max_bytes)
        .min(broker.config.fetch_max_bytes);
    let wait = std::time::Duration::from_millis(u64::try_from(req.max_wait_ms).unwrap_or(0));
    let deadline = tokio::time::Instant::now() + wait;
    let notify = Arc::new(Notify::new());
    loop {
        // Registered before the attempt, so a release or append in between is not lost.
        for (_, p, _) in &parts {
            p.register_waiter(&notify);
        }
        broker.shares.register_waiter(&notify);
        let got = broker
            .shares
            .fetch_once(group, member, &parts, max_records, max_bytes, cfg);
        let any = got
            .iter()
            .any(|(_, f)| !f.acquired.is_empty() || f.error.is_some());
        if any || tokio::time::Instant::now() >= deadline || parts.is_empty() {
            for (tp, f) in got {
                let d = answers.entry(tp).or_insert_with(|| partition(tp.1));
                if let Some(e) = &f.error {
                    d.error_code = replica_error_code(e).code();
                }
                if !f.acquired.is_empty() {
                    d.records = f.records;
                    d.acquired_records = f
                        .acquired
                        .iter()
                        .map(|r| {
                            AcquiredRecords::default()
                                .with_first_offset(r.first)
                                .with_last_offset(r.last)
                                .with_delivery_count(r.delivery_count)
                        })
                        .collect();
                }
            }
            for (tp, p, _) in &parts {
                if let Some(d) = answers.get_mut(tp) {
                    d.current_leader = LeaderIdAndEpoch::default()
                        .with_leader_id(broker.config.node_id)
                        .with_leader_epoch(p.leader_epoch());
                }
            }
            return;
        }
        if tokio::time::timeout_at(deadline, notify.notified())
            .await
            .is_err()
        {
            // One last look at the deadline, then answer what there is.
            continue;
        }
    }
}

fn partition(index: i32) -> PartitionData {
    PartitionData::default()
        .with_partition_index(index)
        .with_records(Some(bytes::Bytes::new()))
        .with_current_leader(LeaderIdAndEpoch::default().with_leader_id(-1))
}

fn respond(
    cfg: &crate::share::ShareConfig,
    answers: BTreeMap<Tp, PartitionData>,
) -> ShareFetchResponse {
    let mut topics: BTreeMap<Uuid, Vec<PartitionData>> = BTreeMap::new();
    for ((t, _), d) in answers {
        topics.entry(t).or_default().push(d);
    }
    let lock_ms = cfg.limits.lock_duration.as_millis();
    ShareFetchResponse::default()
        .with_acquisition_lock_timeout_ms(i32::try_from(lock_ms).unwrap_or(i32::MAX))
        .with_responses(
            topics
                .into_iter()
                .map(|(t, ps)| {
                    ShareFetchableTopicResponse::default()
                        .with_topic_id(t)
                        .with_partitions(ps)
                })
                .collect(),
        )
}
