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
pub mod records;
pub mod remote;
pub mod state;
mod task;

pub use coordinator::TxnCoordinator;

/// Whether `transaction.version` 2 is finalized: then EndTxn v5, Produce v12+ and
/// TxnOffsetCommit v5 follow KIP-890 part 2 (an epoch bump at every end, partitions
/// and groups added to the transaction implicitly). Older request versions keep the
/// v1 protocol either way.
pub fn v2_finalized(broker: &crate::broker::Broker) -> bool {
    use gregor_metadata::features::{TRANSACTION_VERSION, TRANSACTION_VERSION_2};
    broker.metadata.image().feature_level(TRANSACTION_VERSION) >= TRANSACTION_VERSION_2
}

/// Why a transaction operation failed; mapped to a Kafka error code in `crate::error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxnError {
    #[error("The producer attempted to use a producer id which is not currently assigned to its transactional id.")]
    InvalidProducerIdMapping,
    #[error(
        "There is a newer producer with the same transactionalId which fences the current one."
    )]
    ProducerFenced,
    #[error("The producer attempted to update a transaction while another concurrent operation on the same transaction was ongoing.")]
    ConcurrentTransactions,
    #[error("The producer attempted a transactional operation in an invalid state.")]
    InvalidTxnState,
    #[error("The transaction timeout is larger than the maximum value allowed by the broker (as configured by transaction.max.timeout.ms).")]
    InvalidTransactionTimeout,
    #[error("The transaction coordinator is not available.")]
    CoordinatorNotAvailable,
    /// Another broker leads the transactional id's `__transaction_state` partition.
    #[error("This is not the correct coordinator.")]
    NotCoordinator,
    #[error("The transactionalId could not be found.")]
    TransactionalIdNotFound,
    /// EndTxn, AddPartitionsToTxn or AddOffsetsToTxn without a transactional id.
    #[error("The transactional id is empty.")]
    EmptyTransactionalId,
    /// Longer than `TransactionLogKey`'s int16-length string: refused, never truncated.
    #[error("The transactional id is longer than 32767 bytes.")]
    TransactionalIdTooLong,
    #[error("Transaction state could not be stored: {0}")]
    Storage(String),
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
