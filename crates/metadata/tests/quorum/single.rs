//! The single-voter quorum: start-up time, commits, restarts (clean and crash), a torn
//! log tail, the amnesia guard, and the migration of a directory from before the quorum.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common as quorum_common;

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use gregor_metadata::controller::{alter_broker_configs, create_topic, ConfigOp, NewTopic};
use gregor_metadata::features::{self, TRANSACTION_VERSION};
use gregor_metadata::{
    ControllerError, MetadataQuorum, MetadataRecord, MetadataStore, QuorumConfig, QuorumError,
};
use quorum_common::{app, create, CLUSTER};

fn config(dir: &std::path::Path) -> QuorumConfig {
    QuorumConfig::new(1, BTreeMap::new(), dir.to_path_buf(), CLUSTER.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_voter_commits_and_survives_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let q = MetadataQuorum::start(config(dir.path()), None, app())
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(q.is_leader(), "a single voter leads once started");
    assert_eq!(q.leader(), Some(1));
    eprintln!("single voter started and leading in {took:?}");
    assert!(took < Duration::from_millis(900), "start took {took:?}");
    // A brand-new cluster gets the bootstrap feature levels.
    assert_eq!(q.image().feature_level(features::METADATA_VERSION), 29);
    let before = q.image().offset;
    let img = q.commit(create("a")).await.unwrap();
    assert!(img.topic("a").is_some());
    assert!(img.offset > before);
    q.commit(create("b")).await.unwrap();
    // The decision is made on the latest image: a second "create a" is refused.
    match q.commit(create("a")).await {
        Err(QuorumError::Controller(ControllerError::TopicAlreadyExists(n))) => assert_eq!(n, "a"),
        other => panic!("expected TopicAlreadyExists, got {other:?}"),
    }
    // Empty records: nothing proposed, same image.
    let same = q.commit(|_| Ok(Vec::new())).await.unwrap();
    assert_eq!(same.offset, q.image().offset);
    let status = q.status();
    assert_eq!(status.leader_id, 1);
    assert!(status.leader_epoch >= 1);
    assert_eq!(status.high_watermark, q.image().offset + 1);
    assert_eq!(status.voters.len(), 1);
    assert_eq!(status.voters[0].log_end_offset, status.high_watermark);

    let image = q.image();
    q.shutdown().await;
    drop(q);
    let q = MetadataQuorum::start(config(dir.path()), None, app())
        .await
        .unwrap();
    assert!(q.is_leader());
    let again = q.image();
    assert_eq!(again.topics, image.topics);
    assert_eq!(again.features, image.features);
    q.commit(create("c")).await.unwrap();
    let image = q.image();
    // A crash: dropped without shutdown.
    drop(q);
    let q = MetadataQuorum::start(config(dir.path()), None, app())
        .await
        .unwrap();
    assert_eq!(q.image().topics, image.topics);
    assert!(q.image().offset >= image.offset);
    q.shutdown().await;

    // A torn frame at the end of the log (kill -9 mid-append) is cut.
    let log = dir.path().join("__cluster_metadata-0").join("raft.log");
    let mut f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
    f.write_all(&[200, 0, 0, 0, 1, 2, 3, 4, b'{']).unwrap();
    drop(f);
    let q = MetadataQuorum::start(config(dir.path()), None, app())
        .await
        .unwrap();
    assert_eq!(q.image().topics, image.topics);
    q.commit(create("d")).await.unwrap();
    q.shutdown().await;
    let q = MetadataQuorum::start(config(dir.path()), None, app())
        .await
        .unwrap();
    assert!(q.image().topic("d").is_some());
    q.shutdown().await;
}

/// A voter whose meta.properties names a directory but whose raft state is gone refuses
/// to start; so does one whose state belongs to another cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amnesiac_voter_and_foreign_state_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let q = MetadataQuorum::start(config(dir.path()), None, app())
        .await
        .unwrap();
    q.commit(create("a")).await.unwrap();
    q.shutdown().await;
    drop(q);
    let props = std::fs::read_to_string(dir.path().join("meta.properties")).unwrap();
    assert!(props.contains("directory.id="), "{props}");

    let mut other = config(dir.path());
    other.cluster_id = "another-cluster".into();
    match MetadataQuorum::start(other, None, app()).await {
        Err(QuorumError::InconsistentClusterId { ours, theirs }) => {
            assert_eq!(ours, "another-cluster");
            assert_eq!(theirs, CLUSTER);
        }
        other => panic!("expected InconsistentClusterId, got {:?}", other.err()),
    }

    std::fs::remove_dir_all(dir.path().join("__cluster_metadata-0")).unwrap();
    match MetadataQuorum::start(config(dir.path()), None, app()).await {
        Err(QuorumError::StateLost(msg)) => assert!(msg.contains("vote twice"), "{msg}"),
        other => panic!("expected StateLost, got {:?}", other.err()),
    }
}

/// A data directory of the single-voter store from before the quorum: its topics,
/// configs, producer-id block and feature levels are committed as the first entry, the
/// old files move to `pre-raft/`, and later starts do not migrate again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_format_directory_migrates() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = MetadataStore::open(dir.path(), true).unwrap();
        let t = NewTopic {
            assignments: Vec::new(),
            name: "old-topic".into(),
            num_partitions: 3,
            replication_factor: 1,
            configs: [("cleanup.policy".to_string(), "compact".to_string())].into(),
        };
        store
            .commit_with(|img| create_topic(img, &t, &[1]))
            .unwrap();
        store
            .commit_with(gregor_metadata::controller::allocate_producer_ids)
            .unwrap();
        store
            .commit_with(|img| {
                alter_broker_configs(
                    img,
                    "",
                    &[(
                        "log.retention.ms".to_string(),
                        ConfigOp::Set,
                        Some("1234".to_string()),
                    )],
                )
            })
            .unwrap();
        store
            .commit_with(|_| {
                Ok(vec![MetadataRecord::FeatureLevelRecord {
                    name: TRANSACTION_VERSION.into(),
                    feature_level: 1,
                }])
            })
            .unwrap();
        store.close().unwrap();
    }
    let old = MetadataStore::open(dir.path(), true).unwrap().image();
    assert_eq!(old.feature_level(TRANSACTION_VERSION), 1);
    assert!(old.next_producer_id > 0);

    let q = MetadataQuorum::start(config(dir.path()), None, app())
        .await
        .unwrap();
    let img = q.image();
    assert_eq!(
        img.topics, old.topics,
        "topics, ids, partitions and configs survive"
    );
    assert_eq!(img.broker_configs, old.broker_configs);
    assert_eq!(img.next_producer_id, old.next_producer_id);
    assert_eq!(
        img.features, old.features,
        "feature levels kept, not re-bootstrapped"
    );
    let meta_dir = dir.path().join("__cluster_metadata-0");
    assert!(meta_dir.join("pre-raft").is_dir());
    let left: Vec<String> = std::fs::read_dir(&meta_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "raft.log" && (n.ends_with(".log") || n.ends_with(".checkpoint")))
        .collect();
    assert!(left.is_empty(), "old files left in place: {left:?}");
    q.commit(create("new-topic")).await.unwrap();
    let offset = q.image().offset;
    q.shutdown().await;
    drop(q);
    let q = MetadataQuorum::start(config(dir.path()), None, app())
        .await
        .unwrap();
    let img = q.image();
    assert!(img.topic("old-topic").is_some() && img.topic("new-topic").is_some());
    assert_eq!(
        img.topic("old-topic").unwrap().id,
        old.topic("old-topic").unwrap().id
    );
    assert_eq!(img.features, old.features);
    assert!(img.offset >= offset);
    q.shutdown().await;
}

/// A crash in the middle of moving the old files aside: the next start puts them back
/// and migrates all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interrupted_migration_is_resumed() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = MetadataStore::open(dir.path(), true).unwrap();
        store.commit_with(create("kept")).unwrap();
        store.close().unwrap();
    }
    let old = MetadataStore::open(dir.path(), true).unwrap().image();
    let meta_dir = dir.path().join("__cluster_metadata-0");
    let tmp = meta_dir.join("pre-raft.tmp");
    std::fs::create_dir(&tmp).unwrap();
    let mut names: Vec<_> = std::fs::read_dir(&meta_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "pre-raft.tmp")
        .collect();
    names.sort();
    assert!(names.len() >= 2, "{names:?}");
    for n in &names[..names.len() / 2] {
        std::fs::rename(meta_dir.join(n), tmp.join(n)).unwrap();
    }
    let q = MetadataQuorum::start(config(dir.path()), None, app())
        .await
        .unwrap();
    assert_eq!(q.image().topics, old.topics);
    assert_eq!(q.image().features, old.features);
    assert!(!tmp.exists());
    assert!(meta_dir.join("pre-raft").is_dir());
    q.shutdown().await;
}

/// The voter set cannot change under an existing quorum (that would let the new voters
/// form a second cluster beside it): a single voter restarted with three configured
/// voters refuses to start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_voter_set_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let q = MetadataQuorum::start(config(dir.path()), None, app())
        .await
        .unwrap();
    q.shutdown().await;
    drop(q);
    let mut cfg = config(dir.path());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    cfg.voters = [
        (1, listener.local_addr().unwrap().to_string()),
        (2, "127.0.0.1:1".to_string()),
        (3, "127.0.0.1:2".to_string()),
    ]
    .into();
    match MetadataQuorum::start(cfg, Some(listener), app()).await {
        Err(QuorumError::Config(msg)) => assert!(msg.contains("AddRaftVoter"), "{msg}"),
        other => panic!("expected a config error, got {:?}", other.err()),
    }
}
