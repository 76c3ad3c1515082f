//! Broker configuration with Kafka's names and defaults.
//!
//! Sources, later ones winning: built-in defaults, the `--config` properties file,
//! `--override key=value` pairs, and the `--data-dir`/`--listen` flags. Every value is
//! kept by name (for DescribeConfigs and for topic-config synonyms); the typed fields are
//! the ones the broker reads on hot paths.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

mod cluster;
mod listeners;
mod security;

use cluster::{parse_cluster, parse_listeners};
pub use cluster::{ClusterConfig, ReplicationConfig};
pub use listeners::{ListenerConfig, SaslConfig, SecurityProtocol};

/// Why a configuration was refused at startup.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid value {value:?} for {name}: {why}")]
    Invalid {
        name: String,
        value: String,
        why: String,
    },
    #[error("malformed override {0:?}: expected key=value")]
    MalformedOverride(String),
}

/// Known broker configs and their defaults (Kafka's values).
pub const BROKER_DEFAULTS: &[(&str, &str)] = &[
    ("node.id", "1"),
    ("process.roles", "broker,controller"),
    // Empty: this node is the only voter and opens no controller port (a single node).
    ("controller.quorum.voters", ""),
    ("controller.quorum.bootstrap.servers", ""),
    ("controller.listener.names", "CONTROLLER"),
    ("controller.quorum.election.timeout.ms", "1000"),
    ("controller.quorum.fetch.timeout.ms", "2000"),
    ("broker.heartbeat.interval.ms", "2000"),
    ("broker.session.timeout.ms", "9000"),
    ("broker.rack", ""),
    ("auto.leader.rebalance.enable", "true"),
    ("leader.imbalance.check.interval.seconds", "300"),
    ("leader.imbalance.per.broker.percentage", "10"),
    // Gregor's: the cluster id a new data directory is formatted with (what
    // `kafka-storage format -t` takes); empty makes a new one on a single node.
    ("cluster.id", ""),
    ("replica.lag.time.max.ms", "30000"),
    ("replica.fetch.wait.max.ms", "500"),
    ("replica.fetch.min.bytes", "1"),
    ("replica.fetch.max.bytes", "1048576"),
    ("replica.fetch.response.max.bytes", "10485760"),
    ("replica.fetch.backoff.ms", "1000"),
    ("num.replica.fetchers", "1"),
    // Dynamic (IncrementalAlterConfigs on a broker): bytes/s for the replicas the topics'
    // `*.replication.throttled.replicas` name; unlimited by default.
    ("leader.replication.throttled.rate", "9223372036854775807"),
    ("follower.replication.throttled.rate", "9223372036854775807"),
    // KIP-392: empty (Kafka's null) keeps consumers on the leader; Kafka's
    // RackAwareReplicaSelector points consumers with `client.rack` at an in-sync replica
    // in their rack.
    ("replica.selector.class", ""),
    ("offsets.topic.replication.factor", "3"),
    ("transaction.state.log.replication.factor", "3"),
    // `__transaction_state`'s min.insync.replicas (capped by its replication factor).
    ("transaction.state.log.min.isr", "2"),
    ("listeners", "PLAINTEXT://127.0.0.1:9092"),
    ("advertised.listeners", ""),
    // Empty: Kafka's default map (each protocol's own name, CONTROLLER:PLAINTEXT).
    ("listener.security.protocol.map", ""),
    // Empty: the first PLAINTEXT listener (else the first listener).
    ("inter.broker.listener.name", ""),
    ("sasl.enabled.mechanisms", listeners::DEFAULT_MECHANISMS),
    ("sasl.jaas.config", ""),
    ("sasl.server.max.receive.size", "524288"),
    // OAUTHBEARER (KIP-768): a file: URL of the JSON Web Key Set tokens are checked against.
    ("sasl.oauthbearer.jwks.endpoint.url", ""),
    ("sasl.oauthbearer.expected.audience", ""),
    ("sasl.oauthbearer.expected.issuer", ""),
    ("sasl.oauthbearer.clock.skew.seconds", "30"),
    ("sasl.oauthbearer.sub.claim.name", "sub"),
    // KIP-152: 0 keeps an authenticated session for the connection's life.
    ("connections.max.reauth.ms", "0"),
    ("ssl.keystore.type", "PEM"),
    ("ssl.keystore.location", ""),
    ("ssl.keystore.key", ""),
    ("ssl.keystore.certificate.chain", ""),
    ("ssl.key.password", ""),
    ("ssl.truststore.type", "PEM"),
    ("ssl.truststore.location", ""),
    ("ssl.truststore.certificates", ""),
    ("ssl.client.auth", "none"),
    ("log.dirs", "./gregor-data"),
    ("num.partitions", "1"),
    ("default.replication.factor", "1"),
    ("auto.create.topics.enable", "true"),
    ("message.max.bytes", "1048588"),
    ("socket.request.max.bytes", "104857600"),
    // Kafka's default is Int.MaxValue for both; ours are finite so that one client (or
    // one misbehaving host) cannot use up the broker's file descriptors: 10,000 fits a
    // default `ulimit -n` of 20,000 with room for segment files; 1,000 per address is
    // far above what a host's clients open, and `.overrides` raises it for a proxy.
    ("max.connections", "10000"),
    ("max.request.partition.size.limit", "2000"),
    ("telemetry.max.bytes", "1048576"),
    ("max.connections.per.ip", "1000"),
    ("max.connections.per.ip.overrides", ""),
    // Client quotas (KIP-13/124/612): rates are sampled over `quota.window.num` windows of
    // `quota.window.size.seconds`; new connections broker-wide are held to
    // `max.connection.creation.rate` per second (Kafka's default: unlimited).
    ("quota.window.num", "11"),
    ("quota.window.size.seconds", "1"),
    ("max.connection.creation.rate", "2147483647"),
    // Confluent Server's name: the schema registry that topics with
    // `confluent.{key,value}.schema.validation=true` check produced records against.
    ("confluent.schema.registry.url", ""),
    // Gregor's: `host:port` of the Prometheus endpoint (`/metrics`, `/health/*`); empty
    // for none.
    ("metrics.listener", ""),
    ("log.segment.bytes", "1073741824"),
    ("log.roll.ms", "604800000"),
    ("log.roll.hours", "168"),
    ("log.index.interval.bytes", "4096"),
    ("log.index.size.max.bytes", "10485760"),
    ("log.flush.interval.messages", "9223372036854775807"),
    ("log.flush.interval.ms", "9223372036854775807"),
    ("log.flush.scheduler.interval.ms", "1000"),
    ("log.message.timestamp.type", "CreateTime"),
    ("log.message.timestamp.before.max.ms", "9223372036854775807"),
    ("log.message.timestamp.after.max.ms", "3600000"),
    ("log.retention.ms", "604800000"),
    ("log.retention.hours", "168"),
    ("log.retention.bytes", "-1"),
    ("log.retention.check.interval.ms", "300000"),
    ("log.cleanup.policy", "delete"),
    ("log.cleaner.delete.retention.ms", "86400000"),
    ("log.cleaner.min.compaction.lag.ms", "0"),
    ("log.cleaner.max.compaction.lag.ms", "9223372036854775807"),
    ("log.cleaner.min.cleanable.ratio", "0.5"),
    ("log.cleaner.enable", "true"),
    ("log.cleaner.backoff.ms", "15000"),
    ("log.cleaner.dedupe.buffer.size", "134217728"),
    ("log.segment.delete.delay.ms", "60000"),
    ("log.preallocate", "false"),
    // Gregor's own (Kafka keeps every segment file open): the most segment files kept
    // open at once, shared by all partitions; 0 derives it from RLIMIT_NOFILE.
    ("log.max.open.files", "0"),
    ("log.roll.jitter.ms", "0"),
    ("compression.type", "producer"),
    ("min.insync.replicas", "1"),
    ("unclean.leader.election.enable", "false"),
    ("max.incremental.fetch.session.cache.slots", "1000"),
    ("fetch.max.bytes", "57671680"),
    (
        "metadata.log.max.record.bytes.between.snapshots",
        "20971520",
    ),
    ("metadata.log.segment.bytes", "8388608"),
    ("offsets.topic.num.partitions", "50"),
    ("transaction.max.timeout.ms", "900000"),
    ("transaction.state.log.num.partitions", "50"),
    ("transactional.id.expiration.ms", "604800000"),
    ("producer.id.expiration.ms", "86400000"),
    ("producer.id.expiration.check.interval.ms", "600000"),
    ("offsets.retention.minutes", "10080"),
    ("offsets.retention.check.interval.ms", "600000"),
    ("offset.metadata.max.bytes", "4096"),
    ("group.initial.rebalance.delay.ms", "3000"),
    ("group.min.session.timeout.ms", "6000"),
    ("group.max.session.timeout.ms", "1800000"),
    ("group.max.size", "2147483647"),
    ("group.consumer.session.timeout.ms", "45000"),
    ("group.consumer.heartbeat.interval.ms", "5000"),
    // Bounds for a consumer or share group's own configs (GROUP config resource).
    ("group.consumer.min.session.timeout.ms", "45000"),
    ("group.consumer.max.session.timeout.ms", "60000"),
    ("group.consumer.min.heartbeat.interval.ms", "5000"),
    ("group.consumer.max.heartbeat.interval.ms", "15000"),
    ("group.share.min.session.timeout.ms", "45000"),
    ("group.share.max.session.timeout.ms", "60000"),
    ("group.share.min.heartbeat.interval.ms", "5000"),
    ("group.share.max.heartbeat.interval.ms", "15000"),
    ("group.share.min.record.lock.duration.ms", "15000"),
    ("group.share.max.record.lock.duration.ms", "60000"),
    // Share groups (KIP-932).
    ("group.share.session.timeout.ms", "45000"),
    ("group.share.heartbeat.interval.ms", "5000"),
    ("group.share.max.size", "200"),
    ("group.share.record.lock.duration.ms", "30000"),
    ("group.share.partition.max.record.locks", "2000"),
    ("group.share.delivery.count.limit", "5"),
    ("share.coordinator.state.topic.num.partitions", "50"),
    ("share.coordinator.state.topic.replication.factor", "3"),
    // Gregor's broker-wide default for the share group config of that name.
    ("share.auto.offset.reset", "latest"),
    ("share.isolation.level", "read_uncommitted"),
    // `;`-separated principals allowed everything (Kafka's format: `User:a;User:b`).
    ("super.users", ""),
    // Kafka's default is false; Gregor's stays true until every handler authorizes.
    ("allow.everyone.if.no.acl.found", "true"),
];

/// Configs whose values are secrets: DescribeConfigs never returns them.
pub const SENSITIVE: &[&str] = &["ssl.key.password", "ssl.keystore.key", "sasl.jaas.config"];

#[derive(Debug, Clone)]
pub struct BrokerConfig {
    /// Every config by Kafka name, defaults included.
    pub values: BTreeMap<String, String>,
    /// Names set explicitly (file, override or flag), for config sources.
    pub explicit: BTreeMap<String, String>,
    pub node_id: i32,
    /// The client listeners, the inter-broker one first.
    pub listeners: Vec<ListenerConfig>,
    /// The controller listener's TLS (its protocol is SSL), used by the quorum's RPC on
    /// both sides; `None`: plaintext.
    pub controller_tls: Option<gregor_security::tls::TlsSettings>,
    /// The inter-broker listener's address (`listeners[0]`).
    pub listener: SocketAddr,
    /// Host and port that clients are told to connect to; a port of 0 follows the bound port.
    pub advertised_host: String,
    pub advertised_port: u16,
    /// `connections.max.reauth.ms` (KIP-152): an authenticated SASL session lasts this
    /// long before the client must authenticate again; 0 for ever.
    pub connections_max_reauth_ms: i64,
    /// `sasl.server.max.receive.size`: the largest frame before authentication.
    pub sasl_server_max_receive_size: usize,
    /// The metadata dir (`metadata.log.dir`, else the first of `log.dirs`): the metadata
    /// log, `meta.properties`, the lock and the clean-shutdown marker.
    pub data_dir: PathBuf,
    /// Every entry of `log.dirs`: where partitions live (see `log_dirs`).
    pub log_dirs: Vec<PathBuf>,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics: bool,
    pub message_max_bytes: usize,
    pub socket_request_max_bytes: usize,
    pub max_connections: usize,
    /// `max.connections.per.ip`: connections beyond it from one address are closed at
    /// once (as Kafka's acceptor does); `max.connections.per.ip.overrides` per address.
    pub max_connections_per_ip: usize,
    pub max_connections_per_ip_overrides: HashMap<IpAddr, usize>,
    /// `quota.window.num` x `quota.window.size.seconds`: how client quotas sample rates.
    pub quota_window: crate::quota::Window,
    /// `max.connection.creation.rate`: new connections per second, broker-wide.
    pub max_connection_creation_rate: f64,
    pub flush_scheduler_interval_ms: u64,
    pub fetch_session_slots: usize,
    /// `fetch.max.bytes`: the most record data one fetch answer carries, whatever the
    /// client asks for (at least one batch is still returned, as in Kafka).
    pub fetch_max_bytes: usize,
    /// `metadata.log.max.record.bytes.between.snapshots` and `metadata.log.segment.bytes`.
    pub metadata_log: gregor_metadata::MetadataLogConfig,
    /// `log.retention.check.interval.ms`: how often retention runs.
    pub retention_check_interval_ms: u64,
    /// `log.cleaner.enable`, `log.cleaner.backoff.ms` and the key-map bound derived from
    /// `log.cleaner.dedupe.buffer.size` (24 bytes an entry, as Kafka counts).
    pub cleaner_enable: bool,
    pub cleaner_backoff_ms: u64,
    pub cleaner_max_map_entries: usize,
    /// `producer.id.expiration.check.interval.ms`: how often idle producers are swept
    /// from every partition's producer state.
    pub producer_expiration_check_interval_ms: u64,
    /// `log.max.open.files`: the budget of open segment files shared by all logs (see
    /// `gregor_storage::FileCache`), resolved from RLIMIT_NOFILE when configured as 0.
    pub max_open_files: usize,
    /// `process.roles`, the quorum and this node's place in it.
    pub cluster: ClusterConfig,
    /// The group coordinator's `group.*` and `offsets.*` settings.
    pub group: crate::group::GroupConfig,
    /// The transaction coordinator's `transaction.*` settings.
    pub txn: crate::txn::TxnConfig,
    /// `super.users` and `allow.everyone.if.no.acl.found`, shared with every
    /// authorizer the broker hands out (see `Broker::authorizer`).
    pub authorizer: std::sync::Arc<gregor_security::acl::AuthorizerConfig>,
}

/// Descriptors kept out of the segment-file budget when it is derived: sockets, the
/// metadata log, snapshots and index files opened for a moment, files a fetch is
/// sending from. A quarter of the limit, at least 256.
fn descriptor_reserve(limit: usize) -> usize {
    (limit / 4).max(256)
}

/// `log.max.open.files` when not configured: the soft RLIMIT_NOFILE minus the reserve
/// (15,000 under `ulimit -n 20000`; 768 under 1024), at least 64.
pub fn derived_open_file_budget() -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX))
        .min(1 << 24);
    limit.saturating_sub(descriptor_reserve(limit)).max(64)
}

/// Parses Java-style properties: `key=value` or `key: value`, `#`/`!` comments.
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let split = line.find(['=', ':']);
        let (k, v) = match split {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, ""),
        };
        out.insert(k.trim().to_string(), v.trim().to_string());
    }
    out
}

impl BrokerConfig {
    /// Builds the config from explicit settings layered over the defaults.
    pub fn from_explicit(explicit: BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let mut values: BTreeMap<String, String> = BROKER_DEFAULTS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (k, v) in &explicit {
            if !values.contains_key(k) && !k.starts_with("listener.name.") {
                tracing::warn!(config = %k, "the configuration was supplied but is not a known config");
            }
            values.insert(k.clone(), v.clone());
        }
        // Kafka's hour/ms pairs: an explicit *.ms wins, else an explicit *.hours converts.
        for (ms, hours) in [
            ("log.roll.ms", "log.roll.hours"),
            ("log.retention.ms", "log.retention.hours"),
        ] {
            if !explicit.contains_key(ms) {
                if let Some(h) = explicit.get(hours) {
                    let ms_value = num::<i64>(hours, h)?
                        .checked_mul(3_600_000)
                        .ok_or_else(|| invalid(hours, h, "too large"))?;
                    values.insert(ms.to_string(), ms_value.to_string());
                }
            }
        }
        let get = |k: &str| values.get(k).cloned().unwrap_or_default();
        let listeners = get("listeners");
        let controller_names: Vec<String> = get("controller.listener.names")
            .split(',')
            .map(|n| n.trim().to_string())
            .collect();
        let client_listeners = listeners::parse(&values, &controller_names)?;
        let controller_tls = listeners::controller_tls(&values, &controller_names)?;
        let (listener, advertised_host, advertised_port) = match client_listeners.first() {
            Some(l) => (l.bind, l.advertised_host.clone(), l.advertised_port),
            None => return Err(invalid("listeners", &listeners, "no client listener")),
        };
        let log_dirs: Vec<PathBuf> = get("log.dirs")
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .collect();
        let mut seen = std::collections::HashSet::new();
        if let Some(dup) = log_dirs.iter().find(|d| !seen.insert(*d)) {
            return Err(invalid(
                "log.dirs",
                &get("log.dirs"),
                &format!("{} is listed twice", dup.display()),
            ));
        }
        let Some(first) = log_dirs.first().cloned() else {
            return Err(invalid("log.dirs", &get("log.dirs"), "no directory"));
        };
        // Kafka's metadata.log.dir: where the metadata log (and this node's identity,
        // lock and clean-shutdown marker) lives; by default the first log dir.
        let data_dir = match get("metadata.log.dir").trim() {
            "" => first,
            d => PathBuf::from(d),
        };
        let node_id = num("node.id", &get("node.id"))?;
        let cluster = parse_cluster(&get, node_id, &parse_listeners(&listeners))?;
        crate::metrics::listener_address(&get(crate::metrics::LISTENER_CONFIG))?;
        let cfg = Self {
            node_id,
            cluster,
            listener,
            advertised_host,
            advertised_port,
            listeners: client_listeners,
            controller_tls,
            connections_max_reauth_ms: num(
                "connections.max.reauth.ms",
                &get("connections.max.reauth.ms"),
            )?,
            sasl_server_max_receive_size: positive(
                "sasl.server.max.receive.size",
                &get("sasl.server.max.receive.size"),
            )?,
            data_dir,
            log_dirs,
            num_partitions: positive("num.partitions", &get("num.partitions"))?,
            default_replication_factor: positive(
                "default.replication.factor",
                &get("default.replication.factor"),
            )?,
            auto_create_topics: boolean(
                "auto.create.topics.enable",
                &get("auto.create.topics.enable"),
            )?,
            message_max_bytes: positive("message.max.bytes", &get("message.max.bytes"))?,
            socket_request_max_bytes: positive(
                "socket.request.max.bytes",
                &get("socket.request.max.bytes"),
            )?,
            max_connections: positive("max.connections", &get("max.connections"))?,
            quota_window: crate::quota::Window {
                samples: positive("quota.window.num", &get("quota.window.num"))?,
                size: std::time::Duration::from_secs(positive(
                    "quota.window.size.seconds",
                    &get("quota.window.size.seconds"),
                )?),
            },
            max_connection_creation_rate: positive::<u32>(
                "max.connection.creation.rate",
                &get("max.connection.creation.rate"),
            )?
            .into(),
            max_connections_per_ip: positive(
                "max.connections.per.ip",
                &get("max.connections.per.ip"),
            )?,
            max_connections_per_ip_overrides: parse_per_ip_overrides(&get(
                "max.connections.per.ip.overrides",
            ))?,
            flush_scheduler_interval_ms: positive(
                "log.flush.scheduler.interval.ms",
                &get("log.flush.scheduler.interval.ms"),
            )?,
            fetch_session_slots: num(
                "max.incremental.fetch.session.cache.slots",
                &get("max.incremental.fetch.session.cache.slots"),
            )?,
            fetch_max_bytes: positive("fetch.max.bytes", &get("fetch.max.bytes"))?,
            metadata_log: gregor_metadata::MetadataLogConfig {
                snapshot_bytes: positive(
                    "metadata.log.max.record.bytes.between.snapshots",
                    &get("metadata.log.max.record.bytes.between.snapshots"),
                )?,
                segment_bytes: positive(
                    "metadata.log.segment.bytes",
                    &get("metadata.log.segment.bytes"),
                )?,
            },
            retention_check_interval_ms: positive(
                "log.retention.check.interval.ms",
                &get("log.retention.check.interval.ms"),
            )?,
            cleaner_enable: boolean("log.cleaner.enable", &get("log.cleaner.enable"))?,
            producer_expiration_check_interval_ms: positive(
                "producer.id.expiration.check.interval.ms",
                &get("producer.id.expiration.check.interval.ms"),
            )?,
            cleaner_backoff_ms: positive("log.cleaner.backoff.ms", &get("log.cleaner.backoff.ms"))?,
            cleaner_max_map_entries: (positive::<usize>(
                "log.cleaner.dedupe.buffer.size",
                &get("log.cleaner.dedupe.buffer.size"),
            )? / 24)
                .max(1),
            max_open_files: match num::<usize>("log.max.open.files", &get("log.max.open.files"))? {
                0 => derived_open_file_budget(),
                n => n,
            },
            group: crate::group::GroupConfig {
                min_session_timeout_ms: positive(
                    "group.min.session.timeout.ms",
                    &get("group.min.session.timeout.ms"),
                )?,
                max_session_timeout_ms: positive(
                    "group.max.session.timeout.ms",
                    &get("group.max.session.timeout.ms"),
                )?,
                initial_rebalance_delay_ms: num(
                    "group.initial.rebalance.delay.ms",
                    &get("group.initial.rebalance.delay.ms"),
                )?,
                max_size: positive("group.max.size", &get("group.max.size"))?,
                offsets_retention_ms: positive::<i64>(
                    "offsets.retention.minutes",
                    &get("offsets.retention.minutes"),
                )?
                .saturating_mul(60_000),
                offsets_retention_check_interval_ms: positive(
                    "offsets.retention.check.interval.ms",
                    &get("offsets.retention.check.interval.ms"),
                )?,
                offset_metadata_max_bytes: num(
                    "offset.metadata.max.bytes",
                    &get("offset.metadata.max.bytes"),
                )?,
                offsets_partitions: positive(
                    "offsets.topic.num.partitions",
                    &get("offsets.topic.num.partitions"),
                )?,
                consumer_session_timeout_ms: positive(
                    "group.consumer.session.timeout.ms",
                    &get("group.consumer.session.timeout.ms"),
                )?,
                consumer_heartbeat_interval_ms: positive(
                    "group.consumer.heartbeat.interval.ms",
                    &get("group.consumer.heartbeat.interval.ms"),
                )?,
            },
            txn: crate::txn::TxnConfig {
                max_timeout_ms: positive(
                    "transaction.max.timeout.ms",
                    &get("transaction.max.timeout.ms"),
                )?,
                state_partitions: positive(
                    "transaction.state.log.num.partitions",
                    &get("transaction.state.log.num.partitions"),
                )?,
                id_expiration_ms: positive(
                    "transactional.id.expiration.ms",
                    &get("transactional.id.expiration.ms"),
                )?,
            },
            authorizer: std::sync::Arc::new(security::authorizer_config(&get)?),
            values,
            explicit,
        };
        for (k, v) in &cfg.values {
            if let Some(def) = gregor_metadata::topic_config::TOPIC_CONFIGS
                .iter()
                .find(|d| d.broker_synonym == k)
            {
                gregor_metadata::topic_config::validate_value(def, v)
                    .map_err(|why| invalid(k, v, &why))?;
            }
        }
        Ok(cfg)
    }

    /// The broker's value for a config, if known.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// How many connections `ip` may hold open at once.
    pub fn max_connections_for(&self, ip: IpAddr) -> usize {
        self.max_connections_per_ip_overrides
            .get(&ip.to_canonical())
            .copied()
            .unwrap_or(self.max_connections_per_ip)
    }
}

/// Parses `max.connections.per.ip.overrides`: `host:count` pairs separated by commas,
/// as Kafka writes them. A host is an IP address (IPv6 in brackets, `[::1]:5`) or a
/// name, resolved once here to every address it has. A count may be 0 (refuse the host).
fn parse_per_ip_overrides(value: &str) -> Result<HashMap<IpAddr, usize>, ConfigError> {
    const NAME: &str = "max.connections.per.ip.overrides";
    let mut out = HashMap::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (host, count) = entry
            .rsplit_once(':')
            .ok_or_else(|| invalid(NAME, value, &format!("{entry:?} is not host:count")))?;
        let count: usize = count
            .trim()
            .parse()
            .map_err(|_| invalid(NAME, value, &format!("{entry:?}: count is not a number")))?;
        let host = host.trim().trim_start_matches('[').trim_end_matches(']');
        let ips: Vec<IpAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => (host, 0)
                .to_socket_addrs()
                .map_err(|e| invalid(NAME, value, &format!("cannot resolve {host:?}: {e}")))?
                .map(|a| a.ip())
                .collect(),
        };
        if ips.is_empty() {
            return Err(invalid(NAME, value, &format!("{host:?} has no address")));
        }
        for ip in ips {
            out.insert(ip.to_canonical(), count);
        }
    }
    Ok(out)
}

pub(crate) fn invalid(name: &str, value: &str, why: &str) -> ConfigError {
    ConfigError::Invalid {
        name: name.to_string(),
        value: value.to_string(),
        why: why.to_string(),
    }
}

pub(crate) fn num<T: std::str::FromStr>(name: &str, value: &str) -> Result<T, ConfigError> {
    value
        .trim()
        .parse()
        .map_err(|_| invalid(name, value, "not a number"))
}

pub(crate) fn positive<T: std::str::FromStr + PartialOrd + Default>(
    name: &str,
    value: &str,
) -> Result<T, ConfigError> {
    let n: T = num(name, value)?;
    if n <= T::default() {
        return Err(invalid(name, value, "must be positive"));
    }
    Ok(n)
}

pub(crate) fn boolean(name: &str, value: &str) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(name, value, "expected true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let cfg = BrokerConfig::from_explicit(BTreeMap::new()).unwrap();
        assert_eq!(cfg.node_id, 1);
        assert_eq!(cfg.listener.to_string(), "127.0.0.1:9092");
        assert_eq!(cfg.advertised_port, 9092);
        assert_eq!(cfg.data_dir, PathBuf::from("./gregor-data"));
        assert_eq!(cfg.log_dirs, vec![PathBuf::from("./gregor-data")]);
        assert_eq!(cfg.message_max_bytes, 1048588);

        let dirs = |v: &str, meta: Option<&str>| {
            let mut m = BTreeMap::from([("log.dirs".to_string(), v.to_string())]);
            if let Some(d) = meta {
                m.insert("metadata.log.dir".into(), d.into());
            }
            BrokerConfig::from_explicit(m)
        };
        let cfg = dirs(" /a, /b ,/c", None).unwrap();
        assert_eq!(cfg.data_dir, PathBuf::from("/a"));
        assert_eq!(cfg.log_dirs.len(), 3);
        assert_eq!(cfg.log_dirs[1], PathBuf::from("/b"));
        assert_eq!(
            dirs("/a,/b", Some("/m")).unwrap().data_dir,
            PathBuf::from("/m")
        );
        assert!(dirs("/a,/a", None).is_err());
        assert!(dirs(" , ", None).is_err());

        let props = parse_properties("# comment\nlisteners=PLAINTEXT://0.0.0.0:19092\nadvertised.listeners: PLAINTEXT://example:19092\nlog.roll.hours=1\n");
        let cfg = BrokerConfig::from_explicit(props).unwrap();
        assert_eq!(cfg.listener.port(), 19092);
        assert_eq!(cfg.advertised_host, "example");
        assert_eq!(cfg.get("log.roll.ms"), Some("3600000"));
    }

    #[test]
    fn connection_limits_are_finite_and_overridable_per_address() {
        let cfg = BrokerConfig::from_explicit(BTreeMap::new()).unwrap();
        assert_eq!(cfg.max_connections, 10_000);
        assert_eq!(cfg.max_connections_per_ip, 1_000);
        let local: IpAddr = "127.0.0.1".parse().unwrap();
        assert_eq!(cfg.max_connections_for(local), 1_000);

        let cfg = BrokerConfig::from_explicit(
            [
                ("max.connections.per.ip".to_string(), "5".to_string()),
                (
                    "max.connections.per.ip.overrides".to_string(),
                    " 127.0.0.2:50, [::1]:0,10.1.2.3:7 ".to_string(),
                ),
            ]
            .into(),
        )
        .unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(
            cfg.max_connections_per_ip_overrides,
            HashMap::from([(ip("127.0.0.2"), 50), (ip("::1"), 0), (ip("10.1.2.3"), 7)])
        );
        assert_eq!(cfg.max_connections_for(ip("127.0.0.1")), 5);
        assert_eq!(cfg.max_connections_for(ip("127.0.0.2")), 50);
        // An IPv4 peer seen through a dual-stack socket is the same host.
        assert_eq!(cfg.max_connections_for(ip("::ffff:10.1.2.3")), 7);
        assert_eq!(cfg.max_connections_for(ip("::1")), 0);
    }

    #[test]
    fn bad_values_are_refused() {
        for (k, v) in [
            ("num.partitions", "0"),
            ("auto.create.topics.enable", "maybe"),
            ("listeners", "nonsense"),
            ("log.segment.bytes", "3"),
            ("max.connections", "0"),
            ("max.connections.per.ip", "0"),
            ("max.connections.per.ip.overrides", "127.0.0.1"),
            ("max.connections.per.ip.overrides", "127.0.0.1:many"),
            ("max.connections.per.ip.overrides", "127.0.0.1:-1"),
            ("log.roll.hours", "9223372036854775807"),
        ] {
            let e = BrokerConfig::from_explicit([(k.to_string(), v.to_string())].into());
            assert!(e.is_err(), "{k}={v} must be refused");
        }
    }
}
