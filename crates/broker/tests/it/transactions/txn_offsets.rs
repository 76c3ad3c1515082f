//! Transactional offset commits: KIP-447 generation fencing, unstable offsets until the commit.

use bytes::Bytes;
use gregor_protocol::kp::messages::*;

use super::common::{Client, TestBroker};
use super::support::{end, init, s, tid};

/// TxnOffsetCommit v3 for `member` at `generation`: the partition's error code.
async fn txn_commit_offset(
    c: &mut Client,
    id: &str,
    pid: i64,
    member: &str,
    generation: i32,
    offset: i64,
) -> i16 {
    use gregor_protocol::kp::messages::txn_offset_commit_request::{
        TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };
    let req = TxnOffsetCommitRequest::default()
        .with_transactional_id(tid(id))
        .with_group_id(GroupId(s("tg")))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(0)
        .with_member_id(s(member))
        .with_generation_id(generation)
        .with_topics(vec![TxnOffsetCommitRequestTopic::default()
            .with_name(TopicName(s("in")))
            .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)])]);
    c.call(&req, 3).await.topics[0].partitions[0].error_code
}

/// OffsetFetch v7 with require_stable: (error code, offset) of in-0 for group "tg".
async fn stable_offset(c: &mut Client) -> (i16, i64) {
    use gregor_protocol::kp::messages::offset_fetch_request::OffsetFetchRequestTopic;
    let req = OffsetFetchRequest::default()
        .with_group_id(GroupId(s("tg")))
        .with_require_stable(true)
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(TopicName(s("in")))
            .with_partition_indexes(vec![0])]));
    let p = &c.call(&req, 7).await.topics[0].partitions[0];
    (p.error_code, p.committed_offset)
}

#[tokio::test]
async fn transactional_offsets_are_fenced_by_generation_and_unstable_until_commit() {
    let b = TestBroker::start(&[("group.initial.rebalance.delay.ms", "0")]).await;
    let mut c = b.connect().await;
    c.create_topic("in", 1).await;
    let pid = init(&mut c, "ctp", 60_000).await.producer_id.0;
    // A member of group "tg" at generation 1.
    let join = |member: &str| {
        JoinGroupRequest::default()
            .with_group_id(GroupId(s("tg")))
            .with_member_id(s(member))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(10_000)
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![join_group_request::JoinGroupRequestProtocol::default(
            )
            .with_name(s("range"))
            .with_metadata(Bytes::from_static(b"meta"))])
    };
    let first = c.call(&join(""), 9).await;
    let member = first.member_id.to_string();
    let joined = c.call(&join(&member), 9).await;
    assert_eq!((joined.error_code, joined.generation_id), (0, 1));
    // Without AddOffsetsToTxn the commit is outside any transaction: refused.
    assert_eq!(
        txn_commit_offset(&mut c, "ctp", pid, &member, 1, 5).await,
        48
    );
    let add = AddOffsetsToTxnRequest::default()
        .with_transactional_id(tid("ctp"))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(0)
        .with_group_id(GroupId(s("tg")));
    assert_eq!(c.call(&add, 3).await.error_code, 0);
    // KIP-447: a zombie member (old generation, unknown id) is fenced.
    assert_eq!(
        txn_commit_offset(&mut c, "ctp", pid, &member, 0, 5).await,
        22,
        "ILLEGAL_GENERATION"
    );
    assert_eq!(
        txn_commit_offset(&mut c, "ctp", pid, "zombie", 1, 5).await,
        25,
        "UNKNOWN_MEMBER_ID"
    );
    assert_eq!(
        txn_commit_offset(&mut c, "ctp", pid, &member, 1, 5).await,
        0
    );
    // Pending: UNSTABLE_OFFSET_COMMIT for readers that require stable offsets.
    assert_eq!(stable_offset(&mut c).await, (88, -1));
    assert_eq!(end(&mut c, "ctp", pid, 0, true, 3).await, 0);
    assert_eq!(stable_offset(&mut c).await, (0, 5));
    b.stop().await;
}
