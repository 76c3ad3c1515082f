//! The broker's shared state and its lifecycle: open the data directory, replay the
//! metadata log, open the partitions' logs; on shutdown flush everything and leave the
//! clean-shutdown marker that lets the next start skip recovery.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU16, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use gregor_metadata::{
    ControllerError, MetadataError, MetadataImage, MetadataRecord, MetadataStore,
};

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
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
}

pub struct Broker {
    pub config: BrokerConfig,
    pub cluster_id: String,
    pub metadata: MetadataStore,
    pub replicas: ReplicaManager,
    pub fetch_sessions: FetchSessionCache,
    pub groups: GroupCoordinator,
    pub txns: crate::txn::TxnCoordinator,
    /// Client telemetry (KIP-714): subscriptions handed out and pushes kept.
    pub telemetry: crate::telemetry::ClientTelemetry,
    advertised_port: AtomicU16,
    /// Bytes of answers queued on all connections, waiting for their writers (Kafka's
    /// ResponseQueueSize, in bytes), and the most ever queued at once.
    pub response_queue_bytes: AtomicUsize,
    pub response_queue_bytes_max: AtomicUsize,
    /// The block of producer ids being handed out: `(next, end)`.
    producer_ids: Mutex<(i64, i64)>,
    /// Serialises metadata commits with applying them, so images apply in order.
    apply_lock: Mutex<()>,
    _dir_lock: File,
}

fn io_err(dir: &Path) -> impl Fn(std::io::Error) -> StartError + '_ {
    move |source| StartError::Io {
        dir: dir.display().to_string(),
        source,
    }
}

/// A new cluster id: a random UUID in URL-safe base64 without padding, as Kafka makes them.
fn new_cluster_id() -> String {
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
fn load_meta_properties(dir: &Path, node_id: i32) -> Result<String, StartError> {
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
            props.get("cluster.id").cloned().ok_or_else(|| {
                StartError::MetaProperties(format!("{} has no cluster.id", path.display()))
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let cluster_id = new_cluster_id();
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
    /// Opens the data directory and everything in it. Blocking (recovery reads logs).
    pub fn open(config: BrokerConfig) -> Result<Arc<Self>, StartError> {
        crate::handlers::describe_topic_partitions::partition_limit(&config)?;
        let telemetry = crate::telemetry::ClientTelemetry::new(
            crate::telemetry::TelemetryConfig::from_broker(&config)?,
        );
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
        let cluster_id = load_meta_properties(&dir, config.node_id)?;
        let marker = dir.join(CLEAN_SHUTDOWN_FILE);
        let clean = marker.exists();
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
        let metadata = MetadataStore::open_with(&dir, clean, config.metadata_log)?;
        tracing::info!(
            max_open_files = config.max_open_files,
            "segment file budget (log.max.open.files)"
        );
        let replicas =
            ReplicaManager::new(config.node_id, dir.clone(), clean, config.max_open_files);
        replicas.apply_image(&metadata.image(), &config)?;
        let fetch_sessions = FetchSessionCache::new(config.fetch_session_slots);
        let groups = GroupCoordinator::new(config.group.clone());
        groups.load(&replicas);
        let txns = crate::txn::TxnCoordinator::new(config.txn.clone());
        txns.load(&replicas);
        let advertised_port = AtomicU16::new(config.advertised_port);
        Ok(Arc::new(Self {
            config,
            cluster_id,
            metadata,
            replicas,
            fetch_sessions,
            groups,
            txns,
            telemetry,
            advertised_port,
            response_queue_bytes: AtomicUsize::new(0),
            response_queue_bytes_max: AtomicUsize::new(0),
            producer_ids: Mutex::new((0, 0)),
            apply_lock: Mutex::new(()),
            _dir_lock: lock,
        }))
    }

    pub fn advertised_port(&self) -> u16 {
        self.advertised_port.load(Ordering::Relaxed)
    }

    /// Once the listener is bound: a configured port of 0 advertises the real one.
    pub fn set_bound_port(&self, port: u16) {
        if self.config.advertised_port == 0 {
            self.advertised_port.store(port, Ordering::Relaxed);
        }
    }

    /// Brokers that replicas may be placed on (this one, until the quorum registers more).
    pub fn live_brokers(&self) -> Vec<i32> {
        vec![self.config.node_id]
    }

    /// Decides, commits and applies a metadata change on the blocking pool (it fsyncs).
    pub async fn commit_metadata<F>(
        self: &Arc<Self>,
        decide: F,
    ) -> Result<Arc<MetadataImage>, MetadataError>
    where
        F: FnOnce(&MetadataImage) -> Result<Vec<MetadataRecord>, ControllerError> + Send + 'static,
    {
        let broker = self.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let _order = broker
                .apply_lock
                .lock()
                .map_err(|_| MetadataError::Corrupt("apply lock poisoned".into()))?;
            let image = broker.metadata.commit_with(decide)?;
            broker.replicas.apply_image(&image, &broker.config)?;
            Ok(image)
        })
        .await;
        match joined {
            Ok(r) => r,
            Err(e) => Err(MetadataError::Io(std::io::Error::other(e.to_string()))),
        }
    }

    /// A controller decision that is either only validated (`validate_only`, against the
    /// current image) or committed and applied. Errors come back as wire code + message.
    pub async fn decide<F>(
        self: &Arc<Self>,
        validate_only: bool,
        decide: F,
    ) -> Result<(), (gregor_protocol::kp::ResponseError, String)>
    where
        F: FnOnce(&MetadataImage) -> Result<Vec<MetadataRecord>, ControllerError> + Send + 'static,
    {
        if validate_only {
            return decide(&self.metadata.image())
                .map(|_| ())
                .map_err(|e| (crate::error::controller_error_code(&e), e.to_string()));
        }
        self.commit_metadata(decide)
            .await
            .map(|_| ())
            .map_err(|e| crate::error::metadata_failure(&e))
    }

    /// Creates an internal topic (`__consumer_offsets`, `__transaction_state`) on first
    /// use: compacted, 100 MiB segments, as Kafka creates them. Already there is fine.
    pub async fn ensure_internal_topic(
        self: &Arc<Self>,
        name: &str,
        partitions: i32,
    ) -> Result<(), MetadataError> {
        if self.replicas.topic(name).is_some() {
            return Ok(());
        }
        let t = gregor_metadata::controller::NewTopic {
            name: name.to_string(),
            num_partitions: partitions,
            replication_factor: 1,
            configs: [
                ("cleanup.policy".to_string(), "compact".to_string()),
                ("segment.bytes".to_string(), "104857600".to_string()),
            ]
            .into(),
        };
        let live = self.live_brokers();
        match self
            .commit_metadata(move |image| {
                gregor_metadata::controller::create_topic(image, &t, &live)
            })
            .await
        {
            Ok(_) | Err(MetadataError::Controller(ControllerError::TopicAlreadyExists(_))) => {
                Ok(())
            }
            Err(e) => {
                tracing::error!(topic = name, error = %e, "cannot create internal topic");
                Err(e)
            }
        }
    }

    /// A new producer id, unique for the life of the cluster: taken from the current
    /// block, or from a new block reserved in the metadata log (no lock is held while
    /// that commits; a racing caller may reserve a block too, and ids are only skipped).
    pub async fn next_producer_id(self: &Arc<Self>) -> Result<i64, MetadataError> {
        let take = |ids: &Mutex<(i64, i64)>| -> Option<i64> {
            let mut g = match ids.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            (g.0 < g.1).then(|| {
                g.0 += 1;
                g.0 - 1
            })
        };
        if let Some(id) = take(&self.producer_ids) {
            return Ok(id);
        }
        let image = self
            .commit_metadata(gregor_metadata::controller::allocate_producer_ids)
            .await?;
        let end = image.next_producer_id;
        let start = end - gregor_metadata::controller::PRODUCER_ID_BLOCK;
        let mut g = match self.producer_ids.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if g.0 >= g.1 {
            *g = (start + 1, end);
            return Ok(start);
        }
        drop(g);
        Ok(start)
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
        if !name.is_empty() && name != self.config.node_id.to_string() {
            return Err((
                gregor_protocol::kp::ResponseError::InvalidRequest,
                format!("Unknown broker {name}"),
            ));
        }
        self.decide(validate_only, move |img| {
            gregor_metadata::controller::alter_broker_configs(img, &name, &ops)
        })
        .await
    }

    /// Flushes every log and the metadata log, then leaves the clean-shutdown marker.
    pub fn shutdown(&self) -> Result<(), StartError> {
        self.replicas.shutdown()?;
        self.metadata.close()?;
        let dir = &self.config.data_dir;
        let marker = dir.join(CLEAN_SHUTDOWN_FILE);
        File::create(&marker)
            .and_then(|f| f.sync_all())
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
