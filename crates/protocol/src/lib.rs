//! Kafka wire helpers that sit on top of the generated `kafka-protocol` message types.
//!
//! This crate is sans-I/O: it never touches sockets or files. It holds what the
//! generated crate does not: request framing limits, the v2 record-batch view that the
//! produce path validates without re-encoding, and the compression codecs.
//!
//! # Layout
//! - [`frame`]: the 4-byte length prefix and its limits.
//! - [`batch`]: [`batch::RecordBatch`], a zero-copy view of one v2 record batch: header
//!   fields, CRC32C, and the offset/leader-epoch/timestamp patches the broker may make.
//! - [`records`]: a walker over the records inside a batch (no per-record allocation).
//! - [`compression`]: gzip, snappy (raw and xerial framing), lz4 (frame) and zstd.
//! - [`filter`]: removing records from a stored batch (log compaction).
//! - [`request`]: whole-frame decoding into the generated request types (fuzzing, tests).
//! - [`BatchError`]: why a batch was rejected; the broker maps it to a Kafka error code.
//!
//! The message types themselves (requests, responses, headers) come from `kafka_protocol`,
//! re-exported here as [`kp`] so that all crates agree on one version of it.

pub mod batch;
pub mod compression;
pub mod filter;
pub mod frame;
pub mod records;
pub mod request;

pub use kafka_protocol as kp;

/// Why a record batch (or the records inside it) was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BatchError {
    /// Fewer bytes than a batch header, or a length field pointing past the buffer.
    #[error("record batch truncated: {0}")]
    Truncated(&'static str),
    /// The stored CRC32C does not match the bytes it covers.
    #[error("record batch CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    /// Only magic 2 (record batch v2) is accepted on Produce v3+.
    #[error("unsupported record batch magic {0}; only magic 2 is accepted")]
    UnsupportedMagic(i8),
    /// A structural problem inside the batch (count, offset deltas, varints, ...).
    #[error("invalid record: {0}")]
    InvalidRecord(String),
    /// The attributes name a codec this broker does not know.
    #[error("unknown compression codec {0}")]
    UnknownCompression(i16),
    /// Decompression failed: the payload is corrupt.
    #[error("corrupt compressed payload: {0}")]
    Corrupt(String),
    /// The payload inflates past the bound the caller allows for one batch (a
    /// compression bomb, or a batch claiming more than it may hold).
    #[error("decompressed batch exceeds {limit} bytes")]
    DecompressedTooLarge { limit: usize },
}
