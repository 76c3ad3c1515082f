//! The broker's shared state and its lifecycle: open the data directory, replay the
//! metadata log, open the partitions' logs; on shutdown flush everything and leave the
//! clean-shutdown marker that lets the next start skip recovery.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::Arc;

use gregor_metadata::active::ControllerFailure;
use gregor_metadata::{ControllerRequest, MetadataError, MetadataImage};

use crate::config::BrokerConfig;
use crate::fetch_session::FetchSessionCache;
use crate::group::GroupCoordinator;
use crate::replica_manager::ReplicaManager;

/// Kafka's name for the marker a clean shutdown leaves in each log directory.
pub const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";
const META_PROPERTIES: &str = "meta.properties";
const LOCK_FILE: &str = ".lock";

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("data directory {dir}: {source}")]
    Io { dir: String, source: std::io::Error },
    #[error("data directory {0} is in use by another broker")]
    Locked(String),
    #[error("{0}")]
    MetaProperties(String),
    #[error("metadata: {0}")]
    Metadata(#[from] MetadataError),
    #[error("logs: {0}")]
    Log(#[from] gregor_storage::LogError),
    #[error("log.dirs: {0}")]
    LogDirs(#[from] crate::log_dirs::LogDirError),
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("cluster: {0}")]
    Cluster(String),
    #[error("metrics: {0}")]
    Metrics(#[from] crate::metrics::MetricsError),
    #[error("listener {listener}: {source}")]
    Tls {
        listener: String,
        source: gregor_security::tls::TlsError,
    },
}

pub struct Broker {
    pub config: BrokerConfig,
    pub cluster_id: String,
    /// The metadata this node follows and the controller it asks (see `cluster`).
    pub metadata: Arc<crate::cluster::ClusterLink>,
    pub replicas: Arc<ReplicaManager>,
    /// What the coordinators and replication see of this broker (see `host`).
    pub host: Arc<crate::host::Host>,
    /// Followers' fetchers, one per leader broker (see `replication`).
    pub fetchers: crate::replication::fetcher::ReplicaFetchers,
    /// Replication quotas, leader and follower side (see `replication::throttle`).
    pub throttles: Arc<crate::replication::throttle::ReplicationThrottles>,
    /// Client quotas' sensors (see `quota`).
    pub client_quotas: crate::quota::ClientQuotas,
    /// Topics with `confluent.*.schema.validation` checked against the registry.
    pub schemas: crate::schema_validation::SchemaValidation,
    /// How this broker connects to the others' inter-broker listener (TLS, SASL).
    pub inter_broker: Arc<crate::replication::inter_broker::InterBrokerSecurity>,
    pub fetch_sessions: FetchSessionCache,
    pub groups: Arc<GroupCoordinator>,
    pub txns: crate::txn::TxnCoordinator,
    /// Share groups (KIP-932): membership, share-partitions and share sessions.
    pub shares: Arc<crate::share::ShareCoordinator>,
    /// Client telemetry (KIP-714): subscriptions handed out and pushes kept.
    pub telemetry: crate::telemetry::ClientTelemetry,
    /// Prometheus metrics (see `metrics`): counted by dispatch and the produce and
    /// fetch handlers, served on `metrics.listener`.
    pub metrics: Arc<crate::metrics::BrokerMetrics>,
    /// Per client listener (as `config.listeners`): the port clients are told.
    advertised_ports: Vec<AtomicU16>,
    /// Bytes of answers queued on all connections, waiting for their writers (Kafka's
    /// ResponseQueueSize, in bytes), and the most ever queued at once.
    pub response_queue_bytes: AtomicUsize,
    pub response_queue_bytes_max: AtomicUsize,
    joining: tokio::sync::Mutex<()>,
    _dir_lock: File,
}

/// A running controller-only node.
pub struct ControllerNode {
    pub link: Arc<crate::cluster::ClusterLink>,
    pub cluster_id: String,
    pub config: BrokerConfig,
    _dir_lock: File,
}

impl ControllerNode {
    /// Stops the quorum member and leaves the clean-shutdown marker.
    pub async fn shutdown(self) -> Result<(), StartError> {
        self.link.shutdown().await;
        let dir = &self.config.data_dir;
        File::create(dir.join(CLEAN_SHUTDOWN_FILE))
            .and_then(|f| f.sync_all())
            .map_err(io_err(dir))
    }
}

/// The broker epoch a clean-shutdown marker holds (`{"version":0,"broker_epoch":N}`, as
/// Kafka writes it), -1 for an empty marker (a controller-only node's, or an older one).
fn marker_epoch(body: &str) -> i64 {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("broker_epoch").and_then(serde_json::Value::as_i64))
        .unwrap_or(-1)
}

fn io_err(dir: &Path) -> impl Fn(std::io::Error) -> StartError + '_ {
    move |source| StartError::Io {
        dir: dir.display().to_string(),
        source,
    }
}

/// A new cluster id: a random UUID in URL-safe base64 without padding, as Kafka makes them.
pub fn new_cluster_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = *uuid::Uuid::new_v4().as_bytes();
    let mut out = String::with_capacity(22);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(ALPHABET[((acc >> bits) & 63) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((acc << (6 - bits)) & 63) as usize] as char);
    }
    out
}

/// Reads `meta.properties`, or writes it for a new data directory. Returns the cluster id.
/// A configured `cluster.id` must match the directory's (INCONSISTENT_CLUSTER_ID
/// otherwise); a new directory takes it, or makes a new id when it may (a single node).
fn load_meta_properties(
    dir: &Path,
    node_id: i32,
    configured: Option<&str>,
    may_create: bool,
) -> Result<String, StartError> {
    let path = dir.join(META_PROPERTIES);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let props = crate::config::parse_properties(&text);
            let stored: Option<i32> = props.get("node.id").and_then(|v| v.parse().ok());
            if stored.is_some_and(|n| n != node_id) {
                return Err(StartError::MetaProperties(format!(
                    "{} holds node.id {} but this broker is configured with node.id {node_id}",
                    path.display(),
                    stored.unwrap_or_default()
                )));
            }
            let stored = props.get("cluster.id").cloned().ok_or_else(|| {
                StartError::MetaProperties(format!("{} has no cluster.id", path.display()))
            })?;
            if let Some(c) = configured.filter(|c| *c != stored) {
                return Err(StartError::MetaProperties(format!(
                    "INCONSISTENT_CLUSTER_ID: {} belongs to cluster {stored}, but cluster.id is {c}",
                    path.display()
                )));
            }
            Ok(stored)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let cluster_id = match configured {
                Some(c) => c.to_string(),
                None if may_create => new_cluster_id(),
                None => {
                    return Err(StartError::MetaProperties(format!(
                        "{} is a new data directory of a multi-node cluster: set cluster.id (the same on every node; `gregor cluster up` does) to format it",
                        dir.display()
                    )))
                }
            };
            let text = format!(
                "#\n#Written by gregor\nversion=1\ncluster.id={cluster_id}\nnode.id={node_id}\n"
            );
            let tmp = dir.join(format!("{META_PROPERTIES}.tmp"));
            std::fs::write(&tmp, text).map_err(io_err(dir))?;
            File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(io_err(dir))?;
            std::fs::rename(&tmp, &path).map_err(io_err(dir))?;
            Ok(cluster_id)
        }
        Err(e) => Err(io_err(dir)(e)),
    }
}

impl Broker {
    /// Opens the data directory and everything in it, and starts this node's part of the
    /// metadata quorum. Recovery runs on the blocking pool.
    pub async fn open(config: BrokerConfig) -> Result<Arc<Self>, StartError> {
        let (config, lock, cluster_id, (clean, previous_epoch)) =
            tokio::task::spawn_blocking(move || Self::open_dir(config))
                .await
                .map_err(|e| StartError::Cluster(e.to_string()))??;
        let metadata =
            crate::cluster::ClusterLink::open(&config, cluster_id.clone(), clean, previous_epoch)
                .await?;
        tokio::task::spawn_blocking(move || {
            Self::open_logs(config, lock, cluster_id, clean, metadata)
        })
        .await
        .map_err(|e| StartError::Cluster(e.to_string()))?
    }

    /// A controller-only node (`process.roles=controller`): the data directory (locked,
    /// its identity checked) and this node's voter of the metadata quorum; no partitions,
    /// no client listener.
    pub async fn open_controller(config: BrokerConfig) -> Result<ControllerNode, StartError> {
        let (config, lock, cluster_id, (clean, previous_epoch)) =
            tokio::task::spawn_blocking(move || Self::open_dir(config))
                .await
                .map_err(|e| StartError::Cluster(e.to_string()))??;
        let link =
            crate::cluster::ClusterLink::open(&config, cluster_id.clone(), clean, previous_epoch)
                .await?;
        Ok(ControllerNode {
            link,
            cluster_id,
            config,
            _dir_lock: lock,
        })
    }

    /// Locks the data directory and reads its identity, and whether the last process
    /// stopped cleanly (with the broker epoch its marker holds, -1 if none).
    #[allow(clippy::type_complexity)]
    fn open_dir(
        config: BrokerConfig,
    ) -> Result<(BrokerConfig, File, String, (bool, i64)), StartError> {
        crate::handlers::describe_topic_partitions::partition_limit(&config)?;
        let dir = config.data_dir.clone();
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))
            .map_err(io_err(&dir))?;
        if lock.try_lock().is_err() {
            return Err(StartError::Locked(dir.display().to_string()));
        }
        let cluster_id = load_meta_properties(
            &dir,
            config.node_id,
            config.cluster.cluster_id.as_deref(),
            config.cluster.voters.is_empty(),
        )?;
        let marker = dir.join(CLEAN_SHUTDOWN_FILE);
        let clean = marker.exists();
        let previous_epoch = if clean {
            marker_epoch(&std::fs::read_to_string(&marker).unwrap_or_default())
        } else {
            -1
        };
        if clean {
            std::fs::remove_file(&marker).map_err(io_err(&dir))?;
        } else {
            tracing::info!(dir = %dir.display(), "no clean-shutdown marker: recovering unflushed segments");
        }
        // Finish deletions that a crash interrupted.
        for entry in std::fs::read_dir(&dir).map_err(io_err(&dir))? {
            let path = entry.map_err(io_err(&dir))?.path();
            if path.is_dir()
                && path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(gregor_storage::DELETE_SUFFIX))
            {
                std::fs::remove_dir_all(&path).map_err(io_err(&dir))?;
            }
        }
        Ok((config, lock, cluster_id, (clean, previous_epoch)))
    }

    /// Opens the partitions of the current metadata image and the coordinators' state.
    fn open_logs(
        config: BrokerConfig,
        lock: File,
        cluster_id: String,
        clean: bool,
        metadata: Arc<crate::cluster::ClusterLink>,
    ) -> Result<Arc<Self>, StartError> {
        let dir = config.data_dir.clone();
        let telemetry = crate::telemetry::ClientTelemetry::new(
            crate::telemetry::TelemetryConfig::from_broker(&config)?,
        );
        tracing::info!(
            max_open_files = config.max_open_files,
            "segment file budget (log.max.open.files)"
        );
        let log_dirs = Arc::new(crate::log_dirs::LogDirs::open(
            &config.log_dirs,
            &dir,
            config.node_id,
            &cluster_id,
        )?);
        let mut locations = crate::log_dirs::scan(&log_dirs)?;
        let image = metadata.image();
        if let Some(lost) = log_dirs.all().iter().find(|d| !d.is_online()) {
            // A dir is offline from the start: this broker's partitions not found in
            // the online dirs may be in it, so they are offline (not recreated empty
            // elsewhere, which would leave two copies once the dir is repaired).
            for t in image.topics.values() {
                for (&i, p) in &t.partitions {
                    if p.replicas.contains(&config.node_id) {
                        locations.entry((t.name.clone(), i)).or_insert(lost.index);
                    }
                }
            }
        }
        let replicas = Arc::new(ReplicaManager::new(
            config.node_id,
            log_dirs,
            locations,
            clean,
            config.max_open_files,
        ));
        replicas.apply_image(&image, &config)?;
        metadata.report_offline(replicas.offline_dir_partitions());
        metadata.set_applied(image.offset);
        let fetch_sessions = FetchSessionCache::new(config.fetch_session_slots);
        let inter_broker =
            Arc::new(crate::replication::inter_broker::InterBrokerSecurity::from_config(&config)?);
        let throttles = Arc::new(crate::replication::throttle::ReplicationThrottles::default());
        let metrics = Arc::new(crate::metrics::BrokerMetrics::new()?);
        let host = Arc::new(crate::host::Host::new(
            &config,
            metadata.clone(),
            replicas.clone(),
            inter_broker.clone(),
            throttles.clone(),
            metrics.clone(),
        ));
        let groups = Arc::new(GroupCoordinator::new(config.group.clone(), host.clone()));
        groups.load(&replicas);
        let txns = crate::txn::TxnCoordinator::new(
            config.txn.clone(),
            crate::txn::TxnLinks::new(host.clone(), groups.clone()),
        );
        txns.load(&replicas);
        let shares = Arc::new(crate::share::ShareCoordinator::open(
            crate::share::ShareConfig::from_values(&config.values),
            &dir,
            host.clone(),
        ));
        shares.share_state.load(&replicas);
        let advertised_ports = config
            .listeners
            .iter()
            .map(|l| AtomicU16::new(l.advertised_port))
            .collect();
        let client_quotas = crate::quota::ClientQuotas::new(
            config.quota_window,
            config.max_connection_creation_rate,
        );
        let schemas = crate::schema_validation::SchemaValidation::new(
            config.get("confluent.schema.registry.url").unwrap_or(""),
        );
        Ok(Arc::new(Self {
            inter_broker,
            schemas,
            config,
            cluster_id,
            metadata,
            replicas,
            host,
            fetch_sessions,
            groups,
            txns,
            shares,
            telemetry,
            metrics,
            advertised_ports,
            response_queue_bytes: AtomicUsize::new(0),
            response_queue_bytes_max: AtomicUsize::new(0),
            fetchers: Default::default(),
            throttles,
            client_quotas,
            joining: tokio::sync::Mutex::new(()),
            _dir_lock: lock,
        }))
    }

    /// Applies every new metadata image to the partitions, in order, until stopped.
    /// Started once the broker is open; holds the broker weakly.
    pub fn start_publisher(self: &Arc<Self>) {
        self.shares.start();
        self.watch_log_dirs();
        let weak = Arc::downgrade(self);
        let mut images = self.metadata.subscribe();
        let mut stop = self.host.stop_signal();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    r = images.changed() => if r.is_err() { return },
                    _ = stop.changed() => return,
                }
                let image = images.borrow_and_update().clone();
                let Some(broker) = weak.upgrade() else { return };
                let b = broker.clone();
                let img = image.clone();
                let applied =
                    tokio::task::spawn_blocking(move || b.replicas.apply_image(&img, &b.config))
                        .await;
                // Followed partitions fetch from their current leaders.
                broker.fetchers.sync(&broker.host);
                // A transaction coordinator elected here takes over its ids at once.
                let newly_led = broker.txns.newly_led();
                if !newly_led.is_empty() {
                    let b = broker.clone();
                    tokio::spawn(async move { b.txns.take_over(newly_led).await });
                }
                broker
                    .metadata
                    .report_offline(broker.replicas.offline_dir_partitions());
                match applied {
                    Ok(Ok(())) => broker.metadata.set_applied(image.offset),
                    Ok(Err(e)) => {
                        tracing::error!(offset = image.offset, error = %e, "cannot apply metadata to the partitions");
                        // The partitions that opened are served; the offset counts as
                        // applied so writers do not wait for a log that cannot open.
                        broker.metadata.set_applied(image.offset);
                    }
                    Err(e) => tracing::error!(error = %e, "metadata publisher task failed"),
                }
            }
        });
    }

    /// Takes the partitions of a log dir that failed at runtime offline, stops fetching
    /// them, and reports them to the controller (which moves them off this broker).
    fn watch_log_dirs(self: &Arc<Self>) {
        let weak = Arc::downgrade(self);
        let mut failures = self.replicas.log_dirs().failures();
        let mut stop = self.host.stop_signal();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    r = failures.changed() => if r.is_err() { return },
                    _ = stop.changed() => return,
                }
                failures.borrow_and_update();
                let Some(broker) = weak.upgrade() else { return };
                let n = broker.replicas.take_failed_dirs_offline();
                broker.fetchers.sync(&broker.host);
                broker
                    .metadata
                    .report_offline(broker.replicas.offline_dir_partitions());
                tracing::warn!(partitions = n, "log directory failure handled");
            }
        });
    }

    /// Registers with the controller on the bound client port and waits to be unfenced.
    /// Once: `server::run` calls it, and so may a caller that wants to know when the
    /// broker is in the cluster before it serves.
    pub async fn join_cluster(self: &Arc<Self>) -> Result<(), StartError> {
        let _once = self.joining.lock().await;
        if self.metadata.broker_epoch() >= 0 {
            return Ok(());
        }
        self.start_publisher();
        crate::replication::start_isr_expiration(&self.host);
        crate::replication::isr_changes::start(&self.host);
        self.metadata
            .join(
                self.endpoints(),
                self.config.cluster.rack.clone(),
                std::time::Duration::from_millis(self.config.cluster.heartbeat_interval_ms),
                std::time::Duration::from_secs(120),
                self.host.stop_signal(),
            )
            .await
            .map_err(|e| StartError::Cluster(e.to_string()))
    }

    /// Controlled shutdown, the first step of a clean stop, taken while the broker still
    /// serves (Kafka's order): the controller moves this broker's leaderships to other
    /// in-sync replicas and takes it out of the ISRs. Requests in flight are answered
    /// (an acks=all produce once the followers have it, or NOT_LEADER_OR_FOLLOWER once
    /// the leadership moved) instead of being cut off as "possibly persisted".
    ///
    /// Only when another live broker can take over: alone (a single node, or the last
    /// one up) there is nothing to hand off, and the broker stops serving first as
    /// before, so its clients see it go rather than a fenced broker that still answers.
    /// Returns whether it was done (else [`Self::leave_cluster`] does it).
    pub async fn begin_leaving(&self) -> bool {
        let image = self.metadata.image();
        let others = image
            .brokers
            .values()
            .any(|b| b.id != self.config.node_id && !b.fenced && !b.in_controlled_shutdown);
        if others {
            self.controlled_shutdown().await;
        }
        others
    }

    async fn controlled_shutdown(&self) {
        self.metadata
            .controlled_shutdown(std::time::Duration::from_millis(
                self.config.cluster.session_timeout_ms,
            ))
            .await;
    }

    /// Stops the publisher and heartbeats and the quorum (clean shutdown, after the
    /// connections ended); the controlled shutdown first unless
    /// [`Self::begin_leaving`] did it.
    pub async fn leave_cluster(&self, left: bool) {
        if !left {
            self.controlled_shutdown().await;
        }
        self.host.stop();
        self.fetchers.stop();
        self.metadata.shutdown().await;
    }

    /// Flips to true when the broker stops (background tasks end on it).
    pub fn stop_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.host.stop_signal()
    }

    /// The inter-broker listener's advertised port.
    pub fn advertised_port(&self) -> u16 {
        self.advertised_ports
            .first()
            .map_or(0, |p| p.load(Ordering::Relaxed))
    }

    /// Once the inter-broker listener is bound: a configured port of 0 advertises the
    /// real one.
    pub fn set_bound_port(&self, port: u16) {
        if let Some(l) = self.config.listeners.first() {
            self.set_listener_port(&l.name, port);
        }
    }

    /// Once listener `name` is bound: a configured port of 0 advertises the real one.
    pub fn set_listener_port(&self, name: &str, port: u16) {
        for (l, p) in self.config.listeners.iter().zip(&self.advertised_ports) {
            if l.name == name && l.advertised_port == 0 {
                p.store(port, Ordering::Relaxed);
            }
        }
    }

    /// What this broker registers: one endpoint per client listener, the inter-broker
    /// one first.
    pub fn endpoints(&self) -> Vec<gregor_metadata::BrokerEndpoint> {
        self.config
            .listeners
            .iter()
            .zip(&self.advertised_ports)
            .map(|(l, p)| gregor_metadata::BrokerEndpoint {
                name: l.name.clone(),
                host: l.advertised_host.clone(),
                port: p.load(Ordering::Relaxed),
                security_protocol: l.protocol.id(),
            })
            .collect()
    }

    /// Whether the metadata has this partition (wherever it is hosted).
    pub fn partition_exists(&self, topic: &str, partition: i32) -> bool {
        self.metadata
            .image()
            .topic(topic)
            .is_some_and(|t| t.partitions.contains_key(&partition))
    }

    /// Brokers that replicas may be placed on: registered and unfenced.
    pub fn live_brokers(&self) -> Vec<i32> {
        self.metadata
            .image()
            .live_brokers()
            .iter()
            .map(|b| b.id)
            .collect()
    }

    /// The authorizer for a request now: the current image's ACLs with `super.users` and
    /// `allow.everyone.if.no.acl.found` (two reference counts; take one per request).
    pub fn authorizer(&self) -> gregor_security::acl::Authorizer {
        self.metadata.image().authorizer(&self.config.authorizer)
    }

    /// Commits a metadata change through the active controller and waits until this
    /// broker has applied it.
    pub async fn commit_metadata(
        self: &Arc<Self>,
        req: ControllerRequest,
    ) -> Result<Arc<MetadataImage>, ControllerFailure> {
        self.host.commit_metadata(req).await
    }

    /// A controller decision that is either only validated (`validate_only`, against the
    /// current image) or committed and applied. Errors come back as wire code + message.
    pub async fn decide(
        self: &Arc<Self>,
        validate_only: bool,
        req: ControllerRequest,
    ) -> Result<(), (gregor_protocol::kp::ResponseError, String)> {
        if validate_only {
            return req
                .decide(&self.metadata.image())
                .map(|_| ())
                .map_err(|e| (crate::error::controller_error_code(&e), e.to_string()));
        }
        self.commit_metadata(req)
            .await
            .map(|_| ())
            .map_err(|e| crate::error::controller_failure(&e))
    }

    /// Creates an internal topic on first use (see [`crate::host::Host::ensure_internal_topic`]).
    pub async fn ensure_internal_topic(
        self: &Arc<Self>,
        name: &str,
        partitions: i32,
        replication_factor: i16,
    ) -> Result<(), ControllerFailure> {
        self.host
            .ensure_internal_topic(name, partitions, replication_factor)
            .await
    }

    /// A new producer id, unique for the life of the cluster (see
    /// [`crate::host::Host::next_producer_id`]).
    pub async fn next_producer_id(self: &Arc<Self>) -> Result<i64, ControllerFailure> {
        self.host.next_producer_id().await
    }

    /// Dynamic broker config changes for this broker (its id) or the cluster default ("").
    pub async fn alter_broker_configs(
        self: &Arc<Self>,
        name: String,
        ops: Vec<(
            String,
            gregor_metadata::controller::ConfigOp,
            Option<String>,
        )>,
        validate_only: bool,
    ) -> Result<(), (gregor_protocol::kp::ResponseError, String)> {
        self.decide(
            validate_only,
            ControllerRequest::AlterBrokerConfigs { name, ops },
        )
        .await
    }

    /// Flushes every log and the metadata log, then leaves the clean-shutdown marker
    /// with this process's broker epoch (the next registration's previous epoch: the
    /// controller tells a clean stop from a crash by it, KIP-966).
    pub fn shutdown(&self) -> Result<(), StartError> {
        self.replicas.shutdown()?;
        let dir = &self.config.data_dir;
        let marker = dir.join(CLEAN_SHUTDOWN_FILE);
        let body = format!(
            "{{\"version\":0,\"broker_epoch\":{}}}",
            self.metadata.broker_epoch()
        );
        File::create(&marker)
            .and_then(|mut f| {
                std::io::Write::write_all(&mut f, body.as_bytes())?;
                f.sync_all()
            })
            .map_err(io_err(dir))?;
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(dir))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_ids_look_like_kafkas() {
        let id = new_cluster_id();
        assert_eq!(id.len(), 22);
        assert!(id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    }
}
