//! The group coordinator at the wire: each bad request gets the error code Kafka would
//! give, parked JoinGroups complete when the rebalance does, and one group's trouble
//! leaves the others alone.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common;

use bytes::Bytes;
use common::{Client, TestBroker};
use gregor_protocol::kp::messages::join_group_request::JoinGroupRequestProtocol;
use gregor_protocol::kp::messages::leave_group_request::MemberIdentity;
use gregor_protocol::kp::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use gregor_protocol::kp::messages::offset_fetch_request::OffsetFetchRequestTopic;
use gregor_protocol::kp::messages::sync_group_request::SyncGroupRequestAssignment;
use gregor_protocol::kp::messages::*;
use gregor_protocol::kp::protocol::StrBytes;

const OVERRIDES: &[(&str, &str)] = &[("group.initial.rebalance.delay.ms", "0")];

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn join(group: &str, member: &str) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_member_id(s(member))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(Bytes::from_static(b"meta"))])
}

fn heartbeat(group: &str, member: &str, generation: i32) -> HeartbeatRequest {
    HeartbeatRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_member_id(s(member))
        .with_generation_id(generation)
}

fn commit(
    group: &str,
    member: &str,
    generation: i32,
    topic: &str,
    offset: i64,
) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_member_id(s(member))
        .with_generation_id_or_member_epoch(generation)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s(topic)))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)
                .with_committed_metadata(Some(s("md")))])])
}

async fn create_topic(c: &mut Client, name: &str) {
    use gregor_protocol::kp::messages::create_topics_request::CreatableTopic;
    let req = CreateTopicsRequest::default()
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(s(name)))
            .with_num_partitions(1)
            .with_replication_factor(1)])
        .with_timeout_ms(10_000);
    assert_eq!(c.call(&req, 7).await.topics[0].error_code, 0);
}

/// Joins a fresh member through KIP-394's two steps; returns (member id, response).
async fn join_new(c: &mut Client, group: &str) -> (String, JoinGroupResponse) {
    let first = c.call(&join(group, ""), 9).await;
    assert_eq!(first.error_code, 79, "MEMBER_ID_REQUIRED first");
    assert!(first.member_id.starts_with("gregor-test-"));
    let id = first.member_id.to_string();
    let second = c.call(&join(group, &id), 9).await;
    (id, second)
}

#[tokio::test]
async fn join_sync_heartbeat_and_their_errors() {
    let b = TestBroker::start(OVERRIDES).await;
    let mut c = b.connect().await;
    create_topic(&mut c, "t").await;

    assert_eq!(
        c.call(&join("", ""), 5).await.error_code,
        24,
        "empty group id"
    );
    let short = join("g", "").with_session_timeout_ms(10);
    assert_eq!(
        c.call(&short, 5).await.error_code,
        26,
        "session timeout below the minimum"
    );
    let long_id = "x".repeat(40_000);
    assert_eq!(
        c.call(&join(&long_id, ""), 6).await.error_code,
        24,
        "group id too long"
    );

    let (m1, joined) = join_new(&mut c, "g").await;
    assert_eq!(joined.error_code, 0);
    assert_eq!(joined.generation_id, 1);
    assert_eq!(joined.leader.as_str(), m1);
    assert_eq!(joined.protocol_name.as_deref(), Some("range"));
    assert_eq!(joined.members.len(), 1);
    assert_eq!(joined.members[0].metadata.as_ref(), b"meta");

    let wrong_type = join("g", "").with_protocol_type(s("connect"));
    assert_eq!(
        c.call(&wrong_type, 5).await.error_code,
        23,
        "inconsistent protocol"
    );

    let sync = |member: &str, generation: i32| {
        SyncGroupRequest::default()
            .with_group_id(GroupId(s("g")))
            .with_member_id(s(member))
            .with_generation_id(generation)
            .with_assignments(vec![SyncGroupRequestAssignment::default()
                .with_member_id(s(member))
                .with_assignment(Bytes::from_static(b"assigned"))])
    };
    assert_eq!(
        c.call(&sync(&m1, 7), 5).await.error_code,
        22,
        "illegal generation"
    );
    assert_eq!(
        c.call(&sync("nobody", 1), 5).await.error_code,
        25,
        "unknown member"
    );
    let synced = c.call(&sync(&m1, 1), 5).await;
    assert_eq!(synced.error_code, 0);
    assert_eq!(synced.assignment.as_ref(), b"assigned");
    assert_eq!(synced.protocol_name.as_deref(), Some("range"));

    assert_eq!(c.call(&heartbeat("g", &m1, 1), 4).await.error_code, 0);
    assert_eq!(c.call(&heartbeat("g", &m1, 0), 4).await.error_code, 22);
    assert_eq!(c.call(&heartbeat("g", "nobody", 1), 4).await.error_code, 25);
    assert_eq!(
        c.call(&heartbeat("no-group", "x", 1), 4).await.error_code,
        25
    );

    // Commits: member and generation are checked; unknown topics fail on their own.
    assert_eq!(
        c.call(&commit("g", "nobody", 1, "t", 5), 8).await.topics[0].partitions[0].error_code,
        25
    );
    assert_eq!(
        c.call(&commit("g", &m1, 9, "t", 5), 8).await.topics[0].partitions[0].error_code,
        22
    );
    assert_eq!(
        c.call(&commit("g", "", -1, "t", 5), 8).await.topics[0].partitions[0].error_code,
        25,
        "a group with members refuses member-less commits"
    );
    assert_eq!(
        c.call(&commit("g", &m1, 1, "nope", 5), 8).await.topics[0].partitions[0].error_code,
        3
    );
    assert_eq!(
        c.call(&commit("g", &m1, 1, "t", 5), 8).await.topics[0].partitions[0].error_code,
        0
    );
    let fetch = OffsetFetchRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(TopicName(s("t")))
            .with_partition_indexes(vec![0, 1])]));
    let got = c.call(&fetch, 7).await;
    assert_eq!(got.error_code, 0);
    let parts = &got.topics[0].partitions;
    assert_eq!(
        (parts[0].committed_offset, parts[0].metadata.as_deref()),
        (5, Some("md"))
    );
    assert_eq!(parts[1].committed_offset, -1);

    // LeaveGroup (batched): the unknown member fails alone; the group becomes Empty.
    let leave = LeaveGroupRequest::default()
        .with_group_id(GroupId(s("g")))
        .with_members(vec![
            MemberIdentity::default().with_member_id(s("nobody")),
            MemberIdentity::default().with_member_id(s(&m1)),
        ]);
    let left = c.call(&leave, 5).await;
    assert_eq!(
        left.members
            .iter()
            .map(|m| m.error_code)
            .collect::<Vec<_>>(),
        vec![25, 0]
    );
    let described = c
        .call(
            &DescribeGroupsRequest::default()
                .with_groups(vec![GroupId(s("g")), GroupId(s("none"))]),
            5,
        )
        .await;
    assert_eq!(described.groups[0].group_state.as_str(), "Empty");
    assert_eq!(described.groups[1].group_state.as_str(), "Dead");

    let del =
        DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s("g")), GroupId(s("none"))]);
    let deleted = c.call(&del, 2).await;
    assert_eq!(
        deleted
            .results
            .iter()
            .map(|r| r.error_code)
            .collect::<Vec<_>>(),
        vec![0, 69]
    );
    let got = c.call(&fetch, 7).await;
    assert_eq!(
        got.topics[0].partitions[0].committed_offset, -1,
        "offsets went with the group"
    );
    b.stop().await;
}

fn fetch_offsets(group: &str, topic: &str) -> OffsetFetchRequest {
    OffsetFetchRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(TopicName(s(topic)))
            .with_partition_indexes(vec![0])]))
}

/// (offset, metadata) committed for `group` on partition 0 of `topic`, asserting no error.
async fn committed(c: &mut Client, group: &str, topic: &str) -> (i64, Option<String>) {
    let got = c.call(&fetch_offsets(group, topic), 7).await;
    assert_eq!(got.error_code, 0);
    let p = &got.topics[0].partitions[0];
    assert_eq!(p.error_code, 0);
    (
        p.committed_offset,
        p.metadata.as_deref().map(str::to_string),
    )
}

#[tokio::test]
async fn a_joining_member_parks_until_the_rebalance_completes() {
    let b = TestBroker::start(OVERRIDES).await;
    let mut c1 = b.connect().await;
    let mut c2 = b.connect().await;
    let mut c3 = b.connect().await;
    create_topic(&mut c3, "real").await;

    // Another group, stable with one member, has committed offsets on a real topic.
    let (other, joined) = join_new(&mut c3, "other").await;
    assert_eq!((joined.error_code, joined.generation_id), (0, 1));
    let sync_other = SyncGroupRequest::default()
        .with_group_id(GroupId(s("other")))
        .with_member_id(s(&other))
        .with_generation_id(1)
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(s(&other))
            .with_assignment(Bytes::from_static(b"real-0"))]);
    assert_eq!(c3.call(&sync_other, 5).await.error_code, 0);
    let r = c3.call(&commit("other", &other, 1, "real", 17), 8).await;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);

    let (m1, first) = join_new(&mut c1, "grp").await;
    assert_eq!(first.generation_id, 1);
    let sync_grp = SyncGroupRequest::default()
        .with_group_id(GroupId(s("grp")))
        .with_member_id(s(&m1))
        .with_generation_id(1)
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(s(&m1))
            .with_assignment(Bytes::from_static(b"real-0"))]);
    assert_eq!(c1.call(&sync_grp, 5).await.error_code, 0);
    let r = c1.call(&commit("grp", &m1, 1, "real", 5), 8).await;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);

    // Member 2's JoinGroup waits for member 1 to re-join.
    let first2 = c2.call(&join("grp", ""), 9).await;
    let m2 = first2.member_id.to_string();
    let parked = tokio::spawn(async move {
        let r = c2.call(&join("grp", &m2), 9).await;
        (r, m2)
    });
    // Member 1 learns of the rebalance from its heartbeat (retrying until the second
    // join has reached the group), then re-joins.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let code = c1.call(&heartbeat("grp", &m1, 1), 4).await.error_code;
        if code == 27 {
            break;
        }
        assert_eq!(code, 0);
        assert!(
            tokio::time::Instant::now() < deadline,
            "no rebalance signalled"
        );
        tokio::task::yield_now().await;
    }
    // While "grp" rebalances, "other" stays stable: its member's heartbeat is fine (no
    // REBALANCE_IN_PROGRESS), it commits with its generation, and its offsets are its own.
    assert_eq!(
        c3.call(&heartbeat("other", &other, 1), 4).await.error_code,
        0
    );
    let r = c3.call(&commit("other", &other, 1, "real", 42), 8).await;
    assert_eq!(r.topics[0].partitions[0].error_code, 0);
    assert_eq!(
        committed(&mut c3, "other", "real").await,
        (42, Some("md".to_string()))
    );

    let rejoined = c1.call(&join("grp", &m1), 9).await;
    let (second, m2) = parked.await.unwrap();
    assert_eq!(rejoined.error_code, 0);
    assert_eq!(second.error_code, 0);
    assert_eq!(rejoined.generation_id, 2);
    assert_eq!(second.generation_id, 2);
    assert_eq!(rejoined.leader.as_str(), m1, "the leader stays");
    assert_eq!(rejoined.members.len(), 2);
    assert!(second.members.is_empty(), "followers get no member list");
    assert_eq!(second.member_id.as_str(), m2);

    // After the rebalance: each group has exactly its own offset, and "other" is still
    // at generation 1 with its member.
    assert_eq!(
        committed(&mut c3, "other", "real").await,
        (42, Some("md".to_string()))
    );
    assert_eq!(
        committed(&mut c3, "grp", "real").await,
        (5, Some("md".to_string()))
    );
    assert_eq!(
        c3.call(&heartbeat("other", &other, 1), 4).await.error_code,
        0
    );
    b.stop().await;
}

#[tokio::test]
async fn static_members_are_fenced_by_instance_id() {
    let b = TestBroker::start(OVERRIDES).await;
    let mut c = b.connect().await;
    let req = join("st", "").with_group_instance_id(Some(s("inst-1")));
    let first = c.call(&req, 9).await;
    assert_eq!(
        first.error_code, 0,
        "static members need no KIP-394 round trip"
    );
    let old = first.member_id.to_string();
    // The same instance restarts: a new member id replaces the old one.
    let again = c.call(&req, 9).await;
    assert_eq!(again.error_code, 0);
    assert_ne!(again.member_id.as_str(), old);
    let hb = heartbeat("st", &old, again.generation_id).with_group_instance_id(Some(s("inst-1")));
    assert_eq!(c.call(&hb, 4).await.error_code, 82, "FENCED_INSTANCE_ID");
    b.stop().await;
}

#[tokio::test]
async fn stopping_the_broker_answers_parked_joins_at_once() {
    let b = TestBroker::start(OVERRIDES).await;
    let mut c1 = b.connect().await;
    let mut c2 = b.connect().await;
    let (m1, _) = join_new(&mut c1, "stop").await;
    let m2 = c2.call(&join("stop", ""), 9).await.member_id.to_string();
    let parked = tokio::spawn(async move { c2.call(&join("stop", &m2), 9).await });
    // Wait until the second join has started a rebalance (member 1 is told to re-join,
    // which it never does), then stop the broker.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while c1.call(&heartbeat("stop", &m1, 1), 4).await.error_code != 27 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no rebalance started"
        );
        tokio::task::yield_now().await;
    }
    b.stop().await;
    let answer = parked.await.unwrap();
    assert_eq!(
        answer.error_code, 16,
        "NOT_COORDINATOR: the client looks again"
    );
}

/// This process's resident set size in KiB (the broker runs in it).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Waits (with a deadline of `secs`) until `done` holds.
async fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// A client naming 100,000 group ids (OffsetFetch, DescribeGroups, and a member that
/// joins and leaves) leaves no task behind: read-only requests about unknown groups are
/// answered without one, and a group left Empty unloads its task at once, keeping only
/// its data until the periodic cleanup (here every 200 ms) makes it Dead, as Kafka's
/// does. A group with offsets but no members keeps only its data and is still
/// answered. (Without the unloading, every joined group keeps a task forever and
/// `loaded_count` ends at 100,000.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_ids_a_client_only_names_leave_no_tasks_behind() {
    const N: usize = 100_000;
    const CONNECTIONS: usize = 8;
    let b = TestBroker::start(&[
        ("group.initial.rebalance.delay.ms", "0"),
        ("offsets.topic.num.partitions", "4"),
        ("offsets.retention.check.interval.ms", "200"),
    ])
    .await;
    let mut c = b.connect().await;
    create_topic(&mut c, "t").await;
    // A group with offsets and no members: its task goes, its data stays.
    assert_eq!(
        c.call(&commit("keeper", "", -1, "t", 42), 8).await.topics[0].partitions[0].error_code,
        0
    );
    let rss_before = rss_kib();
    let started = std::time::Instant::now();
    let mut workers = Vec::new();
    for k in 0..CONNECTIONS {
        let mut c = b.connect().await;
        workers.push(tokio::spawn(async move {
            // Pipelined, a batch of ids at a time (as a client with many requests in
            // flight would), to keep the test quick.
            let ids: Vec<String> = (k..N)
                .step_by(CONNECTIONS)
                .map(|i| format!("cycling-{i}"))
                .collect();
            for batch in ids.chunks(100) {
                let fetches: Vec<_> = batch.iter().map(|g| fetch_offsets(g, "t")).collect();
                for fetched in c.call_pipelined(&fetches, 7).await {
                    assert_eq!(fetched.error_code, 0);
                    assert_eq!(fetched.topics[0].partitions[0].committed_offset, -1);
                }
                let describes: Vec<_> = batch
                    .iter()
                    .map(|g| DescribeGroupsRequest::default().with_groups(vec![GroupId(s(g))]))
                    .collect();
                for described in c.call_pipelined(&describes, 5).await {
                    assert_eq!(described.groups[0].group_state.as_str(), "Dead");
                }
                // v3: no KIP-394 round trip; the rebalance completes at once.
                let joins: Vec<_> = batch.iter().map(|g| join(g, "")).collect();
                let joined = c.call_pipelined(&joins, 3).await;
                let leaves: Vec<_> = batch
                    .iter()
                    .zip(&joined)
                    .map(|(g, j)| {
                        assert_eq!(j.error_code, 0);
                        LeaveGroupRequest::default()
                            .with_group_id(GroupId(s(g)))
                            .with_member_id(s(&j.member_id))
                    })
                    .collect();
                for left in c.call_pipelined(&leaves, 2).await {
                    assert_eq!(left.error_code, 0);
                }
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let elapsed = started.elapsed();
    let groups = &b.broker.groups;
    wait_for("idle group tasks to unload", 30, || {
        groups.loaded_count() <= 8
    })
    .await;
    let (tasks_at_end, parked_at_end, rss_at_end) =
        (groups.loaded_count(), groups.parked_count(), rss_kib());
    wait_for("the cleanup to forget the Empty groups", 300, || {
        groups.parked_count() == 1 && groups.loaded_count() == 0
    })
    .await;
    let rss_after = rss_kib();
    eprintln!(
        "{N} group ids in {elapsed:?}: RSS {rss_before} KiB before, {rss_at_end} KiB at the end \
         ({tasks_at_end} group tasks, {parked_at_end} unloaded groups), {rss_after} KiB after \
         the cleanup ({} tasks, {} unloaded groups)",
        groups.loaded_count(),
        groups.parked_count()
    );
    // The unloaded group is answered from its data, and comes back when named.
    let got = c.call(&fetch_offsets("keeper", "t"), 7).await;
    assert_eq!(got.topics[0].partitions[0].committed_offset, 42);
    let described = c
        .call(
            &DescribeGroupsRequest::default().with_groups(vec![GroupId(s("keeper"))]),
            5,
        )
        .await;
    assert_eq!(described.groups[0].group_state.as_str(), "Empty");
    b.stop().await;
}

/// Races unloading: requests keep arriving for groups whose tasks unload after every
/// one of them (a group with offsets and no members parks after each commit). Every
/// commit is answered and none is lost: each fetch sees the commit before it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_racing_an_unloading_group_are_not_lost() {
    let b = TestBroker::start(OVERRIDES).await;
    let mut c = b.connect().await;
    create_topic(&mut c, "t").await;
    let mut workers = Vec::new();
    for k in 0..4 {
        let mut c = b.connect().await;
        workers.push(tokio::spawn(async move {
            for offset in 0..300 {
                // Two connections per group: their requests interleave with unloads.
                let g = format!("race-{}", k % 2);
                let committed = c.call(&commit(&g, "", -1, "t", offset), 8).await;
                assert_eq!(committed.topics[0].partitions[0].error_code, 0);
                let got = c.call(&fetch_offsets(&g, "t"), 7).await;
                assert_eq!(got.error_code, 0);
                assert!(got.topics[0].partitions[0].committed_offset >= 0);
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let groups = &b.broker.groups;
    wait_for("idle group tasks to unload", 30, || {
        groups.loaded_count() == 0
    })
    .await;
    assert_eq!(groups.parked_count(), 2);
    // Both connections' last commits were 299: nothing was lost or reordered after them.
    for g in ["race-0", "race-1"] {
        let got = c.call(&fetch_offsets(g, "t"), 7).await;
        assert_eq!(got.topics[0].partitions[0].committed_offset, 299, "{g}");
    }
    b.stop().await;
}

/// `flush.messages` (here the broker's `log.flush.interval.messages=1`) applies to
/// offset commits as to produces: the OffsetCommit answer comes only once the commit's
/// record is fsynced. The background flusher is slowed to an hour so only the commit
/// path can have flushed. (Without the wait the recovery point stays behind the log
/// end when the answer arrives.)
#[tokio::test]
async fn offset_commits_wait_for_the_fsync_the_flush_policy_asks_for() {
    let b = TestBroker::start(&[
        ("log.flush.interval.messages", "1"),
        ("log.flush.scheduler.interval.ms", "3600000"),
        ("offsets.topic.num.partitions", "1"),
    ])
    .await;
    let mut c = b.connect().await;
    create_topic(&mut c, "t").await;
    for offset in 1..=3 {
        let committed = c.call(&commit("durable", "", -1, "t", offset), 8).await;
        assert_eq!(committed.topics[0].partitions[0].error_code, 0);
        let p = b
            .broker
            .replicas
            .partition("__consumer_offsets", 0)
            .expect("__consumer_offsets-0");
        let log = p.log().unwrap();
        assert!(log.log_end_offset() >= offset);
        assert_eq!(
            log.recovery_point(),
            log.log_end_offset(),
            "the commit was answered before its fsync"
        );
    }
    b.stop().await;
}

/// The group's `__consumer_offsets` partition is `abs(hash) % partition count`, never
/// a count of the partitions that are online: with partition 3 of 4 offline, its
/// groups get COORDINATOR_NOT_AVAILABLE (FindCoordinator too), and every other group
/// keeps its offsets and writes to its own partition. (Over the 3 online partitions,
/// the offline partition's groups would be served from another partition, with their
/// offsets missing.)
#[tokio::test]
async fn an_offline_offsets_partition_takes_away_only_its_own_groups() {
    use gregor_broker::group::records::partition_for;
    use gregor_protocol::kp::ResponseError;
    const OVERRIDES4: &[(&str, &str)] = &[
        ("group.initial.rebalance.delay.ms", "0"),
        ("offsets.topic.num.partitions", "4"),
    ];
    let ids = (0..).map(|i| format!("group-{i}"));
    let offline: Vec<String> = ids
        .clone()
        .filter(|g| partition_for(g, 4) == 3)
        .take(2)
        .collect();
    // Groups that a count of 3 would move to another partition.
    let others: Vec<String> = ids
        .filter(|g| partition_for(g, 4) != 3 && partition_for(g, 4) != partition_for(g, 3))
        .take(3)
        .collect();
    let b = TestBroker::start(OVERRIDES4).await;
    let mut c = b.connect().await;
    create_topic(&mut c, "t").await;
    for g in offline.iter().chain(&others) {
        let r = c.call(&commit(g, "", -1, "t", 5), 8).await;
        assert_eq!(r.topics[0].partitions[0].error_code, 0);
    }
    let dir = b.stop_keeping_data().await;
    // A directory where the segment file should be: the partition cannot open.
    let seg = dir
        .path()
        .join("__consumer_offsets-3")
        .join(format!("{:020}.log", 0));
    std::fs::rename(&seg, seg.with_extension("saved")).unwrap();
    std::fs::create_dir(&seg).unwrap();
    let b = TestBroker::start_in(dir, OVERRIDES4).await;
    let mut c = b.connect().await;
    let unavailable = ResponseError::CoordinatorNotAvailable.code();

    for g in &offline {
        let found = c
            .call(
                &FindCoordinatorRequest::default()
                    .with_key(s(g))
                    .with_key_type(0),
                3,
            )
            .await;
        assert_eq!(found.error_code, unavailable, "FindCoordinator for {g}");
        assert_eq!(
            c.call(&fetch_offsets(g, "t"), 7).await.error_code,
            unavailable
        );
        let r = c.call(&commit(g, "", -1, "t", 6), 8).await;
        assert_eq!(r.topics[0].partitions[0].error_code, unavailable);
        assert_eq!(c.call(&join(g, ""), 3).await.error_code, unavailable);
    }
    // Batched FindCoordinator (v4): only the offline partition's key fails.
    let batched = c
        .call(
            &FindCoordinatorRequest::default()
                .with_coordinator_keys(vec![s(&offline[0]), s(&others[0])])
                .with_key_type(0),
            4,
        )
        .await;
    let codes: Vec<i16> = batched.coordinators.iter().map(|c| c.error_code).collect();
    assert_eq!(codes, vec![unavailable, 0]);

    for g in &others {
        let got = c.call(&fetch_offsets(g, "t"), 7).await;
        assert_eq!(got.error_code, 0);
        assert_eq!(
            got.topics[0].partitions[0].committed_offset, 5,
            "{g} kept its offsets"
        );
        let owner = b
            .broker
            .replicas
            .partition("__consumer_offsets", partition_for(g, 4))
            .unwrap();
        let before = owner.high_watermark();
        let r = c.call(&commit(g, "", -1, "t", 6), 8).await;
        assert_eq!(r.topics[0].partitions[0].error_code, 0);
        assert_eq!(
            owner.high_watermark(),
            before + 1,
            "{g} wrote to its own partition"
        );
    }
    b.stop().await;
}
