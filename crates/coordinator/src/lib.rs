//! The coordinators' pure parts: the state machines of the group, transaction and
//! share coordinators and the record codecs of their internal topics, free of I/O.
//!
//! The broker (`gregor-broker`) runs the coordinators: their registries and tasks, the
//! appends to and replays of `__consumer_offsets`, `__transaction_state` and
//! `__share_group_state`, the inter-broker calls. It drives what is here and persists
//! what it returns.
//!
//! # Layout
//! - [`group`]: `__consumer_offsets` records (Kafka's `OffsetCommitKey`/`Value`,
//!   `GroupMetadataKey`/`Value`) and the group-to-partition hash.
//! - [`txn`]: one transactional id's state machine, `__transaction_state` records
//!   (`TransactionLogKey`/`Value`), and [`txn::TxnError`].
//! - [`share`]: share-group membership and assignor, the share-partition state machine
//!   (record states, locks, delivery counts), share-partition state and its
//!   `__share_group_state` records, and [`share::ShareError`].
//!
//! # Invariants
//! - **Pure.** No I/O, no clock reads of its own (callers pass `now`), no tasks, no
//!   locks, no network: everything here is a synchronous function of its inputs, unit
//!   tested without a broker.
//! - **Nothing points back.** This crate never depends on `gregor-broker`; the
//!   dependency runs broker -> coordinator -> (protocol/storage/metadata types).
//! - **Compute, then persist, then adopt.** A state machine's transition returns the
//!   next state without changing the current one; the broker appends it to the
//!   internal topic and adopts it only once the write is acknowledged, so memory never
//!   runs ahead of the log.
//! - **Kafka's schemas.** Records are encoded in Kafka's own key/value schemas, so
//!   Kafka tools reading the internal topics keep working. Decoding never panics on
//!   input: a truncated or unknown-version record is a typed error.
//! - **Typed errors, one mapping.** Errors are `thiserror` enums; no Kafka error code is
//!   chosen here. The broker maps them to wire codes at its one boundary
//!   (`gregor_broker::error`).

pub mod group;
pub mod share;
pub mod txn;
