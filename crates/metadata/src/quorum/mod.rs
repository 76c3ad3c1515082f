//! STUB (replaced by the openraft quorum in the merge of wt-raft): the quorum API over
//! the single-voter `MetadataStore`, so the broker side can be written and tested.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::controller::ControllerError;
use crate::image::MetadataImage;
use crate::records::MetadataRecord;
use crate::store::{MetadataLogConfig, MetadataStore};
use crate::MetadataError;

pub struct QuorumConfig {
    pub node_id: i32,
    pub voters: BTreeMap<i32, String>,
    pub data_dir: PathBuf,
    pub cluster_id: String,
    pub log: MetadataLogConfig,
    pub election_timeout: Duration,
    pub heartbeat_interval: Duration,
    pub clean_shutdown: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    #[error("this node is not the active controller (leader: {leader:?})")]
    NotLeader { leader: Option<i32> },
    #[error("the metadata quorum is unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Controller(#[from] ControllerError),
    #[error("cluster id mismatch: ours {ours}, the peer's {theirs}")]
    InconsistentClusterId { ours: String, theirs: String },
    #[error("metadata storage: {0}")]
    Storage(#[from] MetadataError),
    #[error("{0}")]
    Config(String),
}

#[derive(Debug, Clone, Default)]
pub struct ReplicaStatus {
    pub replica_id: i32,
    pub log_end_offset: i64,
    pub last_fetch_timestamp: i64,
    pub last_caught_up_timestamp: i64,
}

#[derive(Debug, Clone, Default)]
pub struct QuorumStatus {
    pub leader_id: i32,
    pub leader_epoch: i32,
    pub high_watermark: i64,
    pub voters: Vec<ReplicaStatus>,
    pub observers: Vec<ReplicaStatus>,
}

pub trait AppHandler: Send + Sync + 'static {
    fn handle(&self, from_node: i32, request: Vec<u8>)
        -> Pin<Box<dyn Future<Output = Vec<u8>> + Send>>;
}

pub struct MetadataQuorum {
    store: MetadataStore,
    node_id: i32,
    tx: tokio::sync::watch::Sender<Arc<MetadataImage>>,
    lock: tokio::sync::Mutex<()>,
}

impl MetadataQuorum {
    pub async fn start(
        cfg: QuorumConfig,
        _listener: Option<tokio::net::TcpListener>,
        _app: Arc<dyn AppHandler>,
    ) -> Result<Arc<Self>, QuorumError> {
        let store = MetadataStore::open_with(&cfg.data_dir, cfg.clean_shutdown, cfg.log)?;
        let tx = tokio::sync::watch::Sender::new(store.image());
        Ok(Arc::new(Self {
            store,
            node_id: cfg.node_id,
            tx,
            lock: tokio::sync::Mutex::new(()),
        }))
    }
    pub fn image(&self) -> Arc<MetadataImage> {
        self.store.image()
    }
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Arc<MetadataImage>> {
        self.tx.subscribe()
    }
    pub fn leader(&self) -> Option<i32> {
        Some(self.node_id)
    }
    pub fn is_leader(&self) -> bool {
        true
    }
    pub async fn commit<F>(&self, decide: F) -> Result<Arc<MetadataImage>, QuorumError>
    where
        F: Fn(&MetadataImage) -> Result<Vec<MetadataRecord>, ControllerError> + Send + Sync,
    {
        let _g = self.lock.lock().await;
        let img = self.store.commit_with(decide)
            .map_err(|e| match e {
                MetadataError::Controller(c) => QuorumError::Controller(c),
                e => QuorumError::Storage(e),
            })?;
        self.tx.send_replace(img.clone());
        Ok(img)
    }
    pub fn status(&self) -> QuorumStatus {
        let img = self.image();
        QuorumStatus {
            leader_id: self.node_id,
            leader_epoch: 1,
            high_watermark: img.offset + 1,
            voters: vec![ReplicaStatus {
                replica_id: self.node_id,
                log_end_offset: img.offset + 1,
                last_fetch_timestamp: -1,
                last_caught_up_timestamp: -1,
            }],
            observers: vec![],
        }
    }
    pub async fn shutdown(&self) {
        let _ = self.store.close();
    }
}

#[derive(Clone)]
pub struct RpcClient {
    _addr: String,
}

impl RpcClient {
    pub fn new(addr: String, _cluster_id: String, _my_node_id: i32) -> Self {
        Self { _addr: addr }
    }
    pub async fn call_app(
        &self,
        _request: Vec<u8>,
        _timeout: Duration,
    ) -> Result<Vec<u8>, QuorumError> {
        Err(QuorumError::Unavailable("stub".into()))
    }
}

pub struct MetadataFollower {
    tx: tokio::sync::watch::Sender<Arc<MetadataImage>>,
}

impl MetadataFollower {
    pub async fn start(
        _node_id: i32,
        _voters: BTreeMap<i32, String>,
        _cluster_id: String,
    ) -> Result<Arc<Self>, QuorumError> {
        Err(QuorumError::Unavailable("stub".into()))
    }
    pub fn image(&self) -> Arc<MetadataImage> {
        self.tx.borrow().clone()
    }
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Arc<MetadataImage>> {
        self.tx.subscribe()
    }
    pub fn leader(&self) -> Option<i32> {
        None
    }
    pub async fn shutdown(&self) {}
}
