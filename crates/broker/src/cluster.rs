//! This node's place in the cluster: the metadata it follows, the controller it asks,
//! and its registration.
//!
//! - A node with the controller role runs a voter of the metadata quorum
//!   ([`MetadataQuorum`]) and a [`QuorumController`] that acts while it is the leader; a
//!   broker-only node follows the committed metadata log ([`MetadataFollower`]).
//! - Every metadata write is a [`ControllerRequest`] sent to the active controller: run
//!   in place when that is this node, otherwise over the quorum's RPC to the leader
//!   (retried on NOT_CONTROLLER until a deadline). The answer is the offset that holds
//!   the change; the caller then waits until this broker has *applied* that offset, so a
//!   client that created a topic can produce to it on the same broker at once.
//! - The broker registers (BrokerRegistration) when it starts serving, heartbeats every
//!   `broker.heartbeat.interval.ms`, and is fenced by the controller when it misses
//!   `broker.session.timeout.ms`. It starts fenced and is unfenced once it has applied
//!   the metadata up to its own registration.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use gregor_metadata::active::{
    ControllerFailure, ControllerRpc, ControllerRpcReply, Heartbeat, LeaderBalance,
    LifecycleConfig, QuorumController, QuorumInfo, Registration, RpcService,
};
use gregor_metadata::quorum::{MetadataFollower, MetadataQuorum, QuorumConfig, RpcClient};
use gregor_metadata::{BrokerEndpoint, ControllerRequest, MetadataImage};
use tokio::sync::watch;

use crate::config::BrokerConfig;

/// How long a metadata write may take, retries on NOT_CONTROLLER included.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// One RPC to a controller.
const RPC_TIMEOUT: Duration = Duration::from_secs(10);
/// Back-off between attempts while there is no controller to ask.
const RETRY_BACKOFF: Duration = Duration::from_millis(100);

/// How one attempt of a controller call went.
enum Answer<T> {
    Done(T),
    /// Not the active controller; the leader, if it named one.
    NotController(Option<i32>),
    Unavailable(String),
    Malformed(String),
}

enum Source {
    Voter {
        quorum: Arc<MetadataQuorum>,
        controller: Arc<QuorumController>,
    },
    Follower(Arc<MetadataFollower>),
}

pub struct ClusterLink {
    node_id: i32,
    cluster_id: String,
    voters: BTreeMap<i32, String>,
    /// The controller listener's TLS client side, when it is SSL.
    rpc_tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
    source: Source,
    clients: Mutex<HashMap<i32, RpcClient>>,
    /// The newest metadata offset this broker has applied to its partitions.
    applied: watch::Sender<i64>,
    broker_epoch: AtomicI64,
    /// The epoch in the last process's clean-shutdown marker, -1 if none (see
    /// `Registration::previous_broker_epoch`).
    previous_broker_epoch: i64,
    /// True until the controller unfences this broker (and again when it fences it).
    fenced: watch::Sender<bool>,
    incarnation: uuid::Uuid,
    /// Set by a controlled shutdown: the heartbeat loop sends nothing more, so a routine
    /// heartbeat cannot unfence the broker the controller has just fenced for its stop.
    leaving: std::sync::atomic::AtomicBool,
    /// Partitions this broker can no longer host (their log dir failed), sent with every
    /// heartbeat; a change sends one at once.
    offline: watch::Sender<Vec<(uuid::Uuid, i32)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl ClusterLink {
    /// Starts this node's part of the metadata quorum (or its follower).
    pub async fn open(
        config: &BrokerConfig,
        cluster_id: String,
        clean_shutdown: bool,
        previous_broker_epoch: i64,
    ) -> Result<Arc<Self>, crate::broker::StartError> {
        let c = &config.cluster;
        let tls = match &config.controller_tls {
            None => gregor_metadata::quorum::RpcTls::default(),
            Some(settings) => {
                let fail = |source| crate::broker::StartError::Tls {
                    listener: "the controller listener".into(),
                    source,
                };
                gregor_metadata::quorum::RpcTls {
                    client: Some(settings.client_config().map_err(fail)?),
                    server: Some(settings.server_config().map_err(fail)?),
                }
            }
        };
        let source = if c.controller {
            let listener = match (c.voters.is_empty(), c.controller_listener) {
                (false, Some(addr)) => {
                    Some(tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                        crate::broker::StartError::Cluster(format!(
                            "cannot bind the controller listener {addr}: {e}"
                        ))
                    })?)
                }
                _ => None,
            };
            let service = Arc::new(RpcService(OnceLock::new()));
            let quorum = MetadataQuorum::start(
                QuorumConfig {
                    node_id: config.node_id,
                    voters: c.voters.clone(),
                    data_dir: config.data_dir.clone(),
                    cluster_id: cluster_id.clone(),
                    log: config.metadata_log,
                    election_timeout: Duration::from_millis(c.election_timeout_ms),
                    heartbeat_interval: Duration::from_millis((c.election_timeout_ms / 5).max(20)),
                    clean_shutdown,
                    tls: tls.clone(),
                    default_min_insync_replicas: config
                        .get("min.insync.replicas")
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(1),
                },
                listener,
                service.clone(),
            )
            .await
            .map_err(|e| crate::broker::StartError::Cluster(e.to_string()))?;
            let controller = QuorumController::new(
                quorum.clone(),
                LifecycleConfig {
                    session_timeout: Duration::from_millis(c.session_timeout_ms),
                    leader_balance: c.leader_balance.map(|(secs, percent)| LeaderBalance {
                        interval: Duration::from_secs(secs),
                        max_imbalance_percent: percent,
                    }),
                },
            );
            let _ = service.0.set(controller.clone());
            Source::Voter { quorum, controller }
        } else {
            let follower = MetadataFollower::start(
                config.node_id,
                c.voters.clone(),
                cluster_id.clone(),
                tls.client.clone(),
            )
            .await
            .map_err(|e| crate::broker::StartError::Cluster(e.to_string()))?;
            Source::Follower(follower)
        };
        Ok(Arc::new(Self {
            node_id: config.node_id,
            cluster_id,
            voters: c.voters.clone(),
            rpc_tls: tls.client.clone(),
            source,
            clients: Mutex::new(HashMap::new()),
            applied: watch::Sender::new(-1),
            broker_epoch: AtomicI64::new(-1),
            previous_broker_epoch,
            fenced: watch::Sender::new(true),
            incarnation: uuid::Uuid::new_v4(),
            leaving: std::sync::atomic::AtomicBool::new(false),
            offline: watch::Sender::new(Vec::new()),
        }))
    }

    /// Sets the partitions this broker can no longer host (sorted), which the next
    /// heartbeat (sent at once on a change) tells the controller.
    pub fn report_offline(&self, partitions: Vec<(uuid::Uuid, i32)>) {
        self.offline.send_if_modified(|cur| {
            if *cur == partitions {
                return false;
            }
            tracing::warn!(
                partitions = partitions.len(),
                "reporting partitions in offline log directories to the controller"
            );
            *cur = partitions;
            true
        });
    }

    /// The newest committed metadata this node knows.
    pub fn image(&self) -> Arc<MetadataImage> {
        match &self.source {
            Source::Voter { quorum, .. } => quorum.image(),
            Source::Follower(f) => f.image(),
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        match &self.source {
            Source::Voter { quorum, .. } => quorum.subscribe(),
            Source::Follower(f) => f.subscribe(),
        }
    }

    /// The active controller, as this node knows it.
    pub fn controller_id(&self) -> Option<i32> {
        match &self.source {
            Source::Voter { quorum, .. } => quorum.leader(),
            Source::Follower(f) => f.leader(),
        }
    }

    pub fn broker_epoch(&self) -> i64 {
        self.broker_epoch.load(Ordering::Acquire)
    }

    pub fn is_fenced(&self) -> bool {
        *self.fenced.borrow()
    }

    /// Records that the broker has applied the image at `offset`.
    pub fn set_applied(&self, offset: i64) {
        self.applied.send_if_modified(|a| {
            let newer = offset > *a;
            if newer {
                *a = offset;
            }
            newer
        });
    }

    pub fn applied(&self) -> i64 {
        *self.applied.borrow()
    }

    /// Waits until this broker has applied the metadata at `offset`.
    pub async fn wait_applied(&self, offset: i64, timeout: Duration) -> bool {
        let mut rx = self.applied.subscribe();
        tokio::time::timeout(timeout, rx.wait_for(|&a| a >= offset))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    fn client(&self, id: i32) -> Option<RpcClient> {
        let addr = self.voters.get(&id)?;
        Some(
            lock(&self.clients)
                .entry(id)
                .or_insert_with(|| {
                    RpcClient::new(
                        addr.clone(),
                        self.cluster_id.clone(),
                        self.node_id,
                        self.rpc_tls.clone(),
                    )
                })
                .clone(),
        )
    }

    /// Sends `rpc` to the active controller: in place when that is this node, else over
    /// the RPC to the leader; retried (with the leader named in a NOT_CONTROLLER answer,
    /// or each voter in turn) until `timeout`.
    pub async fn call(
        &self,
        rpc: ControllerRpc,
        timeout: Duration,
    ) -> Result<ControllerRpcReply, ControllerFailure> {
        let body =
            serde_json::to_vec(&rpc).map_err(|e| ControllerFailure::Storage(e.to_string()))?;
        let classify = |reply: ControllerRpcReply| match reply {
            ControllerRpcReply::Failed(ControllerFailure::NotController { leader }) => {
                Answer::NotController(leader)
            }
            ControllerRpcReply::Failed(ControllerFailure::Unavailable(m)) => Answer::Unavailable(m),
            other => Answer::Done(other),
        };
        self.exchange(
            timeout,
            body,
            |c| {
                let rpc = rpc.clone();
                // In place, only NOT_CONTROLLER is retried elsewhere; any other answer,
                // a failure included, is the caller's.
                async move {
                    match c.serve(rpc).await {
                        ControllerRpcReply::Failed(ControllerFailure::NotController { leader }) => {
                            Answer::NotController(leader)
                        }
                        other => Answer::Done(other),
                    }
                }
            },
            |bytes| match serde_json::from_slice::<ControllerRpcReply>(&bytes) {
                Ok(reply) => classify(reply),
                Err(e) => Answer::Malformed(format!("malformed controller answer: {e}")),
            },
        )
        .await
    }

    /// Sends a Kafka request to the active controller (AlterPartition; see
    /// [`gregor_metadata::kafka_apis`]) as [`Self::call`] sends its requests, and returns
    /// the decoded response. A top-level NOT_CONTROLLER answer is retried with another
    /// controller; `not_controller` reads it from the response.
    pub async fn call_kafka<R: gregor_protocol::kp::protocol::Request>(
        &self,
        req: &R,
        version: i16,
        not_controller: fn(&R::Response) -> bool,
        timeout: Duration,
    ) -> Result<R::Response, ControllerFailure> {
        use gregor_metadata::kafka_apis;
        let client_id = format!("broker-{}", self.node_id);
        let payload = kafka_apis::encode_request(req, version, 0, &client_id)
            .map_err(|e| ControllerFailure::Storage(e.to_string()))?;
        let read = move |bytes: Vec<u8>| match kafka_apis::decode_response::<R>(bytes, version) {
            Ok(r) if not_controller(&r) => Answer::NotController(None),
            Ok(r) => Answer::Done(r),
            Err(e) => Answer::Malformed(e.to_string()),
        };
        let local_payload = payload.clone();
        self.exchange(
            timeout,
            payload,
            move |c| {
                let p = local_payload.clone();
                async move { read(c.serve_kafka(p).await) }
            },
            read,
        )
        .await
    }

    /// The retry loop of [`Self::call`] and [`Self::call_kafka`]: `local` asks this
    /// node's controller in place, `read` reads a remote answer to `payload`.
    async fn exchange<T, L, LF, Rd>(
        &self,
        timeout: Duration,
        payload: Vec<u8>,
        local: L,
        read: Rd,
    ) -> Result<T, ControllerFailure>
    where
        L: Fn(Arc<QuorumController>) -> LF,
        LF: std::future::Future<Output = Answer<T>>,
        Rd: Fn(Vec<u8>) -> Answer<T>,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut hint: Option<i32> = None;
        let mut turn = 0usize;
        let mut last = ControllerFailure::Unavailable("no controller answered".into());
        loop {
            if let Source::Voter { quorum, controller } = &self.source {
                if quorum.is_leader() {
                    match local(controller.clone()).await {
                        Answer::Done(t) => return Ok(t),
                        Answer::NotController(leader) => hint = leader,
                        Answer::Unavailable(m) => last = ControllerFailure::Unavailable(m),
                        Answer::Malformed(m) => last = ControllerFailure::Storage(m),
                    }
                }
            }
            let target = hint
                .take()
                .or_else(|| self.controller_id())
                .filter(|&id| id != self.node_id || !matches!(self.source, Source::Voter { .. }));
            let target = target.or_else(|| {
                let ids: Vec<i32> = self
                    .voters
                    .keys()
                    .copied()
                    .filter(|&id| id != self.node_id)
                    .collect();
                turn += 1;
                (!ids.is_empty()).then(|| ids[turn % ids.len()])
            });
            if let Some(client) = target.and_then(|id| self.client(id)) {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                match client
                    .call_app(payload.clone(), left.min(RPC_TIMEOUT))
                    .await
                {
                    Ok(bytes) => match read(bytes) {
                        Answer::Done(t) => return Ok(t),
                        Answer::NotController(leader) => {
                            hint = leader.filter(|&l| Some(l) != target);
                            last = ControllerFailure::NotController { leader };
                        }
                        Answer::Unavailable(m) => last = ControllerFailure::Unavailable(m),
                        Answer::Malformed(m) => last = ControllerFailure::Storage(m),
                    },
                    Err(e) => last = ControllerFailure::Unavailable(e.to_string()),
                }
            }
            if tokio::time::Instant::now() + RETRY_BACKOFF >= deadline {
                return Err(last);
            }
            if hint.is_none() {
                tokio::time::sleep(RETRY_BACKOFF).await;
            }
        }
    }

    /// Commits a metadata change through the active controller and waits until this
    /// broker has applied it; returns the image that includes it.
    pub async fn commit(
        &self,
        req: ControllerRequest,
    ) -> Result<Arc<MetadataImage>, ControllerFailure> {
        Ok(self.commit_removing_acls(req).await?.0)
    }

    /// [`Self::commit`], also returning the ACLs the request removed (DeleteAcls).
    pub async fn commit_removing_acls(
        &self,
        req: ControllerRequest,
    ) -> Result<(Arc<MetadataImage>, Vec<gregor_security::acl::AclBinding>), ControllerFailure>
    {
        match self
            .call(ControllerRpc::Request(req), WRITE_TIMEOUT)
            .await?
        {
            ControllerRpcReply::Committed {
                offset,
                removed_acls,
                ..
            } => {
                if !self.wait_applied(offset, WRITE_TIMEOUT).await {
                    return Err(ControllerFailure::Unavailable(format!(
                        "metadata offset {offset} was committed but not applied here in time"
                    )));
                }
                Ok((self.image(), removed_acls))
            }
            ControllerRpcReply::Failed(e) => Err(e),
            other => Err(ControllerFailure::Storage(format!(
                "unexpected controller answer {other:?}"
            ))),
        }
    }

    /// Reserves a block of producer ids; returns the block's end (it starts
    /// `PRODUCER_ID_BLOCK` below).
    pub async fn allocate_producer_ids(&self) -> Result<i64, ControllerFailure> {
        match self
            .call(
                ControllerRpc::Request(ControllerRequest::AllocateProducerIds),
                WRITE_TIMEOUT,
            )
            .await?
        {
            ControllerRpcReply::Committed {
                next_producer_id, ..
            } => Ok(next_producer_id),
            ControllerRpcReply::Failed(e) => Err(e),
            other => Err(ControllerFailure::Storage(format!(
                "unexpected controller answer {other:?}"
            ))),
        }
    }

    /// DescribeQuorum, from the active controller.
    pub async fn describe_quorum(&self) -> Result<QuorumInfo, ControllerFailure> {
        match self
            .call(ControllerRpc::DescribeQuorum, RPC_TIMEOUT)
            .await?
        {
            ControllerRpcReply::Quorum(q) => Ok(q),
            ControllerRpcReply::Failed(e) => Err(e),
            other => Err(ControllerFailure::Storage(format!(
                "unexpected controller answer {other:?}"
            ))),
        }
    }

    /// AddRaftVoter / RemoveRaftVoter (KIP-853), on the active controller. A voter is
    /// added only once it has caught up with the metadata log, so this can take a while.
    pub async fn change_voters(&self, rpc: ControllerRpc) -> Result<(), ControllerFailure> {
        match self.call(rpc, WRITE_TIMEOUT).await? {
            ControllerRpcReply::VotersChanged => Ok(()),
            ControllerRpcReply::Failed(e) => Err(e),
            other => Err(ControllerFailure::Storage(format!(
                "unexpected controller answer {other:?}"
            ))),
        }
    }

    /// Registers this broker, then heartbeats until it is unfenced (or `timeout`). The
    /// heartbeats go on in a task until `stop` fires.
    pub async fn join(
        self: &Arc<Self>,
        endpoints: Vec<BrokerEndpoint>,
        rack: Option<String>,
        heartbeat_interval: Duration,
        timeout: Duration,
        stop: watch::Receiver<bool>,
    ) -> Result<(), ControllerFailure> {
        let registration = Registration {
            broker_id: self.node_id,
            incarnation_id: self.incarnation,
            endpoints,
            rack,
            previous_broker_epoch: self.previous_broker_epoch,
        };
        // A restart right after a kill finds the old process's session still live at
        // the controller (DUPLICATE_BROKER_REGISTRATION): retried until it expires, as
        // Kafka's broker does.
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            match self.register(&registration, left).await {
                Ok(_) => break,
                Err(ControllerFailure::DuplicateBrokerRegistration(id))
                    if tokio::time::Instant::now() + heartbeat_interval < deadline =>
                {
                    tracing::info!(
                        broker = id,
                        "the previous process's session is still live; registering again shortly"
                    );
                    tokio::time::sleep(heartbeat_interval).await;
                }
                Err(e) => return Err(e),
            }
        }
        let unfenced = self.fenced_changes();
        let link = self.clone();
        tokio::spawn(link.heartbeat_loop(registration, heartbeat_interval, stop));
        let mut rx = unfenced;
        let done = tokio::time::timeout(timeout, rx.wait_for(|&fenced| !fenced))
            .await
            .is_ok_and(|r| r.is_ok());
        if done {
            self.wait_unfence_applied(deadline).await;
        }
        match done {
            true => Ok(()),
            false => Err(ControllerFailure::Unavailable(format!(
                "broker {} was not unfenced within {timeout:?}",
                self.node_id
            ))),
        }
    }

    /// Once unfenced: waits (until `deadline`) until this broker has applied the
    /// metadata that unfenced it, which also hands it the partitions it leads again
    /// (with eligible leader replicas, every partition a clean stop left leaderless), so
    /// the broker is not announced ready while those still look leaderless here.
    async fn wait_unfence_applied(&self, deadline: tokio::time::Instant) {
        let me = self.node_id;
        let mut images = self.subscribe();
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let unfenced = |img: &Arc<MetadataImage>| img.brokers.get(&me).is_some_and(|b| !b.fenced);
        let offset = match tokio::time::timeout(left, images.wait_for(unfenced)).await {
            Ok(Ok(img)) => img.offset,
            _ => return,
        };
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        if !self.wait_applied(offset, left).await {
            tracing::warn!(
                offset,
                "the metadata that unfenced this broker is not applied yet"
            );
        }
    }

    fn fenced_changes(&self) -> watch::Receiver<bool> {
        self.fenced.subscribe()
    }

    async fn register(
        &self,
        reg: &Registration,
        timeout: Duration,
    ) -> Result<i64, ControllerFailure> {
        match self
            .call(ControllerRpc::Register(reg.clone()), timeout)
            .await?
        {
            ControllerRpcReply::Registered { broker_epoch } => {
                self.broker_epoch.store(broker_epoch, Ordering::Release);
                tracing::info!(
                    node = self.node_id,
                    broker_epoch,
                    "registered with the controller"
                );
                Ok(broker_epoch)
            }
            ControllerRpcReply::Failed(e) => Err(e),
            other => Err(ControllerFailure::Storage(format!(
                "unexpected controller answer {other:?}"
            ))),
        }
    }

    async fn heartbeat_loop(
        self: Arc<Self>,
        reg: Registration,
        interval: Duration,
        mut stop: watch::Receiver<bool>,
    ) {
        let mut applied = self.applied.subscribe();
        let mut offline = self.offline.subscribe();
        loop {
            if self.leaving.load(Ordering::Acquire) {
                let _ = stop.wait_for(|s| *s).await;
                return;
            }
            let hb = Heartbeat {
                broker_id: self.node_id,
                broker_epoch: self.broker_epoch(),
                metadata_offset: self.applied(),
                want_fence: false,
                want_shut_down: false,
                offline_partitions: offline.borrow_and_update().clone(),
            };
            let fenced_before = self.is_fenced();
            match self.call(ControllerRpc::Heartbeat(hb), interval).await {
                Ok(ControllerRpcReply::Heartbeat(r)) => self.set_fenced(r.is_fenced),
                Ok(ControllerRpcReply::Failed(
                    ControllerFailure::StaleBrokerEpoch(_)
                    | ControllerFailure::BrokerIdNotRegistered(_),
                )) => {
                    // Replaced or unknown (a controller that lost our registration):
                    // register again; the new epoch starts fenced.
                    self.set_fenced(true);
                    if let Err(e) = self.register(&reg, RPC_TIMEOUT).await {
                        tracing::warn!(error = %e, "cannot register again with the controller");
                    }
                }
                Ok(other) => tracing::warn!(reply = ?other, "unexpected heartbeat answer"),
                Err(e) => tracing::warn!(error = %e, "heartbeat failed"),
            }
            // A fenced broker that is catching up heartbeats as soon as it applied more,
            // so it is unfenced without waiting a whole interval.
            let wait_for_progress = fenced_before && self.is_fenced();
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                r = applied.changed(), if wait_for_progress => { if r.is_err() { return; } }
                r = offline.changed() => { if r.is_err() { return; } }
                _ = stop.changed() => return,
            }
            if *stop.borrow() {
                return;
            }
        }
    }

    fn set_fenced(&self, fenced: bool) {
        if self.fenced.send_replace(fenced) != fenced {
            tracing::info!(node = self.node_id, fenced, "fencing state changed");
        }
    }

    /// A clean stop: tells the controller, which moves this broker's leaderships to
    /// other ISR members and ends its session (KIP-631's controlled shutdown, in one
    /// step). Best effort: without an answer in `timeout`, the session expires instead.
    pub async fn controlled_shutdown(&self, timeout: Duration) {
        let epoch = self.broker_epoch();
        if epoch < 0 {
            return;
        }
        self.leaving.store(true, Ordering::Release);
        let hb = Heartbeat {
            broker_id: self.node_id,
            broker_epoch: epoch,
            metadata_offset: self.applied(),
            want_fence: true,
            want_shut_down: true,
            offline_partitions: self.offline.borrow().clone(),
        };
        match self.call(ControllerRpc::Heartbeat(hb), timeout).await {
            Ok(ControllerRpcReply::Heartbeat(r)) if r.should_shut_down => {
                tracing::info!(node = self.node_id, "controlled shutdown done")
            }
            Ok(other) => tracing::warn!(reply = ?other, "unexpected controlled shutdown answer"),
            Err(e) => {
                tracing::warn!(error = %e, "controlled shutdown failed; the session will expire")
            }
        }
    }

    pub async fn shutdown(&self) {
        match &self.source {
            Source::Voter { quorum, .. } => quorum.shutdown().await,
            Source::Follower(f) => f.shutdown().await,
        }
    }
}

/// A live broker as clients see it: id, host, port, rack.
pub struct LiveBroker {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

/// The unfenced brokers with their endpoints on `listener`, in id order (Metadata and
/// DescribeCluster list exactly these, as Kafka lists its alive brokers; a broker
/// without that listener is left out, as in Kafka).
pub fn live_brokers(image: &MetadataImage, listener: &str) -> Vec<LiveBroker> {
    image
        .live_brokers()
        .into_iter()
        .filter_map(|b| {
            let e = endpoint_on(&b.endpoints, listener)?;
            Some(LiveBroker {
                id: b.id,
                host: e.host.clone(),
                port: i32::from(e.port),
                rack: b.rack.clone(),
            })
        })
        .collect()
}

/// A broker's endpoint on the listener named `listener`.
pub fn endpoint_on<'a>(
    endpoints: &'a [gregor_metadata::BrokerEndpoint],
    listener: &str,
) -> Option<&'a gregor_metadata::BrokerEndpoint> {
    endpoints.iter().find(|e| e.name == listener)
}

/// Replicas of partition `index` of topic `topic_id` that cannot serve: not
/// registered, fenced, or with the partition in a failed log dir.
pub fn offline_replicas(
    image: &MetadataImage,
    topic_id: uuid::Uuid,
    index: i32,
    replicas: &[i32],
) -> Vec<i32> {
    replicas
        .iter()
        .copied()
        .filter(|r| {
            image
                .brokers
                .get(r)
                .is_none_or(|b| b.fenced || b.offline_partitions.contains(&(topic_id, index)))
        })
        .collect()
}

/// The controller id clients are told: this broker. Clients cannot reach the
/// controllers (they speak only the quorum's RPC), so, as KRaft brokers do, a broker
/// names a live broker, which forwards what it cannot do itself. Naming this one
/// (rather than the active controller) means a client whose admin requests go to the
/// "controller" follows the broker it already talks to, and never waits on a dead
/// controller until its next metadata refresh.
pub fn controller_id_for_clients(_link: &ClusterLink, _image: &MetadataImage, me: i32) -> i32 {
    me
}
