//! The transaction coordinator's pure parts.
//!
//! - [`state`]: one transactional id's metadata and its transitions (Empty, Ongoing,
//!   PrepareCommit/PrepareAbort, CompleteCommit/CompleteAbort), synchronous and free of
//!   wire types. Each transition is computed on a copy; the caller persists it, then
//!   adopts it.
//! - [`records`]: Kafka's `TransactionLogKey`/`TransactionLogValue` schemas.

pub mod records;
pub mod state;

/// Why a transaction operation failed; mapped to a Kafka error code by the broker
/// (`gregor_broker::error::txn_error_code`), its one mapping point.
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
