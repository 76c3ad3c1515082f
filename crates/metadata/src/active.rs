//! The active controller's work beyond committing records: broker registrations,
//! heartbeats and fencing (KIP-631), and the RPC that brokers use to reach it.
//!
//! Every voter runs a [`QuorumController`]; only the one whose quorum is the raft leader
//! acts (the others answer NOT_CONTROLLER with the leader they know). Heartbeat times are
//! kept in memory only, as in Kafka's `BrokerHeartbeatManager`: a controller that has
//! just become active gives every registered broker a full session from the first time
//! it looks, so an election never fences the whole cluster.
//!
//! Fencing is a metadata change like any other: a broker whose session expired gets a
//! BrokerRegistrationChangeRecord (fenced) plus a PartitionChangeRecord for every
//! partition whose ISR holds it (it leaves the ISR, unless it is the last member and
//! ELRs are off, see `crate::elr`; a
//! partition it led gets the next live ISR member as leader, or none). A broker is
//! unfenced once its heartbeat reports a metadata offset at or past its registration.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::controller::ControllerError;
use crate::image::MetadataImage;
use crate::quorum::{AppHandler, MetadataQuorum, QuorumError, QuorumStatus};
use crate::records::{BrokerEndpoint, MetadataRecord};
use crate::request::ControllerRequest;

pub(crate) use crate::fencing::fence_partition;
#[cfg(test)]
pub(crate) use crate::fencing::image_with_brokers;
pub use crate::fencing::{fence_records, shutdown_records, unfence_records};

/// A broker's registration (Kafka's BrokerRegistrationRequest).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Registration {
    pub broker_id: i32,
    pub incarnation_id: Uuid,
    pub endpoints: Vec<BrokerEndpoint>,
    pub rack: Option<String>,
    /// The broker epoch its last process wrote in its clean-shutdown marker, -1 if it
    /// left none (Kafka's `PreviousBrokerEpoch`): not the epoch of its registration means
    /// that process did not stop cleanly, and it leaves every ELR (KIP-966).
    #[serde(default = "no_epoch")]
    pub previous_broker_epoch: i64,
}

fn no_epoch() -> i64 {
    -1
}

/// A broker's heartbeat (Kafka's BrokerHeartbeatRequest).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Heartbeat {
    pub broker_id: i32,
    pub broker_epoch: i64,
    /// The offset of the newest metadata the broker has applied.
    pub metadata_offset: i64,
    pub want_fence: bool,
    pub want_shut_down: bool,
    /// Partitions the broker can no longer host: their log dir failed (KIP-858).
    #[serde(default)]
    pub offline_partitions: Vec<(Uuid, i32)>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HeartbeatReply {
    pub is_caught_up: bool,
    pub is_fenced: bool,
    pub should_shut_down: bool,
}

/// Requests to the active controller over the quorum's RPC.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ControllerRpc {
    Request(ControllerRequest),
    Register(Registration),
    Heartbeat(Heartbeat),
    DescribeQuorum,
    /// AddRaftVoter (KIP-853): `voter_id` with its controller listener `host:port`.
    AddVoter {
        voter_id: i32,
        addr: String,
    },
    /// UpdateRaftVoter (KIP-853): a voter's new controller listener.
    UpdateVoter {
        voter_id: i32,
        addr: String,
    },
    /// RemoveRaftVoter (KIP-853).
    RemoveVoter {
        voter_id: i32,
    },
}

/// Why the controller did not do what was asked, as it travels back to the broker.
#[derive(Debug, Clone, Serialize, Deserialize, thiserror::Error, PartialEq, Eq)]
pub enum ControllerFailure {
    #[error("this node is not the active controller")]
    NotController { leader: Option<i32> },
    #[error("the metadata quorum is unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Refused(#[from] ControllerError),
    #[error("Broker {0} is already registered by another live process")]
    DuplicateBrokerRegistration(i32),
    #[error("Broker epoch {0} is not the current one")]
    StaleBrokerEpoch(i64),
    #[error("Broker {0} is not registered")]
    BrokerIdNotRegistered(i32),
    #[error("{0}")]
    Storage(String),
    #[error(transparent)]
    Membership(#[from] crate::quorum::MembershipError),
}

impl From<QuorumError> for ControllerFailure {
    fn from(e: QuorumError) -> Self {
        match e {
            QuorumError::NotLeader { leader } => ControllerFailure::NotController { leader },
            QuorumError::Controller(c) => ControllerFailure::Refused(c),
            QuorumError::Unavailable(m) => ControllerFailure::Unavailable(m),
            QuorumError::Membership(m) => ControllerFailure::Membership(m),
            other => ControllerFailure::Storage(other.to_string()),
        }
    }
}

/// DescribeQuorum's content, as it travels.
#[derive(Debug, Clone, Serialize, Deserialize, Default, PartialEq, Eq)]
pub struct QuorumInfo {
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub high_watermark: i64,
    /// (replica id, log end offset, last fetch ms, last caught-up ms)
    pub voters: Vec<(i32, i64, i64, i64)>,
    pub observers: Vec<(i32, i64, i64, i64)>,
}

impl From<QuorumStatus> for QuorumInfo {
    fn from(s: QuorumStatus) -> Self {
        let row = |r: &crate::quorum::ReplicaStatus| {
            (
                r.replica_id,
                r.log_end_offset,
                r.last_fetch_timestamp,
                r.last_caught_up_timestamp,
            )
        };
        Self {
            leader_id: s.leader_id,
            leader_epoch: s.leader_epoch,
            high_watermark: s.high_watermark,
            voters: s.voters.iter().map(row).collect(),
            observers: s.observers.iter().map(row).collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ControllerRpcReply {
    /// The request's records are committed; the image offset that includes them, and
    /// the next producer id as of that image (the end of a block just allocated).
    Committed {
        offset: i64,
        next_producer_id: i64,
        /// The ACLs a DeleteAcls removed, as they were (empty for other requests).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        removed_acls: Vec<gregor_security::acl::AclBinding>,
    },
    Registered {
        broker_epoch: i64,
    },
    Heartbeat(HeartbeatReply),
    Quorum(QuorumInfo),
    /// A voter change is committed.
    VotersChanged,
    Failed(ControllerFailure),
}

#[derive(Debug, Clone, Copy)]
pub struct LifecycleConfig {
    /// `broker.session.timeout.ms`
    pub session_timeout: Duration,
    /// `auto.leader.rebalance.enable`: every `leader.imbalance.check.interval.seconds`,
    /// preferred elections for the brokers over `leader.imbalance.per.broker.percentage`.
    pub leader_balance: Option<LeaderBalance>,
}

#[derive(Debug, Clone, Copy)]
pub struct LeaderBalance {
    pub interval: Duration,
    pub max_imbalance_percent: u32,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        Self {
            session_timeout: Duration::from_millis(9000),
            leader_balance: Some(LeaderBalance {
                interval: Duration::from_secs(300),
                max_imbalance_percent: 10,
            }),
        }
    }
}

struct Session {
    epoch: i64,
    incarnation: Uuid,
    deadline: Instant,
    /// This controller heard from this incarnation itself (not just a lease granted at
    /// activation): only then does it refuse another incarnation as a duplicate, so a
    /// broker restarted together with its controller registers at once.
    heard: bool,
    /// The metadata offset this broker last said it has applied (-1: not heard yet).
    applied: i64,
}

pub struct QuorumController {
    quorum: Arc<MetadataQuorum>,
    config: LifecycleConfig,
    /// Sessions of brokers this controller has heard from since it became active.
    sessions: Mutex<HashMap<i32, Session>>,
    /// Woken when a session is renewed or added, so the fencer re-arms its timer.
    changed: tokio::sync::Notify,
    /// Woken by every heartbeat (a broker's applied offset may have moved).
    heard: tokio::sync::Notify,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl QuorumController {
    pub fn new(quorum: Arc<MetadataQuorum>, config: LifecycleConfig) -> Arc<Self> {
        let c = Arc::new(Self {
            quorum,
            config,
            sessions: Mutex::new(HashMap::new()),
            changed: tokio::sync::Notify::new(),
            heard: tokio::sync::Notify::new(),
        });
        tokio::spawn(c.clone().fence_expired_sessions());
        if let Some(balance) = c.config.leader_balance {
            tokio::spawn(balance_leaders(Arc::downgrade(&c), balance));
        }
        c
    }

    pub fn quorum(&self) -> &Arc<MetadataQuorum> {
        &self.quorum
    }

    fn not_leader(&self) -> Option<ControllerFailure> {
        (!self.quorum.is_leader()).then(|| ControllerFailure::NotController {
            leader: self.quorum.leader(),
        })
    }

    /// Commits a request's records; returns the image that includes them.
    pub async fn request(
        &self,
        req: &ControllerRequest,
    ) -> Result<Arc<MetadataImage>, ControllerFailure> {
        Ok(self.request_removing_acls(req).await?.0)
    }

    /// [`Self::request`], also returning the ACLs its records removed, as they were in
    /// the image they were decided on (the last decision is the committed one).
    pub async fn request_removing_acls(
        &self,
        req: &ControllerRequest,
    ) -> Result<(Arc<MetadataImage>, Vec<gregor_security::acl::AclBinding>), ControllerFailure>
    {
        if let Some(e) = self.not_leader() {
            return Err(e);
        }
        let removed = Mutex::new(Vec::new());
        let decide = |img: &MetadataImage| {
            let records = req.decide(img)?;
            *lock(&removed) = crate::acls::removed_bindings(img, &records);
            Ok(records)
        };
        let image = self.quorum.commit(decide).await?;
        let removed = removed.into_inner().unwrap_or_default();
        Ok((image, removed))
    }

    /// A broker registers: a new incarnation gets a new registration (and epoch) unless
    /// another incarnation of the same id holds a live session; a retry of the same
    /// incarnation gets its existing epoch.
    pub async fn register(&self, reg: &Registration) -> Result<i64, ControllerFailure> {
        if let Some(e) = self.not_leader() {
            return Err(e);
        }
        let now = Instant::now();
        let live_other = lock(&self.sessions)
            .get(&reg.broker_id)
            .is_some_and(|s| s.heard && s.incarnation != reg.incarnation_id && s.deadline > now);
        let image = self.quorum.image();
        if let Some(b) = image.brokers.get(&reg.broker_id) {
            if b.incarnation_id == reg.incarnation_id {
                self.renew(reg.broker_id, b.epoch, reg.incarnation_id, -1);
                return Ok(b.epoch);
            }
            if live_other {
                return Err(ControllerFailure::DuplicateBrokerRegistration(
                    reg.broker_id,
                ));
            }
        }
        let r = reg.clone();
        let image = self
            .quorum
            .commit(|img| {
                if img
                    .brokers
                    .get(&r.broker_id)
                    .is_some_and(|old| old.incarnation_id == r.incarnation_id)
                {
                    return Ok(Vec::new());
                }
                // A restarted broker replaces its old registration and starts fenced;
                // its partitions keep their leader and ISR (a restart is not a session
                // expiry: moving every leadership away and back would rewrite every
                // partition twice per restart). If it does not catch up in time, its
                // session expires and the fencer moves them.
                let mut out = vec![MetadataRecord::RegisterBrokerRecord {
                    broker_id: r.broker_id,
                    incarnation_id: r.incarnation_id,
                    endpoints: r.endpoints.clone(),
                    rack: r.rack.clone(),
                    broker_epoch: None,
                }];
                if img
                    .brokers
                    .get(&r.broker_id)
                    .is_some_and(|old| old.epoch != r.previous_broker_epoch)
                {
                    out.extend(crate::elr::unclean_shutdown_records(img, r.broker_id));
                }
                Ok(out)
            })
            .await?;
        let epoch = image
            .brokers
            .get(&reg.broker_id)
            .filter(|b| b.incarnation_id == reg.incarnation_id)
            .map(|b| b.epoch)
            .ok_or_else(|| ControllerFailure::Storage("registration not applied".into()))?;
        self.renew(reg.broker_id, epoch, reg.incarnation_id, -1);
        tracing::info!(broker = reg.broker_id, epoch, rack = ?reg.rack, "broker registered");
        Ok(epoch)
    }

    fn renew(&self, broker: i32, epoch: i64, incarnation: Uuid, applied: i64) {
        lock(&self.sessions).insert(
            broker,
            Session {
                epoch,
                incarnation,
                deadline: Instant::now() + self.config.session_timeout,
                heard: true,
                applied,
            },
        );
        self.changed.notify_one();
        self.heard.notify_waiters();
    }

    /// Waits (at most `limit`) until every other broker with a live session has said in
    /// a heartbeat that it applied metadata up to `offset`, so that a client asking any
    /// of them next sees what was just committed (a controlled shutdown's leader moves).
    async fn await_applied_everywhere(&self, offset: i64, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let heard = self.heard.notified();
            let now = Instant::now();
            let behind: Vec<i32> = lock(&self.sessions)
                .iter()
                .filter(|(_, s)| s.heard && s.deadline > now && s.applied < offset)
                .map(|(&id, _)| id)
                .collect();
            if behind.is_empty() {
                return;
            }
            if tokio::time::timeout_at(deadline, heard).await.is_err() {
                tracing::info!(?behind, offset, "brokers still applying the metadata");
                return;
            }
        }
    }

    /// A heartbeat renews the session; a fenced broker that has caught up with its own
    /// registration is unfenced.
    pub async fn heartbeat(&self, hb: &Heartbeat) -> Result<HeartbeatReply, ControllerFailure> {
        if let Some(e) = self.not_leader() {
            return Err(e);
        }
        let image = self.quorum.image();
        let Some(b) = image.brokers.get(&hb.broker_id) else {
            return Err(ControllerFailure::BrokerIdNotRegistered(hb.broker_id));
        };
        if b.epoch != hb.broker_epoch {
            return Err(ControllerFailure::StaleBrokerEpoch(hb.broker_epoch));
        }
        if hb.want_shut_down {
            // A clean stop (SIGTERM): leaderships move to other live ISR members, the
            // broker leaves the ISRs it shares and is fenced, and its session ends at
            // once, so the restarted process may register without waiting for it.
            let (id, epoch) = (hb.broker_id, b.epoch);
            let image = self
                .quorum
                .commit(|img| Ok(shutdown_records(img, id, epoch)))
                .await?;
            lock(&self.sessions).remove(&id);
            // Answer once the others serve the new leaders: the leaving broker then
            // stops, and clients that ask the rest find the moved partitions at once.
            self.await_applied_everywhere(image.offset, self.config.session_timeout / 2)
                .await;
            tracing::info!(
                broker = id,
                epoch,
                "broker shut down: leaderships moved, fenced"
            );
            return Ok(HeartbeatReply {
                is_caught_up: true,
                is_fenced: true,
                should_shut_down: true,
            });
        }
        self.renew(hb.broker_id, b.epoch, b.incarnation_id, hb.metadata_offset);
        if !crate::offline_dirs::offline_records(
            &image,
            hb.broker_id,
            b.epoch,
            &hb.offline_partitions,
        )
        .is_empty()
        {
            // A log dir of the broker failed: it leaves those partitions' ISRs and
            // their leaderships move, as for a fenced broker but only for them.
            let (id, epoch) = (hb.broker_id, b.epoch);
            let parts = hb.offline_partitions.clone();
            self.quorum
                .commit(|img| Ok(crate::offline_dirs::offline_records(img, id, epoch, &parts)))
                .await?;
            tracing::warn!(
                broker = id,
                partitions = parts.len(),
                "broker reported partitions in failed log dirs: moved off it"
            );
        }
        let caught_up = hb.metadata_offset >= b.epoch;
        let mut fenced = b.fenced;
        if fenced && caught_up && !hb.want_fence {
            let (id, epoch) = (hb.broker_id, b.epoch);
            let image = self
                .quorum
                .commit(|img| Ok(unfence_records(img, id, epoch)))
                .await?;
            fenced = image.brokers.get(&id).is_none_or(|b| b.fenced);
            if !fenced {
                tracing::info!(broker = id, epoch, "broker unfenced");
            }
        }
        Ok(HeartbeatReply {
            is_caught_up: caught_up,
            is_fenced: fenced,
            should_shut_down: false,
        })
    }

    /// Sleeps until the earliest session deadline (or a change), and fences brokers
    /// whose session expired, while this node is the active controller.
    async fn fence_expired_sessions(self: Arc<Self>) {
        let mut leader_changes = self.quorum.subscribe();
        let mut was_leader = false;
        loop {
            let is_leader = self.quorum.is_leader();
            if is_leader && !was_leader {
                // Newly active: every registered broker gets a full session from now.
                let now = Instant::now();
                let image = self.quorum.image();
                let mut sessions = lock(&self.sessions);
                sessions.clear();
                for b in image.brokers.values().filter(|b| !b.fenced) {
                    sessions.insert(
                        b.id,
                        Session {
                            epoch: b.epoch,
                            incarnation: b.incarnation_id,
                            deadline: now + self.config.session_timeout,
                            heard: false,
                            applied: -1,
                        },
                    );
                }
            }
            was_leader = is_leader;
            let next = if is_leader {
                let now = Instant::now();
                let expired: Vec<(i32, i64)> = lock(&self.sessions)
                    .iter()
                    .filter(|(_, s)| s.deadline <= now)
                    .map(|(&id, s)| (id, s.epoch))
                    .collect();
                for (id, epoch) in expired {
                    let result = self
                        .quorum
                        .commit(|img| match img.brokers.get(&id) {
                            Some(b) if b.epoch == epoch && !b.fenced => Ok(fence_records(img, id)),
                            _ => Ok(Vec::new()),
                        })
                        .await;
                    match result {
                        Ok(_) => {
                            tracing::warn!(broker = id, epoch, "broker session expired: fenced");
                            lock(&self.sessions).remove(&id);
                        }
                        Err(e) => {
                            tracing::warn!(broker = id, error = %e, "cannot fence broker yet")
                        }
                    }
                }
                lock(&self.sessions).values().map(|s| s.deadline).min()
            } else {
                None
            };
            let sleep = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = sleep => {}
                _ = self.changed.notified() => {}
                r = leader_changes.changed() => {
                    if r.is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// Serves one RPC from a broker.
    pub async fn serve(&self, rpc: ControllerRpc) -> ControllerRpcReply {
        let failed = ControllerRpcReply::Failed;
        match rpc {
            ControllerRpc::Request(req) => match self.request_removing_acls(&req).await {
                Ok((img, removed_acls)) => ControllerRpcReply::Committed {
                    offset: img.offset,
                    next_producer_id: img.next_producer_id,
                    removed_acls,
                },
                Err(e) => failed(e),
            },
            ControllerRpc::Register(reg) => match self.register(&reg).await {
                Ok(broker_epoch) => ControllerRpcReply::Registered { broker_epoch },
                Err(e) => failed(e),
            },
            ControllerRpc::Heartbeat(hb) => match self.heartbeat(&hb).await {
                Ok(r) => ControllerRpcReply::Heartbeat(r),
                Err(e) => failed(e),
            },
            ControllerRpc::DescribeQuorum => {
                if let Some(e) = self.not_leader() {
                    return failed(e);
                }
                ControllerRpcReply::Quorum(self.quorum.status().into())
            }
            ControllerRpc::AddVoter { voter_id, addr } => {
                if let Some(e) = self.not_leader() {
                    return failed(e);
                }
                match self.quorum.add_voter(voter_id, addr).await {
                    Ok(()) => ControllerRpcReply::VotersChanged,
                    Err(e) => failed(e.into()),
                }
            }
            ControllerRpc::UpdateVoter { voter_id, addr } => {
                if let Some(e) = self.not_leader() {
                    return failed(e);
                }
                match self.quorum.update_voter(voter_id, addr).await {
                    Ok(()) => ControllerRpcReply::VotersChanged,
                    Err(e) => failed(e.into()),
                }
            }
            ControllerRpc::RemoveVoter { voter_id } => {
                if let Some(e) = self.not_leader() {
                    return failed(e);
                }
                match self.quorum.remove_voter(voter_id).await {
                    Ok(()) => ControllerRpcReply::VotersChanged,
                    Err(e) => failed(e.into()),
                }
            }
        }
    }
}

/// Serves the controller RPC on the quorum's transport: JSON both ways, or a Kafka
/// request and response (see [`crate::kafka_apis`]).
pub struct RpcService(pub std::sync::OnceLock<Arc<QuorumController>>);

impl AppHandler for RpcService {
    fn handle(
        &self,
        _from_node: i32,
        request: Vec<u8>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<u8>> + Send>> {
        let controller = self.0.get().cloned();
        Box::pin(async move {
            if crate::kafka_apis::is_kafka_request(&request) {
                return match controller {
                    Some(c) => c.serve_kafka(request).await,
                    // Read as malformed: the broker tries again.
                    None => Vec::new(),
                };
            }
            let reply = match (
                serde_json::from_slice::<ControllerRpc>(&request),
                controller,
            ) {
                (Ok(rpc), Some(c)) => c.serve(rpc).await,
                (Ok(_), None) => ControllerRpcReply::Failed(ControllerFailure::Unavailable(
                    "the controller is starting".into(),
                )),
                (Err(e), _) => ControllerRpcReply::Failed(ControllerFailure::Storage(format!(
                    "malformed controller request: {e}"
                ))),
            };
            serde_json::to_vec(&reply).unwrap_or_default()
        })
    }
}

/// While this node is the active controller: every interval, preferred elections for the
/// partitions of brokers whose leadership drifted past the threshold (after restarts,
/// leaders stay where failover put them until then).
async fn balance_leaders(controller: std::sync::Weak<QuorumController>, balance: LeaderBalance) {
    loop {
        tokio::time::sleep(balance.interval).await;
        let Some(c) = controller.upgrade() else {
            return;
        };
        if !c.quorum.is_leader() {
            continue;
        }
        let moves = crate::election::imbalanced(&c.quorum.image(), balance.max_imbalance_percent);
        if moves.is_empty() {
            continue;
        }
        let kind = crate::election::ElectionType::Preferred;
        match c
            .quorum
            .commit(|img| Ok(crate::election::election_records(img, kind, &moves)))
            .await
        {
            Ok(_) => tracing::info!(
                partitions = moves.len(),
                "leadership given back to preferred replicas"
            ),
            Err(e) => tracing::warn!(error = %e, "preferred leader election failed"),
        }
    }
}

#[cfg(test)]
#[path = "active_tests.rs"]
mod tests;
