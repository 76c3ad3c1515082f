//! The open-file budget (`FileCache`): many logs and segments within a fixed number of
//! descriptors, opening a log without opening its closed segments, and reads that
//! outlive an eviction.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::Path;
use std::sync::Arc;

use gregor_protocol::batch::{self, NewRecord};
use gregor_protocol::compression::Codec;
use gregor_storage::{FileCache, Log, LogConfig};

fn make_batch(ts: i64, tag: u8) -> Vec<u8> {
    let value = [tag; 40];
    let recs = [NewRecord {
        key: Some(b"key"),
        value: Some(&value),
        timestamp: ts,
        headers: &[],
    }];
    batch::build(0, Codec::None, &recs).unwrap()
}

fn append(log: &mut Log, b: &[u8]) -> i64 {
    let mut scratch = Vec::new();
    let v = batch::validate(b, &mut scratch, 1 << 20).unwrap();
    log.append(b, &v, 0, None, 0).unwrap().base_offset
}

/// Descriptors this process holds on files under `dir` (other tests running in
/// parallel use other directories, so they do not count).
fn fds_under(dir: &Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.starts_with(dir))
        .count()
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 300, // a few batches per segment
        index_interval_bytes: 100,
        ..LogConfig::default()
    }
}

const BUDGET: usize = 12;
const LOGS: usize = 10;
const BATCHES: i64 = 60;

/// Reads every offset of `log` back, one batch at a time.
fn read_all(log: &Log) {
    for offset in 0..BATCHES {
        let range = log.read_range(offset, 1, true, i64::MAX).unwrap().unwrap();
        let bytes = range.read_to_vec().unwrap();
        let h = batch::BatchHeader::parse(&bytes).unwrap();
        assert_eq!(h.base_offset, offset);
    }
}

#[test]
fn many_logs_and_segments_stay_within_the_file_budget() {
    let root = tempfile::tempdir().unwrap();
    let files = Arc::new(FileCache::new(BUDGET));
    let dirs: Vec<_> = (0..LOGS)
        .map(|i| root.path().join(format!("t-{i}")))
        .collect();
    let mut logs: Vec<Log> = dirs
        .iter()
        .map(|d| Log::open_with(d, config(), true, 0, files.clone()).unwrap())
        .collect();
    // Interleave the appends so every log's active segment is touched again and again.
    for i in 0..BATCHES {
        for log in &mut logs {
            assert_eq!(append(log, &make_batch(1000 + i, i as u8)), i);
            assert!(fds_under(root.path()) <= BUDGET);
        }
    }
    let segments: usize = logs.iter().map(Log::segment_count).sum();
    assert!(
        segments * 3 > 4 * BUDGET,
        "{segments} segments: far more files than the budget"
    );
    for log in &logs {
        read_all(log);
        assert!(fds_under(root.path()) <= BUDGET);
    }
    // What a clean shutdown leaves (the data is in the page cache: no fsync needed
    // here): a producer snapshot at each log end, so a start replays no headers.
    for log in &logs {
        log.snapshot_producers();
    }
    drop(logs);
    assert_eq!(
        fds_under(root.path()),
        0,
        "closing the logs closes their files"
    );

    // A clean start opens only the active segments' files, whatever their number.
    for clean in [true, false] {
        let files = Arc::new(FileCache::new(BUDGET));
        let logs: Vec<Log> = dirs
            .iter()
            .map(|d| Log::open_with(d, config(), clean, 0, files.clone()).unwrap())
            .collect();
        assert!(fds_under(root.path()) <= BUDGET);
        if clean {
            // The active segment's data file and two indexes, per log.
            assert!(
                files.opens() <= 3 * LOGS as u64,
                "{} files opened for {LOGS} logs of {segments} segments",
                files.opens()
            );
        }
        for log in &logs {
            assert_eq!(log.log_end_offset(), BATCHES);
            read_all(log);
            assert!(fds_under(root.path()) <= BUDGET);
        }
    }
}

#[test]
fn a_range_handed_out_stays_readable_after_its_file_is_evicted() {
    let root = tempfile::tempdir().unwrap();
    let files = Arc::new(FileCache::new(1));
    let mut a = Log::open_with(&root.path().join("a"), config(), true, 0, files.clone()).unwrap();
    let mut b = Log::open_with(&root.path().join("b"), config(), true, 0, files.clone()).unwrap();
    append(&mut a, &make_batch(1000, 7));
    let range = a.read_range(0, 1 << 20, true, i64::MAX).unwrap().unwrap();
    // b's writes evict a's handle from the cache; the range keeps its own.
    append(&mut b, &make_batch(1000, 8));
    assert_eq!(files.open_count(), 1);
    let bytes = range.read_to_vec().unwrap();
    assert_eq!(batch::BatchHeader::parse(&bytes).unwrap().base_offset, 0);
    assert_eq!(bytes.len(), range.len);
}
