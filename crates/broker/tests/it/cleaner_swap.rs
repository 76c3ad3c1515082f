//! A compaction swap never makes a produce wait: the cleaner's blocking steps (re-
//! validating and indexing the cleaned segments, the directory fsyncs, the checkpoint)
//! run without the partition lock. Each step is paused in turn through the storage test
//! seam, and an append to the same partition must complete meanwhile.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::sync::Arc;
use std::time::Duration;

use gregor_broker::partition::Partition;
use gregor_broker::topic_settings::TopicSettings;
use gregor_protocol::batch::{self, NewRecord};
use gregor_protocol::compression::Codec;
use gregor_storage::testing::{pause_swap, SwapStep};
use gregor_storage::{Log, LogConfig};

fn settings() -> TopicSettings {
    TopicSettings {
        max_message_bytes: 1 << 20,
        log_append_time: false,
        timestamp_before_max_ms: i64::MAX,
        timestamp_after_max_ms: i64::MAX,
        compact: true,
        delete: false,
        retention_ms: -1,
        retention_bytes: -1,
        file_delete_delay_ms: 0,
        compression: None,
        min_cleanable_ratio: 0.0,
        min_compaction_lag_ms: 0,
        max_compaction_lag_ms: i64::MAX,
        delete_retention_ms: 86_400_000,
        min_insync_replicas: 1,
        key_schema_validation: false,
        value_schema_validation: false,
        log_config: LogConfig {
            segment_bytes: 2048,
            index_interval_bytes: 100,
            ..LogConfig::default()
        },
    }
}

fn append(p: &Partition, i: usize) {
    let ts = gregor_broker::util::now_ms() - 60_000;
    let key = format!("k{}", i % 5);
    let value = [i as u8; 64];
    let recs = [NewRecord {
        key: Some(key.as_bytes()),
        value: Some(&value),
        timestamp: ts,
        headers: &[],
    }];
    let b = batch::build(0, Codec::None, &recs).unwrap();
    let mut scratch = Vec::new();
    let v = batch::validate(&b, &mut scratch, 1 << 20).unwrap();
    p.append(&b, &v, None).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_go_on_while_a_swap_validates_and_fsyncs() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("compacted-0");
    let s = settings();
    let log = Log::open(&dir, s.log_config.clone(), true, 0).unwrap();
    let p = Arc::new(Partition::new(
        1,
        "compacted".into(),
        uuid::Uuid::nil(),
        0,
        log,
        0,
        Arc::new(s),
        gregor_broker::log_dirs::LogDirs::unchecked(&[root.path().to_path_buf()]).all()[0].clone(),
    ));
    let mut n = 0;
    for step in [SwapStep::Prepare, SwapStep::Finish] {
        // Closed, dirty segments for this round's clean.
        for _ in 0..200 {
            append(&p, n);
            n += 1;
        }
        let pause = pause_swap(&dir, step);
        let cleaning = {
            let p = p.clone();
            tokio::spawn(async move { p.clean(1 << 20).await })
        };
        let reached = {
            let pause = pause.clone();
            tokio::task::spawn_blocking(move || pause.wait_reached(Duration::from_secs(20)))
        };
        assert!(
            reached.await.unwrap(),
            "{step:?}: the clean never got there"
        );
        // The swap is stopped inside `step`: the partition must take writes.
        let appended = {
            let p = p.clone();
            tokio::time::timeout(
                Duration::from_secs(10),
                tokio::task::spawn_blocking(move || append(&p, 0)),
            )
        };
        let done = appended.await;
        pause.release();
        assert!(
            done.is_ok(),
            "{step:?}: an append waited for the paused swap (the lock was held)"
        );
        let cleaned = cleaning.await.unwrap().unwrap();
        assert!(cleaned.is_some(), "{step:?}: nothing was cleaned");
        n += 1;
    }
    // Everything is still readable after both swaps.
    let log = p.log().unwrap();
    let end = log.log_end_offset();
    assert_eq!(end, n as i64);
    let read = log
        .read(log.log_start_offset(), 1 << 20, true, end)
        .unwrap();
    assert!(!read.bytes.is_empty());
}
