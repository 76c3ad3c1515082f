//! Three and five voters on real TCP ports: election, replication, NotLeader on a
//! follower, failover after a clean stop and after a crash, catch-up on restart,
//! minority and majority loss (3 and 5 voters), compare-and-set, status, cluster-id
//! checks.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common as quorum_common;

use std::time::{Duration, Instant};

use gregor_metadata::{ControllerError, QuorumError, RpcClient};
use quorum_common::{create, Cluster, CLUSTER};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_voters_replicate_and_fail_over() {
    let mut c = Cluster::start(3, 20 << 20).await;
    c.leader(None).await;
    let img = c.commit_anywhere(20, create("t1")).await;
    for other in c.converge(img.offset).await {
        assert!(other.topic("t1").is_some());
    }
    // Every node gets the bootstrap levels, committed once by the first leader just
    // after its election (possibly after t1, which any leader may take first).
    for q in c.nodes.values() {
        let mut rx = q.subscribe();
        let img = quorum_common::wait_image(&mut rx, 20, |i| {
            i.feature_level(gregor_metadata::features::METADATA_VERSION) != 0
        })
        .await;
        assert_eq!(
            img.feature_level(gregor_metadata::features::METADATA_VERSION),
            29
        );
    }

    // A follower refuses to commit and names the leader (asked again: on a loaded
    // machine leadership may have moved since).
    let leader = c.leader(None).await;
    let follower = *c.nodes.keys().find(|&&id| id != leader).unwrap();
    match c.nodes[&follower].commit(create("t2")).await {
        Err(QuorumError::NotLeader { leader: l }) => assert_eq!(l, Some(leader)),
        other => panic!("expected NotLeader, got {other:?}"),
    }

    // status() on the leader: itself, term, every voter's log end.
    // (The high watermark and the followers' log ends are reported as heartbeats come
    // back: wait for them on image changes, with a deadline.)
    let mut rx = c.nodes[&leader].subscribe();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        let status = c.nodes[&leader].status();
        let ready = status.high_watermark > img.offset
            && status
                .voters
                .iter()
                .all(|v| v.log_end_offset > img.offset && v.last_fetch_timestamp > 0);
        if ready || Instant::now() > deadline {
            break status;
        }
        let _ = tokio::time::timeout(Duration::from_millis(200), rx.changed()).await;
    };
    assert_eq!(status.leader_id, leader);
    assert!(status.leader_epoch >= 1);
    assert_eq!(status.voters.len(), 3);
    assert!(status.high_watermark > img.offset, "{status:?}");
    for v in &status.voters {
        assert!(v.log_end_offset > img.offset, "{v:?}");
        assert!(v.last_fetch_timestamp > 0, "{v:?}");
    }
    assert!(status.observers.is_empty());

    // CAS: two concurrent "create X iff absent" on the leader: exactly one succeeds.
    let q = c.nodes[&c.leader(None).await].clone();
    let (a, b) = tokio::join!(q.commit(create("x")), q.commit(create("x")));
    let oks = [&a, &b].iter().filter(|r| r.is_ok()).count();
    assert_eq!(oks, 1, "{a:?} {b:?}");
    let refused = if a.is_err() { a } else { b };
    assert!(matches!(
        refused,
        Err(QuorumError::Controller(
            ControllerError::TopicAlreadyExists(_)
        ))
    ));

    // Stop the leader cleanly: a new one is elected and commits.
    c.stop(leader).await;
    let started = Instant::now();
    let second = c.leader(Some(leader)).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    let img = c.commit_anywhere(20, create("t3")).await;
    // Restart the old leader: it catches up.
    c.restart(leader).await;
    for other in c.converge(img.offset).await {
        assert!(other.topic("t3").is_some() && other.topic("x").is_some());
    }

    // Crash the second leader (dropped, no shutdown): the others go on.
    c.crash(second);
    let third = c.leader(Some(second)).await;
    assert_ne!(third, second);
    let img = c.commit_anywhere(20, create("t4")).await;
    c.restart(second).await;
    let images = c.converge(img.offset).await;
    for other in &images {
        assert_eq!(other.topics, img.topics);
    }

    // Two of three down: no quorum, `commit` fails in bounded time; back, it works.
    let leader = c.leader(None).await;
    let down: Vec<i32> = c.nodes.keys().copied().filter(|&id| id != leader).collect();
    c.stop(down[0]).await;
    c.crash(down[1]);
    let started = Instant::now();
    match c.nodes[&leader].commit(create("t5")).await {
        Err(QuorumError::Unavailable(_)) | Err(QuorumError::NotLeader { .. }) => {}
        other => panic!("expected Unavailable without a quorum, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    for &id in &down {
        c.restart(id).await;
    }
    let img = c.commit_anywhere(30, create("t5")).await;
    for other in c.converge(img.offset).await {
        assert!(other.topic("t5").is_some());
    }
    for q in c.nodes.values() {
        q.shutdown().await;
    }
}

/// Five voters: two down keeps commits working; three down makes `commit` fail with
/// Unavailable in bounded time; they come back and commits work again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_voters_minority_and_majority_loss() {
    let mut c = Cluster::start(5, 20 << 20).await;
    let leader = c.leader(None).await;
    let img = c.commit_anywhere(20, create("a")).await;
    c.converge(img.offset).await;
    let others: Vec<i32> = c.nodes.keys().copied().filter(|&id| id != leader).collect();
    c.stop(others[0]).await;
    c.crash(others[1]);
    let img = c.commit_anywhere(20, create("b")).await;
    assert!(img.topic("b").is_some());
    c.converge(img.offset).await;

    // A third voter down (not the leader): no majority left.
    let leader = c.leader(None).await;
    let third = *c.nodes.keys().find(|&&id| id != leader).unwrap();
    c.stop(third).await;
    let started = Instant::now();
    match c.nodes[&leader].commit(create("c")).await {
        Err(QuorumError::Unavailable(_)) | Err(QuorumError::NotLeader { .. }) => {}
        other => panic!("expected Unavailable without a quorum, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    for id in [others[0], others[1], third] {
        c.restart(id).await;
    }
    let img = c.commit_anywhere(30, create("c")).await;
    let images = c.converge(img.offset).await;
    for i in images {
        assert!(i.topic("c").is_some() && i.topic("b").is_some());
    }
    for q in c.nodes.values() {
        q.shutdown().await;
    }
}

/// The RPC transport: application requests reach the AppHandler; a client of another
/// cluster is refused with InconsistentClusterId; a malformed frame closes only its own
/// connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rpc_checks_the_cluster_id_and_survives_garbage() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let c = Cluster::start(3, 20 << 20).await;
    let addr = c.voters[&1].clone();
    let client = RpcClient::new(addr.clone(), CLUSTER.into(), 7, None);
    let reply = client
        .call_app(b"hello".to_vec(), Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(reply, b"olleh");

    let stranger = RpcClient::new(addr.clone(), "other-cluster".into(), 7, None);
    match stranger
        .call_app(b"x".to_vec(), Duration::from_secs(5))
        .await
    {
        Err(QuorumError::InconsistentClusterId { ours, theirs }) => {
            assert_eq!(ours, "other-cluster");
            assert_eq!(theirs, CLUSTER);
        }
        other => panic!("expected InconsistentClusterId, got {other:?}"),
    }

    // Garbage: a huge length, then JSON that is no request.
    for junk in [vec![0xff, 0xff, 0xff, 0xff, 1, 2], {
        let mut v = vec![0, 0, 0, 9, 0, 0, 0, 5];
        v.extend_from_slice(b"nope!");
        v
    }] {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        s.write_all(&junk).await.unwrap();
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .unwrap()
            .unwrap_or(0);
        assert_eq!(n, 0, "the server closes a connection that sent garbage");
    }
    // The node still serves and the cluster still commits.
    assert_eq!(
        client
            .call_app(b"ab".to_vec(), Duration::from_secs(5))
            .await
            .unwrap(),
        b"ba"
    );
    c.commit_anywhere(20, create("after-garbage")).await;
    for q in c.nodes.values() {
        q.shutdown().await;
    }
}
