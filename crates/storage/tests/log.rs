//! Log behaviour: append/read, rolling, indexes, timestamps, and crash recovery at any byte.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use gregor_protocol::batch::{self, NewRecord};
use gregor_protocol::compression::Codec;
use gregor_storage::producer_state::ProducerError;
use gregor_storage::{Log, LogConfig, LogError};
use proptest::prelude::*;

fn make_batch(n: usize, ts0: i64, tag: u8) -> Vec<u8> {
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

fn append(log: &mut Log, b: Vec<u8>) -> i64 {
    let mut scratch = Vec::new();
    let v = batch::validate(&b, &mut scratch, 1 << 20).unwrap();
    log.append(&b, &v, 0, None, 0).unwrap().base_offset
}

/// Splits a fetch result into (base offset, record count) per batch.
fn batches(bytes: &[u8]) -> Vec<(i64, i32)> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let h = batch::BatchHeader::parse(&bytes[at..]).unwrap();
        out.push((h.base_offset, h.record_count));
        at += h.total_size();
    }
    out
}

fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 100,
        ..LogConfig::default()
    }
}

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

/// The segment files in `dir` with extension `ext`, by name (base offset order).
fn segment_files(dir: &std::path::Path, ext: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}

/// `(relative offset, position)` entries of an offset index.
type OffsetEntries = Vec<(u32, u32)>;
/// `(timestamp, relative offset)` entries of a time index.
type TimeEntries = Vec<(i64, u32)>;

/// The index entries a segment file must have, worked out from the batches in it:
/// an offset-index entry for the first batch and then for each batch that starts more
/// than `interval` bytes after the last entry's batch (Kafka's `index.interval.bytes`),
/// and a time-index entry for each batch that raises the segment's max timestamp.
fn expected_entries(log_file: &std::path::Path, interval: usize) -> (OffsetEntries, TimeEntries) {
    let bytes = std::fs::read(log_file).unwrap();
    let seg_base: i64 = log_file
        .file_stem()
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let (mut offsets, mut times) = (Vec::new(), Vec::new());
    let (mut at, mut since, mut max_ts) = (0usize, 0usize, -1i64);
    let mut scratch = Vec::new();
    while at < bytes.len() {
        let h = batch::BatchHeader::parse(&bytes[at..]).unwrap();
        let whole = &bytes[at..at + h.total_size()];
        let v = batch::validate_stored(whole, &mut scratch, 1 << 20).unwrap();
        if at == 0 || since > interval {
            offsets.push(((h.base_offset - seg_base) as u32, at as u32));
            since = 0;
        }
        since += h.total_size();
        if v.max_timestamp > max_ts {
            max_ts = v.max_timestamp;
            let rel = h.base_offset + i64::from(v.offset_delta_of_max_timestamp) - seg_base;
            times.push((max_ts, rel as u32));
        }
        at += h.total_size();
    }
    (offsets, times)
}

/// Damaged or missing indexes are rebuilt with exactly the entries the segment calls
/// for (the ones it had before), and lookups through them find every offset and time.
#[test]
fn lost_indexes_are_rebuilt() {
    for damage in [
        "garbage",
        "deleted",
        "time index deleted",
        "truncated entry",
    ] {
        let dir = tempfile::tempdir().unwrap();
        let cfg = small_config();
        let mut log = Log::open(dir.path(), cfg.clone(), true, 0).unwrap();
        for i in 0..30 {
            append(&mut log, make_batch(2, 10 * i, 1));
        }
        log.close(0).unwrap();
        let logs = segment_files(dir.path(), "log");
        assert!(logs.len() >= 3, "1 KiB segments roll");
        let written: Vec<_> = segment_files(dir.path(), "index")
            .iter()
            .map(|p| gregor_storage::offset_index_entries(p).unwrap().unwrap())
            .collect();
        let written_times: Vec<_> = segment_files(dir.path(), "timeindex")
            .iter()
            .map(|p| gregor_storage::time_index_entries(p).unwrap().unwrap())
            .collect();
        for (i, l) in logs.iter().enumerate() {
            let (offsets, times) = expected_entries(l, cfg.index_interval_bytes);
            assert!(
                offsets.len() >= 2,
                "{l:?}: more than one entry at 100-byte intervals"
            );
            assert_eq!(written[i], offsets, "{l:?} as appended");
            assert_eq!(written_times[i], times, "{l:?} as appended");
        }
        for ext in ["index", "timeindex"] {
            for p in segment_files(dir.path(), ext) {
                match damage {
                    "garbage" => std::fs::write(&p, b"garbage").unwrap(),
                    "deleted" => std::fs::remove_file(&p).unwrap(),
                    "time index deleted" if ext == "timeindex" => std::fs::remove_file(&p).unwrap(),
                    "time index deleted" => {}
                    _ => {
                        let len = std::fs::metadata(&p).unwrap().len();
                        let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
                        f.set_len(len - 3).unwrap();
                    }
                }
            }
        }
        let log = Log::open(dir.path(), cfg.clone(), true, 0).unwrap();
        assert_eq!(log.log_end_offset(), 60);
        // Indexes are loaded (and rebuilt) when a segment is first used, so read first.
        for off in 0..60 {
            let r = log.read(off, 1, true, i64::MAX).unwrap();
            let got = batches(&r.bytes);
            assert_eq!(got, vec![(off - off % 2, 2)], "{damage}: offset {off}");
        }
        for (i, l) in logs.iter().enumerate() {
            let index = l.with_extension("index");
            let times = l.with_extension("timeindex");
            assert_eq!(
                gregor_storage::offset_index_entries(&index).unwrap(),
                Some(written[i].clone()),
                "{damage}: {index:?} rebuilt"
            );
            assert_eq!(
                gregor_storage::time_index_entries(&times).unwrap(),
                Some(written_times[i].clone()),
                "{damage}: {times:?} rebuilt"
            );
        }
        assert_eq!(
            log.offset_for_timestamp(101).unwrap(),
            Some((21, 101)),
            "{damage}"
        );
        assert_eq!(
            log.max_timestamp_offset().unwrap(),
            Some((59, 291)),
            "{damage}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Simulates a crash that leaves the active segment cut at any byte (or with garbage
    /// appended): recovery keeps exactly the whole batches before the cut and the log
    /// accepts appends again.
    #[test]
    fn crash_at_any_byte_recovers_a_prefix(n_batches in 1usize..12, cut_frac in 0.0f64..1.0, garbage in proptest::collection::vec(any::<u8>(), 0..40)) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = LogConfig::default();
        let mut log = Log::open(dir.path(), cfg.clone(), true, 0).unwrap();
        let mut ends = vec![0u64];
        for i in 0..n_batches {
            append(&mut log, make_batch(1 + i % 3, i as i64, i as u8));
            ends.push(log.size_bytes());
        }
        let total = log.size_bytes();
        let offsets: Vec<i64> = {
            let all = log.read(0, 1 << 20, false, i64::MAX).unwrap().bytes;
            batches(&all).iter().map(|(b, c)| b + i64::from(*c)).collect()
        };
        drop(log); // no clean close: a crash
        let seg = dir.path().join(format!("{:020}.log", 0));
        let cut = (total as f64 * cut_frac) as u64;
        let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
        f.set_len(cut).unwrap();
        drop(f);
        let mut bytes = std::fs::read(&seg).unwrap();
        bytes.extend_from_slice(&garbage);
        std::fs::write(&seg, &bytes).unwrap();

        let mut log = Log::open(dir.path(), cfg, false, 0).unwrap();
        let whole = ends.iter().filter(|&&e| e <= cut).count() - 1;
        let expect_end = if whole == 0 { 0 } else { offsets[whole - 1] };
        prop_assert_eq!(log.log_end_offset(), expect_end);
        prop_assert_eq!(log.size_bytes(), ends[whole]);
        let next = append(&mut log, make_batch(2, 99, 7));
        prop_assert_eq!(next, expect_end);
        let all = log.read(0, 1 << 20, false, i64::MAX).unwrap().bytes;
        prop_assert_eq!(batches(&all).len(), whole + 1);
    }
}

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

fn keyed_batch(key: &[u8], value: Option<&[u8]>, ts: i64) -> Vec<u8> {
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
fn read_all(log: &Log) -> Vec<(i64, Vec<u8>, Option<Vec<u8>>)> {
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

fn cleaner_config() -> gregor_storage::CleanerConfig {
    gregor_storage::CleanerConfig {
        min_cleanable_ratio: 0.5,
        min_compaction_lag_ms: 0,
        max_compaction_lag_ms: i64::MAX,
        delete_retention_ms: 1000,
        max_map_entries: 1 << 20,
    }
}

#[test]
fn compaction_keeps_the_latest_per_key_and_drops_old_tombstones() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(), true, 0).unwrap();
    // 10 keys, 30 rounds of updates; key 3 deleted early (old tombstone), key 7 late.
    for round in 0..30i64 {
        for k in 0..10u8 {
            let key = [b'k', k];
            let value = format!("{round}-{k}");
            let b = if (k == 3 && round == 5) || (k == 7 && round == 29) {
                keyed_batch(&key, None, if k == 3 { 0 } else { 1_000_000 })
            } else if k == 3 && round > 5 {
                continue;
            } else {
                keyed_batch(&key, Some(value.as_bytes()), 1_000_000)
            };
            append(&mut log, b);
        }
    }
    let before = log.size_bytes();
    let end = log.log_end_offset();
    let plan = log
        .clean_plan(&cleaner_config(), 1_000_500)
        .expect("dirty enough");
    let out = gregor_storage::build_cleaned(&plan, &cleaner_config(), 1_000_500).unwrap();
    assert!(out.records_removed > 0);
    let doomed = log.swap_cleaned(out).unwrap();
    assert!(!doomed.is_empty());
    assert!(
        log.size_bytes() < before / 2,
        "{} of {before}",
        log.size_bytes()
    );
    assert_eq!(log.log_end_offset(), end, "offsets never change");
    let seen = read_all(&log);
    // Offsets increase; no key appears twice outside the active segment's tail.
    assert!(seen.windows(2).all(|w| w[0].0 < w[1].0));
    let mut latest = std::collections::BTreeMap::new();
    for (o, k, v) in &seen {
        latest.insert(k.clone(), (*o, v.clone()));
    }
    assert!(
        !latest.contains_key(b"k\x03".as_slice()),
        "the old tombstone is gone"
    );
    assert_eq!(
        latest[&b"k\x07".to_vec()].1,
        None,
        "the fresh tombstone stays"
    );
    assert_eq!(latest[&b"k\x01".to_vec()].1, Some(b"29-1".to_vec()));

    // Reopening after an unclean stop re-validates the compacted segments (with gaps).
    drop(log);
    let log = Log::open(dir.path(), small_config(), false, 0).unwrap();
    assert_eq!(read_all(&log), seen);
}

#[test]
fn an_interrupted_swap_finishes_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(), true, 0).unwrap();
    for round in 0..40i64 {
        for k in 0..5u8 {
            append(
                &mut log,
                keyed_batch(&[k], Some(format!("{round}").as_bytes()), 1_000),
            );
        }
    }
    let expected_latest: Vec<(Vec<u8>, Option<Vec<u8>>)> =
        (0..5u8).map(|k| (vec![k], Some(b"39".to_vec()))).collect();
    let plan = log.clean_plan(&cleaner_config(), 2_000).unwrap();
    let out = gregor_storage::build_cleaned(&plan, &cleaner_config(), 2_000).unwrap();
    // Simulate a crash after the first `.cleaned` became `.swap` but before the swap:
    // and leave the other `.cleaned` files behind (incomplete from the log's view).
    let first = &out.segments[0];
    let swap = dir.path().join(format!("{:020}.log.swap", first.base));
    std::fs::rename(&first.cleaned, &swap).unwrap();
    drop(log);
    let log = Log::open(dir.path(), small_config(), false, 0).unwrap();
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names
            .iter()
            .all(|n| !n.ends_with(".swap") && !n.ends_with(".cleaned")),
        "{names:?}"
    );
    let seen = read_all(&log);
    let mut latest = std::collections::BTreeMap::new();
    for (_, k, v) in &seen {
        latest.insert(k.clone(), v.clone());
    }
    assert_eq!(latest.into_iter().collect::<Vec<_>>(), expected_latest);
    assert_eq!(log.log_end_offset(), 200);
}

fn idempotent(pid: i64, seq: i32, n: usize) -> Vec<u8> {
    let mut b = make_batch(n, 1000, seq as u8);
    b[43..51].copy_from_slice(&pid.to_be_bytes());
    b[51..53].copy_from_slice(&0i16.to_be_bytes());
    b[53..57].copy_from_slice(&seq.to_be_bytes());
    let crc = batch::compute_crc(&b);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

fn append_info(log: &mut Log, b: &[u8]) -> gregor_storage::AppendInfo {
    let mut scratch = Vec::new();
    let v = batch::validate(b, &mut scratch, 1 << 20).unwrap();
    log.append(b, &v, 0, None, 0).unwrap()
}

#[test]
fn producer_state_survives_reopen_through_snapshots_and_replay() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(), true, 0).unwrap();
    let mut seq = 0;
    for _ in 0..60 {
        let info = append_info(&mut log, &idempotent(42, seq, 3));
        assert!(!info.duplicate);
        seq += 3;
    }
    assert!(log.segment_count() > 3, "rolled, so snapshots were taken");
    let snaps = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".snapshot")
        })
        .count();
    assert!((1..=2).contains(&snaps), "{snaps} snapshots kept");
    let last = idempotent(42, seq - 3, 3);
    log.snapshot_producers();
    drop(log);
    for clean in [true, false] {
        let mut log = Log::open(dir.path(), small_config(), clean, 0).unwrap();
        let retry = append_info(&mut log, &last);
        assert!(retry.duplicate, "clean={clean}: the retry is recognised");
        assert_eq!(retry.base_offset, 177);
        let mut scratch = Vec::new();
        let gap = idempotent(42, seq + 5, 1);
        let v = batch::validate(&gap, &mut scratch, 1 << 20).unwrap();
        let refused = log.append(&gap, &v, 0, None, 0);
        assert!(
            matches!(
                refused,
                Err(LogError::Producer(ProducerError::OutOfOrder {
                    producer_id: 42,
                    expected,
                    got,
                })) if expected == seq && got == seq + 5
            ),
            "clean={clean}: a gap is refused: {refused:?}"
        );
    }
}

/// A transactional batch of `n` records with key `key` from `pid` (epoch 0).
fn transactional(pid: i64, seq: i32, key: &[u8], n: usize) -> Vec<u8> {
    let recs: Vec<NewRecord<'_>> = (0..n)
        .map(|_| NewRecord {
            key: Some(key),
            value: Some(b"txn"),
            timestamp: 0,
            headers: &[],
        })
        .collect();
    batch::build_as(
        0,
        Codec::None,
        &recs,
        batch::Producer {
            id: pid,
            epoch: 0,
            base_sequence: seq,
            attributes: batch::ATTR_TRANSACTIONAL,
        },
    )
    .unwrap()
}

fn marker(pid: i64, m: batch::Marker) -> Vec<u8> {
    batch::build_marker(pid, 0, m, 0, 0).unwrap()
}

#[test]
fn transactions_bound_the_stable_offset_and_aborts_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(), true, 0).unwrap();
    append(&mut log, keyed_batch(b"a", Some(b"plain"), 0)); // 0
    append_info(&mut log, &transactional(1, 0, b"a", 2)); // 1-2, pid 1
    append_info(&mut log, &transactional(2, 0, b"b", 2)); // 3-4, pid 2
    assert_eq!(log.first_unstable_offset(), Some(1));
    append_info(&mut log, &marker(1, batch::Marker::Abort)); // 5
    assert_eq!(log.first_unstable_offset(), Some(3));
    append_info(&mut log, &transactional(1, 2, b"a", 1)); // 6, pid 1 again
    append_info(&mut log, &marker(2, batch::Marker::Commit)); // 7
    assert_eq!(log.first_unstable_offset(), Some(6));
    append_info(&mut log, &marker(1, batch::Marker::Abort)); // 8
    assert_eq!(log.first_unstable_offset(), None);
    assert_eq!(log.aborted_between(0, 9), vec![(1, 1), (1, 6)]);
    assert_eq!(log.aborted_between(6, 9), vec![(1, 6)]);
    assert_eq!(log.aborted_between(0, 3), vec![(1, 1)]);
    let files = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".txnindex")
        })
        .count();
    assert!(files >= 1, "aborts are indexed on disk");
    // An open transaction, then a crash: it is still open after recovery.
    append_info(&mut log, &transactional(3, 0, b"c", 1)); // 9
    log.flush(0).unwrap();
    drop(log);
    for clean in [false, true] {
        let log = Log::open(dir.path(), small_config(), clean, 0).unwrap();
        assert_eq!(
            log.aborted_between(0, 10),
            vec![(1, 1), (1, 6)],
            "clean={clean}"
        );
        assert_eq!(log.first_unstable_offset(), Some(9), "clean={clean}");
        drop(log);
    }
}

#[test]
fn compaction_drops_aborted_records_without_letting_them_shadow_committed_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(), true, 0).unwrap();
    append(&mut log, keyed_batch(b"k", Some(b"committed"), 0)); // 0
    append_info(&mut log, &transactional(1, 0, b"k", 3)); // 1-3 aborted
    append_info(&mut log, &marker(1, batch::Marker::Abort)); // 4
                                                             // Fill segments so the above is closed and cleanable.
    for i in 0..40u8 {
        append(&mut log, keyed_batch(&[b'x', i], Some(b"filler"), 0));
    }
    // An open transaction in a later segment keeps itself and everything after it out.
    append_info(&mut log, &transactional(2, 0, b"k", 1));
    for i in 0..40u8 {
        append(&mut log, keyed_batch(&[b'y', i], Some(b"filler"), 0));
    }
    let plan = log.clean_plan(&cleaner_config(), 10_000).unwrap();
    let open_at = log.first_unstable_offset().unwrap();
    assert!(plan
        .segments
        .iter()
        .all(|s| s.base < open_at && !plan.segments.is_empty()));
    let built = gregor_storage::build_cleaned(&plan, &cleaner_config(), 10_000).unwrap();
    let doomed = log.swap_cleaned(built).unwrap();
    assert!(!doomed.is_empty());
    let all = read_all(&log);
    let k: Vec<_> = all.iter().filter(|(_, key, _)| key == b"k").collect();
    assert_eq!(k[0].0, 0, "the committed value survives: {k:?}");
    assert!(
        k.iter().all(|(o, _, _)| !(1..=3).contains(o)),
        "aborted records are gone"
    );
    assert!(
        k.iter().any(|(o, _, _)| *o > 4),
        "the open transaction is untouched"
    );
}

/// One step of the transaction property test.
#[derive(Debug, Clone)]
enum TxnOp {
    /// `n` records from producer `pid` (1..=3), in its transaction when `txn`; pid 0
    /// stands for a plain, non-idempotent producer.
    Data {
        pid: i64,
        n: usize,
        txn: bool,
    },
    Marker {
        pid: i64,
        commit: bool,
    },
    Reopen {
        clean: bool,
    },
}

fn txn_op() -> impl Strategy<Value = TxnOp> {
    prop_oneof![
        6 => (0i64..4, 1usize..4, any::<bool>()).prop_map(|(pid, n, txn)| TxnOp::Data { pid, n, txn }),
        3 => (1i64..4, any::<bool>()).prop_map(|(pid, commit)| TxnOp::Marker { pid, commit }),
        1 => any::<bool>().prop_map(|clean| TxnOp::Reopen { clean }),
    ]
}

/// A batch whose records carry ids `first_id..first_id+n` as values.
fn id_batch(pid: i64, seq: i32, first_id: u32, n: usize, txn: bool) -> Vec<u8> {
    let vals: Vec<[u8; 4]> = (0..n as u32)
        .map(|i| (first_id + i).to_be_bytes())
        .collect();
    let recs: Vec<NewRecord<'_>> = vals
        .iter()
        .map(|v| NewRecord {
            key: Some(b"k"),
            value: Some(v),
            timestamp: 0,
            headers: &[],
        })
        .collect();
    let producer = if pid == 0 {
        batch::Producer::NONE
    } else {
        batch::Producer {
            id: pid,
            epoch: 0,
            base_sequence: seq,
            attributes: if txn { batch::ATTR_TRANSACTIONAL } else { 0 },
        }
    };
    batch::build_as(0, Codec::None, &recs, producer).unwrap()
}

/// What a read_committed consumer (Kafka's client algorithm) sees from `from` up to the
/// last stable offset, fetching in small responses that each carry their aborted list.
fn read_committed_ids(log: &Log, from: i64) -> Vec<u32> {
    let upper = log
        .first_unstable_offset()
        .unwrap_or(i64::MAX)
        .min(log.log_end_offset());
    let mut out = Vec::new();
    let mut offset = from;
    while offset < upper {
        let bytes = log.read(offset, 150, true, upper).unwrap().bytes;
        if bytes.is_empty() {
            break;
        }
        let mut headers = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            let h = batch::BatchHeader::parse(&bytes[at..]).unwrap();
            headers.push((h, at));
            at += h.total_size();
        }
        let end = headers.last().unwrap().0.last_offset() + 1;
        let mut aborted = log.aborted_between(offset, end);
        aborted.sort_by_key(|(_, first)| *first);
        let mut queue = aborted.into_iter().peekable();
        let mut aborted_pids = std::collections::HashSet::new();
        let mut scratch = Vec::new();
        for (h, at) in headers {
            while let Some(&(pid, _)) = queue.peek().filter(|(_, first)| *first <= h.last_offset())
            {
                aborted_pids.insert(pid);
                queue.next();
            }
            let b = &bytes[at..at + h.total_size()];
            if h.is_control() {
                if batch::control_marker(b, &mut scratch) == Some(batch::Marker::Abort) {
                    aborted_pids.remove(&h.producer_id);
                }
                continue;
            }
            if h.is_transactional() && aborted_pids.contains(&h.producer_id) {
                continue;
            }
            let data = &b[batch::HEADER_LEN..];
            for r in gregor_protocol::records::RecordWalker::new(data, h.record_count) {
                let r = r.unwrap();
                if h.base_offset + i64::from(r.offset_delta) >= from {
                    let v = r.value.unwrap();
                    out.push(u32::from_be_bytes([v[0], v[1], v[2], v[3]]));
                }
            }
        }
        offset = end;
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Random interleavings of transactional and plain producers, commits, aborts and
    /// restarts (clean or not) against a model: the first unstable offset is exactly the
    /// oldest open transaction's start, and a read_committed reader starting anywhere
    /// sees exactly the committed and non-transactional records below it, in order.
    #[test]
    fn transactions_match_a_model_across_restarts(ops in proptest::collection::vec(txn_op(), 1..60), starts in proptest::collection::vec(0usize..100, 3)) {
        use std::collections::HashMap;
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), small_config(), true, 0).unwrap();
        let mut seq: HashMap<i64, i32> = HashMap::new();
        let mut open: HashMap<i64, (u32, i64)> = HashMap::new(); // pid -> (txn, first offset)
        let mut outcome: HashMap<u32, bool> = HashMap::new();
        // Per record: (offset, id, txn it belongs to).
        let mut records: Vec<(i64, u32, Option<u32>)> = Vec::new();
        let (mut next_id, mut next_txn) = (0u32, 0u32);
        for op in ops {
            match op {
                TxnOp::Data { pid, n, txn } => {
                    let txn = pid != 0 && (txn || open.contains_key(&pid));
                    let s = seq.entry(pid).or_insert(0);
                    let base = log.log_end_offset();
                    let info = append_info(&mut log, &id_batch(pid, *s, next_id, n, txn));
                    prop_assert_eq!(info.base_offset, base);
                    *s += n as i32;
                    let txn_no = txn.then(|| {
                        open.entry(pid)
                            .or_insert_with(|| { next_txn += 1; (next_txn, base) })
                            .0
                    });
                    for i in 0..n {
                        records.push((base + i as i64, next_id + i as u32, txn_no));
                    }
                    next_id += n as u32;
                }
                TxnOp::Marker { pid, commit } => {
                    let m = if commit { batch::Marker::Commit } else { batch::Marker::Abort };
                    append_info(&mut log, &marker(pid, m));
                    if let Some((t, _)) = open.remove(&pid) {
                        outcome.insert(t, commit);
                    }
                }
                TxnOp::Reopen { clean } => {
                    if clean {
                        log.close(0).unwrap();
                    } else {
                        drop(log); // written but never closed: an unclean stop
                    }
                    log = Log::open(dir.path(), small_config(), clean, 0).unwrap();
                }
            }
            let expect_unstable = open.values().map(|(_, first)| *first).min();
            prop_assert_eq!(log.first_unstable_offset(), expect_unstable);
        }
        let lso = log.first_unstable_offset().unwrap_or(i64::MAX).min(log.log_end_offset());
        let end = log.log_end_offset().max(1);
        for from in std::iter::once(0).chain(starts.iter().map(|s| *s as i64 % end)) {
            let expected: Vec<u32> = records
                .iter()
                .filter(|(o, _, t)| *o >= from && *o < lso && t.is_none_or(|t| outcome.get(&t) == Some(&true)))
                .map(|(_, id, _)| *id)
                .collect();
            prop_assert_eq!(read_committed_ids(&log, from), expected, "reading from {}", from);
        }
        // Then compact (every record has key "k"; markers and tombstones past their
        // horizon): a read_committed reader sees a subset of what it saw, never an
        // aborted record, still the newest one, and the stable offset does not move,
        // also after an unclean restart.
        let before = read_committed_ids(&log, 0);
        let unstable = log.first_unstable_offset();
        let cfg = gregor_storage::CleanerConfig {
            min_cleanable_ratio: 0.0,
            delete_retention_ms: 0,
            ..cleaner_config()
        };
        if let Some(plan) = log.clean_plan(&cfg, 1_000_000) {
            let built = gregor_storage::build_cleaned(&plan, &cfg, 1_000_000).unwrap();
            log.swap_cleaned(built).unwrap();
        }
        for reopen in [false, true] {
            if reopen {
                drop(log);
                log = Log::open(dir.path(), small_config(), false, 0).unwrap();
            }
            let after = read_committed_ids(&log, 0);
            prop_assert!(after.iter().all(|id| before.contains(id)), "{:?} not within {:?}", after, before);
            prop_assert_eq!(after.last(), before.last());
            prop_assert_eq!(log.first_unstable_offset(), unstable);
        }
    }
}

#[test]
fn compaction_removes_markers_of_emptied_transactions_and_their_index_entries() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small_config(), true, 0).unwrap();
    let mut ids = 0u32;
    let mut data = |log: &mut Log, pid: i64, seq: i32, txn: bool| {
        ids += 1;
        append_info(log, &id_batch(pid, seq, ids, 1, txn)).base_offset
    };
    // pid 1: a transaction that aborts. pid 2: one that commits a record later
    // superseded (key "k" everywhere). pid 3: a commit whose record survives (last).
    data(&mut log, 1, 0, true);
    append_info(&mut log, &marker(1, batch::Marker::Abort));
    data(&mut log, 2, 0, true);
    append_info(&mut log, &marker(2, batch::Marker::Commit));
    data(&mut log, 0, 0, false); // supersedes pid 2's record
                                 // pid 1 again: a committed transaction after its aborted one.
    data(&mut log, 1, 1, true);
    append_info(&mut log, &marker(1, batch::Marker::Commit));
    let aborts_before = log.aborted_between(0, i64::MAX).len();
    assert_eq!(aborts_before, 1);
    // Roll many segments (each roll snapshots), so every kept snapshot is past the markers.
    for i in 0..60u8 {
        append(&mut log, keyed_batch(&[b'f', i], Some(b"filler"), 0));
    }
    let before = read_committed_ids(&log, 0);
    let cfg = gregor_storage::CleanerConfig {
        delete_retention_ms: 0,
        ..cleaner_config()
    };
    let plan = log.clean_plan(&cfg, 10_000).unwrap();
    assert!(plan.snapshot_floor > 8, "{}", plan.snapshot_floor);
    let built = gregor_storage::build_cleaned(&plan, &cfg, 10_000).unwrap();
    assert_eq!(built.removed_aborts, vec![(1, 1)]);
    log.swap_cleaned(built).unwrap();
    let markers: Vec<i64> = {
        let all = log.read(0, 1 << 20, true, i64::MAX).unwrap().bytes;
        let mut at = 0;
        let mut out = Vec::new();
        while at < all.len() {
            let h = batch::BatchHeader::parse(&all[at..]).unwrap();
            if h.is_control() {
                out.push(h.producer_id);
            }
            at += h.total_size();
        }
        out
    };
    // Only the marker of pid 1's second (committed, record kept) transaction is left;
    // the abort's index entry went with its marker.
    assert_eq!(markers, vec![1]);
    assert!(log.aborted_between(0, i64::MAX).is_empty());
    // Records 2 and 3 were superseded by 4 (all keyed "k"); the fillers stay.
    assert_eq!(&before[..3], &[2, 3, 4]);
    assert_eq!(read_committed_ids(&log, 0), before[2..].to_vec());
    log.flush(0).unwrap();
    drop(log);
    for clean in [false, true] {
        let log = Log::open(dir.path(), small_config(), clean, 0).unwrap();
        assert_eq!(log.first_unstable_offset(), None, "clean={clean}");
        assert!(log.aborted_between(0, i64::MAX).is_empty(), "clean={clean}");
    }
}

/// The base offset lies outside a batch's CRC: a damaged one (here `i64::MAX`, and a
/// negative one) must be found as corruption on open, clean or unclean, never overflow
/// (the release profile checks overflow) or take the log past `i64::MAX`.
#[test]
fn a_damaged_base_offset_is_corruption_not_an_overflow() {
    for bad in [i64::MAX, i64::MAX - 3, -5] {
        for clean in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let cfg = LogConfig::default();
            let mut log = Log::open(dir.path(), cfg.clone(), true, 0).unwrap();
            for i in 0..3 {
                append(&mut log, make_batch(2, i, 1));
            }
            let first_len = log.read(0, 1, true, i64::MAX).unwrap().bytes.len() as u64;
            log.close(0).unwrap();
            let seg = segment_files(dir.path(), "log")[0].clone();
            let f = std::fs::OpenOptions::new().write(true).open(&seg).unwrap();
            std::os::unix::fs::FileExt::write_all_at(&f, &bad.to_be_bytes(), first_len).unwrap();
            drop(f);
            match Log::open(dir.path(), cfg.clone(), clean, 0) {
                // Recovery keeps the batches before the damaged one; a clean open trusts
                // the segment and ends at its last batch, which is intact.
                Ok(log) => {
                    let want = if clean { 6 } else { 2 };
                    assert_eq!(log.log_end_offset(), want, "bad {bad}, clean {clean}");
                    assert!(log.read(0, 1 << 20, true, i64::MAX).is_ok());
                }
                Err(e) => assert!(
                    matches!(e, gregor_storage::LogError::Corrupt { .. }),
                    "bad {bad}, clean {clean}: {e}"
                ),
            }
        }
    }
}
