//! Shared helpers: batch builders, appends, fetch parsing, small-segment and cleaner configs.

use gregor_protocol::batch::{self, NewRecord};
use gregor_protocol::compression::Codec;
use gregor_storage::{Log, LogConfig};
use proptest::prelude::ProptestConfig;
use proptest::test_runner::FileFailurePersistence;

pub(crate) fn make_batch(n: usize, ts0: i64, tag: u8) -> Vec<u8> {
    let vals: Vec<Vec<u8>> = (0..n).map(|i| vec![tag, i as u8, 0xAB, 0xCD]).collect();
    let recs: Vec<NewRecord<'_>> = vals
        .iter()
        .enumerate()
        .map(|(i, v)| NewRecord {
            key: Some(b"key"),
            value: Some(v),
            timestamp: ts0 + i as i64,
            headers: &[],
        })
        .collect();
    batch::build(0, Codec::None, &recs).unwrap()
}

pub(crate) fn append(log: &mut Log, b: Vec<u8>) -> i64 {
    let mut scratch = Vec::new();
    let v = batch::validate(&b, &mut scratch, 1 << 20).unwrap();
    log.append(&b, &v, 0, None, 0).unwrap().base_offset
}

/// Splits a fetch result into (base offset, record count) per batch.
pub(crate) fn batches(bytes: &[u8]) -> Vec<(i64, i32)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let h = batch::BatchHeader::parse(&bytes[at..]).unwrap();
        out.push((h.base_offset, h.record_count));
        at += h.total_size();
    }
    out
}

pub(crate) fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 100,
        ..LogConfig::default()
    }
}

pub(crate) fn keyed_batch(key: &[u8], value: Option<&[u8]>, ts: i64) -> Vec<u8> {
    batch::build(
        0,
        Codec::None,
        &[NewRecord {
            key: Some(key),
            value,
            timestamp: ts,
            headers: &[],
        }],
    )
    .unwrap()
}

/// Every (offset, key, value) a consumer reading from the start would see.
pub(crate) fn read_all(log: &Log) -> Vec<(i64, Vec<u8>, Option<Vec<u8>>)> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let bytes = log.read(offset, 1 << 20, true, i64::MAX).unwrap().bytes;
        if bytes.is_empty() {
            break;
        }
        let mut at = 0;
        while at < bytes.len() {
            let h = batch::BatchHeader::parse(&bytes[at..]).unwrap();
            let data = &bytes[at + batch::HEADER_LEN..at + h.total_size()];
            for r in gregor_protocol::records::RecordWalker::new(data, h.record_count) {
                let r = r.unwrap();
                let o = h.base_offset + i64::from(r.offset_delta);
                if o >= offset {
                    out.push((o, r.key.unwrap().to_vec(), r.value.map(<[u8]>::to_vec)));
                }
            }
            offset = h.last_offset() + 1;
            at += h.total_size();
        }
    }
    out
}

pub(crate) fn cleaner_config() -> gregor_storage::CleanerConfig {
    gregor_storage::CleanerConfig {
        min_cleanable_ratio: 0.5,
        min_compaction_lag_ms: 0,
        max_compaction_lag_ms: i64::MAX,
        delete_retention_ms: 1000,
        max_map_entries: 1 << 20,
    }
}

/// Proptest settings running `cases` cases, with failing seeds kept next to the module
/// that runs them (`tests/log/<module>.proptest-regressions`), where they were before the
/// split (`tests/log.proptest-regressions`). Proptest's default would look for them in
/// `tests/proptest-regressions/<module>.txt` now that the test has a `main.rs`.
pub(crate) fn proptest_config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::with_cases(cases)
    }
}
