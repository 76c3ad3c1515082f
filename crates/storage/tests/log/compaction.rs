//! Log compaction: the latest value per key, tombstone expiry, and a swap interrupted by a crash.

use gregor_storage::Log;

use crate::support::{append, cleaner_config, keyed_batch, read_all, small_config};

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
