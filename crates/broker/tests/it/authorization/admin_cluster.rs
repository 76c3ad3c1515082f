//! Authorization cases: topics, configs, transactions, cluster operations, ACLs, SCRAM.
//!
//! Names stay valid across the runs (without, then with grants, at the min and the max
//! version): what a granted run creates (`authz-created`) only makes a later run answer
//! TOPIC_ALREADY_EXISTS, and the rest name things that do not exist or only validate.
//! Answers the table cannot express (a refusal that depends on the version, a list that
//! is filtered rather than refused, authorized-operation bits) have their own test below.

use gregor_protocol::kp::messages::*;
use gregor_protocol::kp::protocol::StrBytes;
use gregor_security::acl::{AclOperation as Op, ResourceType as Rt};

use super::common::TestBroker;
use super::{
    checked, s, set_acls, Case, CLUSTER_AUTHORIZATION_FAILED as CLUSTER,
    TOPIC_AUTHORIZATION_FAILED as TOPIC, TRANSACTIONAL_ID_AUTHORIZATION_FAILED as TXN_ID,
};

const CLUSTER_NAME: &str = "kafka-cluster";
const TXN: &str = "authz-txn";
const GROUP: &str = "authz-group";
const CREATED: &str = "authz-created";

fn topic(name: &str) -> TopicName {
    TopicName(s(name))
}

fn txn_id(name: &str) -> TransactionalId {
    TransactionalId(s(name))
}

pub(crate) fn case(key: ApiKey) -> Option<Case> {
    match key {
        ApiKey::SaslHandshake | ApiKey::SaslAuthenticate => {
            Some(Case::Exempt("authentication itself"))
        }
        ApiKey::CreateTopics => checked(
            |_, _| {
                RequestKind::CreateTopics(CreateTopicsRequest::default().with_topics(vec![
                    create_topics_request::CreatableTopic::default()
                        .with_name(topic(CREATED))
                        .with_num_partitions(1)
                        .with_replication_factor(1),
                ]))
            },
            TOPIC,
            &[
                (Op::Create, Rt::Topic, CREATED),
                (Op::DescribeConfigs, Rt::Topic, CREATED),
            ],
        ),
        ApiKey::DeleteTopics => checked(
            |_, v| {
                let name = "authz-never-created";
                let req = if v >= 6 {
                    DeleteTopicsRequest::default()
                        .with_topics(vec![delete_topics_request::DeleteTopicState::default()
                            .with_name(Some(topic(name)))])
                } else {
                    DeleteTopicsRequest::default().with_topic_names(vec![topic(name)])
                };
                RequestKind::DeleteTopics(req)
            },
            TOPIC,
            &[(Op::Delete, Rt::Topic, "authz-never-created")],
        ),
        ApiKey::CreatePartitions => checked(
            |_, _| {
                RequestKind::CreatePartitions(
                    CreatePartitionsRequest::default()
                        .with_validate_only(true)
                        .with_topics(vec![
                            create_partitions_request::CreatePartitionsTopic::default()
                                .with_name(topic("t"))
                                .with_count(2),
                        ]),
                )
            },
            TOPIC,
            &[(Op::Alter, Rt::Topic, "t")],
        ),
        ApiKey::DescribeConfigs => checked(
            |env, _| {
                let resource = |kind: i8, name: String| {
                    describe_configs_request::DescribeConfigsResource::default()
                        .with_resource_type(kind)
                        .with_resource_name(StrBytes::from_string(name))
                        .with_configuration_keys(None)
                };
                RequestKind::DescribeConfigs(DescribeConfigsRequest::default().with_resources(
                    vec![
                        resource(2, "t".into()),
                        resource(4, env.node_id.to_string()),
                    ],
                ))
            },
            CLUSTER,
            &[
                (Op::DescribeConfigs, Rt::Topic, "t"),
                (Op::DescribeConfigs, Rt::Cluster, CLUSTER_NAME),
            ],
        ),
        ApiKey::AlterConfigs => checked(
            |_, _| {
                RequestKind::AlterConfigs(
                    AlterConfigsRequest::default()
                        .with_validate_only(true)
                        .with_resources(vec![
                            alter_configs_request::AlterConfigsResource::default()
                                .with_resource_type(2)
                                .with_resource_name(s("t")),
                        ]),
                )
            },
            TOPIC,
            &[(Op::AlterConfigs, Rt::Topic, "t")],
        ),
        // A client-metrics subscription: its configs need ALTER_CONFIGS on the cluster.
        ApiKey::IncrementalAlterConfigs => checked(
            |_, _| {
                RequestKind::IncrementalAlterConfigs(
                    IncrementalAlterConfigsRequest::default()
                        .with_validate_only(true)
                        .with_resources(vec![
                            incremental_alter_configs_request::AlterConfigsResource::default()
                                .with_resource_type(16)
                                .with_resource_name(s("authz-metrics"))
                                .with_configs(vec![
                                    incremental_alter_configs_request::AlterableConfig::default()
                                        .with_name(s("interval.ms"))
                                        .with_config_operation(0)
                                        .with_value(Some(s("60000"))),
                                ]),
                        ]),
                )
            },
            CLUSTER,
            &[(Op::AlterConfigs, Rt::Cluster, CLUSTER_NAME)],
        ),
        ApiKey::DeleteRecords => checked(
            |_, _| {
                RequestKind::DeleteRecords(DeleteRecordsRequest::default().with_topics(vec![
                    delete_records_request::DeleteRecordsTopic::default()
                        .with_name(topic("t"))
                        .with_partitions(vec![
                            delete_records_request::DeleteRecordsPartition::default()
                                .with_partition_index(0)
                                .with_offset(0),
                        ]),
                ]))
            },
            TOPIC,
            &[(Op::Delete, Rt::Topic, "t")],
        ),
        ApiKey::DescribeLogDirs => Some(Case::Exempt(
            "v1-v2 refuse with an empty answer (no error field): \
             log_dirs_and_idempotence_by_version checks each version",
        )),
        ApiKey::ListConfigResources => checked(
            |_, _| RequestKind::ListConfigResources(ListConfigResourcesRequest::default()),
            CLUSTER,
            &[(Op::DescribeConfigs, Rt::Cluster, CLUSTER_NAME)],
        ),
        ApiKey::InitProducerId => checked(
            |_, _| {
                RequestKind::InitProducerId(
                    InitProducerIdRequest::default()
                        .with_transactional_id(Some(txn_id(TXN)))
                        .with_transaction_timeout_ms(60_000)
                        .with_producer_id(ProducerId(-1))
                        .with_producer_epoch(-1),
                )
            },
            TXN_ID,
            &[(Op::Write, Rt::TransactionalId, TXN)],
        ),
        ApiKey::AddPartitionsToTxn => Some(Case::Exempt(
            "v0-v3 need WRITE on the id and topics, v4+ CLUSTER_ACTION: \
             add_partitions_to_txn_by_version checks each",
        )),
        ApiKey::AddOffsetsToTxn => checked(
            |_, _| {
                RequestKind::AddOffsetsToTxn(
                    AddOffsetsToTxnRequest::default()
                        .with_transactional_id(txn_id(TXN))
                        .with_group_id(GroupId(s(GROUP))),
                )
            },
            TXN_ID,
            &[
                (Op::Write, Rt::TransactionalId, TXN),
                (Op::Read, Rt::Group, GROUP),
            ],
        ),
        ApiKey::EndTxn => checked(
            |_, _| RequestKind::EndTxn(EndTxnRequest::default().with_transactional_id(txn_id(TXN))),
            TXN_ID,
            &[(Op::Write, Rt::TransactionalId, TXN)],
        ),
        ApiKey::TxnOffsetCommit => checked(
            |_, _| {
                RequestKind::TxnOffsetCommit(
                    TxnOffsetCommitRequest::default()
                        .with_transactional_id(txn_id(TXN))
                        .with_group_id(GroupId(s(GROUP)))
                        .with_topics(vec![
                            txn_offset_commit_request::TxnOffsetCommitRequestTopic::default()
                                .with_name(topic("t"))
                                .with_partitions(vec![
                                txn_offset_commit_request::TxnOffsetCommitRequestPartition::default()
                                    .with_partition_index(0)
                                    .with_committed_offset(0),
                            ]),
                        ]),
                )
            },
            TXN_ID,
            &[
                (Op::Write, Rt::TransactionalId, TXN),
                (Op::Read, Rt::Group, GROUP),
                (Op::Read, Rt::Topic, "t"),
            ],
        ),
        ApiKey::DescribeTransactions => checked(
            |_, _| {
                RequestKind::DescribeTransactions(
                    DescribeTransactionsRequest::default()
                        .with_transactional_ids(vec![txn_id(TXN)]),
                )
            },
            TXN_ID,
            &[(Op::Describe, Rt::TransactionalId, TXN)],
        ),
        ApiKey::ListTransactions => Some(Case::Exempt(
            "filters what it lists (never refuses): list_transactions_and_cluster_operations",
        )),
        ApiKey::WriteTxnMarkers => checked(
            |_, _| {
                RequestKind::WriteTxnMarkers(WriteTxnMarkersRequest::default().with_markers(vec![
                    write_txn_markers_request::WritableTxnMarker::default()
                        .with_producer_id(ProducerId(1))
                        .with_topics(vec![
                            write_txn_markers_request::WritableTxnMarkerTopic::default()
                                .with_name(topic("authz-no-such-topic"))
                                .with_partition_indexes(vec![0]),
                        ]),
                ]))
            },
            CLUSTER,
            &[(Op::ClusterAction, Rt::Cluster, CLUSTER_NAME)],
        ),
        ApiKey::InitializeShareGroupState => checked(
            |e, _| {
                RequestKind::InitializeShareGroupState(
                    InitializeShareGroupStateRequest::default()
                        .with_group_id(s("authz-share-state"))
                        .with_topics(vec![
                            initialize_share_group_state_request::InitializeStateData::default()
                                .with_topic_id(e.topic_id)
                                .with_partitions(vec![
                                    initialize_share_group_state_request::PartitionData::default()
                                        .with_partition(0),
                                ]),
                        ]),
                )
            },
            CLUSTER,
            &[(Op::ClusterAction, Rt::Cluster, CLUSTER_NAME)],
        ),
        ApiKey::ReadShareGroupState => checked(
            |e, _| {
                RequestKind::ReadShareGroupState(
                    ReadShareGroupStateRequest::default()
                        .with_group_id(s("authz-share-state"))
                        .with_topics(vec![
                            read_share_group_state_request::ReadStateData::default()
                                .with_topic_id(e.topic_id)
                                .with_partitions(vec![
                                    read_share_group_state_request::PartitionData::default()
                                        .with_partition(0),
                                ]),
                        ]),
                )
            },
            CLUSTER,
            &[(Op::ClusterAction, Rt::Cluster, CLUSTER_NAME)],
        ),
        ApiKey::WriteShareGroupState => checked(
            |e, _| {
                RequestKind::WriteShareGroupState(
                    WriteShareGroupStateRequest::default()
                        .with_group_id(s("authz-share-state"))
                        .with_topics(vec![
                            write_share_group_state_request::WriteStateData::default()
                                .with_topic_id(e.topic_id)
                                .with_partitions(vec![
                                    write_share_group_state_request::PartitionData::default()
                                        .with_partition(0),
                                ]),
                        ]),
                )
            },
            CLUSTER,
            &[(Op::ClusterAction, Rt::Cluster, CLUSTER_NAME)],
        ),
        ApiKey::DeleteShareGroupState => checked(
            |e, _| {
                RequestKind::DeleteShareGroupState(
                    DeleteShareGroupStateRequest::default()
                        .with_group_id(s("authz-share-state"))
                        .with_topics(vec![
                            delete_share_group_state_request::DeleteStateData::default()
                                .with_topic_id(e.topic_id)
                                .with_partitions(vec![
                                    delete_share_group_state_request::PartitionData::default()
                                        .with_partition(0),
                                ]),
                        ]),
                )
            },
            CLUSTER,
            &[(Op::ClusterAction, Rt::Cluster, CLUSTER_NAME)],
        ),
        ApiKey::ReadShareGroupStateSummary => {
            checked(
                |e, _| {
                    RequestKind::ReadShareGroupStateSummary(
                    ReadShareGroupStateSummaryRequest::default()
                        .with_group_id(s("authz-share-state"))
                        .with_topics(vec![read_share_group_state_summary_request::ReadStateSummaryData::default()
                            .with_topic_id(e.topic_id)
                            .with_partitions(vec![
                                read_share_group_state_summary_request::PartitionData::default().with_partition(0)
                            ])]),
                )
                },
                CLUSTER,
                &[(Op::ClusterAction, Rt::Cluster, CLUSTER_NAME)],
            )
        }
        ApiKey::DescribeCluster => Some(Case::Exempt(
            "no check but cluster_authorized_operations: list_transactions_and_cluster_operations",
        )),
        ApiKey::DescribeQuorum => checked(
            |_, _| RequestKind::DescribeQuorum(DescribeQuorumRequest::default()),
            CLUSTER,
            &[(Op::Describe, Rt::Cluster, CLUSTER_NAME)],
        ),
        ApiKey::UpdateFeatures => checked(
            |_, v| {
                RequestKind::UpdateFeatures(
                    UpdateFeaturesRequest::default().with_validate_only(v >= 1),
                )
            },
            CLUSTER,
            &[(Op::Alter, Rt::Cluster, CLUSTER_NAME)],
        ),
        ApiKey::ElectLeaders => checked(
            |_, _| {
                RequestKind::ElectLeaders(ElectLeadersRequest::default().with_topic_partitions(
                    Some(vec![elect_leaders_request::TopicPartitions::default()
                        .with_topic(topic("t"))
                        .with_partitions(vec![0])]),
                ))
            },
            CLUSTER,
            &[(Op::Alter, Rt::Cluster, CLUSTER_NAME)],
        ),
        ApiKey::AlterPartitionReassignments => checked(
            |_, _| {
                RequestKind::AlterPartitionReassignments(
                    AlterPartitionReassignmentsRequest::default(),
                )
            },
            CLUSTER,
            &[(Op::Alter, Rt::Cluster, CLUSTER_NAME)],
        ),
        ApiKey::ListPartitionReassignments => checked(
            |_, _| {
                RequestKind::ListPartitionReassignments(
                    ListPartitionReassignmentsRequest::default().with_topics(None),
                )
            },
            CLUSTER,
            &[(Op::Describe, Rt::Cluster, CLUSTER_NAME)],
        ),
        ApiKey::UnregisterBroker => checked(
            |_, _| {
                RequestKind::UnregisterBroker(
                    UnregisterBrokerRequest::default().with_broker_id(BrokerId(999)),
                )
            },
            CLUSTER,
            &[(Op::Alter, Rt::Cluster, CLUSTER_NAME)],
        ),
        // Another cluster's id: once authorized, INCONSISTENT_CLUSTER_ID, nothing changes.
        ApiKey::AddRaftVoter => checked(
            |_, _| {
                RequestKind::AddRaftVoter(
                    AddRaftVoterRequest::default()
                        .with_cluster_id(Some(s("authz-other-cluster")))
                        .with_voter_id(999),
                )
            },
            CLUSTER,
            &[(Op::Alter, Rt::Cluster, CLUSTER_NAME)],
        ),
        ApiKey::RemoveRaftVoter => checked(
            |_, _| {
                RequestKind::RemoveRaftVoter(
                    RemoveRaftVoterRequest::default()
                        .with_cluster_id(Some(s("authz-other-cluster")))
                        .with_voter_id(999),
                )
            },
            CLUSTER,
            &[(Op::Alter, Rt::Cluster, CLUSTER_NAME)],
        ),
        // Sent by a voter to the leader: CLUSTER_ACTION, as Kafka's ControllerApis.
        ApiKey::UpdateRaftVoter => checked(
            |_, _| {
                RequestKind::UpdateRaftVoter(
                    UpdateRaftVoterRequest::default()
                        .with_cluster_id(Some(s("authz-other-cluster")))
                        .with_voter_id(999),
                )
            },
            CLUSTER,
            &[(Op::ClusterAction, Rt::Cluster, CLUSTER_NAME)],
        ),
        ApiKey::CreateAcls => checked(
            |_, _| {
                RequestKind::CreateAcls(CreateAclsRequest::default().with_creations(vec![
                    create_acls_request::AclCreation::default()
                        .with_resource_type(2)
                        .with_resource_name(s("authz-acl"))
                        .with_resource_pattern_type(3)
                        .with_principal(s("User:someone"))
                        .with_host(s("*"))
                        .with_operation(3)
                        .with_permission_type(3),
                ]))
            },
            CLUSTER,
            &[(Op::Alter, Rt::Cluster, CLUSTER_NAME)],
        ),
        ApiKey::DeleteAcls => checked(
            |_, _| {
                RequestKind::DeleteAcls(DeleteAclsRequest::default().with_filters(vec![
                    delete_acls_request::DeleteAclsFilter::default()
                        .with_resource_type_filter(2)
                        .with_resource_name_filter(Some(s("authz-acl")))
                        .with_pattern_type_filter(3)
                        .with_principal_filter(Some(s("User:someone")))
                        .with_host_filter(None)
                        .with_operation(1)
                        .with_permission_type(1),
                ]))
            },
            CLUSTER,
            &[(Op::Alter, Rt::Cluster, CLUSTER_NAME)],
        ),
        ApiKey::DescribeAcls => checked(
            |_, _| {
                RequestKind::DescribeAcls(
                    DescribeAclsRequest::default()
                        .with_resource_type_filter(1)
                        .with_resource_name_filter(None)
                        .with_pattern_type_filter(1)
                        .with_principal_filter(None)
                        .with_host_filter(None)
                        .with_operation(1)
                        .with_permission_type(1),
                )
            },
            CLUSTER,
            &[(Op::Describe, Rt::Cluster, CLUSTER_NAME)],
        ),
        ApiKey::DescribeUserScramCredentials => checked(
            |_, _| {
                RequestKind::DescribeUserScramCredentials(
                    DescribeUserScramCredentialsRequest::default().with_users(None),
                )
            },
            CLUSTER,
            &[(Op::Describe, Rt::Cluster, CLUSTER_NAME)],
        ),
        ApiKey::AlterUserScramCredentials => checked(
            |_, _| {
                RequestKind::AlterUserScramCredentials(
                    AlterUserScramCredentialsRequest::default().with_deletions(vec![
                        alter_user_scram_credentials_request::ScramCredentialDeletion::default()
                            .with_name(s("authz-user"))
                            .with_mechanism(1),
                    ]),
                )
            },
            CLUSTER,
            &[(Op::Alter, Rt::Cluster, CLUSTER_NAME)],
        ),
        ApiKey::DescribeClientQuotas => checked(
            |_, _| RequestKind::DescribeClientQuotas(DescribeClientQuotasRequest::default()),
            CLUSTER,
            &[(Op::DescribeConfigs, Rt::Cluster, CLUSTER_NAME)],
        ),
        ApiKey::AlterClientQuotas => checked(
            |_, _| {
                RequestKind::AlterClientQuotas(AlterClientQuotasRequest::default().with_entries(
                    vec![alter_client_quotas_request::EntryData::default()
                        .with_entity(vec![alter_client_quotas_request::EntityData::default()
                            .with_entity_type(s("user"))
                            .with_entity_name(Some(s("authz-user")))])
                        .with_ops(vec![alter_client_quotas_request::OpData::default()
                            .with_key(s("producer_byte_rate"))
                            .with_value(1e6)])],
                ))
            },
            CLUSTER,
            &[(Op::AlterConfigs, Rt::Cluster, CLUSTER_NAME)],
        ),
        _ => None,
    }
}

/// A broker that refuses what no ACL allows, with the topic `t`.
async fn strict_broker() -> TestBroker {
    let b = TestBroker::start(&[("allow.everyone.if.no.acl.found", "false")]).await;
    // Set up as a super user would: CREATE for the topic, then no ACL at all.
    set_acls(&b, &[(Op::Create, Rt::Cluster, CLUSTER_NAME)]).await;
    b.connect().await.create_topic("t", 1).await;
    set_acls(&b, &[]).await;
    b
}

#[tokio::test]
async fn log_dirs_and_idempotence_by_version() {
    let b = strict_broker().await;
    let mut c = b.connect().await;
    // DescribeLogDirs: v1-v2 have no error field, so a refusal is an empty answer.
    let req = DescribeLogDirsRequest::default().with_topics(None);
    for v in [1, 2] {
        let r = c.call(&req, v).await;
        assert!(r.results.is_empty(), "v{v}: {r:?}");
    }
    for v in [3, 4] {
        let r = c.call(&req, v).await;
        assert_eq!(r.error_code, CLUSTER, "v{v}: {r:?}");
        assert!(r.results.is_empty());
    }
    set_acls(&b, &[(Op::Describe, Rt::Cluster, CLUSTER_NAME)]).await;
    let mut c = b.connect().await;
    for v in [1, 4] {
        let r = c.call(&req, v).await;
        assert_eq!(r.error_code, 0, "v{v}: {r:?}");
        assert_eq!(r.results.len(), 1, "v{v}: {r:?}");
    }
    // InitProducerId without a transactional id: IDEMPOTENT_WRITE on the cluster or
    // WRITE on some topic (KIP-679).
    let idempotent = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    set_acls(&b, &[]).await;
    let mut c = b.connect().await;
    assert_eq!(c.call(&idempotent, 4).await.error_code, CLUSTER);
    for grant in [
        (Op::IdempotentWrite, Rt::Cluster, CLUSTER_NAME),
        (Op::Write, Rt::Topic, "t"),
    ] {
        set_acls(&b, &[grant]).await;
        let mut c = b.connect().await;
        let r = c.call(&idempotent, 4).await;
        assert_eq!(r.error_code, 0, "{grant:?}: {r:?}");
        assert!(r.producer_id.0 >= 0);
    }
    b.stop().await;
}

#[tokio::test]
async fn add_partitions_to_txn_by_version() {
    let b = strict_broker().await;
    let mut c = b.connect().await;
    let old = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(txn_id(TXN))
        .with_v3_and_below_producer_id(ProducerId(1))
        .with_v3_and_below_topics(vec![
            add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                .with_name(topic("t"))
                .with_partitions(vec![0]),
        ]);
    let codes = |r: &AddPartitionsToTxnResponse| -> Vec<i16> {
        r.results_by_topic_v3_and_below
            .iter()
            .flat_map(|t| {
                t.results_by_partition
                    .iter()
                    .map(|p| p.partition_error_code)
            })
            .collect()
    };
    let r = c.call(&old, 3).await;
    assert_eq!(codes(&r), vec![TXN_ID], "{r:?}");
    // The id alone is not enough: WRITE on the topic too.
    set_acls(&b, &[(Op::Write, Rt::TransactionalId, TXN)]).await;
    let mut c = b.connect().await;
    let r = c.call(&old, 0).await;
    assert_eq!(codes(&r), vec![TOPIC], "{r:?}");
    set_acls(
        &b,
        &[
            (Op::Write, Rt::TransactionalId, TXN),
            (Op::Write, Rt::Topic, "t"),
        ],
    )
    .await;
    let mut c = b.connect().await;
    let r = c.call(&old, 3).await;
    assert!(
        codes(&r)
            .iter()
            .all(|e| ![TOPIC, TXN_ID, CLUSTER].contains(e)),
        "{r:?}"
    );
    // v4+: a broker's batch, CLUSTER_ACTION on the cluster (WRITE grants do not count).
    let new = AddPartitionsToTxnRequest::default().with_transactions(vec![
        add_partitions_to_txn_request::AddPartitionsToTxnTransaction::default()
            .with_transactional_id(txn_id(TXN))
            .with_producer_id(ProducerId(1))
            .with_verify_only(true)
            .with_topics(vec![
                add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                    .with_name(topic("t"))
                    .with_partitions(vec![0]),
            ]),
    ]);
    for v in [4, 5] {
        let r = c.call(&new, v).await;
        assert_eq!(r.error_code, CLUSTER, "v{v}: {r:?}");
        assert!(r.results_by_transaction.is_empty());
    }
    set_acls(&b, &[(Op::ClusterAction, Rt::Cluster, CLUSTER_NAME)]).await;
    let mut c = b.connect().await;
    let r = c.call(&new, 5).await;
    assert_eq!(r.error_code, 0, "{r:?}");
    assert_eq!(r.results_by_transaction.len(), 1, "{r:?}");
    b.stop().await;
}

#[tokio::test]
async fn list_transactions_and_cluster_operations() {
    let b = strict_broker().await;
    // A transaction to list, begun with the id's WRITE grant.
    set_acls(&b, &[(Op::Write, Rt::TransactionalId, "authz-listed")]).await;
    let mut c = b.connect().await;
    let init = InitProducerIdRequest::default()
        .with_transactional_id(Some(txn_id("authz-listed")))
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    assert_eq!(c.call(&init, 4).await.error_code, 0);
    let listed = |r: &ListTransactionsResponse| -> Vec<String> {
        r.transaction_states
            .iter()
            .map(|t| t.transactional_id.to_string())
            .collect()
    };
    let list = ListTransactionsRequest::default();
    set_acls(&b, &[]).await;
    let mut c = b.connect().await;
    let r = c.call(&list, 1).await;
    assert_eq!(r.error_code, 0, "{r:?}");
    assert!(listed(&r).is_empty(), "{r:?}");
    set_acls(&b, &[(Op::Describe, Rt::TransactionalId, "authz-listed")]).await;
    let mut c = b.connect().await;
    assert_eq!(listed(&c.call(&list, 1).await), vec!["authz-listed"]);

    // CreateTopics without DESCRIBE_CONFIGS on the topic hides its settings.
    set_acls(&b, &[(Op::Create, Rt::Cluster, CLUSTER_NAME)]).await;
    let mut c = b.connect().await;
    let create = CreateTopicsRequest::default()
        .with_validate_only(true)
        .with_topics(vec![create_topics_request::CreatableTopic::default()
            .with_name(topic("authz-hidden"))
            .with_num_partitions(3)
            .with_replication_factor(1)]);
    let r = c.call(&create, 7).await;
    let t = &r.topics[0];
    assert_eq!(
        (t.error_code, t.topic_config_error_code),
        (0, TOPIC),
        "{r:?}"
    );
    assert_eq!((t.num_partitions, t.replication_factor), (-1, -1), "{r:?}");
    assert!(t.configs.is_none(), "{r:?}");

    // DescribeCluster: never refused; the operations only when asked and DESCRIBE is
    // allowed, as one bit per operation code.
    let describe = |asked| {
        DescribeClusterRequest::default()
            .with_include_cluster_authorized_operations(asked)
            .with_endpoint_type(1)
    };
    set_acls(&b, &[]).await;
    let mut c = b.connect().await;
    let r = c.call(&describe(true), 2).await;
    assert_eq!(
        (r.error_code, r.cluster_authorized_operations),
        (0, 0),
        "{r:?}"
    );
    assert!(!r.brokers.is_empty());
    assert_eq!(
        c.call(&describe(false), 2)
            .await
            .cluster_authorized_operations,
        i32::MIN
    );
    set_acls(
        &b,
        &[
            (Op::Describe, Rt::Cluster, CLUSTER_NAME),
            (Op::AlterConfigs, Rt::Cluster, CLUSTER_NAME),
        ],
    )
    .await;
    let mut c = b.connect().await;
    let r = c.call(&describe(true), 0).await;
    // DESCRIBE (8), ALTER_CONFIGS (11) and the DESCRIBE_CONFIGS (10) it implies.
    assert_eq!(
        r.cluster_authorized_operations,
        (1 << 8) | (1 << 10) | (1 << 11),
        "{r:?}"
    );
    b.stop().await;
}
