//! The cluster settings: `process.roles`, the metadata quorum's voters, the controller
//! listener, leader balancing and the followers' `replica.*` settings, parsed from the
//! broker's properties.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use super::{boolean, invalid, positive, ConfigError};

/// `process.roles`, `controller.quorum.voters` and the controller listener.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    pub broker: bool,
    pub controller: bool,
    /// Voter id -> "host:port" (`controller.quorum.voters`, or the ids and addresses of
    /// `controller.quorum.bootstrap.servers` written `id@host:port`). Empty: a single
    /// node that is its own only voter.
    pub voters: BTreeMap<i32, String>,
    /// Where this node's controller listener binds (a voter with peers only).
    pub controller_listener: Option<SocketAddr>,
    pub rack: Option<String>,
    pub cluster_id: Option<String>,
    pub election_timeout_ms: u64,
    pub heartbeat_interval_ms: u64,
    pub session_timeout_ms: u64,
    /// `auto.leader.rebalance.enable`, `leader.imbalance.check.interval.seconds` and
    /// `leader.imbalance.per.broker.percentage`: `None` when disabled.
    pub leader_balance: Option<(u64, u32)>,
    /// Replication factors of the internal topics (capped by the live brokers).
    pub offsets_replication_factor: i16,
    pub txn_replication_factor: i16,
    /// `transaction.state.log.min.isr`: `__transaction_state`'s min.insync.replicas.
    pub txn_min_isr: i16,
    pub replication: ReplicationConfig,
}

/// How followers fetch from leaders and when the leader drops them from the ISR
/// (Kafka's `replica.*` settings).
#[derive(Debug, Clone)]
pub struct ReplicationConfig {
    /// `replica.lag.time.max.ms`: a follower not caught up for this long leaves the ISR.
    pub lag_time_max_ms: i64,
    /// `replica.fetch.wait.max.ms`: how long a follower's fetch parks on the leader.
    pub fetch_wait_max_ms: i32,
    /// `replica.fetch.min.bytes`.
    pub fetch_min_bytes: i32,
    /// `replica.fetch.max.bytes`: per partition.
    pub fetch_max_bytes: i32,
    /// `replica.fetch.response.max.bytes`: per fetch.
    pub fetch_response_max_bytes: i32,
    /// `replica.fetch.backoff.ms`: the pause after a failed fetch.
    pub fetch_backoff_ms: u64,
    /// `num.replica.fetchers`: fetch connections per leader broker.
    pub num_fetchers: usize,
    /// `replica.selector.class` is Kafka's `RackAwareReplicaSelector` (KIP-392).
    pub rack_aware_reads: bool,
}

/// The `replica.selector.class` values that turn on rack-aware reads.
const RACK_AWARE_SELECTORS: &[&str] = &[
    "org.apache.kafka.common.replica.RackAwareReplicaSelector",
    "RackAwareReplicaSelector",
];

/// One `listeners` entry: NAME://host:port.
pub(super) fn parse_listeners(value: &str) -> Vec<(String, String, u16)> {
    value
        .split(',')
        .filter_map(|entry| {
            let entry = entry.trim();
            let (name, addr) = entry.split_once("://").unwrap_or(("PLAINTEXT", entry));
            let (host, port) = addr.rsplit_once(':')?;
            let host = host.trim_start_matches('[').trim_end_matches(']');
            Some((name.to_string(), host.to_string(), port.parse().ok()?))
        })
        .collect()
}

/// `1@host:port,2@host:port`: voter ids and addresses.
fn parse_voters(name: &str, value: &str) -> Result<BTreeMap<i32, String>, ConfigError> {
    let mut out = BTreeMap::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (id, addr) = entry
            .split_once('@')
            .ok_or_else(|| invalid(name, value, "expected id@host:port entries"))?;
        let id: i32 = id
            .trim()
            .parse()
            .map_err(|_| invalid(name, value, &format!("{id:?} is not a node id")))?;
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| invalid(name, value, &format!("{addr:?} has no port")))?;
        if host.is_empty() || port.parse::<u16>().is_err() {
            return Err(invalid(name, value, &format!("{addr:?} is not host:port")));
        }
        if out.insert(id, addr.trim().to_string()).is_some() {
            return Err(invalid(name, value, &format!("voter {id} is listed twice")));
        }
    }
    Ok(out)
}

fn socket_addr(name: &str, value: &str, host: &str, port: u16) -> Result<SocketAddr, ConfigError> {
    let bracketed = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    };
    format!("{bracketed}:{port}")
        .parse()
        .map_err(|_| invalid(name, value, "host must be an IP address"))
}

pub(super) fn parse_cluster(
    get: &dyn Fn(&str) -> String,
    node_id: i32,
    listeners: &[(String, String, u16)],
) -> Result<ClusterConfig, ConfigError> {
    let roles = get("process.roles");
    let mut broker = false;
    let mut controller = false;
    for role in roles.split(',').map(str::trim) {
        match role {
            "broker" => broker = true,
            "controller" => controller = true,
            _ => {
                return Err(invalid(
                    "process.roles",
                    &roles,
                    "expected broker, controller or broker,controller",
                ))
            }
        }
    }
    let mut voters = parse_voters("controller.quorum.voters", &get("controller.quorum.voters"))?;
    // With `controller.quorum.bootstrap.servers` (KIP-853), a controller whose id is not
    // among them joins the running quorum: AddRaftVoter makes it a voter.
    let dynamic = voters.is_empty();
    if voters.is_empty() {
        voters = parse_voters(
            "controller.quorum.bootstrap.servers",
            &get("controller.quorum.bootstrap.servers"),
        )?;
    }
    let names = get("controller.listener.names");
    let controller_names: Vec<&str> = names.split(',').map(str::trim).collect();
    let controller_listener = listeners
        .iter()
        .find(|(n, _, _)| controller_names.contains(&n.as_str()))
        .map(|(_, h, p)| socket_addr("listeners", &get("listeners"), h, *p))
        .transpose()?;
    if controller && !voters.is_empty() {
        if !voters.contains_key(&node_id) && !dynamic {
            return Err(invalid(
                "controller.quorum.voters",
                &get("controller.quorum.voters"),
                &format!("node {node_id} has the controller role but is not a voter"),
            ));
        }
        if controller_listener.is_none() {
            return Err(invalid(
                "listeners",
                &get("listeners"),
                &format!(
                    "a controller needs a listener named in controller.listener.names ({names})"
                ),
            ));
        }
    }
    if !controller && voters.is_empty() {
        return Err(invalid(
            "controller.quorum.voters",
            "",
            "a broker-only node needs the controllers' addresses",
        ));
    }
    if !broker && !controller {
        return Err(invalid("process.roles", &roles, "no role"));
    }
    let rack = get("broker.rack");
    let cluster_id = get("cluster.id");
    Ok(ClusterConfig {
        broker,
        controller,
        voters,
        controller_listener,
        rack: (!rack.is_empty()).then_some(rack),
        cluster_id: (!cluster_id.is_empty()).then_some(cluster_id),
        election_timeout_ms: positive(
            "controller.quorum.election.timeout.ms",
            &get("controller.quorum.election.timeout.ms"),
        )?,
        heartbeat_interval_ms: positive(
            "broker.heartbeat.interval.ms",
            &get("broker.heartbeat.interval.ms"),
        )?,
        session_timeout_ms: positive(
            "broker.session.timeout.ms",
            &get("broker.session.timeout.ms"),
        )?,
        leader_balance: if boolean(
            "auto.leader.rebalance.enable",
            &get("auto.leader.rebalance.enable"),
        )? {
            Some((
                positive(
                    "leader.imbalance.check.interval.seconds",
                    &get("leader.imbalance.check.interval.seconds"),
                )?,
                get("leader.imbalance.per.broker.percentage")
                    .parse::<u32>()
                    .ok()
                    .filter(|p| *p <= 100)
                    .ok_or_else(|| {
                        invalid(
                            "leader.imbalance.per.broker.percentage",
                            &get("leader.imbalance.per.broker.percentage"),
                            "a percentage from 0 to 100",
                        )
                    })?,
            ))
        } else {
            None
        },
        offsets_replication_factor: positive(
            "offsets.topic.replication.factor",
            &get("offsets.topic.replication.factor"),
        )?,
        txn_replication_factor: positive(
            "transaction.state.log.replication.factor",
            &get("transaction.state.log.replication.factor"),
        )?,
        txn_min_isr: positive(
            "transaction.state.log.min.isr",
            &get("transaction.state.log.min.isr"),
        )?,
        replication: ReplicationConfig {
            lag_time_max_ms: positive("replica.lag.time.max.ms", &get("replica.lag.time.max.ms"))?,
            fetch_wait_max_ms: positive(
                "replica.fetch.wait.max.ms",
                &get("replica.fetch.wait.max.ms"),
            )?,
            fetch_min_bytes: positive("replica.fetch.min.bytes", &get("replica.fetch.min.bytes"))?,
            fetch_max_bytes: positive("replica.fetch.max.bytes", &get("replica.fetch.max.bytes"))?,
            fetch_response_max_bytes: positive(
                "replica.fetch.response.max.bytes",
                &get("replica.fetch.response.max.bytes"),
            )?,
            fetch_backoff_ms: positive(
                "replica.fetch.backoff.ms",
                &get("replica.fetch.backoff.ms"),
            )?,
            num_fetchers: positive("num.replica.fetchers", &get("num.replica.fetchers"))?,
            rack_aware_reads: match get("replica.selector.class").trim() {
                "" | "org.apache.kafka.common.replica.LeaderSelector" => false,
                s if RACK_AWARE_SELECTORS.contains(&s) => true,
                other => {
                    return Err(invalid(
                        "replica.selector.class",
                        other,
                        "RackAwareReplicaSelector or LeaderSelector (the default)",
                    ))
                }
            },
        },
    })
}
