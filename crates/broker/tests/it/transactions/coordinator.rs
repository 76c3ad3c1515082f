//! The transaction coordinator: fencing, timeouts, error codes, and transactional-id lifecycle.

use gregor_protocol::kp::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnTopic, AddPartitionsToTxnTransaction,
};
use gregor_protocol::kp::messages::*;

use super::common::TestBroker;
use super::support::{add, end, fetch_committed, init, latest, produce_txn, s, tid, wait_for};

#[tokio::test]
async fn fencing_timeouts_and_error_codes() {
    let b = TestBroker::start(&[("transaction.max.timeout.ms", "60000")]).await;
    let mut c = b.connect().await;
    c.create_topic("t", 2).await;
    // transaction.max.timeout.ms is enforced.
    assert_eq!(
        init(&mut c, "a", 60_001).await.error_code,
        50,
        "INVALID_TRANSACTION_TIMEOUT"
    );
    assert_eq!(init(&mut c, "a", 0).await.error_code, 50);
    let first = init(&mut c, "a", 60_000).await;
    assert_eq!((first.error_code, first.producer_epoch), (0, 0));
    let pid = first.producer_id.0;
    // EndTxn with nothing open.
    assert_eq!(
        end(&mut c, "a", pid, 0, true, 3).await,
        48,
        "INVALID_TXN_STATE"
    );
    // An unknown topic fails its partitions and leaves the rest untried.
    let req = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(tid("a"))
        .with_v3_and_below_producer_id(ProducerId(pid))
        .with_v3_and_below_producer_epoch(0)
        .with_v3_and_below_topics(vec![
            AddPartitionsToTxnTopic::default()
                .with_name(TopicName(s("t")))
                .with_partitions(vec![0]),
            AddPartitionsToTxnTopic::default()
                .with_name(TopicName(s("nope")))
                .with_partitions(vec![0]),
        ]);
    let r = c.call(&req, 3).await;
    let codes: Vec<i16> = r
        .results_by_topic_v3_and_below
        .iter()
        .map(|t| t.results_by_partition[0].partition_error_code)
        .collect();
    assert_eq!(
        codes,
        vec![55, 3],
        "OPERATION_NOT_ATTEMPTED, UNKNOWN_TOPIC_OR_PARTITION"
    );
    // Wrong producer id, then a real transaction.
    assert_eq!(
        add(&mut c, "a", pid + 100, 0, "t", &[0]).await,
        vec![49],
        "INVALID_PRODUCER_ID_MAPPING"
    );
    assert_eq!(add(&mut c, "a", pid, 0, "t", &[0, 1]).await, vec![0, 0]);
    assert_eq!(produce_txn(&mut c, "a", "t", pid, 0, 0, 3).await, (0, 0));
    // KIP-890 verification (v4): t-1 is in the transaction, t5-0 is not.
    c.create_topic("t5", 1).await;
    let verify = |topic: &str, p: i32| {
        AddPartitionsToTxnRequest::default().with_transactions(vec![
            AddPartitionsToTxnTransaction::default()
                .with_transactional_id(tid("a"))
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(0)
                .with_verify_only(true)
                .with_topics(vec![AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(s(topic)))
                    .with_partitions(vec![p])]),
        ])
    };
    let code = |r: AddPartitionsToTxnResponse| {
        r.results_by_transaction[0].topic_results[0].results_by_partition[0].partition_error_code
    };
    assert_eq!(code(c.call(&verify("t", 1), 5).await), 0);
    assert_eq!(
        code(c.call(&verify("t5", 0), 5).await),
        48,
        "INVALID_TXN_STATE"
    );
    // And a transactional batch for it is refused, so it can never hang open.
    assert_eq!(produce_txn(&mut c, "a", "t5", pid, 0, 0, 1).await.0, 48);
    // A second instance of "a" aborts the open transaction and fences the first.
    let second = init(&mut c, "a", 60_000).await;
    assert_eq!(second.error_code, 0);
    assert_eq!(second.producer_id.0, pid);
    assert!(second.producer_epoch >= 1);
    assert_eq!(
        code(c.call(&verify("t", 1), 5).await),
        90,
        "the old epoch is fenced"
    );
    assert_eq!(
        end(&mut c, "a", pid, 0, true, 3).await,
        90,
        "PRODUCER_FENCED"
    );
    assert_eq!(
        end(&mut c, "a", pid, 0, true, 1).await,
        47,
        "INVALID_PRODUCER_EPOCH before v2"
    );
    let (fenced, _) = produce_txn(&mut c, "a", "t", pid, 0, 3, 1).await;
    assert_eq!(fenced, 47, "the partition fences the old epoch too");
    // The aborted transaction no longer holds the stable offset back.
    assert_eq!(latest(&mut c, "t", 1).await, latest(&mut c, "t", 0).await);
    b.stop().await;
}

#[tokio::test]
async fn an_open_transaction_times_out_and_its_producer_is_fenced() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.connect().await;
    c.create_topic("to", 1).await;
    let r = init(&mut c, "slow", 500).await;
    let pid = r.producer_id.0;
    assert_eq!(add(&mut c, "slow", pid, 0, "to", &[0]).await, vec![0]);
    assert_eq!(
        produce_txn(&mut c, "slow", "to", pid, 0, 0, 1).await,
        (0, 0)
    );
    assert_eq!(latest(&mut c, "to", 1).await, 0);
    // The coordinator aborts it after transaction.timeout.ms: wait for the stable
    // offset to pass the abort marker.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        if latest(&mut c, "to", 1).await == 2 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the transaction was not aborted"
        );
        tokio::task::yield_now().await;
    }
    assert_eq!(
        end(&mut c, "slow", pid, 0, true, 3).await,
        90,
        "the timed-out producer is fenced"
    );
    let (_, aborted, _) = fetch_committed(&mut c, "to", 0).await;
    assert_eq!(aborted, vec![(pid, 0)]);
    b.stop().await;
}

#[tokio::test]
async fn idle_transactional_ids_expire() {
    let b = TestBroker::start(&[("transactional.id.expiration.ms", "300")]).await;
    let mut c = b.connect().await;
    let first = init(&mut c, "idle", 60_000).await;
    assert_eq!(first.error_code, 0);
    let listed = |r: ListTransactionsResponse| {
        r.transaction_states
            .iter()
            .any(|t| t.transactional_id.as_str() == "idle")
    };
    let list = ListTransactionsRequest::default().with_duration_filter(-1);
    assert!(listed(c.call(&list, 1).await));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while listed(c.call(&list, 1).await) {
        assert!(std::time::Instant::now() < deadline, "the id never expired");
        tokio::task::yield_now().await;
    }
    // Forgotten: the next instance gets a new producer id.
    let again = init(&mut c, "idle", 60_000).await;
    assert_eq!(again.error_code, 0);
    assert_ne!(again.producer_id, first.producer_id);
    assert_eq!(again.producer_epoch, 0);
    b.stop().await;
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

/// 100,000 unknown transactional ids on EndTxn (and AddPartitionsToTxn) leave no task
/// behind: an id with no state is answered INVALID_PRODUCER_ID_MAPPING without one, and
/// a task whose InitProducerId failed (so the id has no state) unloads itself.
/// (Without this, each id kept a task forever: `loaded_count` ends at 100,000.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactional_ids_a_client_only_names_leave_no_tasks_behind() {
    const N: usize = 100_000;
    const CONNECTIONS: usize = 8;
    let b = TestBroker::start(&[("transaction.max.timeout.ms", "60000")]).await;
    let mut c = b.connect().await;
    c.create_topic("t", 1).await;
    let live = init(&mut c, "live", 60_000).await;
    assert_eq!(live.error_code, 0);
    let rss_before = rss_kib();
    let started = std::time::Instant::now();
    let mut workers = Vec::new();
    for k in 0..CONNECTIONS {
        let mut c = b.connect().await;
        workers.push(tokio::spawn(async move {
            for i in (k..N).step_by(CONNECTIONS) {
                let id = format!("unknown-{i}");
                assert_eq!(end(&mut c, &id, 1000, 0, true, 3).await, 49);
                if i % 100 == 0 {
                    assert_eq!(add(&mut c, &id, 1000, 0, "t", &[0]).await, vec![49]);
                    // A failed init: a task is made for the id, which has no state.
                    assert_eq!(init(&mut c, &id, 60_001).await.error_code, 50);
                }
            }
        }));
    }
    for w in workers {
        w.await.unwrap();
    }
    let elapsed = started.elapsed();
    let txns = &b.broker.txns;
    wait_for("stateless transactional-id tasks to unload", || {
        txns.loaded_count() <= 1
    })
    .await;
    let rss_after = rss_kib();
    eprintln!(
        "{N} unknown transactional ids in {elapsed:?}: RSS {rss_before} KiB before, \
         {rss_after} KiB after; {} transactional-id tasks",
        txns.loaded_count()
    );
    // The id with state is untouched.
    let again = init(&mut c, "live", 60_000).await;
    assert_eq!((again.error_code, again.producer_id), (0, live.producer_id));
    b.stop().await;
}

/// A transactional id must fit `TransactionLogKey`'s int16-length string: a longer one
/// is INVALID_REQUEST everywhere (Kafka's answer to the other id it cannot take, the
/// empty one), never truncated into another id's key. The longest allowed id works.
#[tokio::test]
async fn a_transactional_id_too_long_for_the_log_key_is_refused() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.connect().await;
    c.create_topic("t", 1).await;
    let longest = "x".repeat(i16::MAX as usize);
    let too_long = format!("{longest}y");
    let ok = init(&mut c, &longest, 60_000).await;
    assert_eq!(ok.error_code, 0);
    // InitProducerId v4 is flexible (compact strings), so the id reaches the broker.
    assert_eq!(init(&mut c, &too_long, 60_000).await.error_code, 42);
    assert_eq!(
        end(&mut c, &too_long, ok.producer_id.0, 0, true, 3).await,
        42
    );
    let found = c
        .call(
            &FindCoordinatorRequest::default()
                .with_key(s(&too_long))
                .with_key_type(1),
            3,
        )
        .await;
    assert_eq!(found.error_code, 42);
    // The longest id was not disturbed by its longer twin.
    let again = init(&mut c, &longest, 60_000).await;
    assert_eq!((again.error_code, again.producer_id), (0, ok.producer_id));
    assert_eq!(again.producer_epoch, ok.producer_epoch + 1);
    b.stop().await;
}

/// EndTxn, AddPartitionsToTxn and AddOffsetsToTxn without a transactional id are
/// INVALID_REQUEST, as Kafka's transaction coordinator answers (not "unknown id").
#[tokio::test]
async fn an_empty_transactional_id_is_an_invalid_request() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.connect().await;
    c.create_topic("empty-id", 1).await;
    assert_eq!(end(&mut c, "", 1, 0, true, 3).await, 42);
    assert_eq!(add(&mut c, "", 1, 0, "empty-id", &[0]).await, vec![42]);
    let offsets = AddOffsetsToTxnRequest::default()
        .with_transactional_id(tid(""))
        .with_producer_id(ProducerId(1))
        .with_producer_epoch(0)
        .with_group_id(GroupId(s("g")));
    assert_eq!(c.call(&offsets, 3).await.error_code, 42);
    b.stop().await;
}
