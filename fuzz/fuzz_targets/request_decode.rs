//! Fuzzes the request-decoding path: a frame body as the broker receives it is decoded
//! into the generated request types, and every produce payload goes through batch
//! validation. Neither may panic or abort, whatever the bytes.
//!
//! Run: `cargo fuzz run request_decode` (cargo-fuzz uses a nightly toolchain's sanitizer
//! flags; `RUSTC_BOOTSTRAP=1 cargo fuzz run request_decode` on stable).
#![no_main]

use bytes::Bytes;
use gregor_protocol::kp::messages::RequestKind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((_, RequestKind::Produce(req))) = gregor_protocol::request::decode_request(Bytes::copy_from_slice(data)) {
        let mut scratch = Vec::new();
        for t in &req.topic_data {
            for p in &t.partition_data {
                if let Some(records) = &p.records {
                    let _ = gregor_protocol::batch::validate(records, &mut scratch, 1 << 20);
                }
            }
        }
    }
    let mut scratch = Vec::new();
    let _ = gregor_protocol::batch::validate(data, &mut scratch, 1 << 20);
});
