//! `gregor console`: a web console for a Kafka-compatible cluster, served as
//! server-rendered HTML. It reaches the cluster only through the Kafka protocol
//! (librdkafka, plus a small raw client for the controller id, racks and transactions),
//! so it works against any Kafka cluster and never imports broker internals.
//!
//! # Layout
//! - `cluster`: the librdkafka clients; overview, topics, topic creation.
//! - `groups`: consumer groups, members, committed offsets and lag.
//! - `browse`: the message browser (by offset or time, key filter).
//! - `txns`, `logdirs` + `wire`: transactions and partition sizes over raw Kafka
//!   protocol (`kafka-protocol` types).
//! - `lag`: the lag sampler thread and its bounded per-group ring buffers.
//! - `routes`: thin axum handlers; `pages`: maud templates (escaped by construction).
//! - `error`: `ConsoleError`, rendered as an error page.
//!
//! librdkafka blocks, so its calls run on tokio's blocking pool; the lag sampler has a
//! thread of its own.

mod browse;
mod cluster;
pub mod error;
mod groups;
pub mod lag;
mod logdirs;
mod model;
mod pages;
mod routes;
mod txns;
mod wire;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rdkafka::config::ClientConfig;

pub use crate::cluster::Cluster;
pub use crate::error::{ConsoleError, Result};

pub struct Options {
    /// `HOST:PORT` to serve HTTP on; port 0 picks a free one.
    pub listen: String,
    /// bootstrap.servers and any security properties.
    pub client: ClientConfig,
    /// How often the lag sampler asks for every group's lag.
    pub lag_sample_interval: Duration,
    /// How long one request to the cluster may take before the page is an error.
    pub timeout: Duration,
}

/// Serves the console until `shutdown` completes; `ready` gets the bound address.
pub async fn run(
    opts: Options,
    ready: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let cluster = Cluster::new(opts.client, opts.timeout)?;
    let history = Arc::new(lag::LagHistory::default());
    let listen_err = |source| ConsoleError::Listen {
        addr: opts.listen.clone(),
        source,
    };
    // Dropped (and joined) when the server stops.
    let _sampler = lag::Sampler::start(
        Arc::clone(&cluster),
        Arc::clone(&history),
        opts.lag_sample_interval,
    )
    .map_err(listen_err)?;
    let listener = tokio::net::TcpListener::bind(&opts.listen)
        .await
        .map_err(listen_err)?;
    ready(listener.local_addr().map_err(listen_err)?);
    let state = routes::AppState {
        cluster,
        history,
        refresh_ms: u64::try_from(opts.lag_sample_interval.as_millis())
            .unwrap_or(u64::MAX)
            .clamp(500, 5000),
    };
    axum::serve(listener, routes::router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .map_err(listen_err)
}
