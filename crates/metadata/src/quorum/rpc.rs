//! The RPC transport between nodes: raft (vote, append, snapshot), follower fetches and
//! the application's own requests.
//!
//! A frame is `total: u32 BE | json_len: u32 BE | json | blob`, at most [`MAX_FRAME`]
//! bytes: the JSON is an [`Envelope`] (cluster id, sender, request) or a [`Reply`], the
//! blob carries bytes that JSON would bloat (snapshots, application payloads). One
//! request at a time per connection, answered in order; a client keeps a few idle
//! connections per peer and opens more when calls overlap. A malformed frame closes its
//! connection only; a peer of another cluster is answered `WrongCluster` and closed.
//!
//! With [`RpcTls`] (the controller listener's protocol is SSL) every connection is TLS:
//! the server presents its certificate (and, with `ssl.client.auth=required`, accepts
//! only peers whose certificate its trust store signed); the client verifies the server
//! against the same trust store. The handshake has [`HANDSHAKE_TIMEOUT`].

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use openraft::error::{Fatal, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::storage::{Snapshot, SnapshotMeta};
use openraft::{BasicNode, Raft, Vote};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::rustls::{ClientConfig, ServerConfig};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::follower::{serve_fetch, ObserverTable};
use super::log_store::LogStore;
use super::prevote::{ElectionTimer, PreVoteRequest};
use super::state_machine::SmShared;
use super::{MetaEntry, QuorumError, TypeConfig};

/// The largest frame sent or accepted.
pub(crate) const MAX_FRAME: usize = 64 << 20;
/// Idle connections kept per peer.
const MAX_IDLE: usize = 4;

/// Serves the application's own requests (the broker side's, as opaque bytes).
pub trait AppHandler: Send + Sync + 'static {
    /// A request from `from_node` -> the response bytes.
    fn handle(
        &self,
        from_node: i32,
        request: Vec<u8>,
    ) -> Pin<Box<dyn Future<Output = Vec<u8>> + Send>>;
}

#[derive(Serialize, Deserialize)]
pub(crate) struct Envelope {
    pub(crate) cluster_id: String,
    pub(crate) from: i32,
    pub(crate) body: Request,
}

#[derive(Serialize, Deserialize)]
pub(crate) enum Request {
    Append(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<u64>),
    /// The blob is the snapshot.
    Snapshot {
        vote: Vote<u64>,
        meta: SnapshotMeta<u64, BasicNode>,
    },
    /// The blob is the application request.
    App,
    /// A follower's fetch: entries after `offset` (its image offset).
    Fetch {
        offset: i64,
    },
    /// Would the peer vote for the sender (see `prevote`)?
    PreVote(PreVoteRequest),
}

#[derive(Serialize, Deserialize)]
pub(crate) enum Reply {
    Append(Result<AppendEntriesResponse<u64>, RaftError<u64>>),
    Vote(Result<VoteResponse<u64>, RaftError<u64>>),
    Snapshot(Result<SnapshotResponse<u64>, Fatal<u64>>),
    /// The blob is the application response.
    App,
    Fetch(FetchReply),
    /// The pre-vote is granted.
    PreVote(bool),
    WrongCluster {
        ours: String,
    },
    Error(String),
}

/// Committed entries after the fetch offset, or (`snapshot`, the blob) a snapshot when
/// the offset is behind the log start.
#[derive(Serialize, Deserialize)]
pub(crate) struct FetchReply {
    pub(crate) leader: Option<i32>,
    pub(crate) snapshot: bool,
    pub(crate) entries: Vec<FetchedEntry>,
}

/// A committed entry: `entry` is `None` for blank and membership entries.
#[derive(Serialize, Deserialize)]
pub(crate) struct FetchedEntry {
    pub(crate) index: u64,
    pub(crate) entry: Option<MetaEntry>,
}

/// Why a call failed.
#[derive(Debug)]
pub(crate) enum RpcFailure {
    Io(std::io::Error),
    /// The request does not fit in a frame.
    TooLarge(usize),
    Timeout,
    WrongCluster {
        ours: String,
        theirs: String,
    },
    Remote(String),
}

impl std::fmt::Display for RpcFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RpcFailure::Io(e) => write!(f, "{e}"),
            RpcFailure::Timeout => write!(f, "timed out"),
            RpcFailure::TooLarge(n) => {
                write!(f, "a request of {n} bytes is over the {MAX_FRAME} limit")
            }
            RpcFailure::WrongCluster { ours, theirs } => {
                write!(f, "peer of cluster {theirs}, ours is {ours}")
            }
            RpcFailure::Remote(e) => write!(f, "peer error: {e}"),
        }
    }
}

impl std::error::Error for RpcFailure {}

impl From<RpcFailure> for QuorumError {
    fn from(e: RpcFailure) -> Self {
        match e {
            RpcFailure::WrongCluster { ours, theirs } => {
                QuorumError::InconsistentClusterId { ours, theirs }
            }
            other => QuorumError::Unavailable(other.to_string()),
        }
    }
}

/// The controller listener's TLS: the client side for calls, the server side for the
/// listener. Both `None`: plaintext.
#[derive(Clone, Default)]
pub struct RpcTls {
    pub client: Option<Arc<ClientConfig>>,
    pub server: Option<Arc<ServerConfig>>,
}

impl std::fmt::Debug for RpcTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcTls")
            .field("client", &self.client.is_some())
            .field("server", &self.server.is_some())
            .finish()
    }
}

/// A TLS handshake must finish within this.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A plain or TLS connection.
trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
type Stream = Box<dyn Io>;

fn bad(msg: impl Into<String>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.into())
}

async fn write_frame<S: AsyncWrite + Unpin + ?Sized>(
    stream: &mut S,
    json: &[u8],
    blob: &[u8],
) -> std::io::Result<()> {
    let total = 4 + json.len() + blob.len();
    if total > MAX_FRAME {
        return Err(bad(format!(
            "frame of {total} bytes over the {MAX_FRAME} limit"
        )));
    }
    let mut buf = Vec::with_capacity(4 + total);
    buf.extend_from_slice(&(total as u32).to_be_bytes());
    buf.extend_from_slice(&(json.len() as u32).to_be_bytes());
    buf.extend_from_slice(json);
    buf.extend_from_slice(blob);
    stream.write_all(&buf).await?;
    stream.flush().await
}

/// Reads one frame; `None` on a clean end of stream before it.
async fn read_frame<S: AsyncRead + Unpin + ?Sized>(
    stream: &mut S,
) -> std::io::Result<Option<(Vec<u8>, Vec<u8>)>> {
    let mut len = [0u8; 4];
    match stream.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let total = u32::from_be_bytes(len) as usize;
    if !(4..=MAX_FRAME).contains(&total) {
        return Err(bad(format!("bad frame length {total}")));
    }
    stream.read_exact(&mut len).await?;
    let json_len = u32::from_be_bytes(len) as usize;
    if json_len > total - 4 {
        return Err(bad("bad frame: JSON longer than the frame"));
    }
    let mut json = vec![0u8; json_len];
    stream.read_exact(&mut json).await?;
    let mut blob = vec![0u8; total - 4 - json_len];
    stream.read_exact(&mut blob).await?;
    Ok(Some((json, blob)))
}

struct ClientInner {
    addr: String,
    cluster_id: String,
    me: i32,
    tls: Option<Arc<ClientConfig>>,
    idle: Mutex<Vec<Stream>>,
}

/// A client of one peer; reconnects as needed, cheap to clone.
#[derive(Clone)]
pub struct RpcClient {
    inner: Arc<ClientInner>,
}

impl RpcClient {
    /// `tls`: the controller listener's client side, when it is SSL.
    pub fn new(
        addr: String,
        cluster_id: String,
        my_node_id: i32,
        tls: Option<Arc<ClientConfig>>,
    ) -> Self {
        Self {
            inner: Arc::new(ClientInner {
                addr,
                cluster_id,
                me: my_node_id,
                tls,
                idle: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Sends an application request and returns the peer's response bytes.
    pub async fn call_app(
        &self,
        request: Vec<u8>,
        timeout: Duration,
    ) -> Result<Vec<u8>, QuorumError> {
        match self.call(Request::App, &request, timeout).await? {
            (Reply::App, blob) => Ok(blob),
            _ => Err(QuorumError::Unavailable(
                "unexpected reply to an app request".into(),
            )),
        }
    }

    async fn connect(&self) -> std::io::Result<Stream> {
        let tcp = TcpStream::connect(&self.inner.addr).await?;
        let _ = tcp.set_nodelay(true);
        let Some(config) = &self.inner.tls else {
            return Ok(Box::new(tcp));
        };
        let name =
            gregor_security::tls::server_name(&self.inner.addr).map_err(|e| bad(e.to_string()))?;
        let tls = tokio::time::timeout(
            HANDSHAKE_TIMEOUT,
            TlsConnector::from(config.clone()).connect(name, tcp),
        )
        .await
        .map_err(|_| bad("TLS handshake timed out"))??;
        Ok(Box::new(tls))
    }

    fn take_idle(&self) -> Option<Stream> {
        match self.inner.idle.lock() {
            Ok(mut g) => g.pop(),
            Err(p) => p.into_inner().pop(),
        }
    }

    fn put_idle(&self, s: Stream) {
        let mut g = match self.inner.idle.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        if g.len() < MAX_IDLE {
            g.push(s);
        }
    }

    /// One request and its reply, within `timeout`.
    pub(crate) async fn call(
        &self,
        body: Request,
        blob: &[u8],
        timeout: Duration,
    ) -> Result<(Reply, Vec<u8>), RpcFailure> {
        let env = Envelope {
            cluster_id: self.inner.cluster_id.clone(),
            from: self.inner.me,
            body,
        };
        let json = serde_json::to_vec(&env).map_err(|e| RpcFailure::Io(bad(e.to_string())))?;
        if 4 + json.len() + blob.len() > MAX_FRAME {
            return Err(RpcFailure::TooLarge(4 + json.len() + blob.len()));
        }
        let attempt = async {
            // A pooled connection may have been closed by a restarted peer: one retry on
            // a fresh connection when it ends before any reply.
            if let Some(mut s) = self.take_idle() {
                if let Ok(Some(reply)) = exchange(&mut s, &json, blob).await {
                    self.put_idle(s);
                    return Ok(reply);
                }
            }
            let mut s = self.connect().await.map_err(RpcFailure::Io)?;
            match exchange(&mut s, &json, blob).await {
                Ok(Some(reply)) => {
                    self.put_idle(s);
                    Ok(reply)
                }
                Ok(None) => Err(RpcFailure::Io(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "connection closed before the reply",
                ))),
                Err(e) => Err(RpcFailure::Io(e)),
            }
        };
        let (json, blob) = tokio::time::timeout(timeout, attempt)
            .await
            .map_err(|_| RpcFailure::Timeout)??;
        let reply: Reply = serde_json::from_slice(&json)
            .map_err(|e| RpcFailure::Io(bad(format!("malformed reply: {e}"))))?;
        match reply {
            Reply::WrongCluster { ours } => Err(RpcFailure::WrongCluster {
                ours: self.inner.cluster_id.clone(),
                theirs: ours,
            }),
            Reply::Error(e) => Err(RpcFailure::Remote(e)),
            other => Ok((other, blob)),
        }
    }
}

async fn exchange(
    s: &mut Stream,
    json: &[u8],
    blob: &[u8],
) -> std::io::Result<Option<(Vec<u8>, Vec<u8>)>> {
    write_frame(s, json, blob).await?;
    read_frame(s).await
}

/// What the server needs to answer requests.
pub(crate) struct ServerCtx {
    pub(crate) cluster_id: String,
    pub(crate) raft: Raft<TypeConfig>,
    pub(crate) app: Arc<dyn AppHandler>,
    pub(crate) log: LogStore,
    pub(crate) sm: Arc<SmShared>,
    pub(crate) observers: Arc<ObserverTable>,
    pub(crate) timer: Arc<ElectionTimer>,
}

/// Accepts connections until `shutdown` turns true; dropping the task drops every
/// connection task with it.
pub(crate) async fn serve(
    listener: TcpListener,
    ctx: Arc<ServerCtx>,
    tls: Option<Arc<ServerConfig>>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut conns = JoinSet::new();
    let acceptor = tls.map(TlsAcceptor::from);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let ctx = ctx.clone();
                    let acceptor = acceptor.clone();
                    conns.spawn(async move {
                        let stream: Stream = match acceptor {
                            None => Box::new(stream),
                            Some(a) => {
                                match tokio::time::timeout(HANDSHAKE_TIMEOUT, a.accept(stream)).await {
                                    Ok(Ok(s)) => Box::new(s),
                                    Ok(Err(e)) => {
                                        tracing::warn!(%peer, error = %e, "metadata quorum: TLS handshake failed");
                                        return;
                                    }
                                    Err(_) => {
                                        tracing::warn!(%peer, "metadata quorum: TLS handshake timed out");
                                        return;
                                    }
                                }
                            }
                        };
                        connection(stream, ctx).await;
                    });
                }
                Err(e) => tracing::warn!(error = %e, "metadata quorum: accept failed"),
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            _ = shutdown.changed() => break,
        }
        if *shutdown.borrow() {
            break;
        }
    }
}

async fn connection(mut stream: Stream, ctx: Arc<ServerCtx>) {
    loop {
        let (json, blob) = match read_frame(&mut stream).await {
            Ok(Some(f)) => f,
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(error = %e, "metadata quorum: closing a connection");
                return;
            }
        };
        let env: Envelope = match serde_json::from_slice(&json) {
            Ok(env) => env,
            Err(e) => {
                tracing::warn!(error = %e, "metadata quorum: malformed request, closing");
                return;
            }
        };
        if env.cluster_id != ctx.cluster_id {
            tracing::warn!(
                peer = env.from,
                theirs = %env.cluster_id,
                ours = %ctx.cluster_id,
                "metadata quorum: refusing a peer of another cluster"
            );
            let reply = Reply::WrongCluster {
                ours: ctx.cluster_id.clone(),
            };
            if let Ok(json) = serde_json::to_vec(&reply) {
                let _ = write_frame(&mut stream, &json, &[]).await;
            }
            return;
        }
        let (reply, out) = dispatch(&ctx, env.from, env.body, blob).await;
        let Ok(json) = serde_json::to_vec(&reply) else {
            return;
        };
        if write_frame(&mut stream, &json, &out).await.is_err() {
            return;
        }
    }
}

async fn dispatch(ctx: &ServerCtx, from: i32, body: Request, blob: Vec<u8>) -> (Reply, Vec<u8>) {
    match body {
        Request::Append(rpc) => {
            let r = ctx.raft.append_entries(rpc).await;
            // Accepted, or refused only for a log mismatch: a current leader spoke.
            if matches!(
                r,
                Ok(AppendEntriesResponse::Success
                    | AppendEntriesResponse::PartialSuccess(_)
                    | AppendEntriesResponse::Conflict)
            ) {
                ctx.timer.heard_from_leader();
            }
            (Reply::Append(r), Vec::new())
        }
        Request::Vote(rpc) => {
            let r = ctx.raft.vote(rpc).await;
            if r.as_ref().is_ok_and(|v| v.vote_granted) {
                ctx.timer.heard_from_leader();
            }
            (Reply::Vote(r), Vec::new())
        }
        Request::Snapshot { vote, meta } => {
            let snapshot = Snapshot {
                meta,
                snapshot: Box::new(blob),
            };
            let r = ctx.raft.install_full_snapshot(vote, snapshot).await;
            // Answered with our vote: not above the sender's means it was accepted.
            if r.as_ref().is_ok_and(|resp| resp.vote <= vote) {
                ctx.timer.heard_from_leader();
            }
            (Reply::Snapshot(r), Vec::new())
        }
        Request::App => (Reply::App, ctx.app.handle(from, blob).await),
        Request::Fetch { offset } => serve_fetch(ctx, from, offset).await,
        Request::PreVote(req) => (
            Reply::PreVote(ctx.timer.answer(&ctx.raft, ctx.log.last_log_id(), &req)),
            Vec::new(),
        ),
    }
}
