//! `gregor console`: serve the web console against the cluster; see the
//! `gregor-console` crate.

use std::io::Write;
use std::time::Duration;

use anyhow::Result;

use crate::conn::Conn;

#[derive(clap::Args)]
pub(crate) struct ConsoleArgs {
    /// Address to serve HTTP on; port 0 picks a free one.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:8080")]
    listen: String,
    /// How often to sample every consumer group's total lag for the lag-over-time plot.
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    lag_sample_interval_ms: u64,
    /// How long one request to the cluster may take before a page shows an error.
    #[arg(long, default_value_t = 5000, value_name = "MS")]
    request_timeout_ms: u64,
}

pub(crate) fn run(conn: &Conn, args: ConsoleArgs) -> Result<()> {
    crate::init_logging();
    let opts = gregor_console::Options {
        listen: args.listen,
        client: conn.config()?,
        lag_sample_interval: Duration::from_millis(args.lag_sample_interval_ms.max(100)),
        timeout: Duration::from_millis(args.request_timeout_ms.max(100)),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("gregor-console")
        .build()?;
    runtime.block_on(gregor_console::run(
        opts,
        |addr| {
            let mut out = std::io::stdout();
            let _ = writeln!(out, "gregor console ready: listening on http://{addr}/");
            let _ = out.flush();
        },
        crate::shutdown_signal(),
    ))?;
    Ok(())
}
