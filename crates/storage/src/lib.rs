//! The commit log: one [`Log`] per partition, made of [`segment::LogSegment`]s.
//!
//! # Layout on disk (Kafka's)
//! ```text
//! <log.dir>/<topic>-<partition>/
//!     00000000000000000000.log        record batches, exactly as produced
//!     00000000000000000000.index      sparse: (relative offset u32, file position u32)
//!     00000000000000000000.timeindex  sparse: (max timestamp so far i64, relative offset u32)
//!     00000000000000004096.log ...    next segment, named by its base offset
//! ```
//!
//! # Invariants
//! - Batches are written as the producer sent them; only the base offset, the partition
//!   leader epoch and (for LogAppendTime) the max timestamp are set.
//! - Offsets in a log are strictly increasing, segment base offsets too; the last segment
//!   is the only one written to (the active segment).
//! - A rolled segment is fsynced before the next one takes writes, so after a crash only
//!   the active segment can hold a torn tail. Recovery truncates it at the first batch whose
//!   framing or CRC is bad and rebuilds that segment's indexes.
//! - Reads return byte ranges of whole batches; storage never decodes records on the read
//!   path (it walks batch headers only).
//!
//! Storage knows nothing of the network or Kafka request types.

pub mod cleaner;
mod deferred;
pub mod epoch_cache;
mod file_cache;
mod index;
mod log;
pub mod producer_state;
mod segment;
#[doc(hidden)]
pub mod testing;
mod txn_index;

pub use crate::cleaner::{build_cleaned, CleanOutput, CleanPlan, CleanerConfig, PlannedSegment};
pub use crate::deferred::DeferredWrites;
pub use crate::epoch_cache::EpochCache;
pub use crate::file_cache::FileCache;
#[doc(hidden)]
pub use crate::index::{offset_index_entries, time_index_entries};
pub use crate::log::{
    AppendInfo, CleanInputs, FileRange, FlushHandle, Log, LogConfig, PreparedSwap, ReadInfo,
    ReplicaAppend, SwapFinish, DELETED_SUFFIX, DELETE_SUFFIX,
};
pub use crate::producer_state::AbortedTxn;

/// Errors of the storage layer. The broker maps them to Kafka error codes.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    #[error("offset {offset} out of range [{log_start}, {log_end}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start: i64,
        log_end: i64,
    },
    #[error("corrupt log data in {path}: {reason}")]
    Corrupt { path: String, reason: String },
    #[error("record batch error: {0}")]
    Batch(#[from] gregor_protocol::BatchError),
    #[error("{0}")]
    Producer(#[from] producer_state::ProducerError),
}

pub type Result<T, E = LogError> = std::result::Result<T, E>;

/// Makes everything written to the filesystem holding `dir` durable with one
/// `syncfs(2)`: at shutdown, one call instead of an fsync per file of every dirty
/// segment (each costs milliseconds, and 50,000 partitions have 150,000 files).
pub fn sync_filesystem(dir: &std::path::Path) -> std::io::Result<()> {
    let d = std::fs::File::open(dir)?;
    rustix::fs::syncfs(&d)?;
    Ok(())
}

/// Name of a segment's files for `base_offset` with extension `ext`.
pub(crate) fn file_name(base_offset: i64, ext: &str) -> String {
    format!("{base_offset:020}.{ext}")
}
