//! A voter: openraft plus the storage, the state machine and the RPC server.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures::StreamExt;
use openraft::error::{CheckIsLeaderError, ClientWriteError, InitializeError, RaftError};
use openraft::{BasicNode, Raft, ServerState, SnapshotPolicy};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::dirs::{self, QuorumState};
use super::follower::ObserverTable;
use super::log_store::LogStore;
use super::network::{NetworkFactory, PeerTimes};
use super::prevote::{ElectionTimer, PreVoteRequest};
use super::rpc::{self, AppHandler, Reply, Request, RpcClient, ServerCtx};
use super::state_machine::{SmShared, StateMachine};
use super::{
    now_ms, MembershipError, MetaEntry, QuorumConfig, QuorumError, QuorumStatus, ReplicaStatus,
    TypeConfig,
};
use crate::controller::ControllerError;
use crate::image::MetadataImage;
use crate::records::MetadataRecord;

/// Entries kept in the log behind a snapshot (so a voter a little behind catches up
/// from the log, and openraft's apply never races a purge of what it is applying).
const KEEP_BEHIND_SNAPSHOT: u64 = 16;
/// Decisions re-made when the image moved under them, before giving up.
const MAX_ATTEMPTS: usize = 5;

/// One voter of the metadata quorum.
pub struct MetadataQuorum {
    raft: Raft<TypeConfig>,
    node_id: i32,
    dir: PathBuf,
    state: Mutex<QuorumState>,
    migrated: Mutex<Option<MetadataImage>>,
    log: LogStore,
    sm: Arc<SmShared>,
    observers: Arc<ObserverTable>,
    times: Arc<PeerTimes>,
    commit_permit: Semaphore,
    commit_timeout: Duration,
    /// The static `min.insync.replicas`, for the ELR rules (`crate::elr::complete`).
    default_min_isr: usize,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    closed: AtomicBool,
    /// Whether peers can reach this node (a voter among several, or joining): a
    /// single node without a controller listener cannot grow its quorum.
    reachable: bool,
}

/// Whether `addr` is `host:port` with a non-zero port.
fn is_host_port(addr: &str) -> bool {
    addr.rsplit_once(':')
        .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0))
}

/// A membership change's failure: not the leader, or the quorum unavailable.
fn membership_failure<E>(e: RaftError<u64, E>) -> QuorumError
where
    E: std::fmt::Debug
        + std::fmt::Display
        + openraft::TryAsRef<openraft::error::ForwardToLeader<u64, BasicNode>>,
{
    if let Some(f) = e.forward_to_leader::<BasicNode>() {
        return QuorumError::NotLeader {
            leader: f.leader_id.map(|l| l as i32),
        };
    }
    QuorumError::Unavailable(e.to_string())
}

fn fatal(e: impl std::fmt::Display) -> QuorumError {
    QuorumError::Unavailable(e.to_string())
}

impl MetadataQuorum {
    /// Opens the raft state (migrating an old directory), starts openraft and the RPC
    /// server on `listener` (None when `voters` is empty). A new cluster is initialised
    /// with the configured voters; a single voter elects itself at once and commits the
    /// migrated image and the bootstrap feature levels before this returns.
    pub async fn start(
        cfg: QuorumConfig,
        listener: Option<TcpListener>,
        app: Arc<dyn AppHandler>,
    ) -> Result<Arc<Self>, QuorumError> {
        if cfg.node_id < 0 {
            return Err(QuorumError::Config(format!("bad node id {}", cfg.node_id)));
        }
        // A controller not among the bootstrap voters joins a running quorum (KIP-853):
        // it waits, uninitialised, until the leader adds it (AddRaftVoter).
        let joining = !cfg.voters.is_empty() && !cfg.voters.contains_key(&cfg.node_id);
        if cfg.voters.len() > 1 && listener.is_none() {
            return Err(QuorumError::Config(
                "a voter among several needs a listener".into(),
            ));
        }
        let me = cfg.node_id;
        let cfg2 = cfg.clone();
        let (prepared, log, sm) = tokio::task::spawn_blocking(move || {
            let prepared = dirs::prepare(&cfg2)?;
            let log = LogStore::open(&prepared.dir)?;
            let sm = StateMachine::open(&prepared.dir, cfg2.log.snapshot_bytes)
                .map_err(QuorumError::Storage)?;
            Ok::<_, QuorumError>((prepared, log, sm))
        })
        .await
        .map_err(fatal)??;
        let election = cfg.election_timeout.as_millis().max(10) as u64;
        let heartbeat = (cfg.heartbeat_interval.as_millis() as u64).clamp(1, election - 1);
        let config = openraft::Config {
            cluster_name: cfg.cluster_id.clone(),
            election_timeout_min: election,
            election_timeout_max: election * 2,
            heartbeat_interval: heartbeat,
            install_snapshot_timeout: election.max(1000),
            snapshot_policy: SnapshotPolicy::Never,
            max_in_snapshot_log_to_keep: KEEP_BEHIND_SNAPSHOT,
            // Among several voters, elections start only after a pre-vote (see `prevote`).
            enable_elect: cfg.voters.len() <= 1,
            ..Default::default()
        }
        .validate()
        .map_err(|e| QuorumError::Config(e.to_string()))?;
        let times = Arc::new(PeerTimes::default());
        let network = NetworkFactory {
            cluster_id: cfg.cluster_id.clone(),
            me,
            voters: cfg.voters.clone(),
            log: log.clone(),
            times: times.clone(),
            tls: cfg.tls.client.clone(),
        };
        let sm_shared = sm.shared.clone();
        let raft = Raft::new(me as u64, Arc::new(config), network, log.clone(), sm)
            .await
            .map_err(fatal)?;
        let (stop, stop_rx) = watch::channel(false);
        let observers = Arc::new(ObserverTable::default());
        let timer = Arc::new(ElectionTimer::new(
            Duration::from_millis(election),
            Duration::from_millis(election * 2),
            me as u64 ^ u64::from(std::process::id()) << 20,
        ));
        let mut tasks = Vec::new();
        if let Some(listener) = listener {
            let ctx = Arc::new(ServerCtx {
                cluster_id: cfg.cluster_id.clone(),
                raft: raft.clone(),
                app,
                log: log.clone(),
                sm: sm_shared.clone(),
                observers: observers.clone(),
                timer: timer.clone(),
            });
            tasks.push(tokio::spawn(rpc::serve(
                listener,
                ctx,
                cfg.tls.server.clone(),
                stop_rx.clone(),
            )));
        }
        tasks.push(tokio::spawn(snapshot_loop(
            raft.clone(),
            sm_shared.clone(),
            stop_rx.clone(),
        )));
        let quorum = Arc::new(Self {
            raft,
            node_id: me,
            dir: prepared.dir,
            state: Mutex::new(prepared.state),
            migrated: Mutex::new(prepared.migrated),
            log,
            sm: sm_shared,
            observers,
            times,
            commit_permit: Semaphore::new(1),
            commit_timeout: cfg.election_timeout.max(Duration::from_millis(200)) * 5,
            default_min_isr: cfg.default_min_insync_replicas,
            stop,
            tasks: Mutex::new(tasks),
            closed: AtomicBool::new(false),
            reachable: cfg.voters.len() > 1 || joining,
        });
        let configured: Vec<u64> = if cfg.voters.is_empty() {
            vec![me as u64]
        } else {
            cfg.voters.keys().map(|&id| id as u64).collect()
        };
        // The voters in the log, if it has any yet (a new node may already have voted
        // for a peer's request, which counts as initialised, before it has a log).
        let (members, changed_at_runtime): (Vec<u64>, bool) = quorum
            .raft
            .with_raft_state(|st| {
                let m = st.membership_state.effective();
                // The initial membership is entry 0; a voter change (KIP-853) is later.
                let changed = m.log_id().is_some_and(|id| id.index > 0);
                (m.voter_ids().collect(), changed)
            })
            .await
            .map_err(fatal)?;
        if !members.is_empty() {
            // Voters added or removed at runtime (KIP-853) are in the log, which wins.
            // Otherwise a configured voter set that differs from the log's is an error:
            // following it would let the new voters form a second quorum beside this one.
            if members != configured && !changed_at_runtime {
                quorum.raft.shutdown().await.map_err(fatal)?;
                return Err(QuorumError::Config(format!(
                    "controller.quorum.voters names {configured:?} but the quorum's voters are {members:?}; change voters with AddRaftVoter/RemoveRaftVoter, not the config"
                )));
            }
            if members != configured {
                tracing::info!(
                    configured = ?configured,
                    voters = ?members,
                    "metadata quorum: the voters in the log differ from the configured ones; following the log"
                );
            }
        } else if !joining {
            let members: BTreeMap<u64, BasicNode> = if cfg.voters.is_empty() {
                [(me as u64, BasicNode::default())].into()
            } else {
                cfg.voters
                    .iter()
                    .map(|(&id, addr)| (id as u64, BasicNode::new(addr)))
                    .collect()
            };
            match quorum.raft.initialize(members).await {
                Ok(()) | Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
                Err(e) => return Err(fatal(e)),
            }
        }
        if cfg.voters.len() <= 1 && !joining {
            if !quorum.is_leader() {
                quorum.raft.trigger().elect().await.map_err(fatal)?;
            }
            quorum
                .wait_leader(Instant::now() + quorum.commit_timeout)
                .await?;
            quorum.after_election().await?;
        } else {
            let task = tokio::spawn(leader_watch(Arc::downgrade(&quorum), stop_rx.clone()));
            quorum.push_task(task);
            let task = tokio::spawn(election_loop(
                Arc::downgrade(&quorum),
                timer,
                cfg.cluster_id.clone(),
                cfg.tls.client.clone(),
                stop_rx,
            ));
            quorum.push_task(task);
        }
        Ok(quorum)
    }

    fn push_task(&self, task: JoinHandle<()>) {
        match self.tasks.lock() {
            Ok(mut g) => g.push(task),
            Err(p) => p.into_inner().push(task),
        }
    }

    /// Runs once this node leads: commits a pending migration, then the bootstrap
    /// feature levels of a new cluster (a no-op once they are there).
    async fn after_election(&self) -> Result<(), QuorumError> {
        let old = match self.migrated.lock() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        };
        if let Some(old) = old {
            let records = crate::snapshot::image_records(&old);
            self.commit(|img| {
                // Committed already by a start that crashed before clearing the flag.
                let fresh = img.topics.is_empty()
                    && img.features.is_empty()
                    && img.next_producer_id == 0
                    && img.brokers.is_empty();
                Ok(if fresh { records.clone() } else { Vec::new() })
            })
            .await?;
            let mut state = match self.state.lock() {
                Ok(g) => g.clone(),
                Err(p) => p.into_inner().clone(),
            };
            state.migration_pending = false;
            let dir = self.dir.clone();
            let to_write = state.clone();
            tokio::task::spawn_blocking(move || dirs::write_state(&dir, &to_write))
                .await
                .map_err(fatal)??;
            if let Ok(mut g) = self.state.lock() {
                *g = state;
            }
            if let Ok(mut g) = self.migrated.lock() {
                *g = None;
            }
            tracing::info!("metadata quorum: old metadata log migrated");
        }
        self.commit(|img| Ok(crate::features::bootstrap_records(img, true)))
            .await?;
        Ok(())
    }

    /// The image of every committed entry this node has applied.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.sm.image()
    }

    /// Changes whenever entries are applied.
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.sm.subscribe()
    }

    /// The current known raft leader.
    pub fn leader(&self) -> Option<i32> {
        self.raft
            .metrics()
            .borrow()
            .current_leader
            .map(|l| l as i32)
    }

    pub fn is_leader(&self) -> bool {
        let m = self.raft.metrics();
        let m = m.borrow();
        m.state == ServerState::Leader && m.current_leader == Some(self.node_id as u64)
    }

    /// Waits until a leader other than `other_than` is known (when it is this node: until
    /// it has taken office), at most `timeout`; the leader, or `None` when none was
    /// elected in time (start-up and tests).
    pub async fn await_leader(&self, other_than: Option<i32>, timeout: Duration) -> Option<i32> {
        let mut rx = self.raft.metrics();
        let wait = rx.wait_for(|m| {
            m.current_leader.is_some_and(|l| {
                Some(l as i32) != other_than
                    && m.vote.is_committed()
                    && (l != m.id || m.state == ServerState::Leader)
            })
        });
        let leader = match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(m)) => m.current_leader.map(|l| l as i32),
            _ => None,
        };
        leader
    }

    /// Waits until this node leads (Ok), another node is known to (NotLeader), or the
    /// deadline passes (Unavailable).
    async fn wait_leader(&self, deadline: Instant) -> Result<(), QuorumError> {
        let mut rx = self.raft.metrics();
        loop {
            {
                let m = rx.borrow_and_update();
                if m.running_state.is_err() {
                    return Err(QuorumError::Unavailable(
                        "the metadata quorum stopped".into(),
                    ));
                }
                match m.current_leader {
                    Some(l) if l == self.node_id as u64 && m.state == ServerState::Leader => {
                        return Ok(());
                    }
                    // This node, still taking office: wait.
                    Some(l) if l == self.node_id as u64 => {}
                    Some(l) => {
                        return Err(QuorumError::NotLeader {
                            leader: Some(l as i32),
                        })
                    }
                    None => {}
                }
            }
            match tokio::time::timeout_at(deadline, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => {
                    return Err(QuorumError::Unavailable(
                        "the metadata quorum stopped".into(),
                    ))
                }
                Err(_) => return Err(QuorumError::Unavailable("no leader elected in time".into())),
            }
        }
    }

    /// Leader only: runs `decide` on the latest image, proposes its records as one
    /// entry carrying the image offset, and waits until it is committed and applied.
    /// The records first go through the ELR rules (`crate::elr::complete`).
    /// When the image moved in between (`apply` answers stale), decides again, a few
    /// times. Empty records: nothing is proposed.
    pub async fn commit<F>(&self, decide: F) -> Result<Arc<MetadataImage>, QuorumError>
    where
        F: Fn(&MetadataImage) -> Result<Vec<MetadataRecord>, ControllerError> + Send + Sync,
    {
        let _permit = self
            .commit_permit
            .acquire()
            .await
            .map_err(|_| QuorumError::Unavailable("shut down".into()))?;
        let deadline = Instant::now() + self.commit_timeout;
        for _ in 0..MAX_ATTEMPTS {
            self.wait_leader(deadline).await?;
            // Everything committed before this term is applied first.
            match tokio::time::timeout_at(deadline, self.raft.ensure_linearizable()).await {
                Err(_) => {
                    return Err(QuorumError::Unavailable(
                        "no quorum answered in time".into(),
                    ))
                }
                Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)))) => {
                    return Err(QuorumError::NotLeader {
                        leader: f.leader_id.map(|l| l as i32),
                    })
                }
                Ok(Err(e)) => return Err(fatal(e)),
                Ok(Ok(_)) => {}
            }
            let image = self.image();
            // Every partition change follows the ELR rules (KIP-966), whoever decided it.
            let records = crate::elr::complete(&image, decide(&image)?, self.default_min_isr);
            if records.is_empty() {
                return Ok(image);
            }
            let entry = MetaEntry {
                expected_offset: image.offset,
                records,
            };
            match tokio::time::timeout_at(deadline, self.raft.client_write(entry)).await {
                Err(_) => {
                    return Err(QuorumError::Unavailable(
                        "the entry was not committed in time".into(),
                    ))
                }
                Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
                    return Err(QuorumError::NotLeader {
                        leader: f.leader_id.map(|l| l as i32),
                    })
                }
                Ok(Err(e)) => return Err(fatal(e)),
                Ok(Ok(resp)) if resp.data.applied => return Ok(self.image()),
                Ok(Ok(resp)) => {
                    tracing::debug!(
                        index = resp.log_id.index,
                        "metadata entry stale; deciding again"
                    );
                }
            }
        }
        Err(QuorumError::Unavailable(
            "the metadata image kept moving under the decision".into(),
        ))
    }

    /// The voters in the log's effective membership, with their addresses.
    pub fn voter_nodes(&self) -> BTreeMap<u64, BasicNode> {
        let m = self.raft.metrics().borrow().membership_config.clone();
        let membership = m.membership();
        membership
            .voter_ids()
            .filter_map(|id| membership.get_node(&id).map(|n| (id, n.clone())))
            .collect()
    }

    /// AddRaftVoter (KIP-853), on the leader: `id` (its controller listener at `addr`)
    /// first follows as a learner until it has caught up with the log, then becomes a
    /// voter through a joint-consensus membership change.
    pub async fn add_voter(&self, id: i32, addr: String) -> Result<(), QuorumError> {
        let voters = self.voter_nodes();
        if voters.contains_key(&(id as u64)) {
            return Err(QuorumError::Membership(MembershipError::DuplicateVoter(id)));
        }
        if !self.reachable {
            return Err(QuorumError::Membership(MembershipError::InvalidVoter(
                "a single node without a controller listener cannot add voters".into(),
            )));
        }
        let valid_addr = is_host_port(&addr);
        if id < 0 || !valid_addr {
            return Err(QuorumError::Membership(MembershipError::InvalidVoter(
                format!("voter {id} at {addr:?}"),
            )));
        }
        self.raft
            .add_learner(id as u64, BasicNode::new(addr), true)
            .await
            .map_err(membership_failure)?;
        let mut ids: BTreeSet<u64> = voters.keys().copied().collect();
        ids.insert(id as u64);
        self.raft
            .change_membership(ids, true)
            .await
            .map_err(membership_failure)?;
        tracing::info!(voter = id, "metadata quorum: voter added");
        Ok(())
    }

    /// UpdateRaftVoter (KIP-853), on the leader: a voter's controller listener moved
    /// to `addr`; the membership in the log takes the new address.
    pub async fn update_voter(&self, id: i32, addr: String) -> Result<(), QuorumError> {
        if !self.voter_nodes().contains_key(&(id as u64)) {
            return Err(QuorumError::Membership(MembershipError::VoterNotFound(id)));
        }
        let valid_addr = is_host_port(&addr);
        if !valid_addr {
            return Err(QuorumError::Membership(MembershipError::InvalidVoter(
                format!("voter {id} at {addr:?}"),
            )));
        }
        let nodes = [(id as u64, BasicNode::new(addr))].into();
        self.raft
            .change_membership(openraft::ChangeMembers::SetNodes(nodes), true)
            .await
            .map_err(membership_failure)?;
        tracing::info!(voter = id, "metadata quorum: voter's listener updated");
        Ok(())
    }

    /// RemoveRaftVoter (KIP-853), on the leader: `id` leaves the voters and goes on
    /// receiving the log as a learner. The last voter cannot be removed.
    pub async fn remove_voter(&self, id: i32) -> Result<(), QuorumError> {
        let voters = self.voter_nodes();
        if !voters.contains_key(&(id as u64)) {
            return Err(QuorumError::Membership(MembershipError::VoterNotFound(id)));
        }
        if voters.len() == 1 {
            return Err(QuorumError::Membership(MembershipError::InvalidVoter(
                "the last voter cannot be removed".into(),
            )));
        }
        // `retain`: the removed voter stays a learner, so a combined broker keeps
        // following the metadata log (Kafka's observer).
        let ids: BTreeSet<u64> = voters.keys().copied().filter(|&v| v != id as u64).collect();
        self.raft
            .change_membership(ids, true)
            .await
            .map_err(membership_failure)?;
        tracing::info!(voter = id, "metadata quorum: voter removed");
        Ok(())
    }

    /// For DescribeQuorum (API 55).
    pub fn status(&self) -> QuorumStatus {
        let m = self.raft.metrics().borrow().clone();
        let now = now_ms();
        let me = self.node_id;
        let voters = m
            .membership_config
            .membership()
            .voter_ids()
            .map(|id| {
                let id = id as i32;
                if id == me {
                    return ReplicaStatus {
                        replica_id: id,
                        log_end_offset: m.last_log_index.map_or(0, |i| i as i64 + 1),
                        last_fetch_timestamp: now,
                        last_caught_up_timestamp: now,
                    };
                }
                let matched = m
                    .replication
                    .as_ref()
                    .and_then(|r| r.get(&(id as u64)).cloned())
                    .flatten();
                let (fetch, caught_up) = self.times.get(id);
                ReplicaStatus {
                    replica_id: id,
                    log_end_offset: matched.map_or(-1, |l| l.index as i64 + 1),
                    last_fetch_timestamp: fetch,
                    last_caught_up_timestamp: caught_up,
                }
            })
            .collect();
        QuorumStatus {
            leader_id: m.current_leader.map_or(-1, |l| l as i32),
            leader_epoch: m.current_term as i32,
            high_watermark: self.log.committed().map_or(0, |c| c.index as i64 + 1),
            voters,
            observers: self.observers.list(),
        }
    }

    /// Stops openraft and the server; every write was fsynced when made.
    pub async fn shutdown(&self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        self.stop.send_replace(true);
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "metadata quorum: raft stopped with an error");
        }
        // openraft does not wait for a snapshot build it spawned: fence the files.
        self.log.fence();
        let sm = self.sm.clone();
        let _ = tokio::task::spawn_blocking(move || sm.close()).await;
        let tasks = match self.tasks.lock() {
            Ok(mut g) => std::mem::take(&mut *g),
            Err(p) => std::mem::take(&mut *p.into_inner()),
        };
        for t in tasks {
            let _ = t.await;
        }
    }
}

impl Drop for MetadataQuorum {
    /// Dropped without shutdown (a crash in tests): nothing more is written, the server
    /// and the tasks stop, and openraft's core ends with its last handle.
    fn drop(&mut self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        self.log.fence();
        self.sm.close();
        self.stop.send_replace(true);
        if let Ok(mut g) = self.tasks.lock() {
            for t in g.drain(..) {
                t.abort();
            }
        }
    }
}

async fn snapshot_loop(raft: Raft<TypeConfig>, sm: Arc<SmShared>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = sm.want_snapshot.notified() => {
                if raft.trigger().snapshot().await.is_err() {
                    return;
                }
            }
            _ = stop.changed() => return,
        }
    }
}

/// Several voters: whenever this node becomes the leader, run [`MetadataQuorum::after_election`].
async fn leader_watch(quorum: Weak<MetadataQuorum>, mut stop: watch::Receiver<bool>) {
    let Some(mut metrics) = quorum.upgrade().map(|q| q.raft.metrics()) else {
        return;
    };
    let mut led_term = None;
    loop {
        let (leading, term) = {
            let m = metrics.borrow_and_update();
            (
                m.state == ServerState::Leader && m.current_leader == Some(m.id),
                m.current_term,
            )
        };
        if leading && led_term != Some(term) {
            let Some(q) = quorum.upgrade() else { return };
            match q.after_election().await {
                Ok(()) => led_term = Some(term),
                Err(e) => {
                    tracing::warn!(error = %e, "metadata quorum: bootstrap after election failed")
                }
            }
        }
        tokio::select! {
            r = metrics.changed() => if r.is_err() { return },
            _ = stop.changed() => return,
        }
    }
}

/// Runs elections among several voters: after an election timeout without a leader,
/// a pre-vote; with a majority of yeses, a real election (see `prevote`).
async fn election_loop(
    quorum: Weak<MetadataQuorum>,
    timer: Arc<ElectionTimer>,
    cluster_id: String,
    tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
    mut stop: watch::Receiver<bool>,
) {
    // Clients of the current voters, kept while the voter set is the same.
    let mut peers: Vec<RpcClient> = Vec::new();
    let mut peers_of: BTreeMap<u64, BasicNode> = BTreeMap::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(timer.next_wait()) => {}
            _ = stop.changed() => return,
        }
        let Some(q) = quorum.upgrade() else { return };
        if q.is_leader() {
            timer.heard_from_leader();
            continue;
        }
        if !timer.expired() {
            continue;
        }
        // Only a voter stands (a joining controller, or one removed, waits for the
        // leader); its peers are the voters in the log now.
        let voters = q.voter_nodes();
        if !voters.contains_key(&(q.node_id as u64)) {
            timer.heard_from_leader();
            continue;
        }
        if voters != peers_of {
            peers = voters
                .iter()
                .filter(|(&id, _)| id != q.node_id as u64)
                .map(|(_, n)| {
                    RpcClient::new(n.addr.clone(), cluster_id.clone(), q.node_id, tls.clone())
                })
                .collect();
            peers_of = voters;
        }
        let term = q.raft.metrics().borrow().current_term + 1;
        let req = PreVoteRequest {
            term,
            last_log_id: q.log.last_log_id(),
        };
        let voters = peers.len() + 1;
        let majority = voters / 2 + 1;
        // Peers answer within half an election timeout, or count as a no.
        let ttl = timer.timeout_min() / 2;
        let mut asks: futures::stream::FuturesUnordered<_> = peers
            .iter()
            .map(|client| {
                let req = Request::PreVote(req.clone());
                async move {
                    matches!(
                        client.call(req, &[], ttl).await,
                        Ok((Reply::PreVote(true), _))
                    )
                }
            })
            .collect();
        let mut yes = 1;
        while yes < majority {
            match asks.next().await {
                Some(true) => yes += 1,
                Some(false) => {}
                None => break,
            }
        }
        drop(asks);
        // Meanwhile a leader may have spoken, or this voter voted for another: the
        // pre-vote is stale then.
        let still = timer.expired() && q.raft.metrics().borrow().current_term + 1 == term;
        if yes >= majority && still {
            tracing::info!(
                term,
                votes = yes,
                "metadata quorum: pre-vote won; standing for election"
            );
            // The election gets a full timeout before this voter stands again.
            timer.heard_from_leader();
            if q.raft.trigger().elect().await.is_err() {
                return;
            }
        } else {
            tracing::debug!(term, votes = yes, "metadata quorum: pre-vote lost");
        }
    }
}
