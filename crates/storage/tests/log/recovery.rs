//! Recovery on open: rebuilt indexes, a crash cut at any byte, a damaged base offset.

use gregor_protocol::batch;
use gregor_storage::{Log, LogConfig};
use proptest::prelude::*;

use crate::support::{append, batches, make_batch, proptest_config, small_config};

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
    #![proptest_config(proptest_config(64))]

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
