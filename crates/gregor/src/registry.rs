//! `gregor registry`: run a schema registry process (Confluent Schema Registry's REST
//! API) against the cluster; see the `gregor-registry` crate.

use std::io::Write;

use anyhow::Result;

use crate::conn::Conn;

#[derive(clap::Args)]
pub(crate) struct RegistryArgs {
    /// Address to serve HTTP on; port 0 picks a free one.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8081")]
    listen: String,
    /// The URL other registry processes forward writes to. Default: http:// and the
    /// bound address.
    #[arg(long, value_name = "URL")]
    advertised_url: Option<String>,
    /// The compacted topic that holds the registry's state.
    #[arg(long, default_value = "_schemas")]
    topic: String,
    /// The consumer group that elects the primary (the one process that writes).
    #[arg(long, default_value = "schema-registry")]
    group: String,
    /// How long a primary that stopped answering keeps its role.
    #[arg(long, default_value_t = 6000, value_name = "MS")]
    session_timeout_ms: u32,
}

pub(crate) fn run(conn: &Conn, args: RegistryArgs) -> Result<()> {
    crate::init_logging();
    let opts = gregor_registry::Options {
        listen: args.listen,
        advertised_url: args.advertised_url,
        client: conn.config()?,
        topic: args.topic,
        group: args.group,
        session_timeout_ms: args.session_timeout_ms,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("gregor-registry")
        .build()?;
    runtime.block_on(gregor_registry::run(
        opts,
        |addr, url| {
            let mut out = std::io::stdout();
            let _ = writeln!(
                out,
                "gregor registry ready: listening on {addr} (advertised as {url})"
            );
            let _ = out.flush();
        },
        crate::shutdown_signal(),
    ))
}
