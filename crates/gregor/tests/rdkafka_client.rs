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
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let res = rt
        .block_on(admin.create_topics(
            [&NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        ))
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
