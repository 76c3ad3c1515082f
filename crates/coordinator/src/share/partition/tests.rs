//! The share-partition state machine: acquisition, acknowledgement, lock expiry, the
//! delivery limit and how the start offset advances.

use super::*;

fn limits() -> Limits {
    Limits {
        max_in_flight: 100,
        delivery_limit: 3,
        lock_duration: Duration::from_secs(30),
    }
}

fn batch(base: i64, last: i64) -> BatchSpan {
    BatchSpan {
        base,
        last,
        control: false,
    }
}

fn range(first: i64, last: i64, delivery_count: i16) -> AcquiredRange {
    AcquiredRange {
        first,
        last,
        delivery_count,
    }
}

#[test]
fn acquire_hands_each_offset_to_one_member() {
    let l = limits();
    let now = Instant::now();
    let mut p = SharePartition::new(0);
    assert_eq!(
        p.acquire("a", &[batch(0, 4)], 0, 3, now, &l),
        vec![range(0, 2, 1)]
    );
    // b reads the same batch: only what a does not hold.
    assert_eq!(
        p.acquire("b", &[batch(0, 4)], 0, 10, now, &l),
        vec![range(3, 4, 1)]
    );
    assert!(p.acquire("c", &[batch(0, 4)], 0, 10, now, &l).is_empty());
    assert_eq!(p.record(1).map(|r| r.state), Some(RecordState::Acquired));
    assert_eq!(p.end_offset(), 5);
    // Only the holder may acknowledge.
    assert_eq!(
        p.acknowledge("b", 0, 0, &[1], &l),
        Err(ShareError::InvalidRecordState)
    );
}

#[test]
fn accept_advances_the_start_and_release_redelivers() {
    let l = limits();
    let now = Instant::now();
    let mut p = SharePartition::new(10);
    p.acquire("a", &[batch(10, 13)], 10, 10, now, &l);
    // 10 accepted, 11 released, 12 rejected, 13 accepted: per-offset types.
    p.acknowledge("a", 10, 13, &[1, 2, 3, 1], &l).unwrap();
    assert_eq!(p.start_offset(), 11);
    assert_eq!(p.next_candidate(0, &l), Some(11));
    assert_eq!(
        p.acquire("b", &[batch(10, 13)], 11, 10, now, &l),
        vec![range(11, 11, 2)]
    );
    p.acknowledge("b", 11, 11, &[1], &l).unwrap();
    // Everything done: the start moves to the end.
    assert_eq!(p.start_offset(), 14);
    assert_eq!(p.in_flight(), 0);
}

#[test]
fn locks_expire_at_their_deadline() {
    let l = limits();
    let now = Instant::now();
    let mut p = SharePartition::new(0);
    p.acquire("a", &[batch(0, 1)], 0, 10, now, &l);
    assert_eq!(p.next_deadline(), Some(now + l.lock_duration));
    assert!(!p.expire(now + l.lock_duration - Duration::from_millis(1), &l));
    assert!(p.expire(now + l.lock_duration, &l));
    assert_eq!(p.record(0).map(|r| r.state), Some(RecordState::Available));
    assert_eq!(p.next_deadline(), None);
    // An expired holder can no longer acknowledge.
    assert_eq!(
        p.acknowledge("a", 0, 1, &[1], &l),
        Err(ShareError::InvalidRecordState)
    );
    assert_eq!(
        p.acquire("b", &[batch(0, 1)], 0, 10, now, &l),
        vec![range(0, 1, 2)]
    );
}

#[test]
fn the_delivery_limit_archives() {
    let l = limits();
    let now = Instant::now();
    let mut p = SharePartition::new(0);
    for n in 1..=3 {
        assert_eq!(
            p.acquire("a", &[batch(0, 0)], 0, 10, now, &l),
            vec![range(0, 0, n)]
        );
        p.acknowledge("a", 0, 0, &[2], &l).unwrap();
    }
    // The third release reached the limit: archived, and the start moved past it.
    assert_eq!(p.start_offset(), 1);
    assert!(p.acquire("a", &[batch(0, 0)], 0, 10, now, &l).is_empty());
}

#[test]
fn members_leaving_release_and_the_cap_holds() {
    let mut l = limits();
    l.max_in_flight = 2;
    let now = Instant::now();
    let mut p = SharePartition::new(0);
    assert_eq!(
        p.acquire("a", &[batch(0, 4)], 0, 10, now, &l),
        vec![range(0, 1, 1)]
    );
    assert_eq!(p.next_candidate(0, &l), None);
    assert!(p.release_member("a", &l));
    assert!(!p.release_member("a", &l));
    assert_eq!(p.next_candidate(0, &l), Some(0));
}

#[test]
fn control_batches_and_gaps_are_skipped() {
    let l = limits();
    let now = Instant::now();
    let mut p = SharePartition::new(0);
    let batches = [
        batch(0, 0),
        BatchSpan {
            base: 1,
            last: 1,
            control: true,
        },
        batch(5, 5),
    ];
    assert_eq!(
        p.acquire("a", &batches, 0, 10, now, &l),
        vec![range(0, 0, 1), range(5, 5, 1)]
    );
    p.acknowledge("a", 0, 0, &[1], &l).unwrap();
    // Offsets 1..=4 hold no records: the start skips to 5.
    assert_eq!(p.start_offset(), 5);
    p.acknowledge("a", 5, 5, &[1], &l).unwrap();
    assert_eq!(p.start_offset(), 6);
}

#[test]
fn restore_turns_acquired_into_available() {
    let l = limits();
    let p = SharePartition::restore(
        3,
        6,
        vec![
            (3, RecordState::Acknowledged, 1),
            (4, RecordState::Acquired, 2),
            (5, RecordState::Available, 1),
        ],
    );
    assert_eq!(p.start_offset(), 4);
    assert_eq!(
        p.record(4).map(|r| (r.state, r.delivery_count)),
        Some((RecordState::Available, 2))
    );
    assert_eq!(p.next_candidate(0, &l), Some(4));
    assert_eq!(p.next_deadline(), None);
}

#[test]
fn acknowledgements_of_any_offsets_are_refused_without_overflow() {
    let l = limits();
    let mut p = SharePartition::new(0);
    p.acquire("a", &[batch(0, 0)], 0, 10, Instant::now(), &l);
    assert_eq!(
        p.acknowledge("a", i64::MIN, i64::MAX, &[1], &l),
        Err(ShareError::InvalidRecordState)
    );
    assert!(matches!(
        p.acknowledge("a", 0, 0, &[9], &l),
        Err(ShareError::InvalidRequest(_))
    ));
    assert!(matches!(
        p.acknowledge("a", 0, 1, &[1, 1, 1], &l),
        Err(ShareError::InvalidRequest(_))
    ));
    assert!(matches!(
        p.acknowledge("a", 1, 0, &[1], &l),
        Err(ShareError::InvalidRequest(_))
    ));
    assert_eq!(p.record(0).map(|r| r.state), Some(RecordState::Acquired));
}

#[test]
fn renew_restarts_the_lock_and_keeps_the_record() {
    let l = limits();
    let t0 = Instant::now();
    let mut p = SharePartition::new(0);
    p.acquire("a", &[batch(0, 2)], 0, 10, t0, &l);
    let version = p.version();
    // Not allowed without a renewing request; nothing changes.
    assert!(matches!(
        p.acknowledge("a", 0, 0, &[4], &l),
        Err(ShareError::InvalidRequest(_))
    ));
    // Another member cannot renew a's records.
    let t1 = t0 + Duration::from_secs(20);
    assert!(matches!(
        p.acknowledge_or_renew("b", 0, 0, &[4], Some(t1), &l),
        Err(ShareError::InvalidRecordState)
    ));
    // a renews offset 0 at t1 and accepts offset 1 in the same batch.
    p.acknowledge_or_renew("a", 0, 1, &[4, 1], Some(t1), &l)
        .unwrap();
    assert_eq!(p.next_deadline(), Some(t0 + l.lock_duration));
    // The first deadline passes: offset 2 comes back, offset 0 is still a's.
    assert!(p.expire(t0 + l.lock_duration, &l));
    let r0 = p.record(0).unwrap();
    assert_eq!((r0.state, r0.delivery_count), (RecordState::Acquired, 1));
    assert_eq!(p.record(2).unwrap().state, RecordState::Available);
    assert_eq!(p.next_deadline(), Some(t1 + l.lock_duration));
    // A renewal alone is nothing to persist.
    let v = p.version();
    assert!(v > version);
    p.acknowledge_or_renew("a", 0, 0, &[4], Some(t1), &l)
        .unwrap();
    assert_eq!(p.version(), v);
    // Past the renewed deadline it is released, its delivery count unchanged.
    assert!(p.expire(t1 + l.lock_duration, &l));
    let r0 = p.record(0).unwrap();
    assert_eq!((r0.state, r0.delivery_count), (RecordState::Available, 1));
}
