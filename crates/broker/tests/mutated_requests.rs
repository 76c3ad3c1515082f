//! Every advertised API at every advertised version, fed well-formed requests with a few
//! bytes changed: odd lengths, negative counts, huge timeouts and ids reach the handlers.
//! Then realistic requests (produce with real record batches in every codec, idempotent
//! and transactional; a group's join/sync/commit; a transaction's requests) mutated the
//! same way, with record batches' CRCs fixed up so the mutations reach the codecs and
//! the record walker. No request may panic the broker, and another client must be
//! served afterwards. The mutations come from a fixed-seed xorshift generator, so a
//! failure repeats exactly.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

#[path = "it/common/mod.rs"]
mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use common::TestBroker;
use gregor_broker::handlers::SUPPORTED;
use gregor_protocol::batch::{self, NewRecord, Producer, ATTR_TRANSACTIONAL};
use gregor_protocol::compression::Codec;
use gregor_protocol::kp::messages::*;
use gregor_protocol::kp::protocol::{Encodable, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Both tests count panics through the process-wide panic hook: one at a time.
static PANIC_HOOK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn encoded<R: Encodable + Default>(v: i16) -> Option<Vec<u8>> {
    let mut b = BytesMut::new();
    R::default().encode(&mut b, v).ok()?;
    Some(b.to_vec())
}

/// A default (valid) body for `key` at version `v`.
fn default_body(key: ApiKey, v: i16) -> Option<Vec<u8>> {
    match key {
        ApiKey::Produce => encoded::<ProduceRequest>(v),
        ApiKey::Fetch => encoded::<FetchRequest>(v),
        ApiKey::ListOffsets => encoded::<ListOffsetsRequest>(v),
        ApiKey::Metadata => encoded::<MetadataRequest>(v),
        ApiKey::ApiVersions => encoded::<ApiVersionsRequest>(v),
        ApiKey::CreateTopics => encoded::<CreateTopicsRequest>(v),
        ApiKey::DeleteTopics => encoded::<DeleteTopicsRequest>(v),
        ApiKey::FindCoordinator => encoded::<FindCoordinatorRequest>(v),
        ApiKey::OffsetCommit => encoded::<OffsetCommitRequest>(v),
        ApiKey::OffsetFetch => encoded::<OffsetFetchRequest>(v),
        ApiKey::JoinGroup => encoded::<JoinGroupRequest>(v),
        ApiKey::Heartbeat => encoded::<HeartbeatRequest>(v),
        ApiKey::LeaveGroup => encoded::<LeaveGroupRequest>(v),
        ApiKey::SyncGroup => encoded::<SyncGroupRequest>(v),
        ApiKey::DescribeGroups => encoded::<DescribeGroupsRequest>(v),
        ApiKey::ListGroups => encoded::<ListGroupsRequest>(v),
        ApiKey::DeleteGroups => encoded::<DeleteGroupsRequest>(v),
        ApiKey::OffsetDelete => encoded::<OffsetDeleteRequest>(v),
        ApiKey::ConsumerGroupHeartbeat => encoded::<ConsumerGroupHeartbeatRequest>(v),
        ApiKey::ConsumerGroupDescribe => encoded::<ConsumerGroupDescribeRequest>(v),
        ApiKey::DescribeConfigs => encoded::<DescribeConfigsRequest>(v),
        ApiKey::AlterConfigs => encoded::<AlterConfigsRequest>(v),
        ApiKey::IncrementalAlterConfigs => encoded::<IncrementalAlterConfigsRequest>(v),
        ApiKey::CreatePartitions => encoded::<CreatePartitionsRequest>(v),
        ApiKey::DescribeCluster => encoded::<DescribeClusterRequest>(v),
        ApiKey::DescribeLogDirs => encoded::<DescribeLogDirsRequest>(v),
        ApiKey::DeleteRecords => encoded::<DeleteRecordsRequest>(v),
        ApiKey::InitProducerId => encoded::<InitProducerIdRequest>(v),
        ApiKey::AddPartitionsToTxn => encoded::<AddPartitionsToTxnRequest>(v),
        ApiKey::AddOffsetsToTxn => encoded::<AddOffsetsToTxnRequest>(v),
        ApiKey::EndTxn => encoded::<EndTxnRequest>(v),
        ApiKey::TxnOffsetCommit => encoded::<TxnOffsetCommitRequest>(v),
        ApiKey::DescribeTransactions => encoded::<DescribeTransactionsRequest>(v),
        ApiKey::ListTransactions => encoded::<ListTransactionsRequest>(v),
        ApiKey::DescribeProducers => encoded::<DescribeProducersRequest>(v),
        ApiKey::UpdateFeatures => encoded::<UpdateFeaturesRequest>(v),
        ApiKey::DescribeQuorum => encoded::<DescribeQuorumRequest>(v),
        ApiKey::GetTelemetrySubscriptions => encoded::<GetTelemetrySubscriptionsRequest>(v),
        ApiKey::PushTelemetry => encoded::<PushTelemetryRequest>(v),
        ApiKey::ListConfigResources => encoded::<ListConfigResourcesRequest>(v),
        ApiKey::DescribeTopicPartitions => encoded::<DescribeTopicPartitionsRequest>(v),
        ApiKey::OffsetForLeaderEpoch => encoded::<OffsetForLeaderEpochRequest>(v),
        ApiKey::WriteTxnMarkers => encoded::<WriteTxnMarkersRequest>(v),
        ApiKey::ElectLeaders => encoded::<ElectLeadersRequest>(v),
        ApiKey::AlterPartitionReassignments => encoded::<AlterPartitionReassignmentsRequest>(v),
        ApiKey::ListPartitionReassignments => encoded::<ListPartitionReassignmentsRequest>(v),
        ApiKey::UnregisterBroker => encoded::<UnregisterBrokerRequest>(v),
        ApiKey::AddRaftVoter => encoded::<AddRaftVoterRequest>(v),
        ApiKey::RemoveRaftVoter => encoded::<RemoveRaftVoterRequest>(v),
        ApiKey::UpdateRaftVoter => encoded::<UpdateRaftVoterRequest>(v),
        ApiKey::SaslHandshake => encoded::<SaslHandshakeRequest>(v),
        ApiKey::SaslAuthenticate => encoded::<SaslAuthenticateRequest>(v),
        ApiKey::DescribeUserScramCredentials => encoded::<DescribeUserScramCredentialsRequest>(v),
        ApiKey::AlterUserScramCredentials => encoded::<AlterUserScramCredentialsRequest>(v),
        ApiKey::CreateAcls => encoded::<CreateAclsRequest>(v),
        ApiKey::DescribeAcls => encoded::<DescribeAclsRequest>(v),
        ApiKey::DeleteAcls => encoded::<DeleteAclsRequest>(v),
        ApiKey::DescribeClientQuotas => encoded::<DescribeClientQuotasRequest>(v),
        ApiKey::AlterClientQuotas => encoded::<AlterClientQuotasRequest>(v),
        ApiKey::ShareGroupHeartbeat => encoded::<ShareGroupHeartbeatRequest>(v),
        ApiKey::ShareGroupDescribe => encoded::<ShareGroupDescribeRequest>(v),
        ApiKey::ShareFetch => encoded::<ShareFetchRequest>(v),
        ApiKey::ShareAcknowledge => encoded::<ShareAcknowledgeRequest>(v),
        ApiKey::DescribeShareGroupOffsets => encoded::<DescribeShareGroupOffsetsRequest>(v),
        ApiKey::AlterShareGroupOffsets => encoded::<AlterShareGroupOffsetsRequest>(v),
        ApiKey::DeleteShareGroupOffsets => encoded::<DeleteShareGroupOffsetsRequest>(v),
        ApiKey::InitializeShareGroupState => encoded::<InitializeShareGroupStateRequest>(v),
        ApiKey::ReadShareGroupState => encoded::<ReadShareGroupStateRequest>(v),
        ApiKey::WriteShareGroupState => encoded::<WriteShareGroupStateRequest>(v),
        ApiKey::DeleteShareGroupState => encoded::<DeleteShareGroupStateRequest>(v),
        ApiKey::ReadShareGroupStateSummary => encoded::<ReadShareGroupStateSummaryRequest>(v),
        other => panic!("{other:?} is advertised but this test does not know it: add it"),
    }
}

fn frame(key: ApiKey, v: i16, correlation: i32, body: &[u8]) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(v)
        .with_correlation_id(correlation)
        .with_client_id(Some(StrBytes::from_static_str("mutant")));
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    header
        .encode(&mut buf, key.request_header_version(v))
        .unwrap();
    buf.extend_from_slice(body);
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    buf.to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_requests_never_panic_the_broker() {
    let _hook = PANIC_HOOK.lock().await;
    let panics = Arc::new(AtomicUsize::new(0));
    let seen = panics.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        seen.fetch_add(1, Ordering::SeqCst);
        eprintln!("panic: {info}");
    }));
    let b = TestBroker::start(&[("group.initial.rebalance.delay.ms", "0")]).await;
    // GREGOR_MUTATION_SEED explores other mutations; CI uses the fixed one.
    let seed = std::env::var("GREGOR_MUTATION_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x9E37_79B9_7F4A_7C15u64);
    let mut rng = XorShift(seed);
    let mut correlation = 0;
    for spec in SUPPORTED {
        let min = if spec.key == ApiKey::Produce {
            3
        } else {
            spec.min
        };
        for v in min..=spec.max {
            let Some(body) = default_body(spec.key, v) else {
                continue;
            };
            for _ in 0..12 {
                let mut m = body.clone();
                for _ in 0..1 + rng.below(3) {
                    if m.is_empty() {
                        break;
                    }
                    let at = rng.below(m.len());
                    m[at] = rng.next() as u8;
                }
                if rng.below(4) == 0 {
                    let keep = rng.below(m.len() + 1);
                    m.truncate(keep);
                }
                correlation += 1;
                let mut s = TcpStream::connect(b.addr).await.unwrap();
                s.write_all(&frame(spec.key, v, correlation, &m))
                    .await
                    .unwrap();
                // An answer, a close, or (a parked JoinGroup) nothing for a while: all fine.
                let mut buf = [0u8; 4096];
                let _ = tokio::time::timeout(Duration::from_millis(300), s.read(&mut buf)).await;
            }
        }
    }
    let mut c = b.connect().await;
    let resp = c.call(&ApiVersionsRequest::default(), 0).await;
    assert_eq!(
        resp.error_code, 0,
        "the broker still serves (seed {seed:#x})"
    );
    std::panic::set_hook(previous);
    assert_eq!(
        panics.load(Ordering::SeqCst),
        0,
        "a request panicked the broker (seed {seed:#x})"
    );
    b.stop().await;
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn body<R: Encodable>(req: &R, v: i16) -> Vec<u8> {
    let mut b = BytesMut::new();
    req.encode(&mut b, v).unwrap();
    b.to_vec()
}

fn records(codec: Codec, producer: Producer) -> Vec<u8> {
    let vals: Vec<Vec<u8>> = (0..20)
        .map(|i| format!("value-{i}-{}", "x".repeat(i * 7)).into_bytes())
        .collect();
    let headers: &[(&[u8], Option<&[u8]>)] = &[(b"h", Some(b"hv")), (b"h", None)];
    let recs: Vec<NewRecord<'_>> = vals
        .iter()
        .enumerate()
        .map(|(i, v)| NewRecord {
            key: if i % 3 == 0 { None } else { Some(b"key") },
            value: Some(v),
            timestamp: gregor_broker::util::now_ms() + i as i64,
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
            .with_name(TopicName(s("mut")))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(Bytes::from(records))),
            ])])
}

/// A realistic request: its API, version, encoded body, and where in the body a record
/// batch sits (so its CRC can be fixed up after a mutation).
struct Seed {
    key: ApiKey,
    v: i16,
    body: Vec<u8>,
    batch: Option<(usize, usize)>,
}

fn seed<R: Encodable>(key: ApiKey, v: i16, req: &R) -> Seed {
    Seed {
        key,
        v,
        body: body(req, v),
        batch: None,
    }
}

fn produce_seed(v: i16, records: Vec<u8>, txn: Option<&str>) -> Seed {
    let body = body(&produce(records.clone(), txn), v);
    let at = body
        .windows(records.len())
        .position(|w| w == records.as_slice())
        .unwrap();
    Seed {
        key: ApiKey::Produce,
        v,
        body,
        batch: Some((at, records.len())),
    }
}

fn seeds(pid: i64) -> Vec<Seed> {
    let mut out = Vec::new();
    let idempotent = Producer {
        id: pid,
        epoch: 0,
        base_sequence: 0,
        attributes: 0,
    };
    let transactional = Producer {
        attributes: ATTR_TRANSACTIONAL,
        ..idempotent
    };
    for codec in [
        Codec::None,
        Codec::Gzip,
        Codec::Snappy,
        Codec::Lz4,
        Codec::Zstd,
    ] {
        out.push(produce_seed(9, records(codec, Producer::NONE), None));
        out.push(produce_seed(3, records(codec, idempotent), None));
    }
    out.push(produce_seed(
        11,
        records(Codec::Lz4, transactional),
        Some("mut-txn"),
    ));
    let join = JoinGroupRequest::default()
        .with_group_id(GroupId(s("mut-g")))
        .with_member_id(s(""))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(1_000)
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
        )
        .with_name(s("range"))
        .with_metadata(Bytes::from_static(b"\x00\x01\x00\x00\x00\x01\x00\x03mut"))]);
    out.push(seed(ApiKey::JoinGroup, 5, &join));
    out.push(seed(
        ApiKey::JoinGroup,
        9,
        &join.clone().with_group_instance_id(Some(s("i1"))),
    ));
    let sync = SyncGroupRequest::default()
        .with_group_id(GroupId(s("mut-g")))
        .with_member_id(s("m"))
        .with_generation_id(1)
        .with_protocol_type(Some(s("consumer")))
        .with_protocol_name(Some(s("range")))
        .with_assignments(vec![
            sync_group_request::SyncGroupRequestAssignment::default()
                .with_member_id(s("m"))
                .with_assignment(Bytes::from_static(b"\x00\x01\x00\x00\x00\x01\x00\x03mut")),
        ]);
    out.push(seed(ApiKey::SyncGroup, 5, &sync));
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(s("mut-g")))
        .with_generation_id_or_member_epoch(-1)
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(s("mut")))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(3)
                        .with_committed_metadata(Some(s("md"))),
                ]),
        ]);
    out.push(seed(ApiKey::OffsetCommit, 8, &commit));
    out.push(seed(
        ApiKey::InitProducerId,
        4,
        &InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(s("mut-txn"))))
            .with_transaction_timeout_ms(60_000),
    ));
    out.push(seed(
        ApiKey::AddPartitionsToTxn,
        3,
        &AddPartitionsToTxnRequest::default()
            .with_v3_and_below_transactional_id(TransactionalId(s("mut-txn")))
            .with_v3_and_below_producer_id(ProducerId(pid))
            .with_v3_and_below_topics(vec![
                add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                    .with_name(TopicName(s("mut")))
                    .with_partitions(vec![0]),
            ]),
    ));
    out.push(seed(
        ApiKey::AddOffsetsToTxn,
        3,
        &AddOffsetsToTxnRequest::default()
            .with_transactional_id(TransactionalId(s("mut-txn")))
            .with_producer_id(ProducerId(pid))
            .with_group_id(GroupId(s("mut-g"))),
    ));
    out.push(seed(
        ApiKey::TxnOffsetCommit,
        3,
        &TxnOffsetCommitRequest::default()
            .with_transactional_id(TransactionalId(s("mut-txn")))
            .with_group_id(GroupId(s("mut-g")))
            .with_producer_id(ProducerId(pid))
            .with_member_id(s("m"))
            .with_generation_id(1)
            .with_topics(vec![
                txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                    .with_name(TopicName(s("mut")))
                    .with_partitions(vec![
                        txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(5),
                    ]),
            ]),
    ));
    out.push(seed(
        ApiKey::EndTxn,
        3,
        &EndTxnRequest::default()
            .with_transactional_id(TransactionalId(s("mut-txn")))
            .with_producer_id(ProducerId(pid))
            .with_committed(true),
    ));
    out.push(seed(
        ApiKey::Fetch,
        12,
        &FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(10)
            .with_max_bytes(1 << 20)
            .with_isolation_level(1)
            .with_topics(vec![fetch_request::FetchTopic::default()
                .with_topic(TopicName(s("mut")))
                .with_partitions(vec![fetch_request::FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(0)
                    .with_partition_max_bytes(1 << 20)])]),
    ));
    out
}

/// Byte flips anywhere, sometimes a cut; for a produce, half the time the flips land in
/// the record batch and its CRC is recomputed, so they get past the CRC check.
fn mutate(rng: &mut XorShift, seed: &Seed) -> Vec<u8> {
    let mut m = seed.body.clone();
    match seed.batch {
        Some((at, len)) if rng.below(2) == 0 && len > 21 => {
            for _ in 0..1 + rng.below(4) {
                let i = at + 21 + rng.below(len - 21);
                m[i] = rng.next() as u8;
            }
            let crc = batch::compute_crc(&m[at..at + len]);
            m[at + 17..at + 21].copy_from_slice(&crc.to_be_bytes());
        }
        _ => {
            for _ in 0..1 + rng.below(3) {
                let i = rng.below(m.len());
                m[i] = rng.next() as u8;
            }
            if rng.below(4) == 0 {
                let keep = rng.below(m.len() + 1);
                m.truncate(keep);
            }
        }
    }
    m
}

const ROUNDS: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_realistic_requests_never_panic_the_broker() {
    let _hook = PANIC_HOOK.lock().await;
    let panics = Arc::new(AtomicUsize::new(0));
    let seen = panics.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        seen.fetch_add(1, Ordering::SeqCst);
        eprintln!("panic: {info}");
    }));
    let b = TestBroker::start(&[("group.initial.rebalance.delay.ms", "0")]).await;
    let mut c = b.connect().await;
    c.create_topic("mut", 1).await;
    let pid = c
        .call(
            &InitProducerIdRequest::default()
                .with_transactional_id(Some(TransactionalId(s("mut-txn"))))
                .with_transaction_timeout_ms(60_000),
            4,
        )
        .await
        .producer_id
        .0;
    let seeds = seeds(pid);
    // Unmutated, every seed is a request the broker answers (or, for the parked join,
    // holds): the mutations start from requests that reach the handlers' logic.
    for sd in &seeds {
        assert!(
            gregor_broker::handlers::SUPPORTED
                .iter()
                .any(|spec| spec.key == sd.key && (spec.min..=spec.max).contains(&sd.v)),
            "{:?} v{} is advertised",
            sd.key,
            sd.v
        );
    }
    let seed_value = std::env::var("GREGOR_MUTATION_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x2545_F491_4F6C_DD1Du64);
    let mut rng = XorShift(seed_value);
    let mut correlation = 0;
    let mut answered = 0;
    for round in 0..ROUNDS {
        for sd in &seeds {
            // Record batches get more rounds: their mutations reach the codecs.
            if sd.batch.is_none() && round >= ROUNDS / 5 {
                continue;
            }
            let m = if round == 0 {
                sd.body.clone()
            } else {
                mutate(&mut rng, sd)
            };
            correlation += 1;
            let mut conn = TcpStream::connect(b.addr).await.unwrap();
            conn.write_all(&frame(sd.key, sd.v, correlation, &m))
                .await
                .unwrap();
            let mut buf = [0u8; 4096];
            if let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(300), conn.read(&mut buf)).await
            {
                if n > 0 {
                    answered += 1;
                }
            }
        }
    }
    // Most requests got an answer (a close or silence for all would mean they never
    // reached a handler).
    let sent = seeds.iter().filter(|s| s.batch.is_some()).count() * ROUNDS
        + seeds.iter().filter(|s| s.batch.is_none()).count() * (ROUNDS / 5);
    assert!(
        answered > sent / 2,
        "only {answered} answers (seed {seed_value:#x})"
    );
    // The broker still serves: a produce and a fetch on the same partition work.
    let mut c = b.connect().await;
    let resp = c
        .call(&produce(records(Codec::Zstd, Producer::NONE), None), 9)
        .await;
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!(
        p.error_code, 0,
        "the broker still appends (seed {seed_value:#x})"
    );
    std::panic::set_hook(previous);
    assert_eq!(
        panics.load(Ordering::SeqCst),
        0,
        "a request panicked the broker (seed {seed_value:#x})"
    );
    b.stop().await;
}
