//! Producer state and transactions: dedup, the stable offset, aborts, compaction, a model.

use gregor_protocol::batch::{self, NewRecord};
use gregor_protocol::compression::Codec;
use gregor_storage::producer_state::ProducerError;
use gregor_storage::{Log, LogError};
use proptest::prelude::*;

use crate::support::{
    append, cleaner_config, keyed_batch, make_batch, proptest_config, read_all, small_config,
};

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
    #![proptest_config(proptest_config(48))]

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
