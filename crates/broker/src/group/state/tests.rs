//! The state machine with a fake clock: no task, no I/O, time passed in by hand.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn config(initial_delay_ms: i32) -> Arc<GroupConfig> {
    Arc::new(GroupConfig {
        min_session_timeout_ms: 10,
        max_session_timeout_ms: 600_000,
        initial_rebalance_delay_ms: initial_delay_ms,
        max_size: 3,
        offsets_retention_ms: 60_000,
        offsets_retention_check_interval_ms: 1_000,
        offset_metadata_max_bytes: 8,
        offsets_partitions: 50,
        consumer_session_timeout_ms: 45_000,
        consumer_heartbeat_interval_ms: 5_000,
    })
}

fn req(member: &str, protocols: &[&str]) -> JoinRequest {
    JoinRequest {
        member_id: member.into(),
        group_instance_id: None,
        session_timeout_ms: 1_000,
        rebalance_timeout_ms: 5_000,
        protocol_type: "consumer".into(),
        protocols: protocols
            .iter()
            .map(|p| (p.to_string(), Bytes::from(p.to_string())))
            .collect(),
        client_id: "c".into(),
        client_host: "/127.0.0.1".into(),
        require_known_member_id: false,
        supports_skip_assignment: false,
    }
}

/// Sends every reply and returns the JoinGroup answers by member id.
fn joins(fx: Effects) -> Vec<JoinResponse> {
    fx.replies
        .into_iter()
        .filter_map(|r| match r {
            Reply::Join(_, resp) => Some(resp),
            Reply::Sync(..) => None,
        })
        .collect()
}

/// A commit of partition t-0 with no member (an admin or `assign()` consumer).
fn admin_commit(offset: i64, metadata: Option<&str>) -> CommitRequest {
    CommitRequest {
        member_id: String::new(),
        group_instance_id: None,
        generation_id: -1,
        offsets: vec![super::super::OffsetCommit {
            topic: "t".into(),
            partition: 0,
            offset,
            leader_epoch: -1,
            metadata: metadata.map(str::to_string),
        }],
        version: 8,
    }
}

fn join(g: &mut Group, r: JoinRequest, now: Instant) -> Vec<JoinResponse> {
    let (tx, _rx) = oneshot::channel();
    joins(g.join(r, tx, now, 0))
}

#[test]
fn initial_delay_waits_for_more_members_within_the_rebalance_timeout() {
    let t0 = Instant::now();
    let mut g = Group::new("g".into(), config(100), t0, 0);
    assert!(
        join(&mut g, req("", &["range"]), t0).is_empty(),
        "parked during the delay"
    );
    assert_eq!(g.state(), GroupState::PreparingRebalance);
    let t1 = t0 + Duration::from_millis(50);
    assert!(join(&mut g, req("", &["range"]), t1).is_empty());
    // The first delay ends, but a member arrived in it: one more delay.
    let t2 = t0 + Duration::from_millis(100);
    assert!(joins(g.on_deadline(t2, 0)).is_empty());
    let t3 = t2 + Duration::from_millis(100);
    let answers = joins(g.on_deadline(t3, 0));
    assert_eq!(answers.len(), 2);
    assert!(answers
        .iter()
        .all(|a| a.error.is_none() && a.generation_id == 1));
    assert_eq!(
        answers.iter().filter(|a| !a.members.is_empty()).count(),
        1,
        "one leader"
    );
    assert_eq!(g.state(), GroupState::CompletingRebalance);
}

#[test]
fn the_most_preferred_common_protocol_wins() {
    let t0 = Instant::now();
    let mut g = Group::new("g".into(), config(0), t0, 0);
    let mut first = req("", &["roundrobin", "range"]);
    first.rebalance_timeout_ms = 0;
    let a = join(&mut g, first, t0);
    assert_eq!(a[0].protocol_name.as_deref(), Some("roundrobin"));
    let leader = a[0].member_id.clone();
    // A second member that only shares "range" (and prefers it) joins; the leader rejoins.
    let (tx2, _rx2) = oneshot::channel();
    assert!(joins(g.join(req("", &["sticky", "range"]), tx2, t0, 0)).is_empty());
    let answers = join(&mut g, req(&leader, &["roundrobin", "range"]), t0);
    assert_eq!(answers.len(), 2);
    assert!(answers
        .iter()
        .all(|a| a.protocol_name.as_deref() == Some("range")));
    // A member sharing nothing is refused.
    let refused = join(&mut g, req("", &["other"]), t0);
    assert_eq!(
        refused[0].error,
        Some(GroupError::InconsistentGroupProtocol)
    );
}

#[test]
fn expired_sessions_and_missed_rejoins_remove_members() {
    let t0 = Instant::now();
    let mut g = Group::new("g".into(), config(0), t0, 0);
    let a = join(&mut g, req("", &["range"]), t0);
    let leader = a[0].member_id.clone();
    let (tx, _rx) = oneshot::channel();
    let fx = g.sync(
        SyncRequest {
            member_id: leader.clone(),
            group_instance_id: None,
            generation_id: 1,
            protocol_type: None,
            protocol_name: None,
            assignments: vec![(leader.clone(), Bytes::from_static(b"a"))],
        },
        tx,
        t0,
        0,
    );
    assert_eq!(fx.records.len(), 1, "the assignment is persisted");
    assert_eq!(g.state(), GroupState::Stable);
    // A second member joins; the leader never re-joins, so the rebalance timeout
    // (5 s) drops it and the newcomer leads generation 3 alone.
    let (tx2, _rx2) = oneshot::channel();
    assert!(joins(g.join(req("", &["range"]), tx2, t0, 0)).is_empty());
    assert_eq!(
        g.heartbeat(&leader, None, 1, t0),
        Err(GroupError::RebalanceInProgress)
    );
    let late = t0 + Duration::from_secs(6);
    let answers = joins(g.on_deadline(late, 0));
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].generation_id, 2);
    assert_eq!(answers[0].leader, answers[0].member_id);
    assert_eq!(
        g.heartbeat(&leader, None, 2, late),
        Err(GroupError::UnknownMemberId)
    );
    // The newcomer never syncs or heartbeats: its session (1 s) expires and the
    // group ends up Empty.
    let later = late + Duration::from_secs(2);
    let fx = g.on_deadline(later, 0);
    assert_eq!(g.state(), GroupState::Empty);
    assert_eq!(fx.records.len(), 1, "the empty generation is persisted");
    assert_eq!(g.generation(), 3);
}

#[test]
fn group_size_metadata_size_and_offset_expiry() {
    let t0 = Instant::now();
    let mut g = Group::new("g".into(), config(0), t0, 0);
    for _ in 0..3 {
        let (tx, _rx) = oneshot::channel();
        let mut r = req("", &["range"]);
        r.require_known_member_id = true;
        let a = joins(g.join(r, tx, t0, 0));
        assert_eq!(a[0].error, Some(GroupError::MemberIdRequired));
    }
    let (tx, _rx) = oneshot::channel();
    let mut r = req("", &["range"]);
    r.require_known_member_id = true;
    let a = joins(g.join(r, tx, t0, 0));
    assert_eq!(a[0].error, Some(GroupError::GroupMaxSizeReached));
    // Pending member ids expire with their session; the group is usable again.
    let _ = g.on_deadline(t0 + Duration::from_secs(2), 0);

    let commit = |offset: i64, metadata: &str| admin_commit(offset, Some(metadata));
    let (r, _) = g.commit(commit(1, "way too long"), t0, 1_000);
    assert_eq!(r.unwrap(), vec![Err(GroupError::OffsetMetadataTooLarge)]);
    let (r, fx) = g.commit(commit(7, "ok"), t0, 1_000);
    assert_eq!(r.unwrap(), vec![Ok(())]);
    assert_eq!(fx.records.len(), 1);
    assert_eq!(g.fetch_offsets(None)[0].offset, 7);
    // Not yet expired after 30 s; gone (with the group) after the 60 s retention.
    let _ = g.on_deadline(t0 + Duration::from_secs(30), 31_000);
    assert_eq!(g.fetch_offsets(None).len(), 1);
    let fx = g.on_deadline(t0 + Duration::from_secs(70), 70_000);
    assert!(g.fetch_offsets(None).is_empty());
    assert_eq!(
        fx.records.len(),
        2,
        "an offset tombstone and a group tombstone"
    );
    assert_eq!(g.state(), GroupState::Dead);
}

#[test]
fn subscriptions_are_read_from_consumer_protocol_metadata() {
    // version 0, 2 topics: "a", "bc", then user data
    let md = [
        0, 0, 0, 0, 0, 2, 0, 1, b'a', 0, 2, b'b', b'c', 255, 255, 255, 255,
    ];
    assert_eq!(
        subscribed_topics(&md),
        vec!["a".to_string(), "bc".to_string()]
    );
    assert!(subscribed_topics(&[0, 0, 127, 255, 255, 255, 0, 9]).is_empty());
    assert!(subscribed_topics(&[]).is_empty());
}

#[test]
fn transactional_offsets_apply_on_commit_only_if_written_later() {
    let t0 = Instant::now();
    let mut g = Group::new("g".into(), config(0), t0, 0);
    let req = |offset: i64| admin_commit(offset, None);
    let offset = |g: &Group| g.fetch_offsets(None)[0].offset;
    // Producer 7 commits 50 in a transaction (record at 10), then a plain commit of 100
    // lands (record at 20), then the transaction commits: 100 stays.
    g.at_log_position(10);
    let (r, fx, pending) = g.txn_commit(req(50), 0);
    assert_eq!((r.unwrap(), fx.records.len()), (vec![Ok(())], 1));
    g.add_pending(7, pending);
    assert!(g.fetch_offsets(None).is_empty(), "pending until the marker");
    g.at_log_position(20);
    let _ = g.commit(req(100), t0, 0);
    assert!(g.fetch_offsets(None)[0].unstable);
    g.complete_txn(7, true);
    assert_eq!(offset(&g), 100);
    assert!(!g.fetch_offsets(None)[0].unstable);
    // A later transactional commit does replace it; an aborted one never shows.
    g.at_log_position(30);
    let (_, _, pending) = g.txn_commit(req(150), 0);
    g.add_pending(8, pending);
    g.complete_txn(8, true);
    assert_eq!(offset(&g), 150);
    g.at_log_position(40);
    let (_, _, pending) = g.txn_commit(req(999), 0);
    g.add_pending(9, pending);
    g.complete_txn(9, false);
    assert_eq!(offset(&g), 150);
}
