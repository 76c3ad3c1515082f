//! Helpers for the quorum tests: voters on real TCP ports of 127.0.0.1, and waits on
//! conditions with deadlines (no sleeps).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use gregor_metadata::controller::{create_topic, NewTopic};
use gregor_metadata::{
    AppHandler, ControllerError, MetadataImage, MetadataQuorum, MetadataRecord, QuorumConfig,
    QuorumError,
};
use tokio::net::TcpListener;

pub const CLUSTER: &str = "q-test-cluster";

/// Answers an application request with its bytes reversed.
pub struct Echo;

impl AppHandler for Echo {
    fn handle(
        &self,
        _from: i32,
        mut request: Vec<u8>,
    ) -> Pin<Box<dyn Future<Output = Vec<u8>> + Send>> {
        Box::pin(async move {
            request.reverse();
            request
        })
    }
}

pub fn app() -> Arc<dyn AppHandler> {
    Arc::new(Echo)
}

/// "Create topic `name` iff absent".
pub fn create(
    name: &str,
) -> impl Fn(&MetadataImage) -> Result<Vec<MetadataRecord>, ControllerError> + Send + Sync {
    let t = NewTopic {
        assignments: Vec::new(),
        name: name.to_string(),
        num_partitions: 2,
        replication_factor: 1,
        configs: Default::default(),
    };
    move |img: &MetadataImage| create_topic(img, &t, &[1])
}

/// Waits until `cond` holds for the image of `q`, at most `secs` seconds.
pub async fn wait_image(
    rx: &mut tokio::sync::watch::Receiver<Arc<MetadataImage>>,
    secs: u64,
    cond: impl Fn(&MetadataImage) -> bool,
) -> Arc<MetadataImage> {
    let r = tokio::time::timeout(Duration::from_secs(secs), rx.wait_for(|i| cond(i)))
        .await
        .ok()
        .and_then(Result::ok)
        .map(|img| img.clone());
    match r {
        Some(img) => img,
        None => panic!(
            "condition not reached in {secs} s; image at {}",
            rx.borrow().offset
        ),
    }
}

/// Logs to the test output when RUST_LOG is set.
pub fn init_log() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// A cluster of voters in temp directories.
pub struct Cluster {
    pub dirs: BTreeMap<i32, tempfile::TempDir>,
    pub voters: BTreeMap<i32, String>,
    pub nodes: BTreeMap<i32, Arc<MetadataQuorum>>,
    pub snapshot_bytes: u64,
}

impl Cluster {
    /// `n` voters with ids 1..=n, all started.
    pub async fn start(n: i32, snapshot_bytes: u64) -> Self {
        init_log();
        let mut listeners = BTreeMap::new();
        let mut voters = BTreeMap::new();
        let mut dirs = BTreeMap::new();
        for id in 1..=n {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            voters.insert(id, l.local_addr().unwrap().to_string());
            listeners.insert(id, l);
            dirs.insert(id, tempfile::tempdir().unwrap());
        }
        let mut c = Cluster {
            dirs,
            voters,
            nodes: BTreeMap::new(),
            snapshot_bytes,
        };
        let mut starts = Vec::new();
        for (id, l) in listeners {
            let cfg = c.config(id);
            starts.push(tokio::spawn(async move {
                (id, MetadataQuorum::start(cfg, Some(l), app()).await)
            }));
        }
        for s in starts {
            let (id, q) = s.await.unwrap();
            let q = q.unwrap_or_else(|e| panic!("node {id} failed to start: {e:?}"));
            c.nodes.insert(id, q);
        }
        c
    }

    pub fn dir(&self, id: i32) -> PathBuf {
        self.dirs[&id].path().to_path_buf()
    }

    pub fn config(&self, id: i32) -> QuorumConfig {
        let mut cfg = QuorumConfig::new(id, self.voters.clone(), self.dir(id), CLUSTER.into());
        cfg.election_timeout = Duration::from_millis(500);
        cfg.heartbeat_interval = Duration::from_millis(100);
        cfg.log.snapshot_bytes = self.snapshot_bytes;
        cfg
    }

    /// Starts (again) node `id` on its port.
    pub async fn restart(&mut self, id: i32) {
        let l = TcpListener::bind(&self.voters[&id]).await.unwrap();
        let q = MetadataQuorum::start(self.config(id), Some(l), app())
            .await
            .unwrap();
        self.nodes.insert(id, q);
    }

    pub async fn stop(&mut self, id: i32) {
        if let Some(q) = self.nodes.remove(&id) {
            q.shutdown().await;
        }
    }

    /// Drops node `id` without shutdown (a crash).
    pub fn crash(&mut self, id: i32) {
        self.nodes.remove(&id);
    }

    /// The leader every running node agrees on, other than `other_than`.
    pub async fn leader(&self, other_than: Option<i32>) -> i32 {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let mut seen = Vec::new();
            for q in self.nodes.values() {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                seen.push(q.await_leader(other_than, left).await);
            }
            let first = seen[0].expect("no leader elected in time");
            if seen.iter().all(|l| *l == Some(first)) {
                if let Some(q) = self.nodes.get(&first) {
                    // The leader's own view: it has taken office.
                    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    if q.await_leader(other_than, left).await == Some(first) && q.is_leader() {
                        return first;
                    }
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "nodes disagree on the leader: {seen:?}"
            );
            // A node still names an old leader: wait for any of them to learn more.
            let mut rxs: Vec<_> = self.nodes.values().map(|q| q.subscribe()).collect();
            let changed =
                futures::future::select_all(rxs.iter_mut().map(|r| Box::pin(r.changed())));
            let _ = tokio::time::timeout(Duration::from_millis(500), changed).await;
        }
    }

    /// Commits on the current leader, retrying NotLeader/Unavailable until `secs` pass.
    pub async fn commit_anywhere<F>(&self, secs: u64, decide: F) -> Arc<MetadataImage>
    where
        F: Fn(&MetadataImage) -> Result<Vec<MetadataRecord>, ControllerError> + Send + Sync,
    {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let leader = self.leader(None).await;
            match self.nodes[&leader].commit(&decide).await {
                Ok(img) => return img,
                Err(QuorumError::NotLeader { .. }) | Err(QuorumError::Unavailable(_))
                    if tokio::time::Instant::now() < deadline => {}
                Err(e) => panic!("commit failed: {e}"),
            }
        }
    }

    /// Waits until every running node's image reaches `offset`; returns the images.
    pub async fn converge(&self, offset: i64) -> Vec<Arc<MetadataImage>> {
        let mut out = Vec::new();
        for q in self.nodes.values() {
            let mut rx = q.subscribe();
            out.push(wait_image(&mut rx, 20, |i| i.offset >= offset).await);
        }
        out
    }
}
