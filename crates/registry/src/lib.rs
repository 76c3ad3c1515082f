//! `gregor-registry`: a schema registry with Confluent Schema Registry's REST API, run
//! as a client of a Gregor (or any Kafka) cluster.
//!
//! It reaches the cluster only through the Kafka protocol (librdkafka): its state lives
//! in the compacted one-partition topic `_schemas`, which every registry process reads
//! from the beginning and keeps tailing; the primary, the one process that writes, is
//! whichever member of a consumer group owns that topic's partition 0.
//!
//! Layout:
//! - `model`: schema types, compatibility levels, modes, and the `_schemas` records.
//! - `state`: the in-memory state, a replay of the records (pure).
//! - `schema`: Avro, JSON Schema and Protobuf parsing and pairwise compatibility.
//! - `service`: write decisions (register, delete, config, mode) as records (pure).
//! - `store`: the topic: creation, the tailer, appends, read-your-writes waits.
//! - `election`: the consumer group that elects the primary.
//! - `node`: one process: the write path on the primary, announcing itself.
//! - `forward`: routing writes to the primary over HTTP.
//! - `api`: the REST routes; `error`: errors and their Confluent error bodies.

pub mod api;
pub mod election;
pub mod error;
pub mod forward;
pub mod model;
pub mod node;
pub mod schema;
pub mod service;
pub mod state;
pub mod store;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use rdkafka::config::ClientConfig;

/// How a registry process is started.
#[derive(Clone, Debug)]
pub struct Options {
    /// `HOST:PORT` to serve HTTP on; port 0 picks a free one.
    pub listen: String,
    /// The URL other registry processes forward writes to; default `http://` + the
    /// bound address.
    pub advertised_url: Option<String>,
    /// librdkafka settings: `bootstrap.servers` and anything passed with `-X`.
    pub client: ClientConfig,
    /// The topic holding the registry's state.
    pub topic: String,
    /// The consumer group whose owner of partition 0 is the primary.
    pub group: String,
    /// The group's session timeout: how long a dead primary keeps its role.
    pub session_timeout_ms: u32,
}

/// Runs a registry process until `shutdown` completes. `ready` is called with the bound
/// address and the advertised URL once the state has been read to the log end and the
/// HTTP listener is up.
pub async fn run(
    opts: Options,
    ready: impl FnOnce(SocketAddr, &str),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(&opts.listen)
        .await
        .with_context(|| format!("cannot listen on {}", opts.listen))?;
    let addr = listener.local_addr()?;
    let url = opts
        .advertised_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let state = Arc::new(Mutex::new(state::State::default()));
    let (client, topic) = (opts.client.clone(), opts.topic.clone());
    let store = tokio::task::spawn_blocking(move || store::Store::open(&client, &topic, state))
        .await?
        .with_context(|| format!("cannot open topic {}", opts.topic))?;
    store
        .initial_catch_up(Duration::from_secs(60))
        .await
        .with_context(|| format!("cannot read topic {}", opts.topic))?;
    let election = election::Election::join(
        &opts.client,
        &opts.topic,
        &opts.group,
        opts.session_timeout_ms,
    )?;
    let node = Arc::new(node::Node::new(store, election, url.clone()));
    tokio::spawn(node.clone().announce_loop());
    ready(addr, &url);
    axum::serve(listener, api::router(node.clone()))
        .with_graceful_shutdown(shutdown)
        .await?;
    tokio::task::spawn_blocking(move || node.election.leave()).await?;
    Ok(())
}
