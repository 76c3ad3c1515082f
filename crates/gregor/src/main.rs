//! `gregor`: one binary for the broker and its tools.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

/// `println!` for command output: a closed stdout (`gregor ... | head`) ends the program
/// quietly with success instead of a panic.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout(), $($t)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

mod acl;
mod bench;
mod bench_fetch_raw;
mod bench_raw;
mod cluster_up;
mod conn;
mod connect;
mod console;
mod consume;
mod elect;
mod features;
mod group;
mod produce;
mod quorum;
mod quota;
mod reassign;
mod registry;
mod share_consume;
mod share_group;
mod topic;
mod txn;
mod user;
mod wire;
mod wire_security;

#[derive(Parser)]
#[command(
    name = "gregor",
    version,
    about = "Gregor: a Kafka-compatible streaming platform in one binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log line format on stderr for the long-running commands (broker, registry,
    /// connect, console): text for people, json (one object per line) for log shippers.
    #[arg(long, value_enum, default_value = "text", global = true)]
    log_format: LogFormat,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default)]
enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Set once in `main`, read by `init_logging`.
static LOG_FORMAT: std::sync::OnceLock<LogFormat> = std::sync::OnceLock::new();

#[derive(Subcommand)]
enum Command {
    /// Run a broker (a single-node cluster by default).
    ///
    /// Example: gregor broker --data-dir ./gregor-data --listen 127.0.0.1:9092
    Broker(BrokerArgs),
    /// Load-test a Kafka-compatible cluster with librdkafka (the rdkafka crate).
    ///
    /// Example: gregor bench produce --topic bench --count 1000000 --size 100
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Create, list, describe, delete and configure topics.
    ///
    /// Example: gregor topic create orders -p 6
    Topic {
        #[command(flatten)]
        conn: conn::Conn,
        #[command(subcommand)]
        cmd: topic::TopicCommand,
    },
    /// Write lines from stdin (or a file) as records.
    ///
    /// Example: printf 'k1:hello\nk2:world\n' | gregor produce greetings -K :
    Produce {
        #[command(flatten)]
        conn: conn::Conn,
        #[command(flatten)]
        args: produce::ProduceArgs,
    },
    /// Read records from topics.
    ///
    /// Example: gregor consume greetings --from beginning -e -f '%o %k=%s\n'
    Consume {
        #[command(flatten)]
        conn: conn::Conn,
        #[command(flatten)]
        args: consume::ConsumeArgs,
    },
    /// List, describe (with lag) and delete consumer groups.
    ///
    /// Example: gregor group describe billing
    Group {
        #[command(flatten)]
        conn: conn::Conn,
        #[command(subcommand)]
        cmd: group::GroupCommand,
    },
    /// List, describe, reset the offsets of and delete share groups (KIP-932 queues).
    ///
    /// Example: gregor share-group describe workers
    ShareGroup {
        #[command(flatten)]
        conn: conn::Conn,
        #[command(subcommand)]
        cmd: share_group::ShareGroupCommand,
    },
    /// List and describe transactions, and the producers of a topic's partitions.
    ///
    /// Example: gregor txn list --state Ongoing
    Txn {
        #[command(flatten)]
        conn: conn::Conn,
        #[command(subcommand)]
        cmd: txn::TxnCommand,
    },
    /// Create, list and delete ACLs (kafka-acls.sh's --add, --list, --remove).
    ///
    /// Example: gregor acl create --allow-principal User:alice --operation read --topic orders
    Acl {
        #[command(flatten)]
        conn: conn::Conn,
        #[command(subcommand)]
        cmd: acl::AclCommand,
    },
    /// SCRAM users: set, delete and list credentials.
    ///
    /// Example: gregor user scram set alice --password alice-secret
    User {
        #[command(flatten)]
        conn: conn::Conn,
        #[command(subcommand)]
        cmd: user::UserCommand,
    },
    /// Client quotas: byte rates, request percentage, connection rates
    /// (kafka-configs.sh's --entity-type users|clients|ips).
    ///
    /// Example: gregor quota set --client-id loader producer_byte_rate=1048576
    Quota {
        #[command(flatten)]
        conn: conn::Conn,
        #[command(subcommand)]
        cmd: quota::QuotaCommand,
    },
    /// Run a schema registry (Confluent Schema Registry's REST API) that keeps its
    /// state in the cluster's compacted `_schemas` topic.
    ///
    /// Example: gregor registry --listen 127.0.0.1:8081 -b 127.0.0.1:9092
    Registry {
        #[command(flatten)]
        conn: conn::Conn,
        #[command(flatten)]
        args: registry::RegistryArgs,
    },
    /// Run a Kafka Connect-compatible worker (standalone mode): Kafka Connect's REST
    /// API, converters, transforms, the FileStream and PostgreSQL connectors.
    ///
    /// Example: gregor connect --listen 127.0.0.1:8083 -b 127.0.0.1:9092 worker.properties
    Connect {
        #[command(flatten)]
        conn: conn::Conn,
        #[command(flatten)]
        args: connect::ConnectArgs,
    },
    /// Serve a web console: cluster overview, topics, a message browser, consumer
    /// groups with lag over time, transactions. Speaks only the Kafka protocol.
    ///
    /// Example: gregor console --listen 127.0.0.1:8080 -b 127.0.0.1:9092
    Console {
        #[command(flatten)]
        conn: conn::Conn,
        #[command(flatten)]
        args: console::ConsoleArgs,
    },
    /// Cluster information.
    ///
    /// Example: gregor cluster info --output json
    Cluster {
        #[command(flatten)]
        conn: conn::Conn,
        #[command(subcommand)]
        cmd: ClusterCommand,
    },
}

#[derive(Subcommand)]
enum ClusterCommand {
    /// Brokers, cluster id, and topic and partition counts.
    ///
    /// Example: gregor cluster info
    Info,
    /// Feature levels (KIP-584): supported ranges and finalized levels; with
    /// `upgrade`/`downgrade`, change them.
    ///
    /// Example: gregor cluster features upgrade --feature transaction.version=2
    Features {
        #[command(subcommand)]
        cmd: Option<features::FeaturesCommand>,
    },
    /// The metadata quorum: the active controller, and each voter's and broker's
    /// log end offset and lag; `add` and `remove` change the voters (KIP-853).
    ///
    /// Example: gregor cluster quorum
    Quorum {
        #[command(subcommand)]
        cmd: Option<quorum::QuorumCommand>,
    },
    /// Leader elections (ElectLeaders): preferred (back to each partition's first
    /// replica) or unclean (partitions without a live leader), on a topic's partitions or
    /// on all of them.
    ///
    /// Example: gregor cluster elect-leaders --topic orders --partition 0,1
    ElectLeaders(elect::ElectArgs),
    /// Move partitions between brokers (AlterPartitionReassignments): generate a
    /// balanced plan, execute it with an optional throttle, verify, cancel.
    ///
    /// Example: gregor cluster reassign execute --plan plan.json --throttle 10000000 --wait
    Reassign {
        #[command(subcommand)]
        cmd: reassign::ReassignCommand,
    },
    /// Move every replica off a broker and wait until done, before it is stopped and
    /// unregistered.
    ///
    /// Example: gregor cluster decommission 3
    Decommission(reassign::DecommissionArgs),
    /// Remove a stopped broker's registration (UnregisterBroker).
    ///
    /// Example: gregor cluster unregister 3
    Unregister {
        /// The broker id.
        broker: i32,
    },
    /// Start a local cluster of broker processes (data under ./gregor-cluster);
    /// Ctrl-C stops it.
    ///
    /// Example: gregor cluster up --nodes 3
    Up(cluster_up::UpArgs),
}

#[derive(clap::Args)]
struct BrokerArgs {
    /// Kafka-style properties file (key=value per line).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (Kafka's log.dirs, one dir). Default: ./gregor-data. An
    /// `--override log.dirs=a,b,...` (several dirs) takes precedence.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Address to listen on (Kafka's listeners). Default: 127.0.0.1:9092; port 0 picks a free one.
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    /// Any Kafka broker config, e.g. --override num.partitions=3. Repeatable.
    #[arg(long = "override", short = 'o', value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

/// Options every client command takes, and whether each takes a value.
const CONNECTION_OPTIONS: &[(&str, bool)] = &[
    ("-b", true),
    ("--brokers", true),
    ("-X", true),
    ("-v", false),
    ("--verbose", false),
    ("--output", true),
];

/// Lets connection options come before the command, as users type them
/// (`gregor -b host:9092 topic list`): clap only accepts a subcommand's options after
/// the subcommand's name, so leading ones are moved there. Everything else is left as
/// it is, and clap reports what it does not know.
fn hoist_connection_options(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut rest = args.into_iter();
    let mut out: Vec<std::ffi::OsString> = rest.next().into_iter().collect();
    let mut hoisted = Vec::new();
    while let Some(arg) = rest.next() {
        let text = arg.to_string_lossy().into_owned();
        let option = CONNECTION_OPTIONS.iter().find(|(name, _)| {
            text == *name
                || (name.starts_with("--") && text.starts_with(&format!("{name}=")))
                || (!name.starts_with("--") && text.len() > 2 && text.starts_with(name))
        });
        match option {
            Some((name, takes_value)) => {
                let inline = text.len() > name.len();
                hoisted.push(arg);
                if *takes_value && !inline {
                    hoisted.extend(rest.next());
                }
            }
            None => {
                // The subcommand: its name, then the hoisted options, then the rest.
                out.push(arg);
                out.append(&mut hoisted);
                out.extend(rest);
                return out;
            }
        }
    }
    out.append(&mut hoisted);
    out
}

fn main() {
    let cli = Cli::parse_from(hoist_connection_options(std::env::args_os().collect()));
    let _ = LOG_FORMAT.set(cli.log_format);
    let result = match cli.command {
        Command::Broker(args) => run_broker(args),
        Command::Bench(cmd) => bench::run(cmd),
        Command::Topic { conn, cmd } => topic::run(&conn, cmd),
        Command::Produce { conn, args } => produce::run(&conn, args),
        Command::Consume { conn, args } => consume::run(&conn, args),
        Command::Group { conn, cmd } => group::run(&conn, cmd),
        Command::ShareGroup { conn, cmd } => share_group::run(&conn, cmd),
        Command::Txn { conn, cmd } => txn::run(&conn, cmd),
        Command::Acl { conn, cmd } => acl::run(&conn, cmd),
        Command::User { conn, cmd } => user::run(&conn, cmd),
        Command::Quota { conn, cmd } => quota::run(&conn, cmd),
        Command::Registry { conn, args } => registry::run(&conn, args),
        Command::Connect { conn, args } => connect::run(&conn, args),
        Command::Console { conn, args } => console::run(&conn, args),
        Command::Cluster {
            conn,
            cmd: ClusterCommand::Info,
        } => group::cluster_info(&conn),
        Command::Cluster {
            conn,
            cmd: ClusterCommand::Features { cmd },
        } => features::run(&conn, cmd),
        Command::Cluster {
            conn,
            cmd: ClusterCommand::Quorum { cmd: None },
        } => quorum::run(&conn),
        Command::Cluster {
            conn,
            cmd: ClusterCommand::Quorum { cmd: Some(cmd) },
        } => quorum::change(&conn, cmd),
        Command::Cluster {
            conn,
            cmd: ClusterCommand::ElectLeaders(args),
        } => elect::run(&conn, args),
        Command::Cluster {
            conn,
            cmd: ClusterCommand::Reassign { cmd },
        } => reassign::run(&conn, cmd),
        Command::Cluster {
            conn,
            cmd: ClusterCommand::Decommission(args),
        } => reassign::decommission(&conn, args),
        Command::Cluster {
            conn,
            cmd: ClusterCommand::Unregister { broker },
        } => reassign::unregister(&conn, broker),
        Command::Cluster {
            cmd: ClusterCommand::Up(args),
            ..
        } => cluster_up::run(args),
    };
    // One plain line on failure, and a non-zero exit.
    if let Err(e) = result {
        eprintln!("gregor: {e:#}");
        std::process::exit(1);
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match LOG_FORMAT.get().copied().unwrap_or_default() {
        LogFormat::Text => builder.try_init(),
        // `flatten_event`: message and fields at the top level of each object.
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}

fn broker_config(args: &BrokerArgs) -> Result<gregor_broker::BrokerConfig> {
    let mut explicit: BTreeMap<String, String> = BTreeMap::new();
    if let Some(path) = &args.config {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        explicit.extend(gregor_broker::config::parse_properties(&text));
    }
    let mut overridden_dirs = false;
    for o in &args.overrides {
        let (k, v) = o
            .split_once('=')
            .with_context(|| format!("malformed --override {o:?}: expected key=value"))?;
        overridden_dirs |= k.trim() == "log.dirs";
        explicit.insert(k.trim().to_string(), v.trim().to_string());
    }
    // `--data-dir` is one log dir; `--override log.dirs=a,b` (several) wins over it.
    if let Some(dir) = args.data_dir.as_ref().filter(|_| !overridden_dirs) {
        explicit.insert("log.dirs".into(), dir.display().to_string());
    }
    if let Some(listen) = &args.listen {
        explicit.insert("listeners".into(), format!("PLAINTEXT://{listen}"));
    }
    Ok(gregor_broker::BrokerConfig::from_explicit(explicit)?)
}

fn run_broker(args: BrokerArgs) -> Result<()> {
    init_logging();
    let config = broker_config(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("gregor")
        .build()?;
    runtime.block_on(async move {
        if !config.cluster.broker {
            let node = gregor_broker::Broker::open_controller(config).await?;
            let mut out = std::io::stdout();
            writeln!(
                out,
                "gregor controller ready: node.id={} in the metadata quorum on {} (cluster.id={})",
                node.config.node_id,
                node.config
                    .cluster
                    .controller_listener
                    .map_or_else(|| "-".to_string(), |a| a.to_string()),
                node.cluster_id
            )?;
            out.flush()?;
            shutdown_signal().await;
            node.shutdown().await?;
            tracing::info!("controller stopped cleanly");
            return Ok(());
        }
        let mut sockets = Vec::new();
        for l in &config.listeners {
            if let Some(tls) = &l.tls {
                tls.server_config()
                    .with_context(|| format!("listener {}: TLS settings", l.name))?;
            }
            if let Some(oauth) = l.sasl.as_ref().and_then(|s| s.oauth.clone()) {
                gregor_security::oauthbearer::OAuthValidator::load(oauth)
                    .with_context(|| format!("listener {}: OAUTHBEARER settings", l.name))?;
            }
            let socket = tokio::net::TcpListener::bind(l.bind)
                .await
                .with_context(|| format!("cannot listen on {} ({})", l.bind, l.name))?;
            sockets.push((l.clone(), socket));
        }
        let broker = gregor_broker::Broker::open(config).await?;
        // Before the ready line: once it is out, `metrics.listener` answers.
        gregor_broker::metrics::BrokerMetrics::start_listener(&broker).await?;
        let mut bound = Vec::new();
        for (l, socket) in &sockets {
            let addr = socket.local_addr()?;
            broker.set_listener_port(&l.name, addr.port());
            bound.push(format!("{addr} ({}, {})", l.name, l.protocol.name()));
        }
        broker.join_cluster().await?;
        let mut out = std::io::stdout();
        writeln!(
            out,
            "gregor broker ready: listening on {} (node.id={}, cluster.id={}, data dir {})",
            bound.join(", "),
            broker.config.node_id,
            broker.cluster_id,
            broker.config.data_dir.display()
        )?;
        out.flush()?;
        gregor_broker::server::run_listeners(broker, sockets, shutdown_signal()).await?;
        tracing::info!("broker stopped cleanly");
        Ok(())
    })
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    match (term, int) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        _ => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
    tracing::info!("shutdown signal received: finishing requests and flushing logs");
}

#[cfg(test)]
mod tests {
    use super::hoist_connection_options;

    fn hoist(args: &[&str]) -> Vec<String> {
        hoist_connection_options(args.iter().map(Into::into).collect())
            .into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn connection_options_before_the_command_move_after_it() {
        assert_eq!(
            hoist(&["gregor", "-b", "h:1", "topic", "list"]),
            ["gregor", "topic", "-b", "h:1", "list"]
        );
        assert_eq!(
            hoist(&[
                "gregor",
                "--brokers=h:1",
                "-v",
                "-Xa=b",
                "--output",
                "json",
                "group",
                "list"
            ]),
            [
                "gregor",
                "group",
                "--brokers=h:1",
                "-v",
                "-Xa=b",
                "--output",
                "json",
                "list"
            ]
        );
        assert_eq!(
            hoist(&["gregor", "topic", "-b", "h:1", "list"]),
            ["gregor", "topic", "-b", "h:1", "list"]
        );
        assert_eq!(hoist(&["gregor", "--version"]), ["gregor", "--version"]);
        assert_eq!(hoist(&["gregor", "-b"]), ["gregor", "-b"]);
    }
}
