//! Writes a log decides on under its caller's lock wait for the caller when deferred:
//! a roll's producer snapshot is not written by `append` but by `DeferredWrites::run`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use gregor_protocol::batch::{self, NewRecord};
use gregor_protocol::compression::Codec;
use gregor_storage::{Log, LogConfig};

fn snapshots(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".snapshot")
        })
        .count()
}

#[test]
fn a_rolls_snapshot_waits_for_the_caller_when_writes_are_deferred() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        segment_bytes: 200,
        ..LogConfig::default()
    };
    let mut log = Log::open(dir.path(), cfg, true, 0).unwrap();
    log.set_defer_writes(true);
    let value = [7u8; 100];
    let recs = [NewRecord {
        key: Some(b"k"),
        value: Some(&value),
        timestamp: 1000,
        headers: &[],
    }];
    let b = batch::build(0, Codec::None, &recs).unwrap();
    let v = batch::validate(&b, &mut Vec::new(), 1 << 20).unwrap();
    for _ in 0..5 {
        log.append(&b, &v, 0, None, 0).unwrap();
    }
    assert!(log.segment_count() > 2, "rolled");
    assert_eq!(
        snapshots(dir.path()),
        0,
        "nothing written under the caller's lock"
    );
    let pending = log.deferred_writes();
    assert!(!pending.is_empty());
    pending.run();
    assert!(pending.is_empty());
    assert!((1..=2).contains(&snapshots(dir.path())), "written by run()");
}
