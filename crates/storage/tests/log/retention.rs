//! DeleteRecords and retention by time and size: the log start moves, the active segment stays.

use gregor_storage::{Log, LogError};

use crate::support::{append, make_batch, small_config};

#[test]
fn delete_records_moves_the_start_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(), true, 0).unwrap();
    for i in 0..50 {
        append(&mut log, make_batch(3, 1000 + i * 10, i as u8));
    }
    let segments = log.segment_count();
    assert!(segments > 3);
    let (start, doomed) = log.delete_records_before(40).unwrap();
    assert_eq!(start, 40);
    assert!(!doomed.is_empty(), "whole segments below 40 go");
    assert!(doomed
        .iter()
        .all(|p| p.to_string_lossy().ends_with(".deleted")));
    assert!(
        matches!(
            log.read(39, 1 << 20, true, i64::MAX),
            Err(LogError::OffsetOutOfRange {
                offset: 39,
                log_start: 40,
                log_end: 150
            })
        ),
        "below the start is out of range"
    );
    assert!(!log
        .read(40, 1 << 20, true, i64::MAX)
        .unwrap()
        .bytes
        .is_empty());
    // Never beyond the end; never backwards.
    assert_eq!(log.delete_records_before(10).unwrap().0, 40);
    assert_eq!(log.delete_records_before(10_000).unwrap().0, 150);
    drop(log);
    // A crash before the renamed files were removed: the next open removes them.
    let log = Log::open(dir.path(), small_config(), false, 0).unwrap();
    assert_eq!(log.log_start_offset(), 150);
    assert_eq!(log.log_end_offset(), 150);
    let leftovers = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".deleted")
        })
        .count();
    assert_eq!(leftovers, 0);
}

#[test]
fn retention_by_time_and_size_keeps_the_active_segment() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(), true, 0).unwrap();
    for i in 0..50 {
        append(&mut log, make_batch(3, 1000 + i * 10, i as u8));
    }
    let total = log.size_bytes();
    // By size (Kafka's rule): a segment goes only if the log stays at least
    // retention.bytes without it, so between 2 KiB and 2 KiB + one segment remain.
    log.apply_retention(-1, 2048, 0).unwrap();
    let left = log.size_bytes();
    assert!(
        (2048..2048 + 1024).contains(&left) && left < total,
        "{left} of {total}"
    );
    let start = log.log_start_offset();
    assert!(start > 0);
    // By time: every closed segment is older than 1 ms at t = 1e9; the active one stays.
    log.apply_retention(1, -1, 1_000_000_000).unwrap();
    assert_eq!(log.segment_count(), 1);
    assert!(log.log_start_offset() > start);
    assert_eq!(log.log_end_offset(), 150);
}
