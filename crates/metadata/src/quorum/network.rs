//! openraft's network over [`RpcClient`]: one client per voter, addresses from the
//! configured voters (falling back to the address in the membership).

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{
    Fatal, NetworkError, PayloadTooLarge, RPCError, RaftError, RemoteError, ReplicationClosed,
    StreamingError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::storage::Snapshot;
use openraft::{BasicNode, Vote};

use super::log_store::LogStore;
use super::rpc::{Reply, Request, RpcClient, RpcFailure};
use super::{now_ms, TypeConfig};

type NodeId = u64;

/// When the leader last heard from each voter, and when that voter last had the whole
/// log (DescribeQuorum's timestamps).
#[derive(Default)]
pub(crate) struct PeerTimes {
    times: Mutex<BTreeMap<i32, (i64, i64)>>,
}

impl PeerTimes {
    fn record(&self, peer: i32, caught_up: bool) {
        let now = now_ms();
        let mut g = match self.times.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        let slot = g.entry(peer).or_insert((-1, -1));
        slot.0 = now;
        if caught_up {
            slot.1 = now;
        }
    }

    pub(crate) fn get(&self, peer: i32) -> (i64, i64) {
        let g = match self.times.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        g.get(&peer).copied().unwrap_or((-1, -1))
    }
}

pub(crate) struct NetworkFactory {
    pub(crate) cluster_id: String,
    pub(crate) me: i32,
    pub(crate) voters: BTreeMap<i32, String>,
    pub(crate) log: LogStore,
    pub(crate) times: Arc<PeerTimes>,
    pub(crate) tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = PeerNetwork;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerNetwork {
        let id = target as i32;
        // The address in the log's membership (voters added at runtime are only there),
        // else the configured one.
        let addr = if node.addr.is_empty() {
            self.voters.get(&id).cloned().unwrap_or_default()
        } else {
            node.addr.clone()
        };
        PeerNetwork {
            target,
            client: RpcClient::new(addr, self.cluster_id.clone(), self.me, self.tls.clone()),
            log: self.log.clone(),
            times: self.times.clone(),
        }
    }
}

pub(crate) struct PeerNetwork {
    target: NodeId,
    client: RpcClient,
    log: LogStore,
    times: Arc<PeerTimes>,
}

fn unreachable<E: std::error::Error>(e: RpcFailure) -> RPCError<NodeId, BasicNode, E> {
    RPCError::Unreachable(Unreachable::new(&e))
}

fn unexpected<E: std::error::Error>() -> RPCError<NodeId, BasicNode, E> {
    RPCError::Network(NetworkError::new(&std::io::Error::other(
        "unexpected reply",
    )))
}

impl RaftNetwork<TypeConfig> for PeerNetwork {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        let sent = rpc.entries.len() as u64;
        let sent_last = rpc
            .entries
            .last()
            .map(|e| e.log_id.index)
            .or(rpc.prev_log_id.map(|l| l.index));
        match self
            .client
            .call(Request::Append(rpc), &[], option.hard_ttl())
            .await
        {
            Ok((Reply::Append(Ok(resp)), _)) => {
                let caught_up = matches!(resp, AppendEntriesResponse::Success)
                    && sent_last >= self.log.last_index();
                self.times.record(self.target as i32, caught_up);
                Ok(resp)
            }
            Ok((Reply::Append(Err(e)), _)) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(_) => Err(unexpected()),
            // openraft sends fewer entries per request when told.
            Err(RpcFailure::TooLarge(_)) if sent > 1 => Err(RPCError::PayloadTooLarge(
                PayloadTooLarge::new_entries_hint(sent / 2),
            )),
            Err(e) => Err(unreachable(e)),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        match self
            .client
            .call(Request::Vote(rpc), &[], option.hard_ttl())
            .await
        {
            Ok((Reply::Vote(Ok(resp)), _)) => Ok(resp),
            Ok((Reply::Vote(Err(e)), _)) => {
                Err(RPCError::RemoteError(RemoteError::new(self.target, e)))
            }
            Ok(_) => Err(unexpected()),
            Err(e) => Err(unreachable(e)),
        }
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote<NodeId>,
        snapshot: Snapshot<TypeConfig>,
        cancel: impl Future<Output = ReplicationClosed> + openraft::OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<NodeId>, StreamingError<TypeConfig, Fatal<NodeId>>> {
        let req = Request::Snapshot {
            vote,
            meta: snapshot.meta.clone(),
        };
        let bytes = *snapshot.snapshot;
        // A snapshot may take longer than one append: allow at least 10 s.
        let ttl = option.hard_ttl().max(Duration::from_secs(10));
        let call = self.client.call(req, &bytes, ttl);
        tokio::select! {
            closed = cancel => Err(StreamingError::Closed(closed)),
            r = call => match r {
                Ok((Reply::Snapshot(Ok(resp)), _)) => Ok(resp),
                Ok((Reply::Snapshot(Err(e)), _)) => {
                    Err(StreamingError::RemoteError(RemoteError::new(self.target, e)))
                }
                Ok(_) => Err(StreamingError::Network(NetworkError::new(
                    &std::io::Error::other("unexpected reply"),
                ))),
                Err(e) => Err(StreamingError::Unreachable(Unreachable::new(&e))),
            },
        }
    }

    fn backoff(&self) -> openraft::network::Backoff {
        // Retry an unreachable voter every 200 ms (openraft's default is 500 ms).
        openraft::network::Backoff::new(std::iter::repeat(Duration::from_millis(200)))
    }
}
