//! Cluster metadata: records appended to a log and applied to an in-memory image.
//!
//! This is the single-voter form of a KRaft controller quorum. The controller turns
//! requests (create a topic, delete it) into [`MetadataRecord`]s after validating them
//! against the current [`MetadataImage`]; [`MetadataStore::commit`] makes them durable in
//! the `__cluster_metadata-0` log (the same storage engine as partitions, one batch per
//! commit, fsynced) and then publishes a new immutable image. Brokers read the image
//! through an `Arc` snapshot and never lock it.
//!
//! # Layout
//! - [`records`]: the record types (Kafka's names: TopicRecord, PartitionRecord, ...).
//! - [`image`]: the image and how a record applies to it.
//! - [`controller`]: validation and record generation for topic operations.
//! - [`features`]: feature levels (KIP-584): supported ranges, bootstrap levels and
//!   the checks for UpdateFeatures.
//! - [`fencing`]: a broker fenced, stopping cleanly or unfenced, as partition changes.
//! - [`election`]: preferred and unclean leader elections, leader balance.
//! - [`elr`]: eligible leader replicas (KIP-966): the ELR rules every partition change
//!   goes through at `eligible.leader.replicas.version` 1.
//! - [`alter_partition`]: ISR changes asked by partition leaders (AlterPartition),
//!   decided in batches; [`kafka_apis`] carries it as a Kafka request to the controller.
//! - [`reassignment`]: moving partitions to new replicas (KIP-455), pure decisions.
//! - [`topic_config`]: the topic-level config names, their types and validation.
//! - [`client_metrics`]: client-metrics subscriptions (KIP-714) and their validation.
//! - [`group_config`]: per-group configs (the GROUP config resource) and their validation.
//! - [`acls`]: CreateAcls and DeleteAcls as records (the ACL model is gregor-security's).
//! - [`quorum`]: the metadata log replicated by Raft (openraft): voters, broker-only
//!   followers, the RPC transport, the migration from the single-voter store.
//! - [`store`]: the single-voter durable log plus the current image (before the quorum;
//!   now read by the quorum's migration).
//! - [`snapshot`]: the image written as records every
//!   `metadata.log.max.record.bytes.between.snapshots`, so the log below can be deleted.
//!
//! # Invariants
//! - The image is a pure function of the records in the log, in order (a snapshot is
//!   those records folded up to its end offset; the log is cut only below the older of
//!   the two snapshots kept).
//! - A commit is all-or-nothing: its records are one batch, applied only after fsync.
//! - Metadata never touches partition data.

pub mod acls;
pub mod active;
pub mod alter_partition;
pub mod client_metrics;
pub mod controller;
pub mod election;
pub mod elr;
pub mod features;
pub mod fencing;
pub mod group_config;
pub mod image;
pub mod kafka_apis;
pub mod offline_dirs;
pub mod placement;
pub mod quorum;
pub mod quotas;
pub mod reassignment;
pub mod records;
pub mod request;
pub mod snapshot;
pub mod store;
pub mod topic_config;

pub use controller::ControllerError;
pub use image::{BrokerImage, MetadataImage, PartitionImage, TopicImage};
pub use quorum::{
    AppHandler, MetadataFollower, MetadataQuorum, QuorumConfig, QuorumError, QuorumStatus,
    ReplicaStatus, RpcClient,
};
pub use records::{BrokerEndpoint, MetadataRecord};
pub use request::ControllerRequest;
pub use store::{MetadataLogConfig, MetadataStore};

/// Errors of the metadata store itself (I/O, corrupt records).
#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("metadata log: {0}")]
    Log(#[from] gregor_storage::LogError),
    #[error("metadata log I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt metadata record: {0}")]
    Corrupt(String),
    #[error("record batch: {0}")]
    Batch(#[from] gregor_protocol::BatchError),
    #[error(transparent)]
    Controller(#[from] ControllerError),
}
