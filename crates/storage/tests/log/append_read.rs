//! Appends and reads, rolling by size and age, the flush policy, timestamp search, clean reopen.

use gregor_protocol::batch;
use gregor_storage::{Log, LogConfig, LogError};

use crate::support::{append, batches, make_batch, small_config};

#[test]
fn append_assigns_offsets_and_read_returns_whole_batches() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(), true, 0).unwrap();
    for i in 0..50 {
        assert_eq!(
            append(&mut log, make_batch(3, 1000 + i * 10, i as u8)),
            i * 3
        );
    }
    assert_eq!(log.log_end_offset(), 150);
    assert!(log.segment_count() > 3, "1 KiB segments must roll");
    // Every offset is readable and the first batch returned holds it.
    for off in 0..150 {
        let r = log.read(off, 10, true, i64::MAX).unwrap();
        let got = batches(&r.bytes);
        assert_eq!(
            got.len(),
            1,
            "max_bytes below a batch still yields one whole batch"
        );
        assert!(got[0].0 <= off && off < got[0].0 + 3);
    }
    assert!(log
        .read(150, 1000, true, i64::MAX)
        .unwrap()
        .bytes
        .is_empty());
    assert!(matches!(
        log.read(151, 1000, true, i64::MAX),
        Err(LogError::OffsetOutOfRange {
            offset: 151,
            log_start: 0,
            log_end: 150
        })
    ));
    // The upper bound (high watermark) cuts the result.
    let r = log.read(0, 1 << 20, true, 6).unwrap();
    assert_eq!(batches(&r.bytes), vec![(0, 3), (3, 3)]);
}

#[test]
fn segments_roll_by_age_and_flush_policy_counts_messages() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_ms: 1000,
        flush_messages: 4,
        ..LogConfig::default()
    };
    let mut log = Log::open(dir.path(), cfg, true, 0).unwrap();
    let mut scratch = Vec::new();
    for (i, now) in [0i64, 500, 999, 1000, 1500, 2100].into_iter().enumerate() {
        let b = make_batch(1, now, i as u8);
        let v = batch::validate(&b, &mut scratch, 1 << 20).unwrap();
        log.append(&b, &v, 0, None, now).unwrap();
    }
    // First segment took appends at 0, 500, 999; the one at 1000 rolled; 2100 rolled again.
    assert_eq!(log.segment_count(), 3);
    assert!(
        log.flush_due(2100),
        "6 unflushed messages >= flush.messages=4"
    );
    log.flush(2100).unwrap();
    assert!(!log.flush_due(2100));
    assert_eq!(log.recovery_point(), 6);
}

#[test]
fn timestamps_are_searchable_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(), true, 0).unwrap();
    for i in 0..40 {
        append(&mut log, make_batch(5, 10_000 + i * 100, 0));
    }
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((0, 10_000)));
    assert_eq!(log.offset_for_timestamp(10_102).unwrap(), Some((7, 10_102)));
    assert_eq!(log.offset_for_timestamp(10_104).unwrap(), Some((9, 10_104)));
    assert_eq!(
        log.offset_for_timestamp(10_105).unwrap(),
        Some((10, 10_200))
    );
    assert_eq!(log.offset_for_timestamp(99_999).unwrap(), None);
    assert_eq!(log.max_timestamp_offset().unwrap(), Some((199, 13_904)));
}

#[test]
fn clean_reopen_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(), true, 0).unwrap();
    for i in 0..30 {
        append(&mut log, make_batch(2, i, 1));
    }
    let before = log.read(0, 1 << 20, false, i64::MAX).unwrap().bytes;
    log.close(0).unwrap();
    let log = Log::open(dir.path(), small_config(), true, 0).unwrap();
    assert_eq!(log.log_end_offset(), 60);
    assert_eq!(log.read(0, 1 << 20, false, i64::MAX).unwrap().bytes, before);
    assert_eq!(log.offset_for_timestamp(20).unwrap(), Some((39, 20)));
}
