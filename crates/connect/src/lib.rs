//! `gregor-connect`: a Kafka Connect-compatible worker run as a client of a Gregor (or
//! any Kafka) cluster: Kafka Connect's REST API, converters, transforms and connectors,
//! with Kafka's class names and settings so existing configs and scripts carry over.
//!
//! Two modes, as Kafka's: standalone (source offsets and connector configs in local
//! files) and distributed (`group.id` set: workers form a group with Kafka Connect's
//! group protocol and keep configs, source offsets and status in compacted topics; see
//! `runtime::distributed`).
//!
//! Layout:
//! - `config`: worker properties.
//! - `rest`: the REST API (axum); `error`: errors and their HTTP bodies.
//! - `runtime`: the worker (connector lifecycle), task threads, error handling and
//!   dead letter queue, validation, offset and config files.
//! - `converters`: JsonConverter, StringConverter, ByteArrayConverter.
//! - `transforms`: Single Message Transforms and predicates.
//! - `connectors`: the plugins (FileStreamSource, FileStreamSink).
//!
//! Delivery: at-least-once both ways. A source batch's offsets are stored only after
//! Kafka acknowledged every record of it; a sink commits consumed offsets only after
//! the task flushed the records.

pub mod config;
pub mod connectors;
pub mod converters;
pub mod error;
pub mod rest;
pub mod runtime;
pub mod transforms;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, Producer};

use crate::config::WorkerConfig;
use crate::runtime::distributed::cluster::Cluster;
use crate::runtime::distributed::log::TopicLog;
use crate::runtime::distributed::DistConfig;
use crate::runtime::store::{ConfigStore, OffsetStore};
use crate::runtime::Worker;

/// How a worker process is started.
#[derive(Clone, Debug)]
pub struct Options {
    /// `HOST:PORT` to serve HTTP on (port 0 picks a free one); else `listeners`, else
    /// 127.0.0.1:8083.
    pub listen: Option<String>,
    /// librdkafka settings: `bootstrap.servers` and anything passed with `-X`.
    pub client: ClientConfig,
    /// The worker's properties.
    pub worker: WorkerConfig,
}

/// What `ready` is told once the worker serves requests.
pub struct Ready<'a> {
    pub addr: SocketAddr,
    pub worker_id: &'a str,
    /// The mode and where its state lives, for the ready line.
    pub mode: String,
}

/// Runs a worker until `shutdown` completes: reads the cluster id, restarts the stored
/// connectors, serves the REST API; on shutdown stops every task (flushing sinks and
/// storing source offsets).
pub async fn run(
    opts: Options,
    ready: impl FnOnce(Ready<'_>),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listen = opts
        .listen
        .clone()
        .or_else(|| opts.worker.listen.clone())
        .unwrap_or_else(|| "127.0.0.1:8083".to_string());
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    let worker_id = match (
        opts.worker.props.get("rest.advertised.host.name"),
        opts.worker.props.get("rest.advertised.port"),
    ) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => format!("{h}:{}", addr.port()),
        _ => addr.to_string(),
    };
    let client = opts.client.clone();
    let cluster_id = tokio::task::spawn_blocking(move || {
        let p: BaseProducer = client.create().context("cannot create a Kafka client")?;
        p.client()
            .fetch_cluster_id(Duration::from_secs(30))
            .context("cannot reach the cluster (no cluster id in 30s)")
    })
    .await??;
    if let Some(dist) = opts.worker.distributed.clone() {
        return run_distributed(opts, dist, listener, worker_id, cluster_id, ready, shutdown).await;
    }
    let offsets = OffsetStore::open(opts.worker.offsets_file.clone())?;
    let configs = ConfigStore::new(Some(opts.worker.configs_file.clone()));
    let worker = Arc::new(Worker::new(
        worker_id.clone(),
        cluster_id,
        opts.worker.props.clone(),
        opts.client.clone(),
        offsets,
        configs,
    ));
    let w = worker.clone();
    tokio::task::spawn_blocking(move || w.start_stored()).await??;
    ready(Ready {
        addr,
        worker_id: &worker_id,
        mode: format!(
            "standalone mode, offsets in {}",
            opts.worker.offsets_file.display()
        ),
    });
    axum::serve(listener, rest::router(worker.clone()))
        .with_graceful_shutdown(shutdown)
        .await?;
    tokio::task::spawn_blocking(move || worker.shutdown()).await?;
    Ok(())
}

/// A distributed worker: opens (creating them if missing) the config, offset and status
/// topics, runs the herder (group membership) beside the REST API; on shutdown the
/// herder stops every task and leaves the group.
async fn run_distributed(
    opts: Options,
    dist: DistConfig,
    listener: tokio::net::TcpListener,
    worker_id: String,
    cluster_id: String,
    ready: impl FnOnce(Ready<'_>),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let client = opts.client.clone();
    let d = dist.clone();
    let url = format!("http://{worker_id}/");
    let (cluster, offsets) = tokio::task::spawn_blocking(move || {
        let configs = TopicLog::open(&client, &d.config_topic, 1, d.config_replication)?;
        let status = TopicLog::open(
            &client,
            &d.status_topic,
            d.status_partitions,
            d.status_replication,
        )?;
        let offsets = TopicLog::open(
            &client,
            &d.offset_topic,
            d.offset_partitions,
            d.offset_replication,
        )?;
        let offsets = OffsetStore::on_topic(Arc::new(offsets))?;
        Ok::<_, anyhow::Error>((Cluster::new(d, url, configs, status), offsets))
    })
    .await??;
    let worker = Arc::new(Worker::distributed(
        worker_id.clone(),
        cluster_id,
        opts.worker.props.clone(),
        opts.client.clone(),
        offsets,
        cluster.clone(),
    ));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let bootstrap = opts
        .client
        .get("bootstrap.servers")
        .unwrap_or_default()
        .to_string();
    let herder = tokio::spawn(runtime::distributed::herder::run(
        worker.clone(),
        cluster,
        bootstrap,
        stop_rx,
    ));
    ready(Ready {
        addr,
        worker_id: &worker_id,
        mode: format!("distributed mode, group {}", dist.group_id),
    });
    let mut rest_stop = stop_tx.subscribe();
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    axum::serve(listener, rest::router(worker))
        .with_graceful_shutdown(async move {
            let _ = rest_stop.wait_for(|s| *s).await;
        })
        .await?;
    herder.await?;
    Ok(())
}
