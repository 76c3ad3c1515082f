//! Log behaviour: append/read, rolling, indexes, timestamps, and crash recovery at any byte.
//!
//! One test binary, by theme: `append_read`, `recovery`, `retention`, `compaction` and
//! `transactions` (with idempotent producer state); shared helpers live in `support`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod support;

mod append_read;
mod compaction;
mod recovery;
mod retention;
mod transactions;
