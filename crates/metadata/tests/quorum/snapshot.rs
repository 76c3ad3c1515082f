//! Snapshots and broker-only followers: with a tiny snapshot interval the log is purged
//! behind snapshots; a restarted voter and a late follower get a snapshot; an early
//! follower sees every commit; the leader lists followers as observers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common as quorum_common;

use std::time::Duration;

use gregor_metadata::controller::delete_topic;
use gregor_metadata::{MetadataFollower, MetadataImage};
use quorum_common::{create, wait_image, Cluster, CLUSTER};

/// Create or delete `t{i % 10}`: the log grows, the image stays small.
async fn churn(c: &Cluster, from: usize, n: usize) -> std::sync::Arc<MetadataImage> {
    let mut last = None;
    for i in from..from + n {
        let name = format!("t{}", i % 10);
        let exists = c
            .nodes
            .values()
            .next()
            .unwrap()
            .image()
            .topic(&name)
            .is_some();
        let img = if exists && i % 3 != 0 {
            c.commit_anywhere(20, |img: &MetadataImage| {
                delete_topic(img, &name).or(Ok(Vec::new()))
            })
            .await
        } else {
            let make = create(&name);
            c.commit_anywhere(20, move |img: &MetadataImage| make(img).or(Ok(Vec::new())))
                .await
        };
        last = Some(img);
    }
    last.unwrap()
}

fn assert_same(a: &MetadataImage, b: &MetadataImage) {
    assert_eq!(a.offset, b.offset);
    assert_eq!(a, b, "images at offset {} differ", a.offset);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn snapshots_purge_the_log_and_catch_up_voters_and_followers() {
    let mut c = Cluster::start(3, 1024).await;
    c.leader(None).await;
    let voters = c.voters.clone();
    // A follower from the start sees every commit.
    let early = MetadataFollower::start(100, voters.clone(), CLUSTER.into(), None)
        .await
        .unwrap();
    let mut early_rx = early.subscribe();
    for i in 0..10 {
        let name = format!("early{i}");
        let img = c.commit_anywhere(20, create(&name)).await;
        let seen = wait_image(&mut early_rx, 10, |im| im.offset >= img.offset).await;
        assert!(seen.topic(&name).is_some());
    }
    assert_eq!(early.leader(), Some(c.leader(None).await));

    let img = churn(&c, 0, 120).await;
    let images = c.converge(img.offset).await;
    for i in &images {
        assert_same(i, &img);
    }
    for (&id, d) in &c.dirs {
        let meta = d.path().join("__cluster_metadata-0");
        assert!(
            meta.join("raft.snapshot").exists(),
            "node {id} wrote a snapshot"
        );
        let log_len = std::fs::metadata(meta.join("raft.log")).unwrap().len();
        assert!(
            log_len < 24 << 10,
            "node {id}: the log was purged ({log_len} bytes)"
        );
    }

    // A voter down while the others go on well past the log it has: it gets a snapshot.
    let leader = c.leader(None).await;
    let follower = *c.nodes.keys().find(|&&id| id != leader).unwrap();
    c.stop(follower).await;
    let img = churn(&c, 120, 60).await;
    c.restart(follower).await;
    let images = c.converge(img.offset).await;
    for i in &images {
        assert_same(i, &img);
    }
    assert!(images.iter().all(|i| i.topic("early9").is_some()));

    // A follower started late (the log start is far past 0): snapshot, then entries.
    let late = MetadataFollower::start(101, voters.clone(), CLUSTER.into(), None)
        .await
        .unwrap();
    let mut late_rx = late.subscribe();
    let got = wait_image(&mut late_rx, 20, |im| im.offset >= img.offset).await;
    assert_same(&got, &img);
    let img = c.commit_anywhere(20, create("after-late")).await;
    let got = wait_image(&mut late_rx, 20, |im| im.offset >= img.offset).await;
    assert!(got.topic("after-late").is_some());
    let got = wait_image(&mut early_rx, 20, |im| im.offset >= img.offset).await;
    assert_same(&got, &img);

    // The leader lists the followers that fetch from it as observers.
    let leader = c.leader(None).await;
    let mut rx = c.nodes[&leader].subscribe();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = c.nodes[&leader].status();
        let ids: Vec<i32> = status.observers.iter().map(|o| o.replica_id).collect();
        if ids.contains(&100) && ids.contains(&101) {
            for o in &status.observers {
                assert!(o.last_fetch_timestamp > 0 && o.log_end_offset > 0, "{o:?}");
            }
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "observers: {ids:?}");
        let _ = tokio::time::timeout(Duration::from_millis(600), rx.changed()).await;
    }

    early.shutdown().await;
    late.shutdown().await;
    for q in c.nodes.values() {
        q.shutdown().await;
    }
}

/// A whole cluster restarted from snapshots plus logs rebuilds the same image.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cluster_restart_rebuilds_from_snapshot_and_log() {
    let mut c = Cluster::start(3, 2048).await;
    let img = churn(&c, 0, 50).await;
    c.converge(img.offset).await;
    let ids: Vec<i32> = c.nodes.keys().copied().collect();
    for &id in &ids {
        c.stop(id).await;
    }
    for &id in &ids {
        c.restart(id).await;
    }
    // Before any new commit each node has replayed its committed log over its snapshot;
    // once a leader is elected all agree and go on.
    let img2 = c.commit_anywhere(20, create("after-restart")).await;
    for i in c.converge(img2.offset).await {
        assert_same(&i, &img2);
        assert_eq!(i.topics.len(), img.topics.len() + 1);
    }
    for q in c.nodes.values() {
        q.shutdown().await;
    }
}

/// A follower goes on when the voter it fetched from (the leader) stops: it asks the
/// others, learns the new leader and sees its commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn follower_survives_the_loss_of_its_voter() {
    let mut c = Cluster::start(3, 20 << 20).await;
    let img = c.commit_anywhere(20, create("before")).await;
    let f = MetadataFollower::start(200, c.voters.clone(), CLUSTER.into(), None)
        .await
        .unwrap();
    let mut rx = f.subscribe();
    wait_image(&mut rx, 20, |i| i.offset >= img.offset).await;
    let leader = c.leader(None).await;
    c.stop(leader).await;
    let next = c.leader(Some(leader)).await;
    let img = c.commit_anywhere(20, create("after")).await;
    let got = wait_image(&mut rx, 20, |i| i.topic("after").is_some()).await;
    assert!(got.topic("before").is_some());
    assert!(got.offset >= img.offset);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while f.leader() != Some(next) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "follower names {:?}",
            f.leader()
        );
        // Each fetch answer names the leader; one comes at least every long poll.
        let _ = tokio::time::timeout(Duration::from_millis(600), rx.changed()).await;
    }
    f.shutdown().await;
    for q in c.nodes.values() {
        q.shutdown().await;
    }
}
