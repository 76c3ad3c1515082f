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
use std::sync::atomic::Ordering;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc, OwnedSemaphorePermit, Semaphore};

use crate::broker::Broker;
use crate::frame::write_frame;
use crate::handlers::{self, Outcome};
use crate::util::now_ms;

/// Kafka's `connections.max.idle.ms` default.
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// Bytes of answers a connection may have queued for its writer (record data sent from
/// files does not count: it is not in memory). A client that pipelines requests but does
/// not read its answers stops being read once this is full, as Kafka mutes its channel.
pub const QUEUED_RESPONSE_BYTES: usize = 16 << 20;

/// Serves `listener` until `shutdown` resolves, then waits for connections to finish
/// and flushes the broker.
pub async fn run(
    broker: Arc<Broker>,
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), crate::broker::StartError> {
    broker.join_cluster().await?;
    let (stop_tx, _) = broadcast::channel::<()>(1);
    let limit = Arc::new(Semaphore::new(
        broker.config.max_connections.min(Semaphore::MAX_PERMITS),
    ));
    let flusher = tokio::spawn(flush_loop(broker.clone(), stop_tx.subscribe()));
    let retention = tokio::spawn(retention_loop(broker.clone(), stop_tx.subscribe()));
    let cleaner = tokio::spawn(cleaner_loop(broker.clone(), stop_tx.subscribe()));
    let expiry = tokio::spawn(crate::expiry::run(broker.clone(), stop_tx.subscribe()));
    // Transactions a stop left open or half-finished get their timers and markers back.
    broker.txns.resume(&broker).await;
    let (done_tx, mut done_rx) = mpsc::channel::<()>(1);
    let quotas = Arc::new(crate::connection_quotas::ConnectionQuotas::default());
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
        };
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((socket, peer)) => {
                // Over `max.connections.per.ip`: closed at once, as Kafka's acceptor does
                // (dropping the socket); the permit goes back with it.
                let Some(slot) = quotas.try_acquire(&broker.config, peer.ip()) else {
                    tracing::info!(%peer, "closing connection: max.connections.per.ip reached");
                    drop(socket);
                    continue;
                };
                let broker = broker.clone();
                let stop = stop_tx.subscribe();
                let done = done_tx.clone();
                tokio::spawn(async move {
                    tracing::debug!(%peer, "connection opened");
                    serve(broker, socket, stop).await;
                    tracing::debug!(%peer, "connection closed");
                    drop(slot);
                    drop(permit);
                    drop(done);
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: back off briefly, keep serving.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    drop(listener);
    broker.txns.shutdown();
    broker.groups.shutdown().await;
    let _ = stop_tx.send(());
    drop(done_tx);
    let _ = tokio::time::timeout(Duration::from_secs(30), done_rx.recv()).await;
    let _ = flusher.await;
    let _ = retention.await;
    let _ = cleaner.await;
    let _ = expiry.await;
    broker.leave_cluster().await;
    let b = broker.clone();
    tokio::task::spawn_blocking(move || b.shutdown())
        .await
        .map_err(|e| crate::broker::StartError::MetaProperties(e.to_string()))?
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

async fn read_frame(
    rd: &mut tokio::net::tcp::OwnedReadHalf,
    max: usize,
) -> Result<ReadFrame, String> {
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

async fn serve(broker: Arc<Broker>, socket: TcpStream, mut stop: broadcast::Receiver<()>) {
    let _ = socket.set_nodelay(true);
    let peer = socket.peer_addr().ok();
    let (mut rd, mut wr) = socket.into_split();
    // Answers in request order. Deferred answers (a produce waiting for its fsync) are
    // resolved here, one after another, while the reader goes on appending later requests.
    // The queue is bounded in answers (the channel) and in bytes (`budget`).
    let (tx, mut rx) = mpsc::channel::<Queued>(64);
    let budget = Arc::new(Semaphore::new(QUEUED_RESPONSE_BYTES));
    let writer = tokio::spawn(async move {
        while let Some(mut queued) = rx.recv().await {
            let item = match queued.out.take() {
                Some(Outcome::Deferred(pending)) => pending.await,
                Some(other) => other,
                None => Outcome::NoResponse,
            };
            let written = match item {
                Outcome::Respond(bytes) => wr.write_all(&bytes).await.map_err(|e| e.to_string()),
                Outcome::RespondFile(frame) => write_frame(&mut wr, &frame)
                    .await
                    .map_err(|e| e.to_string()),
                Outcome::NoResponse => Ok(()),
                Outcome::Close(why) => Err(why),
                Outcome::Deferred(_) => Err("nested deferred response".into()),
            };
            drop(queued);
            if let Err(why) = written {
                tracing::info!(?peer, %why, "closing connection");
                break;
            }
        }
        let _ = wr.shutdown().await;
    });
    let max = broker.config.socket_request_max_bytes;
    let mut conn = handlers::Connection {
        scratch: Vec::new(),
        client_host: peer
            .map_or_else(String::new, |p| format!("/{}", p.ip()))
            .into(),
    };
    loop {
        let frame = tokio::select! {
            _ = stop.recv() => break,
            _ = tx.closed() => break,
            f = read_frame(&mut rd, max) => f,
        };
        let frame = match frame {
            Ok(ReadFrame::Frame(f)) => f,
            Ok(ReadFrame::Eof) => break,
            Err(why) => {
                tracing::info!(?peer, %why, "closing connection");
                break;
            }
        };
        match handlers::dispatch(&broker, &mut conn, frame).await {
            Outcome::NoResponse => {}
            Outcome::Close(why) => {
                tracing::info!(?peer, %why, "closing connection");
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
