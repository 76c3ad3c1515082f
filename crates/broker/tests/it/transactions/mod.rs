//! Transactions at the wire level, with exact error codes: InitProducerId fencing and
//! timeouts, AddPartitionsToTxn errors and KIP-890 verification, EndTxn states,
//! markers, the last stable offset, aborted transactions in read_committed fetches,
//! isolation-aware ListOffsets, Describe/ListTransactions, and recovery after a restart.
//! (librdkafka drives the same paths end to end in tests/python/test_transactions.py.)
//!
//! One test binary, by theme: `coordinator`, `partition_state` and `txn_offsets`; shared
//! helpers live in `support`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

// One directory deeper than the other test files, so `common` is named by path.
use crate::common;
pub(crate) mod support;

mod coordinator;
mod partition_state;
mod txn_offsets;
