//! The metrics listener (`metrics.listener`): `GET /metrics` (Prometheus text format),
//! `GET /health/live` (200 while the process serves HTTP at all) and
//! `GET /health/ready` (200 once the broker serves its listeners and is unfenced, 503
//! before that and once it starts to stop).
//!
//! It runs on its own task with axum; a scrape reads partition state under short log
//! locks, so it runs on the blocking pool rather than on a runtime worker.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::MetricsError;
use crate::broker::Broker;

/// The classic text exposition format's content type (what `TextEncoder` writes).
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A running metrics listener; `stop` ends it.
pub struct MetricsServer {
    local_addr: SocketAddr,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl MetricsServer {
    /// Binds `addr` and serves the endpoints for `broker` on a task of their own.
    pub async fn start(broker: Arc<Broker>, addr: SocketAddr) -> Result<Self, MetricsError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| MetricsError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| MetricsError::Bind { addr, source })?;
        let (stop, mut stopped) = watch::channel(false);
        let app = Router::new()
            .route("/metrics", get(metrics))
            .route("/health/live", get(live))
            .route("/health/ready", get(ready))
            .with_state(broker);
        let task = tokio::spawn(async move {
            let shutdown = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                tracing::warn!(error = %e, "metrics listener stopped");
            }
        });
        tracing::info!(%local_addr, "metrics listener serving /metrics and /health/*");
        Ok(Self {
            local_addr,
            stop,
            task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets scrapes in flight finish, and waits for the task.
    pub async fn stop(self) {
        self.stop.send_replace(true);
        let _ = self.task.await;
    }
}

async fn metrics(State(broker): State<Arc<Broker>>) -> Response {
    let groups = super::BrokerMetrics::group_offsets(&broker).await;
    let rendered =
        tokio::task::spawn_blocking(move || broker.metrics.render(&broker, &groups)).await;
    match rendered {
        Ok(Ok(text)) => ([(header::CONTENT_TYPE, TEXT_FORMAT)], text).into_response(),
        Ok(Err(e)) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn live() -> &'static str {
    "live\n"
}

async fn ready(State(broker): State<Arc<Broker>>) -> Response {
    if broker.metrics.is_ready(&broker) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}
