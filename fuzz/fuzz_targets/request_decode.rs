//! Fuzzes the request-decoding path: a frame body as the broker receives it is decoded
//! into the generated request types, and every produce payload goes through batch
//! validation. Neither may panic or abort, whatever the bytes. The body is
//! `gregor_protocol::request::fuzz_one`, shared with the stable harness
//! (crates/protocol/tests/fuzz_corpus.rs); the seed corpus is fuzz/corpus/request_decode.
//!
//! Run: `scripts/fuzz.sh <cpu-minutes>` (cargo-fuzz on nightly when installed, else the
//! stable harness), or `cargo +nightly fuzz run request_decode fuzz/corpus/request_decode`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    gregor_protocol::request::fuzz_one(data);
});
