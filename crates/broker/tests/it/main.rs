//! The broker's integration tests, in one test binary: one link instead of one per file,
//! and generic code (codecs, tokio) instantiated once. `mutated_requests` stays its own
//! binary because it installs a process-wide panic hook.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

mod api_sweep;
mod api_versions_table;
mod authorization;
mod bad_input;
mod cleaner_swap;
mod client_limits;
mod cluster;
mod durability;
mod fetch;
mod group_configs;
mod groups;
mod new_apis;
mod response_queue;
mod share_renew;
mod transactions;
mod transactions_v2;
