//! Decoding a whole request frame into the generated types, for any API the generated
//! crate knows. The broker dispatches with typed decoders per handler; this function is
//! the same decoding path in one call, for the fuzz target and property tests.

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::{Decodable, Message};

/// Why a frame is not a request.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    #[error("request shorter than its header")]
    Short,
    #[error("unknown API key {0}")]
    UnknownApi(i16),
    #[error("API {0:?} has no version {1}")]
    UnknownVersion(ApiKey, i16),
    #[error("malformed request: {0}")]
    Malformed(String),
}

/// Decodes a frame (without its length prefix) into its header and body.
pub fn decode_request(frame: Bytes) -> Result<(RequestHeader, RequestKind), RequestError> {
    if frame.len() < 8 {
        return Err(RequestError::Short);
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let api = ApiKey::try_from(key).map_err(|_| RequestError::UnknownApi(key))?;
    let range = api.valid_versions();
    if version < range.min || version > range.max {
        return Err(RequestError::UnknownVersion(api, version));
    }
    let mut buf = frame;
    let header = RequestHeader::decode(&mut buf, api.request_header_version(version))
        .map_err(|e| RequestError::Malformed(e.to_string()))?;
    let body = RequestKind::decode(api, &mut buf, version)
        .map_err(|e| RequestError::Malformed(e.to_string()))?;
    Ok((header, body))
}

/// The body of the `request_decode` fuzz target (fuzz/), here so that the libFuzzer
/// target and the stable harness over the seed corpus (tests/fuzz_corpus.rs,
/// scripts/fuzz.sh) run the same code: `data` is decoded as a request frame, every
/// produce payload is validated as a record batch (and walked, decompressed, filtered),
/// and `data` itself is tried as a batch. Nothing may panic or abort.
#[doc(hidden)]
pub fn fuzz_one(data: &[u8]) {
    let mut scratch = Vec::new();
    if let Ok((_, RequestKind::Produce(req))) = decode_request(Bytes::copy_from_slice(data)) {
        for t in &req.topic_data {
            for p in &t.partition_data {
                if let Some(records) = &p.records {
                    let _ = crate::batch::validate(records, &mut scratch, 1 << 20);
                    let _ = crate::batch::validate_stored(records, &mut scratch, 1 << 20);
                    let _ =
                        crate::batch::first_offset_at_or_after(records, 0, &mut scratch, 1 << 20);
                    let _ = crate::filter::filter_batch(records, &mut scratch, 1 << 20, |o, _| {
                        o % 2 == 0
                    });
                }
            }
        }
    }
    let _ = crate::batch::validate(data, &mut scratch, 1 << 20);
}

/// The header version range is part of the generated crate; re-exported for callers that
/// want to check a version without decoding.
pub fn header_versions() -> kafka_protocol::protocol::VersionRange {
    RequestHeader::VERSIONS
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn oversized_array_counts_are_refused_without_allocating() {
        // Metadata v0 whose topic array claims ~54 million entries.
        let frame = Bytes::from_static(&[
            0, 3, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0x03, 0x3c, 0x0c, 0x00, 0xb6,
        ]);
        assert!(matches!(
            decode_request(frame),
            Err(RequestError::Malformed(_))
        ));
    }

    proptest! {
        #[test]
        fn random_frames_never_panic(key in 0i16..100, version in 0i16..20, body in proptest::collection::vec(any::<u8>(), 0..300)) {
            let mut frame = key.to_be_bytes().to_vec();
            frame.extend_from_slice(&version.to_be_bytes());
            frame.extend_from_slice(&body);
            let _ = decode_request(Bytes::from(frame));
        }
    }
}
