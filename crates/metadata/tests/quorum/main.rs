//! The metadata quorum's integration tests (single voter, three voters, snapshots) in one
//! test binary: one link instead of three.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

mod cluster;
mod single;
mod snapshot;
