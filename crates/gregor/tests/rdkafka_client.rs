//! The Rust `rdkafka` crate (librdkafka) against a real `gregor broker` process.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::time::{Duration, Instant};

use common::BrokerProcess;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

fn create_topic(bootstrap: &str, name: &str, partitions: i32) {
    create(
        bootstrap,
        &NewTopic::new(name, partitions, TopicReplication::Fixed(1)),
    );
}

fn create(bootstrap: &str, topic: &NewTopic<'_>) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let res = rt
        .block_on(admin.create_topics([topic], &AdminOptions::new()))
        .unwrap();
    assert!(res.iter().all(|r| r.is_ok()), "{res:?}");
}

fn produce(bootstrap: &str, topic: &str, n: usize, partitions: i32) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()
        .unwrap();
    for i in 0..n {
        let key = format!("key-{i}");
        let value = format!("value-{i}");
        let headers = OwnedHeaders::new().insert(Header {
            key: "seq",
            value: Some(&i.to_string()),
        });
        let mut rec = BaseRecord::to(topic)
            .key(&key)
            .payload(&value)
            .headers(headers)
            .partition((i % partitions as usize) as i32);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    rec = r;
                    producer.poll(Duration::from_millis(5));
                }
            }
        }
    }
    producer.flush(Duration::from_secs(30)).unwrap();
}

fn consume_all(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    n: usize,
) -> Vec<(i32, i64, String, String, String)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "rdkafka-test")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut out = Vec::new();
    while out.len() < n {
        assert!(
            Instant::now() < deadline,
            "only {} of {n} records consumed",
            out.len()
        );
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m.unwrap();
            let text =
                |b: Option<&[u8]>| String::from_utf8(b.unwrap_or_default().to_vec()).unwrap();
            let header = m
                .headers()
                .map(|h| text(h.get(0).value))
                .unwrap_or_default();
            out.push((
                m.partition(),
                m.offset(),
                text(m.key()),
                text(m.payload()),
                header,
            ));
        }
    }
    out
}

#[test]
fn produce_consume_round_trip_and_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let broker = BrokerProcess::start(&dir, 0);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "rd", 3);
    produce(&bootstrap, "rd", 9000, 3);
    let got = consume_all(&bootstrap, "rd", 3, 9000);
    for (p, off, key, value, seq) in &got {
        let i: usize = seq.parse().unwrap();
        assert_eq!(
            (key.as_str(), value.as_str()),
            (format!("key-{i}").as_str(), format!("value-{i}").as_str())
        );
        assert_eq!(i % 3, *p as usize);
        assert_eq!(
            *off as usize,
            i / 3,
            "offsets follow produce order within a partition"
        );
    }

    let port = broker.port;
    assert!(broker.terminate().success(), "clean exit on SIGTERM");
    assert!(dir.join(".kafka_cleanshutdown").exists());
    let again = BrokerProcess::start(&dir, port);
    let after = consume_all(&again.bootstrap(), "rd", 3, 9000);
    assert_eq!(after.len(), 9000);
}

/// Values a read_committed (or read_uncommitted) consumer sees in partition 0, read
/// until the partition's end.
fn values_at(bootstrap: &str, topic: &str, isolation: &str) -> Vec<String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("iso-{isolation}"))
        .set("isolation.level", isolation)
        .set("enable.partition.eof", "true")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    consumer.assign(&tpl).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut out = Vec::new();
    loop {
        assert!(Instant::now() < deadline, "no end of partition");
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                out.push(String::from_utf8(m.payload().unwrap_or_default().to_vec()).unwrap())
            }
            Some(Err(rdkafka::error::KafkaError::PartitionEOF(_))) => return out,
            Some(Err(e)) => panic!("{e}"),
            None => {}
        }
    }
}

#[test]
fn rdkafka_transactions_commit_and_abort() {
    let tmp = tempfile::tempdir().unwrap();
    let broker = BrokerProcess::start(&tmp.path().join("data"), 0);
    let bootstrap = broker.bootstrap();
    create_topic(&bootstrap, "rtx", 1);
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("transactional.id", "rust-txn")
        .create()
        .unwrap();
    let t = Duration::from_secs(30);
    producer.init_transactions(t).unwrap();
    for (round, commit) in [(0, true), (1, false), (2, true)] {
        producer.begin_transaction().unwrap();
        for i in 0..3 {
            let v = format!("{round}-{i}");
            producer
                .send(BaseRecord::<(), _>::to("rtx").payload(&v).partition(0))
                .unwrap();
        }
        producer.flush(t).unwrap();
        if commit {
            producer.commit_transaction(t).unwrap();
        } else {
            producer.abort_transaction(t).unwrap();
        }
    }
    let committed: Vec<String> = [0, 2]
        .iter()
        .flat_map(|r| (0..3).map(move |i| format!("{r}-{i}")))
        .collect();
    assert_eq!(values_at(&bootstrap, "rtx", "read_committed"), committed);
    assert_eq!(values_at(&bootstrap, "rtx", "read_uncommitted").len(), 9);
}

/// Free ports from the OS (bound, then released for the nodes to take).
fn free_ports(n: usize) -> Vec<u16> {
    let socks: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    socks
        .iter()
        .map(|s| s.local_addr().unwrap().port())
        .collect()
}

/// One send's outcome: its (partition, offset), or its error; `None` before the answer.
type Outcome = Option<Result<(i32, i64), String>>;

/// Records the outcome of every send.
struct Outcomes(std::sync::Mutex<Vec<Outcome>>);

impl rdkafka::ClientContext for Outcomes {}

impl rdkafka::producer::ProducerContext for Outcomes {
    type DeliveryOpaque = Box<usize>;
    fn delivery(&self, r: &rdkafka::message::DeliveryResult<'_>, seq: Box<usize>) {
        let outcome = match r {
            Ok(m) => Ok((m.partition(), m.offset())),
            Err((e, _)) => Err(e.to_string()),
        };
        self.0.lock().unwrap()[*seq] = Some(outcome);
    }
}

/// The leader of `topic`'s partition `p`, from Metadata.
fn leader_of(producer: &BaseProducer<Outcomes>, topic: &str, p: i32) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let md = producer
            .client()
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .unwrap();
        let leader = md.topics()[0]
            .partitions()
            .iter()
            .find(|x| x.id() == p)
            .map_or(-1, |x| x.leader());
        if leader > 0 {
            return leader;
        }
        assert!(Instant::now() < deadline, "{topic}-{p} has no leader");
        producer.poll(Duration::from_millis(100));
    }
}

/// The Rust `rdkafka` crate on a 3-node cluster (combined broker and controller
/// processes), RF 3, min.insync.replicas 2: an idempotent acks=all producer goes on
/// through a kill -9 of partition 0's leader. Every record is acknowledged once, at the
/// offset the log holds it at: none lost, none duplicated, nothing unexpected.
#[test]
fn rdkafka_idempotent_producer_through_a_leader_kill_on_three_nodes() {
    const N: usize = 900;
    let tmp = tempfile::tempdir().unwrap();
    let ports = free_ports(6);
    let voters = (0..3)
        .map(|i| format!("{}@127.0.0.1:{}", i + 1, ports[3 + i]))
        .collect::<Vec<_>>()
        .join(",");
    let args = |i: usize| -> Vec<String> {
        [
            ("node.id", (i + 1).to_string()),
            ("process.roles", "broker,controller".into()),
            (
                "listeners",
                format!(
                    "PLAINTEXT://127.0.0.1:{},CONTROLLER://127.0.0.1:{}",
                    ports[i],
                    ports[3 + i]
                ),
            ),
            ("controller.quorum.voters", voters.clone()),
            ("cluster.id", "rdkafka-failover-test1".into()),
            ("broker.session.timeout.ms", "3000".into()),
            ("broker.heartbeat.interval.ms", "500".into()),
            ("replica.lag.time.max.ms", "3000".into()),
        ]
        .into_iter()
        .flat_map(|(k, v)| ["--override".to_string(), format!("{k}={v}")])
        .collect()
    };
    let dir = |i: usize| tmp.path().join(format!("node-{}", i + 1));
    let starting: Vec<_> = (0..3)
        .map(|i| BrokerProcess::spawn(&dir(i), &args(i)))
        .collect();
    let mut nodes: Vec<BrokerProcess> = starting.into_iter().map(|s| s.ready()).collect();
    let bootstrap = nodes
        .iter()
        .map(BrokerProcess::bootstrap)
        .collect::<Vec<_>>()
        .join(",");

    create(
        &bootstrap,
        &NewTopic::new("rdf", 3, TopicReplication::Fixed(3)).set("min.insync.replicas", "2"),
    );

    let producer: BaseProducer<Outcomes> = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("request.timeout.ms", "5000")
        .set("message.timeout.ms", "60000")
        .set("topic.metadata.refresh.interval.ms", "1000")
        .create_with_context(Outcomes(std::sync::Mutex::new(vec![None; N])))
        .unwrap();
    let send = |seq: usize| {
        let value = format!("rd-{seq}");
        let mut rec = BaseRecord::with_opaque_to("rdf", Box::new(seq))
            .payload(&value)
            .key("k")
            .partition((seq % 3) as i32);
        loop {
            match producer.send(rec) {
                Ok(()) => break,
                Err((_, r)) => {
                    rec = r;
                    producer.poll(Duration::from_millis(5));
                }
            }
        }
    };
    let leader = leader_of(&producer, "rdf", 0);
    for seq in 0..N / 3 {
        send(seq);
    }
    producer.flush(Duration::from_secs(30)).unwrap();
    let killed = usize::try_from(leader - 1).unwrap();
    nodes[killed].kill9();
    for seq in N / 3..N {
        send(seq);
        producer.poll(Duration::ZERO);
    }
    producer.flush(Duration::from_secs(90)).unwrap();
    nodes[killed] = BrokerProcess::spawn(&dir(killed), &args(killed)).ready();

    let outcomes = producer.context().0.lock().unwrap().clone();
    let failed: Vec<_> = outcomes
        .iter()
        .enumerate()
        .filter(|(_, o)| !matches!(o, Some(Ok(_))))
        .collect();
    assert!(failed.is_empty(), "not acknowledged: {failed:?}");
    // The log, read back: every acknowledged record once, where its ack said.
    let log = consume_all(&bootstrap, "rdf", 3, N);
    let mut at = std::collections::BTreeMap::new();
    for (p, off, _, value, _) in &log {
        let seq: usize = value
            .strip_prefix("rd-")
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("unexpected record {value:?}"));
        assert!(at.insert(seq, (*p, *off)).is_none(), "rd-{seq} duplicated");
    }
    for (seq, o) in outcomes.iter().enumerate() {
        let Some(Ok(acked)) = o else { continue };
        assert_eq!(at.get(&seq), Some(acked), "rd-{seq} lost or moved");
    }
    // Nothing beyond the N records (a duplicate past the N read would show here).
    let mut total = 0;
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .create()
        .unwrap();
    for p in 0..3 {
        let (low, high) = consumer
            .fetch_watermarks("rdf", p, Duration::from_secs(10))
            .unwrap();
        total += high - low;
    }
    assert_eq!(total, N as i64);
}
