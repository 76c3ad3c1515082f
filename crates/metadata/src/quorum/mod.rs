//! The KRaft metadata quorum: the metadata log replicated by Raft (openraft 0.9.25).
//!
//! Controllers are openraft voters; broker-only nodes are no members at all and pull the
//! committed log through [`MetadataFollower`] (an openraft learner would be a membership
//! entry of its own, see CLUSTER-NOTES §2).
//!
//! # Entries and the image
//! One openraft entry is one metadata entry, [`MetaEntry`]: the records of one decision
//! plus the image offset the decision was made on. Applying the entry at raft index `i`
//! runs the records only when that offset is still the image's (compare-and-set, see
//! [`MetadataQuorum::commit`]); otherwise it applies nothing and answers "stale". Blank
//! and membership entries apply nothing. Either way `image.offset = i`, so the image is a
//! pure function of the committed log and equal on every node at the same index. Only
//! committed entries are applied or served to followers.
//!
//! # Layout under `data_dir/__cluster_metadata-0/`
//! - `quorum.state`: directory id, cluster id, node id, a pending migration.
//! - `raft.log`: CRC-framed records (entries, votes, the committed index, purge marks),
//!   fsynced before openraft is told; a torn tail is cut at the first bad frame.
//! - `raft.snapshot`: the image as records plus the snapshot's raft metadata, CRC'd,
//!   written to a temp file, fsynced and renamed.
//! - `pre-raft/`: the old single-voter log and checkpoints after their migration.
//!
//! # Safety
//! The directory id is also written to `meta.properties` (`directory.id`, as KIP-858). A
//! node whose `meta.properties` has a directory id but whose raft state is missing or
//! belongs to another directory refuses to start: with its vote lost it could vote twice
//! in one term. Every RPC frame names the cluster id and the sender; a peer of another
//! cluster gets [`QuorumError::InconsistentClusterId`].
//!
//! # No pre-vote
//! openraft 0.9 has no pre-vote (KIP-996's). What it has: a follower rejects a
//! VoteRequest while its leader lease (refreshed by every heartbeat, as long as the
//! election timeout) has not expired, so a node that lost contact cannot take votes
//! away from a healthy leader while the others still hear from it; and election
//! timeouts are randomised between 1x and 2x, which makes split votes rare. What it does
//! not cover: the cut-off node's term still grows, and when it comes back its higher term
//! in a response makes the leader step down once (it cannot win itself, its log being
//! behind, so a new leader is elected within an election timeout or two).

mod dirs;
mod follower;
mod log_store;
mod network;
mod node;
mod prevote;
mod rpc;
mod state_machine;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::controller::ControllerError;
use crate::records::MetadataRecord;
use crate::store::MetadataLogConfig;

pub use follower::MetadataFollower;
pub use node::MetadataQuorum;
pub use rpc::{AppHandler, RpcClient, RpcTls};

openraft::declare_raft_types!(
    /// openraft's types for the metadata log.
    pub(crate) TypeConfig:
        D = MetaEntry,
        R = MetaResponse,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Vec<u8>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// One metadata entry: the records of one decision, made on the image at
/// `expected_offset`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaEntry {
    pub expected_offset: i64,
    pub records: Vec<MetadataRecord>,
}

/// What applying an entry did: `applied` false is a stale entry (the image had moved).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetaResponse {
    pub applied: bool,
}

/// How a node takes part in the metadata quorum.
#[derive(Debug, Clone)]
pub struct QuorumConfig {
    pub node_id: i32,
    /// controller.quorum.voters: voter id -> "host:port". Empty: this node is the only
    /// voter and opens no port.
    pub voters: BTreeMap<i32, String>,
    /// The node's data directory (meta.properties is there); the raft state is kept
    /// under `data_dir/__cluster_metadata-0/`.
    pub data_dir: PathBuf,
    pub cluster_id: String,
    pub log: MetadataLogConfig,
    /// The election timeout; each election waits a random 1x..2x of it.
    pub election_timeout: Duration,
    pub heartbeat_interval: Duration,
    /// Whether the last stop was clean; only the migration's reading of an old-format
    /// log uses it (the raft log is checked frame by frame on every start).
    pub clean_shutdown: bool,
    /// TLS on the controller listener (both sides), when its protocol is SSL.
    pub tls: rpc::RpcTls,
    /// The static `min.insync.replicas`: the ELR rules' min ISR (KIP-966, see
    /// `crate::elr`) for a topic without its own and no dynamic cluster default.
    pub default_min_insync_replicas: usize,
}

impl QuorumConfig {
    /// A config with KRaft-like timeouts (1 s election, 200 ms heartbeat).
    pub fn new(
        node_id: i32,
        voters: BTreeMap<i32, String>,
        data_dir: PathBuf,
        cluster_id: String,
    ) -> Self {
        Self {
            node_id,
            voters,
            data_dir,
            cluster_id,
            log: MetadataLogConfig::default(),
            election_timeout: Duration::from_secs(1),
            heartbeat_interval: Duration::from_millis(200),
            clean_shutdown: true,
            tls: rpc::RpcTls::default(),
            default_min_insync_replicas: 1,
        }
    }
}

/// The quorum as DescribeQuorum (API 55) reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumStatus {
    /// -1 when unknown.
    pub leader_id: i32,
    /// The raft term.
    pub leader_epoch: i32,
    /// One past the last committed index.
    pub high_watermark: i64,
    pub voters: Vec<ReplicaStatus>,
    pub observers: Vec<ReplicaStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaStatus {
    pub replica_id: i32,
    /// One past the last index the replica has (-1 unknown).
    pub log_end_offset: i64,
    /// Milliseconds since the epoch, -1 unknown.
    pub last_fetch_timestamp: i64,
    pub last_caught_up_timestamp: i64,
}

/// Why a quorum operation failed.
#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    /// This node is not the leader (NOT_CONTROLLER, retriable).
    #[error("this node is not the active controller (leader: {leader:?})")]
    NotLeader { leader: Option<i32> },
    /// No quorum, or it did not answer in time (REQUEST_TIMED_OUT, retriable).
    #[error("metadata quorum unavailable: {0}")]
    Unavailable(String),
    /// `decide` refused the operation.
    #[error(transparent)]
    Controller(#[from] ControllerError),
    #[error("inconsistent cluster id: ours is {ours}, the peer's is {theirs}")]
    InconsistentClusterId { ours: String, theirs: String },
    #[error("metadata quorum storage: {0}")]
    Storage(String),
    /// The raft state of a formatted directory is missing or not this directory's: the
    /// node could vote twice in one term, so it refuses to start.
    #[error("metadata quorum state lost: {0}")]
    StateLost(String),
    #[error("metadata quorum config: {0}")]
    Config(String),
    /// AddRaftVoter / RemoveRaftVoter refused.
    #[error(transparent)]
    Membership(#[from] MembershipError),
}

/// Why a voter change (KIP-853) was refused; each maps to one Kafka error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
pub enum MembershipError {
    #[error("Voter {0} is already part of the set of voters.")]
    DuplicateVoter(i32),
    #[error("Voter {0} is not part of the set of voters.")]
    VoterNotFound(i32),
    #[error("Invalid voter: {0}")]
    InvalidVoter(String),
}

impl From<std::io::Error> for QuorumError {
    fn from(e: std::io::Error) -> Self {
        QuorumError::Storage(e.to_string())
    }
}

impl From<crate::MetadataError> for QuorumError {
    fn from(e: crate::MetadataError) -> Self {
        match e {
            crate::MetadataError::Controller(c) => QuorumError::Controller(c),
            other => QuorumError::Storage(other.to_string()),
        }
    }
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
