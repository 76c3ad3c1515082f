//! The Gregor broker: a Kafka-protocol server over the Gregor commit log.
//!
//! # Flow
//! `server::run` accepts connections; each connection reads a frame and hands it to
//! `handlers::dispatch`, which decodes it with the generated `kafka-protocol` types and
//! calls the one handler for that API. Handlers are thin: produce, fetch and list-offsets
//! go to the [`replica_manager::ReplicaManager`] and its [`partition::Partition`]s (which
//! own the storage logs); create/delete topics go to the controller through
//! [`broker::Broker::commit_metadata`], which commits metadata records and applies the new
//! image to the replica manager.
//!
//! # Layout
//! - [`config`]: Kafka-named configuration.
//! - [`server`]: accept loops (one per listener), TLS handshakes, connection framing,
//!   shutdown.
//! - [`auth`]: a connection's principal and SASL state, and what it may send meanwhile.
//! - [`handlers`]: one file per Kafka API plus the registry (`handlers::SUPPORTED`).
//! - [`replica_manager`], [`partition`]: hosted partitions, append/read, waiting, flushing.
//! - [`replication`]: followers fetching from leaders, the ISR and high watermark,
//!   AlterPartition to the controller.
//! - [`fetch_session`]: KIP-227 sessions.
//! - [`group`]: the group coordinator (consumer groups, committed offsets).
//! - [`share`]: share groups (KIP-932): membership, share-partitions, sessions.
//! - [`telemetry`]: client telemetry (KIP-714) subscriptions and the pushed-metrics store.
//! - [`metrics`]: Prometheus metrics with Kafka's names, health endpoints (`metrics.listener`).
//! - [`error`]: the single mapping of domain errors to Kafka error codes.
//!
//! # Invariants
//! - No lock is held across an `.await`: logs sit behind `std::sync::Mutex`es taken for
//!   the syscalls only; fsyncs run on the blocking pool.
//! - Input never panics the broker: malformed input closes its own connection or gets
//!   an error code.
//! - A produce is acknowledged only after its batch is in the log (and fsynced when the
//!   flush policy says so).

pub mod auth;
pub mod broker;
pub mod cluster;
pub mod config;
pub mod connection_quotas;
pub mod coordinator_partition;
pub mod error;
pub mod expiry;
pub mod fetch_session;
pub mod frame;
pub mod group;
pub mod group_config;
pub mod handlers;
pub mod host;
pub mod log_dirs;
pub mod metrics;
pub mod partition;
pub mod quota;
pub mod replica_manager;
pub mod replication;
pub mod schema_validation;
pub mod server;
pub mod share;
pub mod telemetry;
pub mod topic_settings;
pub mod txn;
pub mod util;

pub use broker::{Broker, StartError};
pub use config::{BrokerConfig, ConfigError};
