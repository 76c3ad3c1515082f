//! An N-node cluster in one process (as Kafka's KafkaClusterTestKit): every node a
//! broker and a controller, real TCP on 127.0.0.1, the quorum's real RPC. Fast checks of
//! what the process tests (tests/python/test_cluster.py) prove with real clients: one
//! metadata for all, writes forwarded to the controller from any node, the controller
//! stopped and replaced, a stopped broker fenced, followers in incremental fetch sessions.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use crate::common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::Client;
use gregor_broker::{Broker, BrokerConfig};
use gregor_protocol::kp::messages::*;
use gregor_protocol::kp::protocol::StrBytes;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

struct Node {
    id: i32,
    addr: std::net::SocketAddr,
    broker: Arc<Broker>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Node {
    async fn connect(&self) -> Client {
        Client::connect_to(self.addr).await
    }

    async fn stop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap();
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start_cluster(n: i32, extra: &[(&str, &str)]) -> Vec<Node> {
    let mut clients = Vec::new();
    for _ in 0..n {
        clients.push(TcpListener::bind("127.0.0.1:0").await.unwrap());
    }
    let controller_ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
    let voters: Vec<String> = controller_ports
        .iter()
        .enumerate()
        .map(|(i, p)| format!("{}@127.0.0.1:{p}", i + 1))
        .collect();
    let voters = voters.join(",");
    let mut opening = Vec::new();
    let mut dirs = Vec::new();
    for (i, listener) in clients.iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let mut explicit: BTreeMap<String, String> = extra
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let port = listener.local_addr().unwrap().port();
        explicit.insert("log.dirs".into(), dir.path().display().to_string());
        explicit.insert("node.id".into(), (i + 1).to_string());
        explicit.insert(
            "listeners".into(),
            format!(
                "PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{}",
                controller_ports[i]
            ),
        );
        explicit.insert("controller.quorum.voters".into(), voters.clone());
        explicit.insert("cluster.id".into(), "inprocCLUSTERtest00000".into());
        let config = BrokerConfig::from_explicit(explicit).unwrap();
        opening.push(tokio::spawn(Broker::open(config)));
        dirs.push(dir);
    }
    let mut nodes = Vec::new();
    for ((open, listener), dir) in opening.into_iter().zip(clients).zip(dirs) {
        let broker = open.await.unwrap().unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let b = broker.clone();
        let task = tokio::spawn(async move {
            gregor_broker::server::run(b, listener, async {
                let _ = rx.await;
            })
            .await
            .unwrap();
        });
        nodes.push(Node {
            id: broker.config.node_id,
            addr,
            broker,
            stop: Some(tx),
            task: Some(task),
            _dir: dir,
        });
    }
    for node in &nodes {
        tokio::time::timeout(Duration::from_secs(60), node.broker.join_cluster())
            .await
            .expect("joined in time")
            .unwrap();
    }
    nodes
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

async fn metadata(c: &mut Client, topic: Option<&str>) -> MetadataResponse {
    let topics = topic.map(|t| {
        vec![metadata_request::MetadataRequestTopic::default().with_name(Some(TopicName(s(t))))]
    });
    c.call(
        &MetadataRequest::default()
            .with_topics(topics)
            .with_allow_auto_topic_creation(false),
        12,
    )
    .await
}

async fn create(c: &mut Client, name: &str, partitions: i32, rf: i16) -> i16 {
    let r = c
        .call(
            &CreateTopicsRequest::default()
                .with_timeout_ms(30_000)
                .with_topics(vec![create_topics_request::CreatableTopic::default()
                    .with_name(TopicName(s(name)))
                    .with_num_partitions(partitions)
                    .with_replication_factor(rf)]),
            7,
        )
        .await;
    r.topics[0].error_code
}

/// Polls `cond` until it holds or the deadline passes.
async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_share_metadata_and_survive_the_controller_stopping() {
    let mut nodes = start_cluster(
        3,
        &[
            ("broker.session.timeout.ms", "2000"),
            ("broker.heartbeat.interval.ms", "300"),
        ],
    )
    .await;
    // Every node lists every broker (joining returns once registered; the unfencing that
    // makes a broker visible follows with its next heartbeat).
    for node in &nodes {
        let addr = node.addr;
        eventually(
            &format!("node {} listing brokers 1, 2, 3", node.id),
            || async move {
                let mut c = Client::connect_to(addr).await;
                let md = metadata(&mut c, None).await;
                let mut ids: Vec<i32> = md.brokers.iter().map(|b| b.node_id.0).collect();
                ids.sort_unstable();
                ids == vec![1, 2, 3]
            },
        )
        .await;
    }
    // Created through node 2, seen the same from node 3, leaders spread.
    let mut c2 = nodes[1].connect().await;
    assert_eq!(create(&mut c2, "t", 3, 3).await, 0);
    assert_eq!(create(&mut c2, "t", 3, 3).await, 36, "TOPIC_ALREADY_EXISTS");
    assert_eq!(
        create(&mut c2, "big", 1, 4).await,
        38,
        "INVALID_REPLICATION_FACTOR"
    );
    let mut c3 = nodes[2].connect().await;
    let md = metadata(&mut c3, Some("t")).await;
    let mut leaders: Vec<i32> = md.topics[0]
        .partitions
        .iter()
        .map(|p| p.leader_id.0)
        .collect();
    leaders.sort_unstable();
    assert_eq!(leaders, vec![1, 2, 3]);
    // Stop the active controller: another voter takes over and writes work again.
    let leader = nodes[0].broker.metadata.controller_id().unwrap();
    let idx = nodes.iter().position(|n| n.id == leader).unwrap();
    nodes[idx].stop().await;
    let survivor = nodes.iter().position(|n| n.id != leader).unwrap();
    let addr = nodes[survivor].addr;
    eventually(
        "a topic created after the controller stopped",
        || async move {
            let mut c = Client::connect_to(addr).await;
            matches!(create(&mut c, "after", 1, 2).await, 0 | 36)
        },
    )
    .await;
    // The stopped node's session expires: it is fenced, and no partition names it as
    // leader or in-sync replica any more.
    eventually("the stopped node fenced", || async move {
        let mut c = Client::connect_to(addr).await;
        let md = metadata(&mut c, None).await;
        !md.brokers.iter().any(|b| b.node_id.0 == leader)
    })
    .await;
    let mut c = nodes[survivor].connect().await;
    let md = metadata(&mut c, Some("t")).await;
    for p in &md.topics[0].partitions {
        assert_ne!(p.leader_id.0, leader);
        assert!(!p.isr_nodes.iter().any(|r| r.0 == leader), "{p:?}");
        assert!(p.offline_replicas.iter().any(|r| r.0 == leader), "{p:?}");
    }
    for node in &mut nodes {
        node.stop().await;
    }
}

/// KIP-951: a produce or fetch sent to a broker that does not lead the partition is
/// refused with NOT_LEADER_OR_FOLLOWER naming the current leader and its epoch, with the
/// leader's endpoint in the response, so a client redirects without a metadata refresh.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_refused_produce_or_fetch_names_the_current_leader() {
    use crate::api_sweep::support::one_record_batch;
    const NOT_LEADER_OR_FOLLOWER: i16 = 6;
    let mut nodes = start_cluster(3, &[]).await;
    let mut c = nodes[0].connect().await;
    assert_eq!(create(&mut c, "hint", 1, 1).await, 0);
    // Every node knows the leader before the refused requests are sent.
    let mut leader = (-1, -1);
    for node in &nodes {
        let addr = node.addr;
        let seen = std::sync::Arc::new(std::sync::Mutex::new((-1, -1)));
        let s2 = seen.clone();
        eventually("the leader known everywhere", move || {
            let s3 = s2.clone();
            async move {
                let mut c = Client::connect_to(addr).await;
                let md = metadata(&mut c, Some("hint")).await;
                let p = md.topics.first().and_then(|t| t.partitions.first());
                match p {
                    Some(p) if p.leader_id.0 > 0 => {
                        *s3.lock().unwrap() = (p.leader_id.0, p.leader_epoch);
                        true
                    }
                    _ => false,
                }
            }
        })
        .await;
        leader = *seen.lock().unwrap();
    }
    let (lid, epoch) = leader;
    let leader_port = i32::from(nodes[(lid - 1) as usize].addr.port());
    let other = nodes.iter().position(|n| n.id != lid).unwrap();
    let mut c = nodes[other].connect().await;

    let produce = ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(TopicName(s("hint")))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(bytes::Bytes::from(one_record_batch(b"x")))),
            ])]);
    let r = c.call(&produce, 12).await;
    let p = &r.responses[0].partition_responses[0];
    assert_eq!(p.error_code, NOT_LEADER_OR_FOLLOWER);
    assert_eq!(
        (p.current_leader.leader_id.0, p.current_leader.leader_epoch),
        (lid, epoch)
    );
    let ends: Vec<(i32, i32)> = r
        .node_endpoints
        .iter()
        .map(|e| (e.node_id.0, e.port))
        .collect();
    assert_eq!(ends, vec![(lid, leader_port)]);
    // Before v10 there is nowhere to say it: the same error, nothing more.
    let r = c.call(&produce, 9).await;
    assert_eq!(
        r.responses[0].partition_responses[0].error_code,
        NOT_LEADER_OR_FOLLOWER
    );

    let topic_id = nodes[other]
        .broker
        .metadata
        .image()
        .topic("hint")
        .unwrap()
        .id;
    let fetch = FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(0)
        .with_max_bytes(1 << 20)
        .with_session_epoch(-1)
        .with_topics(vec![fetch_request::FetchTopic::default()
            .with_topic_id(topic_id)
            .with_partitions(vec![fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_current_leader_epoch(-1)
                .with_partition_max_bytes(1 << 20)])]);
    let r = c.call(&fetch, 17).await;
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.error_code, NOT_LEADER_OR_FOLLOWER, "{r:?}");
    assert_eq!(
        (p.current_leader.leader_id.0, p.current_leader.leader_epoch),
        (lid, epoch)
    );
    let ends: Vec<(i32, i32)> = r
        .node_endpoints
        .iter()
        .map(|e| (e.node_id.0, e.port))
        .collect();
    assert_eq!(ends, vec![(lid, leader_port)]);
    for node in &mut nodes {
        node.stop().await;
    }
}

/// Followers replicate through one incremental fetch session (KIP-227) per leader: the
/// leaders hold a session per follower covering the partitions it follows there, and
/// acks=all writes keep completing once the sessions send only what changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn followers_replicate_through_incremental_fetch_sessions() {
    use crate::api_sweep::support::one_record_batch;
    const PARTITIONS: i32 = 12;
    let mut nodes = start_cluster(3, &[]).await;
    let mut c = nodes[0].connect().await;
    assert_eq!(create(&mut c, "sess", PARTITIONS, 3).await, 0);
    let leaders = std::sync::Arc::new(std::sync::Mutex::new(BTreeMap::new()));
    let l2 = leaders.clone();
    let addr = nodes[0].addr;
    eventually("every partition led", move || {
        let l3 = l2.clone();
        async move {
            let mut c = Client::connect_to(addr).await;
            let md = metadata(&mut c, Some("sess")).await;
            let parts = md.topics.first().map(|t| t.partitions.clone());
            let found: BTreeMap<i32, i32> = parts
                .unwrap_or_default()
                .iter()
                .filter(|p| p.leader_id.0 > 0 && p.isr_nodes.len() == 3)
                .map(|p| (p.partition_index, p.leader_id.0))
                .collect();
            let done = found.len() == PARTITIONS as usize;
            *l3.lock().unwrap() = found;
            done
        }
    })
    .await;
    let leaders = leaders.lock().unwrap().clone();

    for round in 0..3 {
        for (&partition, &leader) in &leaders {
            let mut c = nodes[(leader - 1) as usize].connect().await;
            let produce = ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(20_000)
                .with_topic_data(vec![produce_request::TopicProduceData::default()
                    .with_name(TopicName(s("sess")))
                    .with_partition_data(vec![
                        produce_request::PartitionProduceData::default()
                            .with_index(partition)
                            .with_records(Some(bytes::Bytes::from(one_record_batch(b"v")))),
                    ])]);
            let r = c.call(&produce, 9).await;
            let p = &r.responses[0].partition_responses[0];
            assert_eq!(p.error_code, 0, "round {round} partition {partition}");
            assert_eq!(p.base_offset, round);
        }
    }
    // Every replica holds the three records.
    for node in &nodes {
        for partition in 0..PARTITIONS {
            let b = node.broker.clone();
            eventually("the follower caught up", move || {
                let end = b
                    .replicas
                    .partition("sess", partition)
                    .map(|p| p.log_end_offset());
                async move { end == Some(3) }
            })
            .await;
            // The high watermark reaches the followers too: news without records, in
            // rounds that skip every partition without news.
            let b = node.broker.clone();
            eventually("the follower learned the high watermark", move || {
                let hw = b
                    .replicas
                    .partition("sess", partition)
                    .map(|p| p.high_watermark());
                async move { hw == Some(3) }
            })
            .await;
        }
    }
    // Each leader holds one session per follower, covering what it leads.
    for node in &nodes {
        let led = leaders.values().filter(|&&l| l == node.id).count();
        let (sessions, cached) = node.broker.fetch_sessions.sizes();
        if led > 0 {
            assert_eq!((sessions, cached), (2, 2 * led), "node {}", node.id);
        }
    }
    for node in &mut nodes {
        node.stop().await;
    }
}

/// Followers whose fetch sessions skip idle partitions (nothing changed since they were
/// caught up) stay in the ISR well past `replica.lag.time.max.ms`: a skipped round is
/// still a fetch that finds them caught up. And the idle rounds look at (almost) none
/// of the partitions.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idle_followers_in_skipping_sessions_stay_in_the_isr() {
    const PARTITIONS: i32 = 6;
    let mut nodes = start_cluster(3, &[("replica.lag.time.max.ms", "1000")]).await;
    let mut c = nodes[0].connect().await;
    assert_eq!(create(&mut c, "idle", PARTITIONS, 3).await, 0);
    let full_isr = |nodes: &[Node]| {
        (0..PARTITIONS).all(|i| {
            nodes.iter().any(|n| {
                n.broker.replicas.partition("idle", i).is_some_and(|p| {
                    p.is_leader() && p.assignment().isr.len() == 3 && p.high_watermark() >= 0
                })
            })
        })
    };
    let brokers: Vec<Arc<Broker>> = nodes.iter().map(|n| n.broker.clone()).collect();
    let nodes_ref = &nodes;
    eventually("every ISR full", || {
        let full = full_isr(nodes_ref);
        async move { full }
    })
    .await;
    let looked = || -> u64 { brokers.iter().map(|b| b.fetch_sessions.looked()).sum() };
    let before = looked();
    // The interval under test: four times the lag limit with nothing produced (a
    // measured idle period, not synchronisation).
    tokio::time::sleep(Duration::from_millis(4_000)).await;
    assert!(
        full_isr(&nodes),
        "an idle caught-up follower was dropped from an ISR"
    );
    let idle = looked() - before;
    // About 8 parked rounds per session (500 ms each), 6 sessions of ~2 partitions:
    // ~100 partitions looked at if nothing were skipped.
    assert!(idle <= 12, "idle rounds looked at {idle} partitions");
    for node in &mut nodes {
        node.stop().await;
    }
}

/// Moves the leadership of `topic`-`partition` to `leader` (first in the replica order,
/// then a preferred election) and waits until every node sees it.
async fn move_leader(nodes: &[Node], topic: &str, partition: i32, leader: i32) {
    let mut order: Vec<i32> = vec![leader];
    order.extend(nodes.iter().map(|n| n.id).filter(|&id| id != leader));
    let mut c = nodes[0].connect().await;
    let r = c
        .call(
            &AlterPartitionReassignmentsRequest::default()
                .with_timeout_ms(30_000)
                .with_topics(vec![
                    alter_partition_reassignments_request::ReassignableTopic::default()
                        .with_name(TopicName(s(topic)))
                        .with_partitions(vec![
                            alter_partition_reassignments_request::ReassignablePartition::default()
                                .with_partition_index(partition)
                                .with_replicas(Some(order.iter().map(|&b| BrokerId(b)).collect())),
                        ]),
                ]),
            0,
        )
        .await;
    assert_eq!(r.error_code, 0, "{r:?}");
    let want = order.clone();
    let brokers: Vec<Arc<Broker>> = nodes.iter().map(|n| n.broker.clone()).collect();
    let (t, b2) = (topic.to_string(), brokers.clone());
    eventually("the new replica order applied", move || {
        let ok = b2.iter().all(|b| {
            b.metadata
                .image()
                .topic(&t)
                .and_then(|x| x.partitions.get(&partition))
                .is_some_and(|p| p.replicas == want && p.isr.len() == want.len())
        });
        async move { ok }
    })
    .await;
    let r = c
        .call(
            &ElectLeadersRequest::default()
                .with_election_type(0)
                .with_timeout_ms(30_000)
                .with_topic_partitions(Some(vec![
                    elect_leaders_request::TopicPartitions::default()
                        .with_topic(TopicName(s(topic)))
                        .with_partitions(vec![partition]),
                ])),
            2,
        )
        .await;
    assert_eq!(r.error_code, 0, "{r:?}");
    let t = topic.to_string();
    eventually("the new leader everywhere", move || {
        let ok = brokers.iter().all(|b| {
            b.metadata
                .image()
                .topic(&t)
                .and_then(|x| x.partitions.get(&partition))
                .is_some_and(|p| p.leader == leader)
                && (b.config.node_id != leader
                    || b.replicas
                        .partition(&t, partition)
                        .is_some_and(|p| p.is_leader()))
        });
        async move { ok }
    })
    .await;
}

/// A transaction coordinator whose `__transaction_state` partition moved away and came
/// back verifies a produce against the state its successor wrote, not against what it
/// held before: here the producer's epoch was bumped and a partition added while
/// another broker coordinated, and its batch must be accepted, not fenced.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_coordinator_led_again_verifies_produce_against_its_successors_state() {
    use crate::transactions::support::{add, end, init, produce_txn};
    let mut nodes = start_cluster(3, &[("transaction.state.log.num.partitions", "1")]).await;
    let mut c = nodes[0].connect().await;
    assert_eq!(create(&mut c, "txd", 1, 3).await, 0);
    // FindCoordinator creates __transaction_state (one partition).
    let addr = nodes[0].addr;
    eventually("the transaction coordinator found", move || async move {
        let mut c = Client::connect_to(addr).await;
        let r = c
            .call(
                &FindCoordinatorRequest::default()
                    .with_key(s("tx"))
                    .with_key_type(1),
                3,
            )
            .await;
        r.error_code == 0
    })
    .await;
    // Coordinator and data leader on node 1.
    move_leader(&nodes, "__transaction_state", 0, 1).await;
    move_leader(&nodes, "txd", 0, 1).await;
    let mut n1 = nodes[0].connect().await;
    let r = init(&mut n1, "tx", 60_000).await;
    assert_eq!(r.error_code, 0);
    let (pid, e0) = (r.producer_id.0, r.producer_epoch);
    assert_eq!(add(&mut n1, "tx", pid, e0, "txd", &[0]).await, vec![0]);
    assert_eq!(produce_txn(&mut n1, "tx", "txd", pid, e0, 0, 2).await.0, 0);
    assert_eq!(end(&mut n1, "tx", pid, e0, true, 3).await, 0);

    // Node 2 coordinates: the producer restarts (epoch bump) and adds the partition.
    move_leader(&nodes, "__transaction_state", 0, 2).await;
    let mut n2 = nodes[1].connect().await;
    let r = init(&mut n2, "tx", 60_000).await;
    assert_eq!(r.error_code, 0);
    assert_eq!(r.producer_id.0, pid);
    let e1 = r.producer_epoch;
    assert!(e1 > e0);
    assert_eq!(add(&mut n2, "tx", pid, e1, "txd", &[0]).await, vec![0]);

    // Node 1 coordinates again: its batch under the new epoch is in the transaction.
    move_leader(&nodes, "__transaction_state", 0, 1).await;
    let (code, _) = produce_txn(&mut n1, "tx", "txd", pid, e1, 0, 3).await;
    assert_eq!(
        code, 0,
        "a produce verified against the stale coordinator state"
    );
    assert_eq!(end(&mut n1, "tx", pid, e1, true, 3).await, 0);
    for node in &mut nodes {
        node.stop().await;
    }
}

/// A replica that became leader and lost the leadership before any append (its epoch
/// recorded at the log end, nothing written under it) follows the next leader again:
/// the truncation the leader asks for removes no batch but must forget that empty
/// epoch, or every later fetch diverges at the same offset and the replica neither
/// copies the new leader's records nor rejoins the ISR (the seed 102 soak: a partition
/// stuck below min.insync.replicas, its transaction markers refused, for 66 s).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_that_led_without_writing_follows_the_next_leader() {
    use crate::api_sweep::support::one_record_batch;
    let mut nodes = start_cluster(3, &[]).await;
    let mut c = nodes[0].connect().await;
    assert_eq!(create(&mut c, "quiet", 1, 3).await, 0);
    // One record under the first leader, on every replica.
    move_leader(&nodes, "quiet", 0, 1).await;
    let produce = |acks: i16| {
        ProduceRequest::default()
            .with_acks(acks)
            .with_timeout_ms(20_000)
            .with_topic_data(vec![produce_request::TopicProduceData::default()
                .with_name(TopicName(s("quiet")))
                .with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(bytes::Bytes::from(one_record_batch(b"v")))),
                ])])
    };
    let mut n1 = nodes[0].connect().await;
    let r = n1.call(&produce(-1), 9).await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    // Node 2 leads without writing, then node 3 takes over.
    move_leader(&nodes, "quiet", 0, 2).await;
    move_leader(&nodes, "quiet", 0, 3).await;
    let mut n3 = nodes[2].connect().await;
    let r = n3.call(&produce(1), 9).await;
    let p = &r.responses[0].partition_responses[0];
    assert_eq!((p.error_code, p.base_offset), (0, 1));
    for node in &nodes {
        let b = node.broker.clone();
        eventually(
            &format!("node {} copied the new leader's record", node.id),
            move || {
                let end = b.replicas.partition("quiet", 0).map(|p| p.log_end_offset());
                async move { end == Some(2) }
            },
        )
        .await;
    }
    for node in &mut nodes {
        node.stop().await;
    }
}
