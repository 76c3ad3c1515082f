//! The cluster: ApiVersions, features, quorum, elections, reassignments, telemetry.

use gregor_broker::handlers::SUPPORTED;
use gregor_protocol::kp::messages::*;

use super::common::Client;
use super::support::{check, s, Sweep, UNKNOWN_TOPIC_OR_PARTITION};

pub(crate) async fn api_versions(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
    check(
        c,
        range,
        |_| {
            ApiVersionsRequest::default()
                .with_client_software_name(s("t"))
                .with_client_software_version(s("1"))
        },
        |v, r| {
            assert_eq!(r.error_code, 0, "v{v}");
            let got: Vec<(i16, i16, i16)> = r
                .api_keys
                .iter()
                .map(|k| (k.api_key, k.min_version, k.max_version))
                .collect();
            let want: Vec<(i16, i16, i16)> = SUPPORTED
                .iter()
                .map(|s| (s.key as i16, s.min, s.max))
                .collect();
            assert_eq!(got, want, "v{v}: exactly the registry");
            // v3+ (KIP-584): a new cluster's finalized feature levels.
            let finalized: Vec<(String, i16)> = r
                .finalized_features
                .iter()
                .map(|f| (f.name.to_string(), f.max_version_level))
                .collect();
            if v >= 3 {
                assert!(finalized.contains(&("transaction.version".into(), 2)));
                assert_eq!(r.supported_features.len(), 4, "v{v}");
                assert!(r.finalized_features_epoch >= 0, "v{v}");
            } else {
                assert!(finalized.is_empty(), "v{v}");
            }
        },
    )
    .await
}

pub(crate) async fn describe_cluster(c: &mut Client, cx: &Sweep<'_>, range: (i16, i16)) {
    let port = cx.port;
    check(
        c,
        range,
        |_| DescribeClusterRequest::default().with_endpoint_type(1),
        |v, r| {
            assert_eq!(r.error_code, 0, "v{v}");
            assert_eq!(r.controller_id.0, 1);
            assert!(!r.cluster_id.is_empty());
            let brokers: Vec<(i32, &str, i32)> = r
                .brokers
                .iter()
                .map(|x| (x.broker_id.0, x.host.as_str(), x.port))
                .collect();
            assert_eq!(brokers, vec![(1, "127.0.0.1", port)], "v{v}");
        },
    )
    .await
}

pub(crate) async fn get_telemetry_subscriptions(
    c: &mut Client,
    _cx: &Sweep<'_>,
    range: (i16, i16),
) {
    check(
        c,
        range,
        |_| GetTelemetrySubscriptionsRequest::default(),
        |v, r| {
            assert_eq!(r.error_code, 0, "v{v}");
            assert!(!r.client_instance_id.is_nil(), "v{v}: an id is assigned");
            assert!(r.requested_metrics.is_empty(), "v{v}: no subscription");
            assert_eq!(r.accepted_compression_types, vec![4, 3, 1, 2]);
            assert_eq!(r.push_interval_ms, 300_000);
        },
    )
    .await
}

pub(crate) async fn push_telemetry(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
    check(
        c,
        range,
        |_| {
            PushTelemetryRequest::default()
                .with_client_instance_id(uuid::Uuid::from_u128(42))
                .with_subscription_id(0)
        },
        |v, r| assert_eq!(r.error_code, 117, "v{v}: UNKNOWN_SUBSCRIPTION_ID"),
    )
    .await
}

pub(crate) async fn update_features(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
    check(
        c,
        range,
        |_| {
            UpdateFeaturesRequest::default()
                .with_timeout_ms(5000)
                .with_feature_updates(vec![update_features_request::FeatureUpdateKey::default()
                    .with_feature(s("no.such.feature"))
                    .with_max_version_level(1)])
        },
        |v, r| {
            assert_eq!(r.error_code, 95, "v{v}: INVALID_UPDATE_VERSION");
            let results: Vec<(&str, i16)> = r
                .results
                .iter()
                .map(|x| (x.feature.as_str(), x.error_code))
                .collect();
            if v >= 2 {
                assert!(results.is_empty(), "v{v}: no per-feature results");
            } else {
                assert_eq!(results, vec![("no.such.feature", 95)], "v{v}");
            }
        },
    )
    .await
}

pub(crate) async fn describe_quorum(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
    check(
        c,
        range,
        |_| {
            DescribeQuorumRequest::default().with_topics(vec![
                describe_quorum_request::TopicData::default()
                    .with_topic_name(TopicName(s("__cluster_metadata")))
                    .with_partitions(vec![describe_quorum_request::PartitionData::default()]),
            ])
        },
        |v, r| {
            assert_eq!(r.error_code, 0, "v{v}");
            let p = &r.topics[0].partitions[0];
            assert_eq!((p.error_code, p.leader_id), (0, BrokerId(1)), "v{v}");
            assert!(p.leader_epoch >= 1, "v{v}: {p:?}");
            assert!(p.high_watermark > 0, "v{v}: {p:?}");
            let voters: Vec<i32> = p.current_voters.iter().map(|r| r.replica_id.0).collect();
            assert_eq!(voters, vec![1], "v{v}");
        },
    )
    .await
}

pub(crate) async fn elect_leaders(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
    check(
        c,
        range,
        |_| {
            ElectLeadersRequest::default()
                .with_election_type(0)
                .with_topic_partitions(Some(vec![elect_leaders_request::TopicPartitions::default(
                )
                .with_topic(TopicName(s("sweep")))
                .with_partitions(vec![0, 9])]))
        },
        |v, r| {
            let ps = &r.replica_election_results[0].partition_result;
            // One node leads every partition it prefers: ELECTION_NOT_NEEDED.
            assert_eq!(ps[0].error_code, 84, "v{v}");
            assert_eq!(ps[1].error_code, UNKNOWN_TOPIC_OR_PARTITION, "v{v}");
        },
    )
    .await
}

pub(crate) async fn alter_partition_reassignments(
    c: &mut Client,
    _cx: &Sweep<'_>,
    range: (i16, i16),
) {
    check(
        c,
        range,
        |_| {
            AlterPartitionReassignmentsRequest::default()
                .with_allow_replication_factor_change(true)
                .with_topics(vec![
                    alter_partition_reassignments_request::ReassignableTopic::default()
                        .with_name(TopicName(s("sweep")))
                        .with_partitions(vec![
                            alter_partition_reassignments_request::ReassignablePartition::default()
                                .with_partition_index(0)
                                .with_replicas(Some(vec![BrokerId(1)])),
                            alter_partition_reassignments_request::ReassignablePartition::default()
                                .with_partition_index(9)
                                .with_replicas(Some(vec![BrokerId(1)])),
                            // A cancel with nothing to cancel.
                            alter_partition_reassignments_request::ReassignablePartition::default()
                                .with_partition_index(0),
                        ]),
                ])
        },
        |v, r| {
            let ps = &r.responses[0].partitions;
            assert_eq!(ps[0].error_code, 0, "v{v}: already there");
            assert_eq!(ps[1].error_code, UNKNOWN_TOPIC_OR_PARTITION, "v{v}");
            assert_eq!(ps[2].error_code, 85, "v{v}: NO_REASSIGNMENT_IN_PROGRESS");
        },
    )
    .await
}

pub(crate) async fn list_partition_reassignments(
    c: &mut Client,
    _cx: &Sweep<'_>,
    range: (i16, i16),
) {
    check(
        c,
        range,
        |_| ListPartitionReassignmentsRequest::default().with_topics(None),
        |v, r| {
            assert_eq!(r.error_code, 0, "v{v}");
            assert!(r.topics.is_empty(), "v{v}: nothing is moving");
        },
    )
    .await
}

pub(crate) async fn unregister_broker(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
    check(
        c,
        range,
        |_| UnregisterBrokerRequest::default().with_broker_id(BrokerId(99)),
        |v, r| assert_eq!(r.error_code, 102, "v{v}: BROKER_ID_NOT_REGISTERED"),
    )
    .await
}

pub(crate) async fn add_raft_voter(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
    // A single node has no controller listener: its quorum cannot grow.
    check(
        c,
        range,
        |_| {
            AddRaftVoterRequest::default()
                .with_voter_id(2)
                .with_listeners(vec![add_raft_voter_request::Listener::default()
                    .with_name(s("CONTROLLER"))
                    .with_host(s("127.0.0.1"))
                    .with_port(1)])
        },
        |v, r| assert_eq!(r.error_code, 42, "v{v}: INVALID_REQUEST"),
    )
    .await;
    check(
        c,
        range,
        |_| AddRaftVoterRequest::default().with_voter_id(1),
        |v, r| assert_eq!(r.error_code, 42, "v{v}: no listener: INVALID_REQUEST"),
    )
    .await
}

pub(crate) async fn remove_raft_voter(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
    check(
        c,
        range,
        |_| RemoveRaftVoterRequest::default().with_voter_id(7),
        |v, r| assert_eq!(r.error_code, 127, "v{v}: VOTER_NOT_FOUND"),
    )
    .await;
    check(
        c,
        range,
        |_| RemoveRaftVoterRequest::default().with_voter_id(1),
        |v, r| {
            assert_eq!(
                r.error_code, 42,
                "v{v}: the last voter stays: INVALID_REQUEST"
            )
        },
    )
    .await
}

pub(crate) async fn update_raft_voter(c: &mut Client, _cx: &Sweep<'_>, range: (i16, i16)) {
    check(
        c,
        range,
        |_| {
            UpdateRaftVoterRequest::default()
                .with_voter_id(7)
                .with_listeners(vec![update_raft_voter_request::Listener::default()
                    .with_name(s("CONTROLLER"))
                    .with_host(s("127.0.0.1"))
                    .with_port(9)])
        },
        |v, r| assert_eq!(r.error_code, 127, "v{v}: VOTER_NOT_FOUND"),
    )
    .await
}
