//! `gregor connect`: run a Kafka Connect-compatible worker (standalone or distributed) against
//! the cluster; see the `gregor-connect` crate.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::conn::Conn;

#[derive(clap::Args)]
pub(crate) struct ConnectArgs {
    /// Address to serve the REST API on; port 0 picks a free one. Default: the
    /// `listeners` worker property, else 127.0.0.1:8083.
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    /// Worker properties (Kafka's names: bootstrap.servers, key.converter,
    /// value.converter, offset.storage.file.filename, listeners, ...; group.id,
    /// config.storage.topic, offset.storage.topic, status.storage.topic for
    /// distributed mode). A bootstrap.servers there takes the place of -b.
    #[arg(value_name = "worker.properties")]
    properties: Option<PathBuf>,
}

pub(crate) fn run(conn: &Conn, args: ConnectArgs) -> Result<()> {
    crate::init_logging();
    let props = match &args.properties {
        Some(p) => gregor_connect::config::parse_properties(
            &std::fs::read_to_string(p)
                .with_context(|| format!("cannot read worker properties {}", p.display()))?,
        ),
        None => Default::default(),
    };
    let mut conn = conn.clone();
    if let Some(b) = props.get("bootstrap.servers") {
        conn.brokers = b.clone();
    }
    let worker = gregor_connect::config::WorkerConfig::from_props(props)?;
    let opts = gregor_connect::Options {
        listen: args.listen,
        client: conn.config()?,
        worker,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("gregor-connect")
        .build()?;
    runtime.block_on(gregor_connect::run(
        opts,
        |ready| {
            let mut out = std::io::stdout();
            let _ = writeln!(
                out,
                "gregor connect ready: listening on {} (worker id {}, {})",
                ready.addr, ready.worker_id, ready.mode
            );
            let _ = out.flush();
        },
        crate::shutdown_signal(),
    ))
}
