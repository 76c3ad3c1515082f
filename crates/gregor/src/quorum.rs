//! `gregor cluster quorum`: the metadata quorum (DescribeQuorum, API 55): the active
//! controller, its epoch and high watermark, and how far each voter and observer
//! (broker) has come. Over [`crate::wire`], as librdkafka has no DescribeQuorum.

use anyhow::{bail, Result};
use kafka_protocol::messages::describe_quorum_request::{PartitionData, TopicData};
use kafka_protocol::messages::describe_quorum_response::ReplicaState;
use kafka_protocol::messages::{DescribeQuorumRequest, TopicName};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use crate::conn::{table, Conn};
use crate::wire::{error_name, Wire};

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[derive(clap::Subcommand)]
pub(crate) enum QuorumCommand {
    /// Make a controller that started outside the voter set (its id not in
    /// controller.quorum.bootstrap.servers) a voter, once it has caught up (AddRaftVoter).
    ///
    /// Example: gregor cluster quorum add 4 127.0.0.1:9195
    Add {
        /// The controller's node id.
        id: i32,
        /// Its controller listener, host:port.
        listener: String,
    },
    /// Remove a voter from the quorum (RemoveRaftVoter).
    ///
    /// Example: gregor cluster quorum remove 1
    Remove {
        /// The voter's node id.
        id: i32,
    },
}

/// `gregor cluster quorum add|remove`.
pub(crate) fn change(conn: &Conn, cmd: QuorumCommand) -> Result<()> {
    use kafka_protocol::messages::add_raft_voter_request::Listener;
    use kafka_protocol::messages::{AddRaftVoterRequest, RemoveRaftVoterRequest};
    let mut w = Wire::open(conn)?;
    let (code, message, what) = match cmd {
        QuorumCommand::Add { id, listener } => {
            let Some((host, port)) = listener.rsplit_once(':') else {
                bail!("the listener must be host:port, not {listener}");
            };
            let port: u16 = port
                .parse()
                .map_err(|_| anyhow::anyhow!("bad port in {listener}"))?;
            let req = AddRaftVoterRequest::default()
                .with_timeout_ms(60_000)
                .with_voter_id(id)
                .with_listeners(vec![Listener::default()
                    .with_name(StrBytes::from_static_str("CONTROLLER"))
                    .with_host(StrBytes::from_string(host.to_string()))
                    .with_port(port)]);
            let r = w.call(&req, 0)?;
            (r.error_code, r.error_message, format!("voter {id} added"))
        }
        QuorumCommand::Remove { id } => {
            let r = w.call(&RemoveRaftVoterRequest::default().with_voter_id(id), 0)?;
            (r.error_code, r.error_message, format!("voter {id} removed"))
        }
    };
    if code != 0 {
        let why = message.map(|m| m.to_string()).unwrap_or_default();
        bail!("{}: {why}", error_name(code));
    }
    out!("{what}");
    Ok(())
}

pub(crate) fn run(conn: &Conn) -> Result<()> {
    let mut w = Wire::open(conn)?;
    let req = DescribeQuorumRequest::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
        .with_partitions(vec![PartitionData::default()])]);
    let resp = w.call(&req, 2)?;
    if resp.error_code != 0 {
        bail!(
            "cannot describe the quorum: {}",
            error_name(resp.error_code)
        );
    }
    let Some(p) = resp.topics.first().and_then(|t| t.partitions.first()) else {
        bail!("the broker answered without the metadata partition");
    };
    if p.error_code != 0 {
        bail!("cannot describe the quorum: {}", error_name(p.error_code));
    }
    let now = now_ms();
    let ago = |t: i64| if t < 0 { -1 } else { now.saturating_sub(t) };
    let row = |kind: &str, r: &ReplicaState| {
        (
            kind.to_string(),
            r.replica_id.0,
            r.log_end_offset,
            p.high_watermark.saturating_sub(r.log_end_offset).max(0),
            ago(r.last_fetch_timestamp),
            ago(r.last_caught_up_timestamp),
        )
    };
    let rows: Vec<_> = p
        .current_voters
        .iter()
        .map(|r| {
            row(
                if r.replica_id == p.leader_id {
                    "Leader"
                } else {
                    "Follower"
                },
                r,
            )
        })
        .chain(p.observers.iter().map(|r| row("Observer", r)))
        .collect();
    if conn.json() {
        let replicas: Vec<_> = rows
            .iter()
            .map(|(kind, id, leo, lag, fetch, caught)| {
                json!({"node": id, "status": kind, "log_end_offset": leo, "lag": lag,
                       "last_fetch_ms_ago": fetch, "last_caught_up_ms_ago": caught})
            })
            .collect();
        out!(
            "{}",
            json!({"leader": p.leader_id.0, "epoch": p.leader_epoch,
                   "high_watermark": p.high_watermark, "replicas": replicas})
        );
    } else {
        out!(
            "leader {} (epoch {}), high watermark {}",
            p.leader_id.0,
            p.leader_epoch,
            p.high_watermark
        );
        let ms = |v: i64| {
            if v < 0 {
                "-".to_string()
            } else {
                format!("{v} ms")
            }
        };
        let table_rows: Vec<Vec<String>> = rows
            .iter()
            .map(|(kind, id, leo, lag, fetch, caught)| {
                vec![
                    id.to_string(),
                    kind.clone(),
                    leo.to_string(),
                    lag.to_string(),
                    ms(*fetch),
                    ms(*caught),
                ]
            })
            .collect();
        table(
            &[
                "NODE",
                "STATUS",
                "LOG END",
                "LAG",
                "LAST FETCH",
                "CAUGHT UP",
            ],
            &table_rows,
        );
    }
    Ok(())
}
