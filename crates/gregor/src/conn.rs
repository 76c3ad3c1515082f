//! Connection settings and output shared by the client commands (`topic`, `produce`,
//! `consume`, `group`, `cluster`). They reach brokers only through the Kafka protocol,
//! via librdkafka (the `rdkafka` crate), so they work against any Kafka cluster.

use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::metadata::Metadata;

pub(crate) const TIMEOUT: Duration = Duration::from_secs(10);

#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Output {
    /// Tables for people.
    Text,
    /// JSON for scripts.
    Json,
}

#[derive(clap::Args, Clone, Debug)]
pub(crate) struct Conn {
    /// Bootstrap brokers.
    #[arg(
        short = 'b',
        long,
        env = "GREGOR_BROKERS",
        default_value = "127.0.0.1:9092",
        global = true
    )]
    pub brokers: String,
    /// A librdkafka client property, passed straight through. Repeatable.
    #[arg(short = 'X', value_name = "KEY=VALUE", global = true)]
    pub props: Vec<String>,
    /// Show the client library's own log lines.
    #[arg(short = 'v', long, global = true)]
    pub verbose: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "text", global = true)]
    pub output: Output,
}

impl Conn {
    /// The client config, after checking that the first bootstrap broker accepts TCP
    /// connections, so an unreachable cluster is one clear line, not a client log.
    /// The first bootstrap broker, `host:port`.
    pub(crate) fn first_broker(&self) -> &str {
        self.brokers.split(',').next().unwrap_or_default().trim()
    }

    pub(crate) fn config(&self) -> Result<ClientConfig> {
        let first = self.first_broker();
        let addrs: Vec<_> = first
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve {first}"))?
            .collect();
        let Some(addr) = addrs.first() else {
            bail!("cannot resolve {first}");
        };
        if let Err(e) = TcpStream::connect_timeout(addr, Duration::from_secs(5)) {
            let why = match e.kind() {
                std::io::ErrorKind::ConnectionRefused => "connection refused".to_string(),
                std::io::ErrorKind::TimedOut => "timed out".to_string(),
                _ => e.to_string(),
            };
            bail!("cannot reach {first}: {why}");
        }
        let mut cfg = ClientConfig::new();
        cfg.set("bootstrap.servers", &self.brokers);
        if !self.verbose {
            cfg.set("log_level", "0");
        }
        for p in &self.props {
            let (k, v) = p
                .split_once('=')
                .with_context(|| format!("malformed -X {p:?}: expected key=value"))?;
            cfg.set(k, v);
        }
        Ok(cfg)
    }

    pub(crate) fn admin(&self) -> Result<AdminClient<DefaultClientContext>> {
        self.config()?
            .create()
            .context("cannot create admin client")
    }

    /// Cluster metadata for one topic or all. Asked through a consumer handle, which
    /// does not ask the broker to auto-create the topic it looks up.
    pub(crate) fn metadata(&self, topic: Option<&str>) -> Result<Metadata> {
        let mut cfg = self.config()?;
        cfg.set("allow.auto.create.topics", "false");
        let c: BaseConsumer = cfg.create().context("cannot create client")?;
        c.fetch_metadata(topic, TIMEOUT)
            .context("cannot fetch metadata")
    }

    pub(crate) fn json(&self) -> bool {
        self.output == Output::Json
    }
}

/// A blocking runtime for the admin client's futures.
pub(crate) fn block_on<F: std::future::Future>(f: F) -> Result<F::Output> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    Ok(rt.block_on(f))
}

/// Prints rows as an aligned table with a header.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.len());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let w = widths.get(i).copied().unwrap_or(0);
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        out!("{}", s.trim_end());
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

/// Parses `key=value`.
pub(crate) fn kv(s: &str) -> Result<(String, String)> {
    let (k, v) = s
        .split_once('=')
        .with_context(|| format!("malformed {s:?}: expected key=value"))?;
    Ok((k.trim().to_string(), v.to_string()))
}
