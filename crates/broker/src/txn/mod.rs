//! The transaction coordinator: transactional ids, their producer ids and epochs, and
//! the two-phase commit of transactions across partitions, persisted in
//! `__transaction_state`.
//!
//! # Layout
//! - [`state`]: one transactional id's metadata and its transitions (Empty, Ongoing,
//!   PrepareCommit/PrepareAbort, CompleteCommit/CompleteAbort), synchronous and free of
//!   wire types. Each transition is computed on a copy, persisted, then adopted.
//! - [`coordinator`]: the registry. Each transactional id with state is owned by one
//!   task (`task.rs`) that applies requests in order, writes the transaction markers
//!   (retrying until every partition has its marker), and sleeps until the
//!   transaction's timeout, when it aborts it and fences the producer. Ids without
//!   state get no task (or their task unloads itself).
//! - [`records`]: Kafka's `TransactionLogKey`/`TransactionLogValue` schemas.
//!
//! # Transactions v2 (KIP-890 part 2)
//! With `transaction.version` 2 finalized, EndTxn v5 bumps the producer epoch at every
//! end: PrepareCommit/PrepareAbort is stored with the bumped epoch, the markers carry
//! it (fencing any late batch of the ended transaction), and the answer hands it to
//! the producer. At the last epoch the markers carry `i16::MAX` and the id moves to a
//! new producer id at epoch 0. Produce v12+ and TxnOffsetCommit v5 add partitions and
//! the group's offsets partition themselves (`handlers::produce_txn`), so a v2 client
//! never sends AddPartitionsToTxn or AddOffsetsToTxn.
//!
//! # Invariants
//! - A transition is in `__transaction_state` before anyone acts on it: PrepareCommit
//!   or PrepareAbort is stored before the first marker is written, so a crash between
//!   markers is finished at the next start by writing them all again (a marker for a
//!   transaction a partition already closed changes nothing).
//! - EndTxn is answered after every marker is in its partition's log and the group
//!   coordinator has applied (commit) or dropped (abort) the transaction's offsets.
//! - Every request carries the producer id and epoch, checked against the stored ones:
//!   an older epoch is fenced (PRODUCER_FENCED), on every path.

pub mod coordinator;
pub mod markers;
pub mod remote;
mod task;

pub use coordinator::TxnCoordinator;
/// The pure parts: the state machine, the `__transaction_state` record codecs and the
/// typed error (mapped to Kafka codes in `crate::error`).
pub use gregor_coordinator::txn::{records, state, TxnError};

/// Whether `transaction.version` 2 is finalized: then EndTxn v5, Produce v12+ and
/// TxnOffsetCommit v5 follow KIP-890 part 2 (an epoch bump at every end, partitions
/// and groups added to the transaction implicitly). Older request versions keep the
/// v1 protocol either way.
pub fn v2_finalized(metadata: &crate::cluster::ClusterLink) -> bool {
    use gregor_metadata::features::{TRANSACTION_VERSION, TRANSACTION_VERSION_2};
    metadata.image().feature_level(TRANSACTION_VERSION) >= TRANSACTION_VERSION_2
}

/// A boxed future (one per cross-coordinator call, never per record).
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// The group coordinator's part in a transaction, as the transaction coordinator sees
/// it (the group coordinator implements it; the broker wires the two together).
pub trait TxnOffsets: Send + Sync {
    /// The `__consumer_offsets` partition of `group` (the topic is created on first
    /// use); `None` when it cannot be had (an invalid group id, no controller).
    fn offsets_partition<'a>(&'a self, group: &'a str) -> BoxFuture<'a, Option<i32>>;
    /// A transaction's marker was written to a `__consumer_offsets` partition here:
    /// every group holding the producer's pending offsets applies (commit) or drops
    /// (abort) them before the future completes.
    fn complete_txn(&self, producer_id: i64, commit: bool) -> BoxFuture<'_, ()>;
}

/// What the transaction coordinator, its tasks and its marker writer see of the
/// broker: the narrow [`crate::host::Host`], the group coordinator's [`TxnOffsets`],
/// and the partitions other brokers' coordinators added to transactions at this
/// broker's request.
pub struct TxnLinks {
    pub host: std::sync::Arc<crate::host::Host>,
    pub offsets: std::sync::Arc<dyn TxnOffsets>,
    /// Partitions led here that another broker's coordinator already added to a
    /// producer's transaction (transactions v2), by (producer id, epoch): asked once
    /// per transaction, not once per produce. Forgotten when the marker arrives.
    remote_added: std::sync::Mutex<RemoteAdded>,
}

/// Partitions added to a transaction by a remote coordinator, by (producer id, epoch).
type RemoteAdded = std::collections::HashMap<(i64, i16), std::collections::BTreeSet<(String, i32)>>;

impl TxnLinks {
    pub fn new(
        host: std::sync::Arc<crate::host::Host>,
        offsets: std::sync::Arc<dyn TxnOffsets>,
    ) -> Self {
        Self {
            host,
            offsets,
            remote_added: Default::default(),
        }
    }

    /// The producer's transaction ended (a marker was written here).
    pub fn forget_remote(&self, producer_id: i64) {
        coordinator::lock(&self.remote_added).retain(|(pid, _), _| *pid != producer_id);
    }
}

/// The coordinator's settings (Kafka's broker configs).
#[derive(Debug, Clone)]
pub struct TxnConfig {
    /// `transaction.max.timeout.ms`
    pub max_timeout_ms: i32,
    /// `transaction.state.log.num.partitions`
    pub state_partitions: i32,
    /// `transactional.id.expiration.ms`: an id idle this long is forgotten.
    pub id_expiration_ms: i64,
}
