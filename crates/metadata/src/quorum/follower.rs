//! Broker-only nodes: no raft members, they pull the committed log from the voters.
//!
//! A fetch names the follower's image offset; the voter answers the committed entries
//! after it, or its snapshot when the log there was purged, or, when there is nothing
//! new, parks on its image watch until there is or [`LONG_POLL`] passes. The follower
//! applies entries with the same rule as the voters ([`apply_to_image`]), so its image
//! at an offset equals theirs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::EntryPayload;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::rpc::{FetchReply, FetchedEntry, Reply, Request, RpcClient, ServerCtx};
use super::state_machine::{apply_to_image, decode_snapshot};
use super::{now_ms, QuorumError, ReplicaStatus};
use crate::image::MetadataImage;

/// How long a voter parks a fetch with nothing new.
pub(crate) const LONG_POLL: Duration = Duration::from_millis(500);
/// Entries per fetch answer, and their encoded size (well under a frame).
const MAX_ENTRIES: usize = 1000;
const MAX_REPLY_BYTES: usize = 16 << 20;

/// The followers that fetched from this voter (DescribeQuorum's observers).
#[derive(Default)]
pub(crate) struct ObserverTable {
    seen: Mutex<BTreeMap<i32, ReplicaStatus>>,
}

impl ObserverTable {
    fn record(&self, id: i32, offset: i64, caught_up: bool) {
        let now = now_ms();
        let mut g = match self.seen.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let e = g.entry(id).or_insert(ReplicaStatus {
            replica_id: id,
            log_end_offset: -1,
            last_fetch_timestamp: -1,
            last_caught_up_timestamp: -1,
        });
        e.log_end_offset = offset + 1;
        e.last_fetch_timestamp = now;
        if caught_up {
            e.last_caught_up_timestamp = now;
        }
    }

    pub(crate) fn list(&self) -> Vec<ReplicaStatus> {
        match self.seen.lock() {
            Ok(g) => g.values().cloned().collect(),
            Err(p) => p.into_inner().values().cloned().collect(),
        }
    }
}

/// A voter answers a follower's fetch.
pub(crate) async fn serve_fetch(ctx: &ServerCtx, from: i32, offset: i64) -> (Reply, Vec<u8>) {
    let mut rx = ctx.sm.subscribe();
    let wait = rx.wait_for(|img| img.offset > offset);
    let applied = match tokio::time::timeout(LONG_POLL, wait).await {
        Ok(Ok(img)) => img.offset,
        _ => ctx.sm.image().offset,
    };
    let leader = ctx.raft.metrics().borrow().current_leader.map(|l| l as i32);
    ctx.observers.record(from, offset, offset >= applied);
    let mut reply = FetchReply {
        leader,
        snapshot: false,
        entries: Vec::new(),
    };
    if applied <= offset {
        return (Reply::Fetch(reply), Vec::new());
    }
    let next = (offset + 1).max(0) as u64;
    match ctx.log.entries(next, applied as u64, MAX_ENTRIES) {
        Some(entries) if entries.first().is_some_and(|e| e.log_id.index == next) => {
            // At least one entry, then as many as fit in MAX_REPLY_BYTES.
            let mut bytes = 0usize;
            for e in entries {
                let entry = match e.payload {
                    EntryPayload::Normal(m) => Some(m),
                    _ => None,
                };
                let size = entry
                    .as_ref()
                    .map_or(16, |m| serde_json::to_vec(m).map_or(0, |v| v.len()));
                if !reply.entries.is_empty() && bytes + size > MAX_REPLY_BYTES {
                    break;
                }
                bytes += size;
                reply.entries.push(FetchedEntry {
                    index: e.log_id.index,
                    entry,
                });
            }
            (Reply::Fetch(reply), Vec::new())
        }
        _ => match ctx.sm.snapshot() {
            Some((last, bytes)) if last >= next as i64 => {
                reply.snapshot = true;
                (Reply::Fetch(reply), (*bytes).clone())
            }
            _ => (
                Reply::Error(format!(
                    "entry {next} is neither in the log nor in a snapshot"
                )),
                Vec::new(),
            ),
        },
    }
}

struct FollowerState {
    image_tx: watch::Sender<Arc<MetadataImage>>,
    leader: Mutex<Option<i32>>,
}

/// A broker-only node's copy of the metadata log's image.
pub struct MetadataFollower {
    state: Arc<FollowerState>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl MetadataFollower {
    /// Starts pulling from `voters` (id -> "host:port"), over TLS when `tls` is set.
    pub async fn start(
        node_id: i32,
        voters: BTreeMap<i32, String>,
        cluster_id: String,
        tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
    ) -> Result<Arc<Self>, QuorumError> {
        if voters.is_empty() {
            return Err(QuorumError::Config(
                "a broker-only node needs controller.quorum.voters".into(),
            ));
        }
        let clients: BTreeMap<i32, RpcClient> = voters
            .into_iter()
            .map(|(id, addr)| {
                (
                    id,
                    RpcClient::new(addr, cluster_id.clone(), node_id, tls.clone()),
                )
            })
            .collect();
        let (image_tx, _) = watch::channel(Arc::new(MetadataImage::empty()));
        let state = Arc::new(FollowerState {
            image_tx,
            leader: Mutex::new(None),
        });
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(run(state.clone(), clients, stop_rx));
        Ok(Arc::new(Self {
            state,
            stop,
            task: Mutex::new(Some(task)),
        }))
    }

    pub fn image(&self) -> Arc<MetadataImage> {
        self.state.image_tx.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.state.image_tx.subscribe()
    }

    /// The leader as last told by a voter.
    pub fn leader(&self) -> Option<i32> {
        match self.state.leader.lock() {
            Ok(g) => *g,
            Err(p) => *p.into_inner(),
        }
    }

    pub async fn shutdown(&self) {
        self.stop.send_replace(true);
        let task = match self.task.lock() {
            Ok(mut g) => g.take(),
            Err(p) => p.into_inner().take(),
        };
        if let Some(t) = task {
            let _ = t.await;
        }
    }
}

impl Drop for MetadataFollower {
    fn drop(&mut self) {
        if let Ok(mut g) = self.task.lock() {
            if let Some(t) = g.take() {
                t.abort();
            }
        }
    }
}

async fn run(
    state: Arc<FollowerState>,
    clients: BTreeMap<i32, RpcClient>,
    mut stop: watch::Receiver<bool>,
) {
    let ids: Vec<i32> = clients.keys().copied().collect();
    let mut turn = 0usize;
    let mut failures = 0u32;
    loop {
        if *stop.borrow() {
            return;
        }
        // The leader first when known (the freshest log), else the next voter in turn.
        let leader = *state.leader.lock().unwrap_or_else(|p| p.into_inner());
        let id = match leader.filter(|l| clients.contains_key(l) && failures == 0) {
            Some(l) => l,
            None => {
                turn = turn.wrapping_add(1);
                ids[turn % ids.len()]
            }
        };
        let Some(client) = clients.get(&id) else {
            return;
        };
        let offset = state.image_tx.borrow().offset;
        let call = client.call(
            Request::Fetch { offset },
            &[],
            LONG_POLL + Duration::from_secs(5),
        );
        let result = tokio::select! {
            r = call => r,
            _ = stop.changed() => return,
        };
        match result {
            Ok((Reply::Fetch(reply), blob)) => {
                failures = 0;
                if reply.leader.is_some() {
                    *state.leader.lock().unwrap_or_else(|p| p.into_inner()) = reply.leader;
                }
                apply_reply(&state, offset, reply, &blob);
            }
            Ok(_) | Err(_) => {
                failures += 1;
                if let Err(e) = result {
                    tracing::debug!(voter = id, error = %e, "metadata fetch failed");
                }
                // Every voter failed in turn: back off before the next round (not a
                // synchronisation wait; the peers are down).
                if failures as usize >= ids.len() {
                    let pause = Duration::from_millis(100 * u64::from(failures.min(10)));
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => {}
                        _ = stop.changed() => return,
                    }
                }
            }
        }
    }
}

fn apply_reply(state: &FollowerState, offset: i64, reply: FetchReply, blob: &[u8]) {
    if reply.snapshot {
        match decode_snapshot(blob) {
            Ok((_, image)) if image.offset > offset => {
                tracing::info!(offset = image.offset, "metadata follower: snapshot loaded");
                state.image_tx.send_replace(Arc::new(image));
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "metadata follower: bad snapshot"),
        }
        return;
    }
    if reply.entries.is_empty() {
        return;
    }
    let mut image = (**state.image_tx.borrow()).clone();
    if image.offset != offset {
        return;
    }
    for e in &reply.entries {
        if e.index as i64 != image.offset + 1 {
            tracing::warn!(
                index = e.index,
                at = image.offset,
                "metadata follower: gap in a fetch answer"
            );
            break;
        }
        apply_to_image(&mut image, e.index, e.entry.as_ref());
    }
    state.image_tx.send_replace(Arc::new(image));
}
