//! The TCP server: accept loop, connection limit, and per-connection request handling.
//!
//! Each connection reads one frame at a time and answers it before reading the next, so
//! responses leave in request order (Kafka's "muted channel" model). Writes go through a
//! writer task so that a slow reader does not stall request decoding. Shutdown is a
//! broadcast: connections finish the request in hand and stop; the accept loop returns
//! once they have all gone (MR's drop-to-join).

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use gregor_protocol::frame;
use gregor_security::oauthbearer::OAuthValidator;
use gregor_security::tls::ReloadingTls;
use std::sync::atomic::Ordering;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::broker::Broker;
use crate::config::ListenerConfig;
use crate::frame::{write_frame, write_frame_copying};
use crate::handlers::{self, Outcome};
use crate::util::now_ms;

/// Kafka's `connections.max.idle.ms` default.
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// Bytes of answers a connection may have queued for its writer (record data sent from
/// files does not count: it is not in memory). A client that pipelines requests but does
/// not read its answers stops being read once this is full, as Kafka mutes its channel.
pub const QUEUED_RESPONSE_BYTES: usize = 16 << 20;

/// Serves the inter-broker (first) listener on `listener` until `shutdown` resolves.
pub async fn run(
    broker: Arc<Broker>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), crate::broker::StartError> {
    let first = broker.config.listeners.first().cloned();
    let Some(first) = first else {
        return Err(crate::broker::StartError::Cluster(
            "no client listener".into(),
        ));
    };
    run_listeners(broker, vec![(first, listener)], shutdown).await
}

/// Serves every client listener until `shutdown` resolves, then waits for connections
/// to finish and flushes the broker.
pub async fn run_listeners(
    broker: Arc<Broker>,
    listeners: Vec<(ListenerConfig, TcpListener)>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), crate::broker::StartError> {
    // TLS settings are checked before the broker joins: a bad key store stops start-up.
    let mut bound = Vec::new();
    for (config, socket) in listeners {
        let tls = match &config.tls {
            Some(settings) => Some(Arc::new(ReloadingTls::new(settings.clone()).map_err(
                |source| crate::broker::StartError::Tls {
                    listener: config.name.clone(),
                    source,
                },
            )?)),
            None => None,
        };
        let oauth = match config.sasl.as_ref().and_then(|s| s.oauth.clone()) {
            Some(settings) => Some(Arc::new(OAuthValidator::load(settings).map_err(|e| {
                crate::broker::StartError::Cluster(format!("listener {}: {e}", config.name))
            })?)),
            None => None,
        };
        bound.push(Acceptor {
            config: Arc::new(config),
            socket,
            tls,
            oauth,
        });
    }
    // The metrics listener is up (live, not ready) while the broker joins.
    crate::metrics::BrokerMetrics::start_listener(&broker).await?;
    broker.join_cluster().await?;
    let (stop_tx, _) = broadcast::channel::<()>(1);
    let shared = Arc::new(Shared {
        broker: broker.clone(),
        limit: Arc::new(Semaphore::new(
            broker.config.max_connections.min(Semaphore::MAX_PERMITS),
        )),
        quotas: Arc::new(crate::connection_quotas::ConnectionQuotas::default()),
        stop: stop_tx.clone(),
    });
    let flusher = tokio::spawn(flush_loop(broker.clone(), stop_tx.subscribe()));
    let retention = tokio::spawn(retention_loop(broker.clone(), stop_tx.subscribe()));
    let cleaner = tokio::spawn(cleaner_loop(broker.clone(), stop_tx.subscribe()));
    let expiry = tokio::spawn(crate::expiry::run(broker.clone(), stop_tx.subscribe()));
    // Transactions a stop left open or half-finished get their timers and markers back.
    broker.txns.resume().await;
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let (halt_tx, halt_rx) = watch::channel(false);
    let acceptors: Vec<_> = bound
        .into_iter()
        .map(|a| {
            tokio::spawn(accept_loop(
                shared.clone(),
                a,
                halt_rx.clone(),
                done_tx.clone(),
            ))
        })
        .collect();
    broker.metrics.set_ready(true);
    shutdown.await;
    broker.metrics.set_ready(false);
    // Leaderships move away first, while connections are still served; only then do
    // the listeners stop.
    let left = broker.begin_leaving().await;
    halt_tx.send_replace(true);
    for a in acceptors {
        let _ = a.await;
    }
    broker.txns.shutdown();
    broker.groups.shutdown().await;
    let _ = stop_tx.send(());
    drop(done_tx);
    let _ = tokio::time::timeout(Duration::from_secs(30), done_rx.recv()).await;
    let _ = flusher.await;
    let _ = retention.await;
    let _ = cleaner.await;
    let _ = expiry.await;
    broker.leave_cluster(left).await;
    broker.metrics.stop_listener().await;
    let b = broker.clone();
    tokio::task::spawn_blocking(move || b.shutdown())
        .await
        .map_err(|e| crate::broker::StartError::MetaProperties(e.to_string()))?
}

/// One listener's socket and what its connections need.
struct Acceptor {
    config: Arc<ListenerConfig>,
    socket: TcpListener,
    tls: Option<Arc<ReloadingTls>>,
    oauth: Option<Arc<OAuthValidator>>,
}

/// What every accept loop shares: the connection limits and the stop broadcast.
struct Shared {
    broker: Arc<Broker>,
    limit: Arc<Semaphore>,
    quotas: Arc<crate::connection_quotas::ConnectionQuotas>,
    stop: broadcast::Sender<()>,
}

/// How long a TLS handshake may take before the connection is dropped: a client that
/// stops halfway holds a slot no longer than this.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

async fn accept_loop(
    shared: Arc<Shared>,
    acceptor: Acceptor,
    mut halt: watch::Receiver<bool>,
    done: mpsc::Sender<()>,
) {
    let broker = &shared.broker;
    loop {
        let permit = tokio::select! {
            _ = halt.wait_for(|h| *h) => break,
            p = shared.limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let accepted = tokio::select! {
            _ = halt.wait_for(|h| *h) => break,
            a = acceptor.socket.accept() => a,
        };
        match accepted {
            Ok((socket, peer)) => {
                // Over `max.connections.per.ip`: closed at once, as Kafka's acceptor does
                // (dropping the socket); the permit goes back with it.
                let Some(slot) = shared.quotas.try_acquire(&broker.config, peer.ip()) else {
                    tracing::info!(%peer, "closing connection: max.connections.per.ip reached");
                    drop(socket);
                    continue;
                };
                // KIP-612: an address over its `connection_creation_rate` quota has its
                // connection closed after the throttle time (the client backs off
                // instead of reconnecting at once); the broker-wide
                // `max.connection.creation.rate` holds the accept loop itself back.
                let image = broker.metadata.image();
                let ip_throttle = broker
                    .client_quotas
                    .connection_from(&image, peer.ip().to_canonical());
                if !ip_throttle.is_zero() {
                    tracing::info!(%peer, throttle_ms = ip_throttle.as_millis() as u64, "closing connection: connection_creation_rate quota reached");
                    let mut halt = halt.clone();
                    tokio::spawn(async move {
                        tokio::select! {
                            _ = halt.wait_for(|h| *h) => {}
                            _ = tokio::time::sleep(ip_throttle) => {}
                        }
                        drop((socket, slot, permit));
                    });
                    continue;
                }
                let broker = broker.clone();
                let mut stop = shared.stop.subscribe();
                let done = done.clone();
                let listener = acceptor.config.clone();
                let tls = acceptor.tls.clone();
                let oauth = acceptor.oauth.clone();
                tokio::spawn(async move {
                    tracing::debug!(%peer, listener = %listener.name, "connection opened");
                    let _ = socket.set_nodelay(true);
                    let host: Arc<str> = format!("/{}", peer.ip()).into();
                    match tls {
                        None => {
                            let (rd, wr) = socket.into_split();
                            let mut conn = handlers::Connection::new(listener, host, None);
                            conn.auth.oauth = oauth;
                            serve(broker, rd, Writer::Plain(wr), conn, stop).await;
                        }
                        Some(tls) => {
                            let accept = TlsAcceptor::from(tls.config()).accept(socket);
                            let stream = tokio::select! {
                                _ = stop.recv() => None,
                                r = tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, accept) => match r {
                                    Ok(Ok(s)) => Some(s),
                                    Ok(Err(e)) => {
                                        tracing::info!(%peer, listener = %listener.name, error = %e, "TLS handshake failed");
                                        None
                                    }
                                    Err(_) => {
                                        tracing::info!(%peer, listener = %listener.name, "TLS handshake timed out");
                                        None
                                    }
                                },
                            };
                            if let Some(stream) = stream {
                                let principal = stream
                                    .get_ref()
                                    .1
                                    .peer_certificates()
                                    .and_then(|c| c.first())
                                    .and_then(|c| gregor_security::tls::principal_of(c).ok());
                                let mut conn = handlers::Connection::new(listener, host, principal);
                                conn.auth.oauth = oauth;
                                let (rd, wr) = tokio::io::split(stream);
                                serve(broker, rd, Writer::Tls(Box::new(wr)), conn, stop).await;
                            }
                        }
                    }
                    tracing::debug!(%peer, "connection closed");
                    drop(slot);
                    drop(permit);
                    drop(done);
                });
                let accept_throttle = shared.broker.client_quotas.accepted();
                if !accept_throttle.is_zero() {
                    tokio::select! {
                        _ = halt.wait_for(|h| *h) => {}
                        _ = tokio::time::sleep(accept_throttle) => {}
                    }
                }
            }
            Err(e) => {
                // Out of file descriptors and the like: back off briefly, keep serving.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// The sending half of a connection: plain TCP (file ranges by `sendfile`) or TLS.
enum Writer {
    Plain(tokio::net::tcp::OwnedWriteHalf),
    Tls(Box<tokio::io::WriteHalf<tokio_rustls::server::TlsStream<TcpStream>>>),
}

impl Writer {
    async fn send(&mut self, item: Outcome) -> Result<(), String> {
        match (self, item) {
            (Writer::Plain(w), Outcome::Respond(bytes)) => {
                w.write_all(&bytes).await.map_err(|e| e.to_string())
            }
            (Writer::Plain(w), Outcome::RespondFile(frame)) => {
                write_frame(w, &frame).await.map_err(|e| e.to_string())
            }
            (Writer::Tls(w), Outcome::Respond(bytes)) => {
                w.write_all(&bytes).await.map_err(|e| e.to_string())?;
                w.flush().await.map_err(|e| e.to_string())
            }
            (Writer::Tls(w), Outcome::RespondFile(frame)) => {
                write_frame_copying(&mut **w, &frame)
                    .await
                    .map_err(|e| e.to_string())?;
                w.flush().await.map_err(|e| e.to_string())
            }
            (_, Outcome::NoResponse) => Ok(()),
            (_, Outcome::Close(why)) => Err(why),
            (_, Outcome::Deferred(_)) => Err("nested deferred response".into()),
        }
    }

    async fn shutdown(&mut self) {
        let _ = match self {
            Writer::Plain(w) => w.shutdown().await,
            Writer::Tls(w) => w.shutdown().await,
        };
    }
}

/// Runs the background flush (`flush.ms`, rolled segments) every
/// `log.flush.scheduler.interval.ms`.
async fn flush_loop(broker: Arc<Broker>, mut stop: broadcast::Receiver<()>) {
    let mut tick = tokio::time::interval(Duration::from_millis(
        broker.config.flush_scheduler_interval_ms,
    ));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.recv() => return,
            _ = tick.tick() => {}
        }
        for p in broker.replicas.all_partitions() {
            if let Err(e) = p.flush_if_needed().await {
                tracing::error!(topic = %p.topic, partition = p.index, error = %e, at = now_ms(), "background flush failed");
            }
        }
    }
}

enum ReadFrame {
    Frame(Bytes),
    Eof,
}

async fn read_frame<R: AsyncRead + Unpin>(rd: &mut R, max: usize) -> Result<ReadFrame, String> {
    let mut prefix = [0u8; 4];
    match tokio::time::timeout(IDLE_TIMEOUT, rd.read_exact(&mut prefix)).await {
        Err(_) => return Err("idle timeout".into()),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(ReadFrame::Eof),
        Ok(Err(e)) => return Err(e.to_string()),
        Ok(Ok(_)) => {}
    }
    let len = frame::check_frame_len(prefix, max).map_err(|e| e.to_string())?;
    // Read straight into the buffer's spare capacity: no zeroing of a (up to 100 MiB)
    // buffer that the socket is about to fill anyway.
    let mut body = BytesMut::with_capacity(len);
    while body.len() < len {
        let mut limited = (&mut *rd).take((len - body.len()) as u64);
        match limited.read_buf(&mut body).await {
            Ok(0) => return Err("client vanished mid-request: end of stream".into()),
            Ok(_) => {}
            Err(e) => return Err(format!("client vanished mid-request: {e}")),
        }
    }
    Ok(ReadFrame::Frame(body.freeze()))
}

/// An answer waiting for the connection's writer. Until it is written (or dropped with a
/// closing connection) it holds its bytes of the connection's budget and counts in the
/// broker's queued-answer gauge (Kafka's ResponseQueueSize, in bytes).
struct Queued {
    out: Option<Outcome>,
    _permit: OwnedSemaphorePermit,
    size: usize,
    broker: Arc<Broker>,
}

impl Queued {
    fn new(out: Outcome, permit: OwnedSemaphorePermit, size: usize, broker: &Arc<Broker>) -> Self {
        let now = broker
            .response_queue_bytes
            .fetch_add(size, Ordering::Relaxed)
            + size;
        broker
            .response_queue_bytes_max
            .fetch_max(now, Ordering::Relaxed);
        Self {
            out: Some(out),
            _permit: permit,
            size,
            broker: broker.clone(),
        }
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.broker
            .response_queue_bytes
            .fetch_sub(self.size, Ordering::Relaxed);
    }
}

async fn serve<R: AsyncRead + Unpin>(
    broker: Arc<Broker>,
    mut rd: R,
    mut wr: Writer,
    mut conn: handlers::Connection,
    mut stop: broadcast::Receiver<()>,
) {
    let peer = conn.client_host.clone();
    // Answers in request order. Deferred answers (a produce waiting for its fsync) are
    // resolved here, one after another, while the reader goes on appending later requests.
    // The queue is bounded in answers (the channel) and in bytes (`budget`).
    let (tx, mut rx) = mpsc::channel::<Queued>(64);
    let budget = Arc::new(Semaphore::new(QUEUED_RESPONSE_BYTES));
    let writer_peer = peer.clone();
    let writer = tokio::spawn(async move {
        while let Some(mut queued) = rx.recv().await {
            let item = match queued.out.take() {
                Some(Outcome::Deferred(pending)) => pending.await,
                Some(other) => other,
                None => Outcome::NoResponse,
            };
            let written = wr.send(item).await;
            drop(queued);
            if let Err(why) = written {
                tracing::info!(peer = %writer_peer, %why, "closing connection");
                break;
            }
        }
        wr.shutdown().await;
    });
    loop {
        // Before a SASL connection has authenticated, frames are bounded by
        // `sasl.server.max.receive.size` (512 KiB), as in Kafka: a stranger cannot make
        // the broker buffer a 100 MiB frame.
        let max = if conn.auth.is_open() {
            broker.config.socket_request_max_bytes
        } else {
            broker.config.sasl_server_max_receive_size
        };
        // A throttled client (KIP-219): its answer is on its way, but nothing more is
        // read from it until the throttle time has passed.
        if let Some(until) = conn.muted_until.take() {
            tokio::select! {
                _ = stop.recv() => break,
                _ = tx.closed() => break,
                _ = tokio::time::sleep_until(until) => {}
            }
        }
        let frame = tokio::select! {
            _ = stop.recv() => break,
            _ = tx.closed() => break,
            f = read_frame(&mut rd, max) => f,
        };
        let frame = match frame {
            Ok(ReadFrame::Frame(f)) => f,
            Ok(ReadFrame::Eof) => break,
            Err(why) => {
                tracing::info!(%peer, %why, "closing connection");
                break;
            }
        };
        match handlers::dispatch(&broker, &mut conn, frame).await {
            Outcome::NoResponse => {}
            Outcome::Close(why) => {
                tracing::info!(%peer, %why, "closing connection");
                break;
            }
            out => {
                let size = match &out {
                    Outcome::Respond(b) => b.len(),
                    Outcome::RespondFile(f) => f.mem_len(),
                    _ => 0,
                }
                .min(QUEUED_RESPONSE_BYTES);
                // Wait for the writer to drain earlier answers if they fill the budget (not
                // for a stop: the answer in hand is still sent, as the stop promises).
                let permit = tokio::select! {
                    _ = tx.closed() => break,
                    p = budget.clone().acquire_many_owned(size as u32) => p,
                };
                let Ok(permit) = permit else { break };
                let queued = Queued::new(out, permit, size, &broker);
                if tx.send(queued).await.is_err() {
                    break;
                }
            }
        }
    }
    drop(tx);
    let _ = writer.await;
    broker.shares.connection_closed(conn.id);
}

/// Applies retention to every partition every `log.retention.check.interval.ms`.
async fn retention_loop(broker: Arc<Broker>, mut stop: broadcast::Receiver<()>) {
    let mut tick = tokio::time::interval(Duration::from_millis(
        broker.config.retention_check_interval_ms,
    ));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.recv() => return,
            _ = tick.tick() => {}
        }
        let now = now_ms();
        for p in broker.replicas.all_partitions() {
            if let Err(e) = p.apply_retention(now) {
                tracing::error!(topic = %p.topic, partition = p.index, error = %e, "retention failed");
            }
        }
    }
}

/// The log cleaner: every `log.cleaner.backoff.ms`, cleans the dirtiest compacted log
/// past its `min.cleanable.dirty.ratio` (or past `max.compaction.lag.ms`), then the
/// next, until none is cleanable. One log at a time, on the blocking pool.
async fn cleaner_loop(broker: Arc<Broker>, mut stop: broadcast::Receiver<()>) {
    if !broker.config.cleaner_enable {
        return;
    }
    let mut tick = tokio::time::interval(Duration::from_millis(broker.config.cleaner_backoff_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.recv() => return,
            _ = tick.tick() => {}
        }
        loop {
            let dirtiest = broker
                .replicas
                .all_partitions()
                .into_iter()
                .filter_map(|p| p.cleanable_ratio().map(|r| (r, p)))
                .max_by(|a, b| a.0.total_cmp(&b.0));
            let Some((_, p)) = dirtiest else { break };
            match p.clean(broker.config.cleaner_max_map_entries).await {
                Ok(Some(_)) => {}
                Ok(None) => break,
                Err(e) => {
                    tracing::error!(topic = %p.topic, partition = p.index, error = %e, "cleaning failed");
                    break;
                }
            }
            if stop.try_recv().is_ok() {
                return;
            }
        }
    }
}
