//! A follower's log: the leader's batches appended byte for byte, the leader-epoch
//! cache, and truncation of a divergent tail (KIP-101/279) that survives a restart.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use gregor_protocol::batch::{self, NewRecord};
use gregor_protocol::compression::Codec;
use gregor_storage::{Log, LogConfig};

fn make_batch(n: usize, tag: u8) -> Vec<u8> {
    let vals: Vec<Vec<u8>> = (0..n).map(|i| vec![tag, i as u8]).collect();
    let recs: Vec<NewRecord<'_>> = vals
        .iter()
        .map(|v| NewRecord {
            key: Some(b"k"),
            value: Some(v),
            timestamp: 1_000,
            headers: &[],
        })
        .collect();
    batch::build(0, Codec::None, &recs).unwrap()
}

fn leader_append(log: &mut Log, n: usize, tag: u8, epoch: i32) {
    let b = make_batch(n, tag);
    let mut scratch = Vec::new();
    let v = batch::validate(&b, &mut scratch, 1 << 20).unwrap();
    log.append(&b, &v, epoch, None, 0).unwrap();
}

fn all_bytes(log: &Log) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offset = log.log_start_offset();
    while offset < log.log_end_offset() {
        let r = log.read(offset, 1 << 20, true, i64::MAX).unwrap();
        let mut at = 0;
        while at < r.bytes.len() {
            let h = batch::BatchHeader::parse(&r.bytes[at..]).unwrap();
            at += h.total_size();
            offset = h.last_offset() + 1;
        }
        out.extend_from_slice(&r.bytes);
    }
    out
}

fn small_segments() -> LogConfig {
    LogConfig {
        segment_bytes: 300,
        ..LogConfig::default()
    }
}

#[test]
fn a_follower_log_is_byte_identical_to_the_leaders() {
    let dir = tempfile::tempdir().unwrap();
    let mut leader = Log::open(&dir.path().join("leader"), small_segments(), false, 0).unwrap();
    for i in 0..10 {
        leader_append(&mut leader, 3, i, if i < 5 { 1 } else { 4 });
    }
    let mut follower = Log::open(&dir.path().join("follower"), small_segments(), false, 0).unwrap();
    // Fetched in two pieces, the second overlapping the first and cut mid-batch.
    let bytes = all_bytes(&leader);
    let half = bytes.len() / 2 + 7;
    follower.append_replica(&bytes[..half], 0).unwrap();
    let got = follower.append_replica(&bytes, 0).unwrap();
    assert!(got.batches > 0);
    assert_eq!(follower.log_end_offset(), 30);
    assert_eq!(all_bytes(&follower), bytes);
    assert!(
        follower.segment_count() > 1,
        "the follower rolls segments too"
    );
    assert_eq!(follower.epochs().entries(), &[(1, 0), (4, 15)]);
    assert_eq!(follower.end_offset_for_epoch(1), (1, 15));
    assert_eq!(follower.end_offset_for_epoch(3), (1, 15));
    assert_eq!(follower.end_offset_for_epoch(4), (4, 30));

    // A corrupted batch is refused.
    let mut bad = make_batch(1, 99);
    batch::set_base_offset(&mut bad, 30);
    let last = bad.len() - 1;
    bad[last] ^= 0xFF;
    assert!(follower.append_replica(&bad, 0).is_err());
    assert_eq!(follower.log_end_offset(), 30);
}

#[test]
fn truncation_removes_the_divergent_tail_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p");
    let mut log = Log::open(&path, small_segments(), false, 0).unwrap();
    for i in 0..8 {
        leader_append(&mut log, 2, i, 1);
    }
    for i in 8..12 {
        leader_append(&mut log, 2, i, 2);
    }
    assert_eq!(log.log_end_offset(), 24);
    let before = all_bytes(&log);
    // Into the middle of a batch: the whole batch goes.
    log.truncate_to(17, 0).unwrap();
    assert_eq!(log.log_end_offset(), 16);
    assert_eq!(log.epochs().entries(), &[(1, 0)]);
    let kept = all_bytes(&log);
    assert_eq!(&before[..kept.len()], &kept[..]);
    // New data under a new epoch appends after the cut.
    leader_append(&mut log, 2, 50, 3);
    assert_eq!(log.log_end_offset(), 18);
    assert_eq!(log.epochs().entries(), &[(1, 0), (3, 16)]);
    drop(log);
    let log = Log::open(&path, small_segments(), false, 0).unwrap();
    assert_eq!(log.log_end_offset(), 18);
    assert_eq!(log.epochs().entries(), &[(1, 0), (3, 16)]);

    // Truncating below everything empties the log.
    let mut log = log;
    log.truncate_to(0, 0).unwrap();
    assert_eq!(log.log_end_offset(), 0);
    assert!(log.epochs().entries().is_empty());
    leader_append(&mut log, 1, 1, 5);
    assert_eq!(log.log_end_offset(), 1);
}

#[test]
fn idempotent_state_is_rebuilt_on_the_follower_and_after_truncation() {
    let dir = tempfile::tempdir().unwrap();
    let mut leader = Log::open(&dir.path().join("l"), LogConfig::default(), false, 0).unwrap();
    let recs = [NewRecord {
        key: None,
        value: Some(b"v"),
        timestamp: 1_000,
        headers: &[],
    }];
    let producer = batch::Producer {
        id: 7,
        epoch: 0,
        base_sequence: 0,
        attributes: 0,
    };
    let mut scratch = Vec::new();
    for seq in 0..3 {
        let b = batch::build_as(
            0,
            Codec::None,
            &recs,
            batch::Producer {
                base_sequence: seq,
                ..producer
            },
        )
        .unwrap();
        let v = batch::validate(&b, &mut scratch, 1 << 20).unwrap();
        leader.append(&b, &v, 1, None, 0).unwrap();
    }
    let mut follower = Log::open(&dir.path().join("f"), LogConfig::default(), false, 0).unwrap();
    follower.append_replica(&all_bytes(&leader), 0).unwrap();
    // The retry of sequence 2 is a duplicate on the follower (a new leader).
    let retry = batch::build_as(
        0,
        Codec::None,
        &recs,
        batch::Producer {
            base_sequence: 2,
            ..producer
        },
    )
    .unwrap();
    let v = batch::validate(&retry, &mut scratch, 1 << 20).unwrap();
    let info = follower.append(&retry, &v, 2, None, 0).unwrap();
    assert!(info.duplicate);
    assert_eq!(info.base_offset, 2);
    // After truncating sequence 2 away, it is new again.
    follower.truncate_to(2, 0).unwrap();
    let info = follower.append(&retry, &v, 2, None, 0).unwrap();
    assert!(!info.duplicate);
    assert_eq!(info.base_offset, 2);
}

#[test]
fn truncating_inside_the_only_segment_keeps_the_log_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p");
    let mut log = Log::open(&path, LogConfig::default(), false, 0).unwrap();
    for i in 0..6 {
        leader_append(&mut log, 2, i, 1);
    }
    log.truncate_to(7, 0).unwrap();
    assert_eq!(
        log.log_start_offset(),
        0,
        "the data below the cut is still there"
    );
    assert_eq!(log.log_end_offset(), 6);
    assert_eq!(log.segment_count(), 1);
    assert!(!log
        .read(0, 1 << 20, true, i64::MAX)
        .unwrap()
        .bytes
        .is_empty());
    drop(log);
    let log = Log::open(&path, LogConfig::default(), false, 0).unwrap();
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 6));
}
