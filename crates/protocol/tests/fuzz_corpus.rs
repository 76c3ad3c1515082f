//! The `request_decode` fuzz target's seed corpus (fuzz/corpus/request_decode) and a
//! stable harness that mutates it through the target's body
//! (`gregor_protocol::request::fuzz_one`), for machines without cargo-fuzz.
//!
//! - `seed_corpus_is_current`: the corpus files are exactly the realistic requests built
//!   here (produce with batches in every codec, idempotent and transactional; fetch,
//!   metadata, group and transaction requests). `GREGOR_WRITE_CORPUS=1` rewrites them.
//! - `mutated_corpus_never_panics`: proptest mutations of corpus entries (byte flips,
//!   inserts, deletes, splices of two entries, record batches with their CRC fixed
//!   up). A fixed number of cases by default; `GREGOR_FUZZ_SECS=n` runs until this
//!   thread has used n seconds of CPU (wall time where Linux's per-thread schedstat is
//!   missing) and prints the executions, which is what scripts/fuzz.sh does.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// CPU time this thread has used (Linux schedstat), if known.
fn thread_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns: u64 = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

use bytes::{Bytes, BytesMut};
use gregor_protocol::batch::{self, NewRecord, Producer, ATTR_TRANSACTIONAL};
use gregor_protocol::compression::Codec;
use gregor_protocol::kp::messages::*;
use gregor_protocol::kp::protocol::{Encodable, Request, StrBytes};
use gregor_protocol::request::fuzz_one;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// A request frame as the broker reads it (no length prefix).
fn frame<R: Request + Encodable>(req: &R, version: i16) -> Vec<u8> {
    let key = ApiKey::try_from(R::KEY).unwrap();
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(s("seed")));
    let mut buf = BytesMut::new();
    header
        .encode(&mut buf, key.request_header_version(version))
        .unwrap();
    req.encode(&mut buf, version).unwrap();
    buf.to_vec()
}

fn records(codec: Codec, producer: Producer) -> Vec<u8> {
    let vals: Vec<Vec<u8>> = (0..6).map(|i| format!("value-{i}").into_bytes()).collect();
    let headers: &[(&[u8], Option<&[u8]>)] = &[(b"h", Some(b"v")), (b"h", None)];
    let recs: Vec<NewRecord<'_>> = vals
        .iter()
        .enumerate()
        .map(|(i, v)| NewRecord {
            key: if i == 0 { None } else { Some(b"k") },
            value: Some(v),
            timestamp: 1_700_000_000_000 + i as i64,
            headers: if i % 2 == 0 { headers } else { &[] },
        })
        .collect();
    batch::build_as(0, codec, &recs, producer).unwrap()
}

fn produce(records: Vec<u8>, txn: Option<&str>) -> ProduceRequest {
    ProduceRequest::default()
        .with_acks(-1)
        .with_timeout_ms(5000)
        .with_transactional_id(txn.map(|t| TransactionalId(s(t))))
        .with_topic_data(vec![produce_request::TopicProduceData::default()
            .with_name(TopicName(s("t")))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(Bytes::from(records))),
            ])])
}

const MEMBER_METADATA: &[u8] = b"\x00\x01\x00\x00\x00\x01\x00\x01t";

/// The seed corpus: (file name, frame).
fn seeds() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let idem = Producer {
        id: 1000,
        epoch: 0,
        base_sequence: 0,
        attributes: 0,
    };
    for (name, codec) in [
        ("none", Codec::None),
        ("gzip", Codec::Gzip),
        ("snappy", Codec::Snappy),
        ("lz4", Codec::Lz4),
        ("zstd", Codec::Zstd),
    ] {
        out.push((
            format!("produce-v9-{name}"),
            frame(&produce(records(codec, Producer::NONE), None), 9),
        ));
    }
    out.push((
        "produce-v3-idempotent-gzip".into(),
        frame(&produce(records(Codec::Gzip, idem), None), 3),
    ));
    let txn = Producer {
        attributes: ATTR_TRANSACTIONAL,
        ..idem
    };
    out.push((
        "produce-v11-transactional-zstd".into(),
        frame(&produce(records(Codec::Zstd, txn), Some("tx")), 11),
    ));
    out.push((
        "fetch-v12".into(),
        frame(
            &FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(500)
                .with_min_bytes(1)
                .with_max_bytes(1 << 20)
                .with_isolation_level(1)
                .with_topics(vec![fetch_request::FetchTopic::default()
                    .with_topic(TopicName(s("t")))
                    .with_partitions(vec![fetch_request::FetchPartition::default()
                        .with_partition(0)
                        .with_fetch_offset(5)
                        .with_partition_max_bytes(1 << 20)])]),
            12,
        ),
    ));
    out.push((
        "metadata-v12".into(),
        frame(
            &MetadataRequest::default()
                .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
                )
                .with_name(Some(TopicName(s("t"))))])),
            12,
        ),
    ));
    out.push((
        "api-versions-v3".into(),
        frame(
            &ApiVersionsRequest::default()
                .with_client_software_name(s("librdkafka"))
                .with_client_software_version(s("2.3.0")),
            3,
        ),
    ));
    out.push((
        "join-group-v9".into(),
        frame(
            &JoinGroupRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_member_id(s(""))
                .with_session_timeout_ms(45_000)
                .with_rebalance_timeout_ms(300_000)
                .with_protocol_type(s("consumer"))
                .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
                )
                .with_name(s("range"))
                .with_metadata(Bytes::from_static(MEMBER_METADATA))]),
            9,
        ),
    ));
    out.push((
        "sync-group-v5".into(),
        frame(
            &SyncGroupRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_member_id(s("m-1"))
                .with_generation_id(1)
                .with_protocol_type(Some(s("consumer")))
                .with_protocol_name(Some(s("range")))
                .with_assignments(vec![
                    sync_group_request::SyncGroupRequestAssignment::default()
                        .with_member_id(s("m-1"))
                        .with_assignment(Bytes::from_static(MEMBER_METADATA)),
                ]),
            5,
        ),
    ));
    out.push((
        "offset-commit-v8".into(),
        frame(
            &OffsetCommitRequest::default()
                .with_group_id(GroupId(s("g")))
                .with_generation_id_or_member_epoch(1)
                .with_member_id(s("m-1"))
                .with_topics(vec![
                    offset_commit_request::OffsetCommitRequestTopic::default()
                        .with_name(TopicName(s("t")))
                        .with_partitions(vec![
                            offset_commit_request::OffsetCommitRequestPartition::default()
                                .with_partition_index(0)
                                .with_committed_offset(42)
                                .with_committed_metadata(Some(s("md"))),
                        ]),
                ]),
            8,
        ),
    ));
    out.push((
        "init-producer-id-v4".into(),
        frame(
            &InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(s("tx"))))
                .with_transaction_timeout_ms(60_000),
            4,
        ),
    ));
    out.push((
        "add-partitions-to-txn-v3".into(),
        frame(
            &AddPartitionsToTxnRequest::default()
                .with_v3_and_below_transactional_id(TransactionalId(s("tx")))
                .with_v3_and_below_producer_id(ProducerId(1000))
                .with_v3_and_below_topics(vec![
                    add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                        .with_name(TopicName(s("t")))
                        .with_partitions(vec![0, 1]),
                ]),
            3,
        ),
    ));
    out.push((
        "txn-offset-commit-v3".into(),
        frame(
            &TxnOffsetCommitRequest::default()
                .with_transactional_id(TransactionalId(s("tx")))
                .with_group_id(GroupId(s("g")))
                .with_producer_id(ProducerId(1000))
                .with_generation_id(1)
                .with_member_id(s("m-1"))
                .with_topics(vec![
                    txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                        .with_name(TopicName(s("t")))
                        .with_partitions(vec![
                            txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                                .with_partition_index(0)
                                .with_committed_offset(42),
                        ]),
                ]),
            3,
        ),
    ));
    out.push((
        "end-txn-v3".into(),
        frame(
            &EndTxnRequest::default()
                .with_transactional_id(TransactionalId(s("tx")))
                .with_producer_id(ProducerId(1000))
                .with_committed(true),
            3,
        ),
    ));
    out
}

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/request_decode")
}

#[test]
fn seed_corpus_is_current() {
    let dir = corpus_dir();
    let seeds = seeds();
    if std::env::var_os("GREGOR_WRITE_CORPUS").is_some() {
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in &seeds {
            std::fs::write(dir.join(name), bytes).unwrap();
        }
    }
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut names: Vec<String> = seeds.iter().map(|(n, _)| n.clone()).collect();
    names.sort();
    assert_eq!(on_disk, names, "GREGOR_WRITE_CORPUS=1 rewrites the corpus");
    for (name, bytes) in &seeds {
        assert_eq!(&std::fs::read(dir.join(name)).unwrap(), bytes, "{name}");
        // Each seed is a request the decoder takes whole, so mutations start from
        // something that reaches the deep paths.
        let decoded = gregor_protocol::request::decode_request(Bytes::from(bytes.clone()));
        assert!(decoded.is_ok(), "{name}: {decoded:?}");
    }
}

/// Where the record batch sits inside a produce frame (to fix up its CRC), if any.
fn batch_span(frame: &[u8]) -> Option<(usize, usize)> {
    (0..frame.len().saturating_sub(61)).find_map(|at| {
        let b = &frame[at..];
        let h = batch::BatchHeader::parse(b).ok()?;
        (h.total_size() <= b.len() && h.base_offset == 0 && h.record_count == 6)
            .then_some((at, h.total_size()))
    })
}

#[derive(Debug, Clone)]
enum Edit {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Splice(usize, usize),
    InBatch(usize, u8),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        1 => (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Edit::Flip(a, b)),
        1 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(a, v)| Edit::Insert(a, v)),
        1 => (any::<usize>(), 1usize..16).prop_map(|(a, n)| Edit::Delete(a, n)),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::Splice(a, b)),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Edit::InBatch(a, b)),
    ]
}

fn apply(corpus: &[Vec<u8>], pick: usize, edits: &[Edit]) -> Vec<u8> {
    let mut m = corpus[pick % corpus.len()].clone();
    let span = batch_span(&m);
    let mut batch_touched = false;
    for e in edits {
        match e {
            Edit::Flip(at, b) if !m.is_empty() => {
                let i = at % m.len();
                m[i] = *b;
            }
            Edit::Insert(at, bytes) => {
                let i = at % (m.len() + 1);
                m.splice(i..i, bytes.iter().copied());
            }
            Edit::Delete(at, n) if !m.is_empty() => {
                let i = at % m.len();
                let end = (i + n).min(m.len());
                m.drain(i..end);
            }
            Edit::Splice(other, at) => {
                let o = &corpus[other % corpus.len()];
                let i = at % (m.len() + 1);
                m.truncate(i);
                m.extend_from_slice(&o[(at % (o.len() + 1))..]);
            }
            Edit::InBatch(at, b) => {
                if let Some((start, len)) = span {
                    if start + len <= m.len() && len > 21 {
                        m[start + 21 + at % (len - 21)] = *b;
                        batch_touched = true;
                    }
                }
            }
            _ => {}
        }
    }
    if batch_touched {
        if let Some((start, len)) = span {
            if start + len <= m.len() {
                let crc = batch::compute_crc(&m[start..start + len]);
                m[start + 17..start + 21].copy_from_slice(&crc.to_be_bytes());
            }
        }
    }
    m
}

const CASES_PER_ROUND: u32 = 2_000;

#[test]
fn mutated_corpus_never_panics() {
    let corpus: Vec<Vec<u8>> = seeds().into_iter().map(|(_, b)| b).collect();
    for c in &corpus {
        fuzz_one(c);
    }
    let secs: Option<u64> = std::env::var("GREGOR_FUZZ_SECS")
        .ok()
        .and_then(|v| v.parse().ok());
    let strategy = (any::<usize>(), proptest::collection::vec(edit(), 1..6));
    let budget = secs.map(Duration::from_secs);
    let (cpu0, wall0) = (thread_cpu(), Instant::now());
    let spent = || match (cpu0, thread_cpu()) {
        (Some(a), Some(b)) => b.saturating_sub(a),
        _ => wall0.elapsed(),
    };
    let mut execs: u64 = 0;
    let mut round: u64 = 0;
    loop {
        // A fresh deterministic seed per round, so a failure names its round.
        let mut seed = [0u8; 32];
        seed[..8].copy_from_slice(&round.to_le_bytes());
        let mut runner = TestRunner::new_with_rng(
            Config {
                cases: CASES_PER_ROUND,
                failure_persistence: None,
                ..Config::default()
            },
            TestRng::from_seed(RngAlgorithm::ChaCha, &seed),
        );
        let result = runner.run(&strategy, |(pick, edits)| {
            let m = apply(&corpus, pick, &edits);
            std::panic::catch_unwind(|| fuzz_one(&m))
                .map_err(|_| TestCaseError::fail(format!("panicked on {m:?}")))?;
            Ok(())
        });
        if let Err(e) = result {
            panic!("round {round}: {e}");
        }
        execs += u64::from(CASES_PER_ROUND);
        round += 1;
        let more = match budget {
            Some(b) => spent() < b,
            None => round < 5,
        };
        if !more {
            break;
        }
    }
    eprintln!(
        "fuzz harness: {execs} executions over {round} rounds in {:.1} CPU-s ({:.1} s wall), no panic",
        spent().as_secs_f64(),
        wall0.elapsed().as_secs_f64()
    );
}
