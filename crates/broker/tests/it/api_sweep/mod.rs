//! Every API in the registry, at both ends of its advertised range, against one broker
//! with real state (a topic with records, a group with offsets): each answer is checked
//! for its error codes and its contents, so an API that decodes but answers wrongly at
//! one version fails here. (A listed API without a handler would close the connection.)
//!
//! This file runs the APIs in the registry's order; the checks, one function per API, live
//! by theme in `data_apis`, `group_apis`, `admin_apis`, `txn_apis`, `cluster_apis` and `security_apis`.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

// One directory deeper than the other test files, so `common` is named by path.
use crate::common;
pub(crate) mod support;

mod acl_apis;
mod admin_apis;
mod cluster_apis;
mod data_apis;
mod group_apis;
mod quota_apis;
mod security_apis;
mod share_apis;
mod share_state_apis;
mod txn_apis;

use common::TestBroker;
use gregor_broker::handlers::SUPPORTED;
use gregor_protocol::kp::messages::ApiKey;
use support::Sweep;

#[tokio::test]
async fn every_advertised_version_answers_with_the_right_codes_and_contents() {
    let b = TestBroker::start(&[("group.initial.rebalance.delay.ms", "0")]).await;
    let port = i32::from(b.addr.port());
    let dir = b.dir.path().display().to_string();
    let mut c = b.connect().await;
    c.create_topic("sweep", 1).await;
    let topic_id = b.broker.metadata.image().topic("sweep").unwrap().id;
    let cx = Sweep {
        b: &b,
        topic_id,
        port,
        dir,
    };
    let c = &mut c;
    // Produce, fetch and offset APIs come first in the registry; their later checks
    // rely on what the earlier ones did, so the registry's order is asserted.
    let order: Vec<ApiKey> = SUPPORTED.iter().map(|s| s.key).collect();
    assert_eq!(
        &order[..4],
        &[
            ApiKey::Produce,
            ApiKey::Fetch,
            ApiKey::ListOffsets,
            ApiKey::Metadata
        ]
    );

    for spec in SUPPORTED {
        // Produce v0-v2 are listed for librdkafka's feature detection only.
        let min = if spec.key == ApiKey::Produce {
            3
        } else {
            spec.min
        };
        let range = (min, spec.max);
        // The checks, one function per API.
        match spec.key {
            ApiKey::Produce => data_apis::produce(c, &cx, range).await,
            ApiKey::Fetch => data_apis::fetch(c, &cx, range).await,
            ApiKey::ListOffsets => data_apis::list_offsets(c, &cx, range).await,
            ApiKey::Metadata => data_apis::metadata(c, &cx, range).await,
            ApiKey::ApiVersions => cluster_apis::api_versions(c, &cx, range).await,
            ApiKey::CreateTopics => admin_apis::create_topics(c, &cx, range).await,
            ApiKey::DeleteTopics => admin_apis::delete_topics(c, &cx, range).await,
            ApiKey::FindCoordinator => group_apis::find_coordinator(c, &cx, range).await,
            ApiKey::OffsetCommit => group_apis::offset_commit(c, &cx, range).await,
            ApiKey::OffsetFetch => group_apis::offset_fetch(c, &cx, range).await,
            ApiKey::JoinGroup => group_apis::join_group(c, &cx, range).await,
            ApiKey::SyncGroup => group_apis::sync_group(c, &cx, range).await,
            ApiKey::Heartbeat => group_apis::heartbeat(c, &cx, range).await,
            ApiKey::LeaveGroup => group_apis::leave_group(c, &cx, range).await,
            ApiKey::DescribeGroups => group_apis::describe_groups(c, &cx, range).await,
            ApiKey::ListGroups => group_apis::list_groups(c, &cx, range).await,
            ApiKey::DeleteGroups => group_apis::delete_groups(c, &cx, range).await,
            ApiKey::OffsetDelete => group_apis::offset_delete(c, &cx, range).await,
            ApiKey::ConsumerGroupHeartbeat => {
                group_apis::consumer_group_heartbeat(c, &cx, range).await
            }
            ApiKey::ConsumerGroupDescribe => {
                group_apis::consumer_group_describe(c, &cx, range).await
            }
            ApiKey::DescribeConfigs => admin_apis::describe_configs(c, &cx, range).await,
            ApiKey::AlterConfigs => admin_apis::alter_configs(c, &cx, range).await,
            ApiKey::IncrementalAlterConfigs => {
                admin_apis::incremental_alter_configs(c, &cx, range).await
            }
            ApiKey::CreatePartitions => admin_apis::create_partitions(c, &cx, range).await,
            ApiKey::DescribeCluster => cluster_apis::describe_cluster(c, &cx, range).await,
            ApiKey::DescribeLogDirs => admin_apis::describe_log_dirs(c, &cx, range).await,
            ApiKey::DeleteRecords => admin_apis::delete_records(c, &cx, range).await,
            ApiKey::InitProducerId => txn_apis::init_producer_id(c, &cx, range).await,
            ApiKey::AddPartitionsToTxn => txn_apis::add_partitions_to_txn(c, &cx, range).await,
            ApiKey::AddOffsetsToTxn => txn_apis::add_offsets_to_txn(c, &cx, range).await,
            ApiKey::EndTxn => txn_apis::end_txn(c, &cx, range).await,
            ApiKey::TxnOffsetCommit => txn_apis::txn_offset_commit(c, &cx, range).await,
            ApiKey::DescribeTransactions => txn_apis::describe_transactions(c, &cx, range).await,
            ApiKey::ListTransactions => txn_apis::list_transactions(c, &cx, range).await,
            ApiKey::DescribeProducers => txn_apis::describe_producers(c, &cx, range).await,
            ApiKey::GetTelemetrySubscriptions => {
                cluster_apis::get_telemetry_subscriptions(c, &cx, range).await
            }
            ApiKey::PushTelemetry => cluster_apis::push_telemetry(c, &cx, range).await,
            ApiKey::ListConfigResources => admin_apis::list_config_resources(c, &cx, range).await,
            ApiKey::DescribeTopicPartitions => {
                data_apis::describe_topic_partitions(c, &cx, range).await
            }
            ApiKey::UpdateFeatures => cluster_apis::update_features(c, &cx, range).await,
            ApiKey::DescribeQuorum => cluster_apis::describe_quorum(c, &cx, range).await,
            ApiKey::OffsetForLeaderEpoch => data_apis::offset_for_leader_epoch(c, &cx, range).await,
            ApiKey::WriteTxnMarkers => txn_apis::write_txn_markers(c, &cx, range).await,
            ApiKey::ElectLeaders => cluster_apis::elect_leaders(c, &cx, range).await,
            ApiKey::AlterPartitionReassignments => {
                cluster_apis::alter_partition_reassignments(c, &cx, range).await
            }
            ApiKey::ListPartitionReassignments => {
                cluster_apis::list_partition_reassignments(c, &cx, range).await
            }
            ApiKey::UnregisterBroker => cluster_apis::unregister_broker(c, &cx, range).await,
            ApiKey::AddRaftVoter => cluster_apis::add_raft_voter(c, &cx, range).await,
            ApiKey::RemoveRaftVoter => cluster_apis::remove_raft_voter(c, &cx, range).await,
            ApiKey::UpdateRaftVoter => cluster_apis::update_raft_voter(c, &cx, range).await,
            ApiKey::SaslHandshake => security_apis::sasl_handshake(c, &cx, range).await,
            ApiKey::SaslAuthenticate => security_apis::sasl_authenticate(c, &cx, range).await,
            ApiKey::DescribeUserScramCredentials => {
                security_apis::describe_user_scram_credentials(c, &cx, range).await
            }
            ApiKey::AlterUserScramCredentials => {
                security_apis::alter_user_scram_credentials(c, &cx, range).await
            }
            ApiKey::CreateAcls => acl_apis::create_acls(c, &cx, range).await,
            ApiKey::DescribeAcls => acl_apis::describe_acls(c, &cx, range).await,
            ApiKey::DeleteAcls => acl_apis::delete_acls(c, &cx, range).await,
            ApiKey::AlterClientQuotas => quota_apis::alter_client_quotas(c, &cx, range).await,
            ApiKey::DescribeClientQuotas => quota_apis::describe_client_quotas(c, &cx, range).await,
            ApiKey::ShareGroupHeartbeat => share_apis::share_group_heartbeat(c, &cx, range).await,
            ApiKey::ShareFetch => share_apis::share_fetch(c, &cx, range).await,
            ApiKey::ShareAcknowledge => share_apis::share_acknowledge(c, &cx, range).await,
            ApiKey::ShareGroupDescribe => share_apis::share_group_describe(c, &cx, range).await,
            ApiKey::DescribeShareGroupOffsets => {
                share_apis::describe_share_group_offsets(c, &cx, range).await
            }
            ApiKey::AlterShareGroupOffsets => {
                share_apis::alter_share_group_offsets(c, &cx, range).await
            }
            ApiKey::DeleteShareGroupOffsets => {
                share_apis::delete_share_group_offsets(c, &cx, range).await
            }
            ApiKey::InitializeShareGroupState => {
                share_state_apis::initialize_share_group_state(c, &cx, range).await
            }
            ApiKey::ReadShareGroupState => {
                share_state_apis::read_share_group_state(c, &cx, range).await
            }
            ApiKey::WriteShareGroupState => {
                share_state_apis::write_share_group_state(c, &cx, range).await
            }
            ApiKey::DeleteShareGroupState => {
                share_state_apis::delete_share_group_state(c, &cx, range).await
            }
            ApiKey::ReadShareGroupStateSummary => {
                share_state_apis::read_share_group_state_summary(c, &cx, range).await
            }
            other => panic!("{other:?} is advertised but this test does not know it: add it"),
        }
    }
    b.stop().await;
}
