//! `gregor cluster up`: a local cluster of broker processes in one command.
//!
//! Each node is this same binary run as `gregor broker` with its own data directory
//! under `--dir` (default `./gregor-cluster/node-N`), client port `base + N - 1` and,
//! for the voters, controller port `base + 100 + N - 1`. The first `--controllers`
//! nodes are combined broker+controller nodes (the metadata quorum's voters); the rest
//! are brokers only. The cluster id is kept in `--dir/cluster.id`, so running the
//! command again restarts the same cluster with its data. Ctrl-C stops every node
//! cleanly (SIGTERM to each, then waits).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context, Result};

#[derive(clap::Args)]
pub(crate) struct UpArgs {
    /// Number of nodes.
    #[arg(long, default_value_t = 3)]
    nodes: u16,
    /// How many of them are controllers (voters of the metadata quorum): 1, 3 or 5
    /// make sense. Default: all nodes up to 3.
    #[arg(long)]
    controllers: Option<u16>,
    /// Where the nodes keep their data.
    #[arg(long, default_value = "./gregor-cluster")]
    dir: PathBuf,
    /// Client port of node 1; node N listens on base + N - 1, its controller on
    /// base + 100 + N - 1.
    #[arg(long, default_value_t = 9092)]
    base_port: u16,
    /// Host the nodes bind and advertise.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Extra broker config for every node, e.g. -o num.partitions=3. Repeatable.
    #[arg(long = "override", short = 'o', value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

struct Node {
    id: u16,
    port: u16,
    controller_port: Option<u16>,
    child: Child,
}

fn cluster_id(dir: &Path) -> Result<String> {
    let path = dir.join("cluster.id");
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => Ok(id.trim().to_string()),
        _ => {
            let id = gregor_broker::broker::new_cluster_id();
            std::fs::write(&path, format!("{id}\n"))
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(id)
        }
    }
}

pub(crate) fn run(args: UpArgs) -> Result<()> {
    if args.nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    let controllers = args.controllers.unwrap_or(args.nodes.min(3));
    if controllers == 0 || controllers > args.nodes {
        bail!(
            "--controllers must be between 1 and --nodes ({})",
            args.nodes
        );
    }
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let cluster_id = cluster_id(&args.dir)?;
    let exe = std::env::current_exe().context("cannot find the gregor binary")?;
    let port = |n: u16, base: u16| -> Result<u16> {
        base.checked_add(n - 1)
            .context("port out of range: lower --base-port")
    };
    let controller_base = args
        .base_port
        .checked_add(100)
        .context("port out of range: lower --base-port")?;
    let mut voters = Vec::new();
    for n in 1..=controllers {
        voters.push(format!("{n}@{}:{}", args.host, port(n, controller_base)?));
    }
    let voters = voters.join(",");
    let mut nodes: Vec<Node> = Vec::new();
    for n in 1..=args.nodes {
        let client_port = port(n, args.base_port)?;
        let is_controller = n <= controllers;
        let controller_port = if is_controller {
            Some(port(n, controller_base)?)
        } else {
            None
        };
        let data = args.dir.join(format!("node-{n}"));
        std::fs::create_dir_all(&data)
            .with_context(|| format!("cannot create {}", data.display()))?;
        let mut listeners = format!("PLAINTEXT://{}:{client_port}", args.host);
        if let Some(cp) = controller_port {
            listeners.push_str(&format!(",CONTROLLER://{}:{cp}", args.host));
        }
        let log = std::fs::File::create(data.join("broker.log"))
            .with_context(|| format!("cannot create {}", data.join("broker.log").display()))?;
        let mut cmd = Command::new(&exe);
        cmd.arg("broker")
            .arg("--data-dir")
            .arg(&data)
            .args(["-o", &format!("node.id={n}")])
            .args(["-o", &format!("listeners={listeners}")])
            .args([
                "-o",
                &format!(
                    "process.roles={}",
                    if is_controller {
                        "broker,controller"
                    } else {
                        "broker"
                    }
                ),
            ])
            .args(["-o", &format!("controller.quorum.voters={voters}")])
            .args(["-o", &format!("cluster.id={cluster_id}")]);
        for o in &args.overrides {
            cmd.args(["-o", o]);
        }
        let child = cmd
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .with_context(|| format!("cannot start node {n}"))?;
        nodes.push(Node {
            id: n,
            port: client_port,
            controller_port,
            child,
        });
    }
    // Each node prints one line once it is registered and unfenced.
    let mut out = std::io::stdout();
    let mut failed = None;
    for node in &mut nodes {
        let Some(stdout) = node.child.stdout.take() else {
            continue;
        };
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line)?;
        if !line.starts_with("gregor broker ready") {
            failed = Some(node.id);
            break;
        }
    }
    if let Some(id) = failed {
        stop_all(&mut nodes);
        bail!(
            "node {id} did not start; see {}",
            args.dir.join(format!("node-{id}/broker.log")).display()
        );
    }
    writeln!(
        out,
        "gregor cluster up: {} nodes, cluster.id={cluster_id}",
        nodes.len()
    )?;
    for node in &nodes {
        writeln!(
            out,
            "  node {}: {}:{}{}  data {}",
            node.id,
            args.host,
            node.port,
            node.controller_port
                .map(|p| format!(" (controller {}:{p})", args.host))
                .unwrap_or_default(),
            args.dir.join(format!("node-{}", node.id)).display()
        )?;
    }
    let bootstrap: Vec<String> = nodes
        .iter()
        .map(|n| format!("{}:{}", args.host, n.port))
        .collect();
    writeln!(out, "bootstrap.servers={}", bootstrap.join(","))?;
    writeln!(out, "Ctrl-C stops the cluster.")?;
    out.flush()?;
    wait_for_signal();
    stop_all(&mut nodes);
    Ok(())
}

fn wait_for_signal() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    if let Ok(rt) = runtime {
        rt.block_on(async {
            use tokio::signal::unix::{signal, SignalKind};
            match (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) {
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
        });
    }
}

/// SIGTERM to every node (a clean stop each), then waits for all of them.
fn stop_all(nodes: &mut [Node]) {
    for node in nodes.iter() {
        if let Some(pid) = rustix::process::Pid::from_raw(node.child.id() as i32) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
    }
    for node in nodes.iter_mut() {
        let _ = node.child.wait();
    }
}
