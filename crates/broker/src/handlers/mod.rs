//! One handler per Kafka API, one file each, and the single registry that feeds both
//! dispatch and ApiVersions.
//!
//! Dispatch reads the API key, version and correlation id, checks them against
//! [`SUPPORTED`], decodes the header and body with the generated `kafka-protocol` types,
//! calls the handler and encodes its response. A request that cannot be framed, names an
//! unknown API or version, or fails to decode closes that connection only; every other
//! problem is an error code in the response.

use bytes::{BufMut, Bytes, BytesMut};
use gregor_protocol::kp::messages::{ApiKey, RequestHeader, ResponseHeader};
use gregor_protocol::kp::protocol::{Decodable, Encodable, HeaderVersion};
use std::sync::Arc;

use crate::broker::Broker;
pub use gregor_security::acl::{AclOperation, ResourceType};

/// The name of Kafka's one cluster resource.
pub const CLUSTER_RESOURCE: &str = "kafka-cluster";

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod add_raft_voter;
pub mod alter_client_quotas;
pub mod alter_configs;
pub mod alter_partition_reassignments;
pub mod alter_share_group_offsets;
pub mod alter_user_scram_credentials;
pub mod api_versions;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod create_acls;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_acls;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_share_group_offsets;
pub mod delete_share_group_state;
pub mod delete_topics;
pub mod describe_acls;
pub mod describe_client_quotas;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_quorum;
pub mod describe_share_group_offsets;
pub mod describe_topic_partitions;
pub mod describe_transactions;
pub mod describe_user_scram_credentials;
pub mod elect_leaders;
pub mod end_txn;
pub mod fetch;
mod fetch_read;
pub mod find_coordinator;
pub mod get_telemetry_subscriptions;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod initialize_share_group_state;
pub mod join_group;
pub mod leader_hint;
pub mod leave_group;
pub mod list_config_resources;
pub mod list_groups;
pub mod list_offsets;
pub mod list_partition_reassignments;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod produce_txn;
pub mod push_telemetry;
pub mod read_share_group_state;
pub mod read_share_group_state_summary;
pub mod remove_raft_voter;
pub mod sasl_authenticate;
pub mod sasl_handshake;
pub mod share_acknowledge;
pub mod share_fetch;
pub mod share_group_describe;
pub mod share_group_heartbeat;
pub mod sync_group;
pub mod throttle;
pub mod txn_offset_commit;
pub mod unregister_broker;
pub mod update_features;
pub mod update_raft_voter;
pub mod write_share_group_state;
pub mod write_txn_markers;

/// An API this broker implements, at versions `min..=max`.
#[derive(Debug, Clone, Copy)]
pub struct ApiSpec {
    pub key: ApiKey,
    pub min: i16,
    pub max: i16,
}

/// Every API the broker serves. ApiVersions answers from this list.
pub const SUPPORTED: &[ApiSpec] = &[
    produce::SPEC,
    fetch::SPEC,
    list_offsets::SPEC,
    metadata::SPEC,
    api_versions::SPEC,
    create_topics::SPEC,
    delete_topics::SPEC,
    find_coordinator::SPEC,
    offset_commit::SPEC,
    offset_fetch::SPEC,
    join_group::SPEC,
    heartbeat::SPEC,
    leave_group::SPEC,
    sync_group::SPEC,
    describe_groups::SPEC,
    list_groups::SPEC,
    delete_groups::SPEC,
    offset_delete::SPEC,
    consumer_group_heartbeat::SPEC,
    consumer_group_describe::SPEC,
    describe_configs::SPEC,
    alter_configs::SPEC,
    incremental_alter_configs::SPEC,
    create_partitions::SPEC,
    describe_cluster::SPEC,
    describe_quorum::SPEC,
    describe_log_dirs::SPEC,
    delete_records::SPEC,
    init_producer_id::SPEC,
    add_partitions_to_txn::SPEC,
    add_offsets_to_txn::SPEC,
    end_txn::SPEC,
    txn_offset_commit::SPEC,
    describe_transactions::SPEC,
    list_transactions::SPEC,
    describe_producers::SPEC,
    get_telemetry_subscriptions::SPEC,
    push_telemetry::SPEC,
    list_config_resources::SPEC,
    describe_topic_partitions::SPEC,
    update_features::SPEC,
    write_txn_markers::SPEC,
    offset_for_leader_epoch::SPEC,
    elect_leaders::SPEC,
    alter_partition_reassignments::SPEC,
    list_partition_reassignments::SPEC,
    unregister_broker::SPEC,
    add_raft_voter::SPEC,
    remove_raft_voter::SPEC,
    update_raft_voter::SPEC,
    sasl_handshake::SPEC,
    sasl_authenticate::SPEC,
    describe_user_scram_credentials::SPEC,
    alter_user_scram_credentials::SPEC,
    create_acls::SPEC,
    describe_acls::SPEC,
    delete_acls::SPEC,
    alter_client_quotas::SPEC,
    describe_client_quotas::SPEC,
    share_group_heartbeat::SPEC,
    share_fetch::SPEC,
    share_acknowledge::SPEC,
    share_group_describe::SPEC,
    describe_share_group_offsets::SPEC,
    alter_share_group_offsets::SPEC,
    delete_share_group_offsets::SPEC,
    initialize_share_group_state::SPEC,
    read_share_group_state::SPEC,
    write_share_group_state::SPEC,
    delete_share_group_state::SPEC,
    read_share_group_state_summary::SPEC,
];

/// Capacity a connection's decompression buffer may keep between requests. One request
/// with a large compressed batch may grow it (up to the topic's decompression bound);
/// after that request it shrinks back to this, so an idle connection holds at most
/// this much, while the common case (batches up to librdkafka's default 1 MB) still
/// reuses one allocation.
pub const SCRATCH_RETAIN: usize = 1 << 20;

/// What a connection keeps between requests.
pub struct Connection {
    /// Reused decompression buffer for produce validation; at most
    /// [`SCRATCH_RETAIN`] bytes of capacity between requests.
    pub scratch: Vec<u8>,
    /// The client's address as Kafka shows it (`/127.0.0.1`), for group membership.
    pub client_host: Arc<str>,
    /// The listener it came in on, its principal and its SASL state.
    pub auth: crate::auth::ConnAuth,
    pub listener_name: Arc<str>,
    /// A throttled client's connection reads nothing until then (KIP-219).
    pub muted_until: Option<tokio::time::Instant>,
    /// Unique in this process: what share sessions opened here are tied to.
    pub id: u64,
}

/// The next connection id.
static NEXT_CONNECTION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Connection {
    pub fn new(
        listener: Arc<crate::config::ListenerConfig>,
        client_host: Arc<str>,
        tls_principal: Option<gregor_security::Principal>,
    ) -> Self {
        Self {
            scratch: Vec::new(),
            client_host,
            listener_name: listener.name.as_str().into(),
            auth: crate::auth::ConnAuth::new(listener, tls_principal),
            muted_until: None,
            id: NEXT_CONNECTION.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }
}

/// Per-request state handlers may use.
pub struct RequestContext {
    pub header: RequestHeader,
    /// Reused decompression buffer for produce validation.
    pub scratch: Vec<u8>,
    pub client_host: Arc<str>,
    /// The listener the request came in on (Metadata answers with its endpoints).
    pub listener: Arc<str>,
    /// Who sent it.
    pub principal: Arc<gregor_security::Principal>,
    /// The ACLs of the metadata image at the time of the request, with `super.users`.
    pub authorizer: gregor_security::acl::Authorizer,
    /// When handling began, for the request-time quota.
    pub started: std::time::Instant,
    /// The longest throttle a quota set on this request's response, in ms.
    pub throttle_ms: std::sync::atomic::AtomicU64,
    /// The request frame's size, for the produce byte rate.
    pub request_size: usize,
    /// The connection it came in on (`Connection::id`).
    pub connection_id: u64,
}

impl RequestContext {
    pub fn version(&self) -> i16 {
        self.header.request_api_version
    }
    /// May this request's principal, from its host, do `op` on the resource? Every
    /// handler asks before it touches a topic, group, transactional id or the cluster.
    pub fn allowed(&self, op: AclOperation, resource: ResourceType, name: &str) -> bool {
        self.authorizer.authorize(
            &self.principal,
            self.client_host.trim_start_matches('/'),
            op,
            resource,
            name,
        )
    }

    /// `op` on the cluster resource (`kafka-cluster`).
    pub fn allowed_on_cluster(&self, op: AclOperation) -> bool {
        self.allowed(op, ResourceType::Cluster, CLUSTER_RESOURCE)
    }

    /// KIP-679: may the principal do `op` on at least one resource of this type?
    pub fn allowed_on_any(&self, op: AclOperation, resource: ResourceType) -> bool {
        self.authorizer.authorize_by_resource_type(
            &self.principal,
            self.client_host.trim_start_matches('/'),
            op,
            resource,
        )
    }

    /// Keeps the longest throttle set on this request.
    pub fn note_throttle(&self, throttle: std::time::Duration) {
        let ms = u64::try_from(throttle.as_millis()).unwrap_or(u64::MAX);
        self.throttle_ms
            .fetch_max(ms, std::sync::atomic::Ordering::Relaxed);
    }

    pub fn client_id(&self) -> String {
        self.header
            .client_id
            .as_ref()
            .map(|c| c.to_string())
            .unwrap_or_default()
    }
}

/// What the connection does after a request.
pub enum Outcome {
    Respond(Bytes),
    /// A response whose record data is sent from segment files (fetch).
    RespondFile(crate::frame::FileFrame),
    /// acks=0 produce: nothing is sent.
    NoResponse,
    /// Close this connection (and only this one).
    Close(String),
    /// The request's effect is done (a produce is appended, in request order) but its
    /// answer waits for something else (an fsync). The connection queues it behind
    /// earlier answers and goes on reading, so pipelined requests share one fsync.
    Deferred(std::pin::Pin<Box<dyn std::future::Future<Output = Outcome> + Send + 'static>>),
}

/// A domain outcome as a wire error code and message (0 and none on success).
fn error_parts(
    outcome: Result<(), (gregor_protocol::kp::ResponseError, String)>,
) -> (i16, Option<gregor_protocol::kp::protocol::StrBytes>) {
    match outcome {
        Ok(()) => (0, None),
        Err((code, msg)) => (
            code.code(),
            Some(gregor_protocol::kp::protocol::StrBytes::from_string(msg)),
        ),
    }
}

fn spec_for(key: i16) -> Option<&'static ApiSpec> {
    SUPPORTED.iter().find(|s| s.key as i16 == key)
}

/// Encodes a response frame: length, header, body.
pub fn encode_response<R: Encodable + HeaderVersion>(
    correlation_id: i32,
    version: i16,
    header_version: i16,
    body: &R,
) -> Outcome {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    // Sized up front: one allocation, no growth by reallocation.
    let size = header
        .compute_size(header_version)
        .and_then(|h| Ok(h + body.compute_size(version)?));
    let mut buf = match size {
        Ok(n) => BytesMut::with_capacity(4 + n),
        Err(e) => return Outcome::Close(format!("cannot size response: {e}")),
    };
    buf.put_i32(0);
    if let Err(e) = header.encode(&mut buf, header_version) {
        return Outcome::Close(format!("cannot encode response header: {e}"));
    }
    if let Err(e) = body.encode(&mut buf, version) {
        return Outcome::Close(format!("cannot encode response: {e}"));
    }
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    Outcome::Respond(buf.freeze())
}

fn respond<R: Encodable + HeaderVersion>(header: &RequestHeader, body: &R) -> Outcome {
    let v = header.request_api_version;
    encode_response(header.correlation_id, v, R::header_version(v), body)
}

fn decode<R: Decodable>(buf: &mut Bytes, version: i16) -> Result<R, Outcome> {
    R::decode(buf, version).map_err(|e| Outcome::Close(format!("malformed request body: {e}")))
}

macro_rules! call {
    ($broker:expr, $buf:expr, $ctx:expr, $req:ty, $handler:expr) => {{
        let v = $ctx.header.request_api_version;
        match decode::<$req>(&mut $buf, v) {
            Ok(req) => {
                let mut resp = $handler(req).await;
                throttle::apply($broker, $ctx, &mut resp);
                respond(&$ctx.header, &resp)
            }
            Err(out) => out,
        }
    }};
}

/// Handles one request frame (without its length prefix).
pub async fn dispatch(broker: &Arc<Broker>, conn: &mut Connection, frame: Bytes) -> Outcome {
    if conn.auth.expects_raw_token() {
        return raw_sasl_token(broker, conn, &frame);
    }
    if frame.len() < 8 {
        return Outcome::Close("request shorter than a request header".into());
    }
    let key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
    let Some(spec) = spec_for(key) else {
        return Outcome::Close(format!("unsupported API key {key}"));
    };
    if version < spec.min || version > spec.max {
        return match spec.key {
            // KIP-511: answer with the v0 body and the supported list so the client can
            // pick a version it shares with us.
            ApiKey::ApiVersions => api_versions::unsupported_version(correlation_id),
            // Listed only for librdkafka's feature detection (KAFKA-18659); never served.
            ApiKey::Produce if version <= 2 => {
                Outcome::Close("Produce v0-v2 are not supported (message format v2 only)".into())
            }
            _ => Outcome::Close(format!("unsupported version {version} of API key {key}")),
        };
    }
    if let crate::auth::Gate::Close(why) = conn.auth.gate(spec.key) {
        return Outcome::Close(why);
    }
    let request_size = frame.len();
    let mut buf = frame;
    let header = match RequestHeader::decode(&mut buf, spec.key.request_header_version(version)) {
        Ok(h) => h,
        Err(e) => return Outcome::Close(format!("malformed request header: {e}")),
    };
    // The SASL exchange changes the connection itself, so it is served here.
    match spec.key {
        ApiKey::SaslHandshake => {
            return match decode::<gregor_protocol::kp::messages::SaslHandshakeRequest>(
                &mut buf, version,
            ) {
                Ok(req) => respond(&header, &sasl_handshake::handle(conn, version, req)),
                Err(out) => out,
            }
        }
        ApiKey::SaslAuthenticate => {
            return match decode::<gregor_protocol::kp::messages::SaslAuthenticateRequest>(
                &mut buf, version,
            ) {
                Ok(req) => respond(&header, &sasl_authenticate::handle(broker, conn, req)),
                Err(out) => out,
            }
        }
        _ => {}
    }
    let mut ctx = RequestContext {
        header,
        scratch: std::mem::take(&mut conn.scratch),
        client_host: conn.client_host.clone(),
        listener: conn.listener_name.clone(),
        principal: conn.auth.principal.clone(),
        authorizer: broker.authorizer(),
        started: std::time::Instant::now(),
        throttle_ms: std::sync::atomic::AtomicU64::new(0),
        request_size,
        connection_id: conn.id,
    };
    let out = route(broker, &mut ctx, spec.key, buf).await;
    // Until the handler returned: a deferred produce's fsync wait is not included.
    broker
        .metrics
        .requests
        .record(spec.key, version, ctx.started.elapsed());
    let throttle = *ctx.throttle_ms.get_mut();
    if throttle > 0 {
        conn.muted_until =
            Some(tokio::time::Instant::now() + std::time::Duration::from_millis(throttle));
    }
    conn.scratch = ctx.scratch;
    conn.release_scratch();
    out
}

/// A bare SASL token after a SaslHandshake v0: answered with a bare token (a length
/// and the bytes, no response header); a failure closes the connection, as Kafka does.
fn raw_sasl_token(broker: &Arc<Broker>, conn: &mut Connection, token: &[u8]) -> Outcome {
    let reauth = broker.config.connections_max_reauth_ms;
    let image = broker.metadata.image();
    match conn.auth.step(token, &image, reauth, &conn.client_host) {
        crate::auth::TokenOutcome::Continue(t) | crate::auth::TokenOutcome::Done(t) => {
            let mut out = BytesMut::with_capacity(4 + t.len());
            out.put_u32(u32::try_from(t.len()).unwrap_or(u32::MAX));
            out.put_slice(&t);
            Outcome::Respond(out.freeze())
        }
        crate::auth::TokenOutcome::Failed(why) => Outcome::Close(why),
    }
}

impl Connection {
    /// Drops what the last request grew the scratch buffer to beyond
    /// [`SCRATCH_RETAIN`]; its contents are never needed across requests.
    pub fn release_scratch(&mut self) {
        self.scratch.clear();
        if self.scratch.capacity() > SCRATCH_RETAIN {
            self.scratch.shrink_to(SCRATCH_RETAIN);
        }
    }
}

async fn route(
    broker: &Arc<Broker>,
    ctx: &mut RequestContext,
    key: ApiKey,
    mut buf: Bytes,
) -> Outcome {
    use gregor_protocol::kp::messages as m;
    match key {
        ApiKey::ApiVersions => call!(broker, buf, ctx, m::ApiVersionsRequest, |r| {
            api_versions::handle(broker, ctx, r)
        }),
        ApiKey::Metadata => call!(broker, buf, ctx, m::MetadataRequest, |r| metadata::handle(
            broker, ctx, r
        )),
        ApiKey::Produce => {
            let v = ctx.header.request_api_version;
            let req = match decode::<m::ProduceRequest>(&mut buf, v) {
                Ok(req) => req,
                Err(out) => return out,
            };
            // Transactions v2: the batches' partitions join their transaction first.
            produce_txn::add_authorized(broker, ctx, &req).await;
            // Topics that validate schemas: their records are checked with the registry.
            let refusals = broker.schemas.check(broker, ctx, &req).await;
            let reply = produce::handle(broker, ctx, req, &refusals);
            let throttle = crate::quota::throttle_ms(produce::record_quota(broker, ctx));
            match reply {
                produce::Reply::Response(mut resp) => {
                    resp.throttle_time_ms = throttle;
                    respond(&ctx.header, &resp)
                }
                produce::Reply::None => Outcome::NoResponse,
                produce::Reply::Close(why) => Outcome::Close(why),
                produce::Reply::AfterFlush(pending) => {
                    let header = ctx.header.clone();
                    Outcome::Deferred(Box::pin(async move {
                        match pending.complete().await {
                            produce::Reply::Response(mut resp) => {
                                resp.throttle_time_ms = throttle;
                                respond(&header, &resp)
                            }
                            produce::Reply::Close(why) => Outcome::Close(why),
                            produce::Reply::None | produce::Reply::AfterFlush(_) => {
                                Outcome::NoResponse
                            }
                        }
                    }))
                }
            }
        }
        ApiKey::Fetch => {
            match decode::<m::FetchRequest>(&mut buf, ctx.header.request_api_version) {
                Ok(req) => fetch::handle(broker, ctx, req).await,
                Err(out) => out,
            }
        }
        ApiKey::ListOffsets => call!(broker, buf, ctx, m::ListOffsetsRequest, |r| {
            list_offsets::handle(broker, ctx, r)
        }),
        ApiKey::CreateTopics => call!(broker, buf, ctx, m::CreateTopicsRequest, |r| {
            create_topics::handle(broker, ctx, r)
        }),
        ApiKey::DeleteTopics => call!(broker, buf, ctx, m::DeleteTopicsRequest, |r| {
            delete_topics::handle(broker, ctx, r)
        }),
        ApiKey::FindCoordinator => call!(broker, buf, ctx, m::FindCoordinatorRequest, |r| {
            find_coordinator::handle(broker, ctx, r)
        }),
        ApiKey::JoinGroup => call!(broker, buf, ctx, m::JoinGroupRequest, |r| {
            join_group::handle(broker, ctx, r)
        }),
        ApiKey::SyncGroup => call!(broker, buf, ctx, m::SyncGroupRequest, |r| {
            sync_group::handle(broker, ctx, r)
        }),
        ApiKey::Heartbeat => call!(
            broker,
            buf,
            ctx,
            m::HeartbeatRequest,
            |r| heartbeat::handle(broker, ctx, r)
        ),
        ApiKey::LeaveGroup => call!(broker, buf, ctx, m::LeaveGroupRequest, |r| {
            leave_group::handle(broker, ctx, r)
        }),
        ApiKey::OffsetCommit => call!(broker, buf, ctx, m::OffsetCommitRequest, |r| {
            offset_commit::handle(broker, ctx, r)
        }),
        ApiKey::OffsetFetch => call!(broker, buf, ctx, m::OffsetFetchRequest, |r| {
            offset_fetch::handle(broker, ctx, r)
        }),
        ApiKey::ListGroups => call!(broker, buf, ctx, m::ListGroupsRequest, |r| {
            list_groups::handle(broker, ctx, r)
        }),
        ApiKey::DescribeGroups => call!(broker, buf, ctx, m::DescribeGroupsRequest, |r| {
            describe_groups::handle(broker, ctx, r)
        }),
        ApiKey::DeleteGroups => call!(broker, buf, ctx, m::DeleteGroupsRequest, |r| {
            delete_groups::handle(broker, ctx, r)
        }),
        ApiKey::OffsetDelete => call!(broker, buf, ctx, m::OffsetDeleteRequest, |r| {
            offset_delete::handle(broker, ctx, r)
        }),
        ApiKey::ConsumerGroupHeartbeat => {
            call!(broker, buf, ctx, m::ConsumerGroupHeartbeatRequest, |r| {
                consumer_group_heartbeat::handle(broker, ctx, r)
            })
        }
        ApiKey::ConsumerGroupDescribe => {
            call!(broker, buf, ctx, m::ConsumerGroupDescribeRequest, |r| {
                consumer_group_describe::handle(broker, ctx, r)
            })
        }
        ApiKey::DescribeConfigs => call!(broker, buf, ctx, m::DescribeConfigsRequest, |r| {
            describe_configs::handle(broker, ctx, r)
        }),
        ApiKey::AlterConfigs => call!(broker, buf, ctx, m::AlterConfigsRequest, |r| {
            alter_configs::handle(broker, ctx, r)
        }),
        ApiKey::IncrementalAlterConfigs => {
            call!(broker, buf, ctx, m::IncrementalAlterConfigsRequest, |r| {
                incremental_alter_configs::handle(broker, ctx, r)
            })
        }
        ApiKey::CreatePartitions => call!(broker, buf, ctx, m::CreatePartitionsRequest, |r| {
            create_partitions::handle(broker, ctx, r)
        }),
        ApiKey::DescribeCluster => call!(broker, buf, ctx, m::DescribeClusterRequest, |r| {
            describe_cluster::handle(broker, ctx, r)
        }),
        ApiKey::DescribeQuorum => call!(broker, buf, ctx, m::DescribeQuorumRequest, |r| {
            describe_quorum::handle(broker, ctx, r)
        }),
        ApiKey::DescribeLogDirs => call!(broker, buf, ctx, m::DescribeLogDirsRequest, |r| {
            describe_log_dirs::handle(broker, ctx, r)
        }),
        ApiKey::DeleteRecords => call!(broker, buf, ctx, m::DeleteRecordsRequest, |r| {
            delete_records::handle(broker, ctx, r)
        }),
        ApiKey::InitProducerId => call!(broker, buf, ctx, m::InitProducerIdRequest, |r| {
            init_producer_id::handle(broker, ctx, r)
        }),
        ApiKey::AddPartitionsToTxn => call!(broker, buf, ctx, m::AddPartitionsToTxnRequest, |r| {
            add_partitions_to_txn::handle(broker, ctx, r)
        }),
        ApiKey::AddOffsetsToTxn => call!(broker, buf, ctx, m::AddOffsetsToTxnRequest, |r| {
            add_offsets_to_txn::handle(broker, ctx, r)
        }),
        ApiKey::EndTxn => call!(broker, buf, ctx, m::EndTxnRequest, |r| end_txn::handle(
            broker, ctx, r
        )),
        ApiKey::TxnOffsetCommit => call!(broker, buf, ctx, m::TxnOffsetCommitRequest, |r| {
            txn_offset_commit::handle(broker, ctx, r)
        }),
        ApiKey::DescribeTransactions => {
            call!(broker, buf, ctx, m::DescribeTransactionsRequest, |r| {
                describe_transactions::handle(broker, ctx, r)
            })
        }
        ApiKey::ListTransactions => call!(broker, buf, ctx, m::ListTransactionsRequest, |r| {
            list_transactions::handle(broker, ctx, r)
        }),
        ApiKey::DescribeProducers => call!(broker, buf, ctx, m::DescribeProducersRequest, |r| {
            describe_producers::handle(broker, ctx, r)
        }),
        ApiKey::OffsetForLeaderEpoch => {
            call!(broker, buf, ctx, m::OffsetForLeaderEpochRequest, |r| {
                offset_for_leader_epoch::handle(broker, ctx, r)
            })
        }
        ApiKey::WriteTxnMarkers => call!(broker, buf, ctx, m::WriteTxnMarkersRequest, |r| {
            write_txn_markers::handle(broker, ctx, r)
        }),
        ApiKey::ElectLeaders => call!(broker, buf, ctx, m::ElectLeadersRequest, |r| {
            elect_leaders::handle(broker, ctx, r)
        }),
        ApiKey::AlterPartitionReassignments => {
            call!(
                broker,
                buf,
                ctx,
                m::AlterPartitionReassignmentsRequest,
                |r| { alter_partition_reassignments::handle(broker, ctx, r) }
            )
        }
        ApiKey::ListPartitionReassignments => {
            call!(
                broker,
                buf,
                ctx,
                m::ListPartitionReassignmentsRequest,
                |r| { list_partition_reassignments::handle(broker, ctx, r) }
            )
        }
        ApiKey::AddRaftVoter => call!(broker, buf, ctx, m::AddRaftVoterRequest, |r| {
            add_raft_voter::handle(broker, ctx, r)
        }),
        ApiKey::UpdateRaftVoter => call!(broker, buf, ctx, m::UpdateRaftVoterRequest, |r| {
            update_raft_voter::handle(broker, ctx, r)
        }),
        ApiKey::RemoveRaftVoter => call!(broker, buf, ctx, m::RemoveRaftVoterRequest, |r| {
            remove_raft_voter::handle(broker, ctx, r)
        }),
        ApiKey::UnregisterBroker => call!(broker, buf, ctx, m::UnregisterBrokerRequest, |r| {
            unregister_broker::handle(broker, ctx, r)
        }),
        ApiKey::DescribeUserScramCredentials => {
            call!(
                broker,
                buf,
                ctx,
                m::DescribeUserScramCredentialsRequest,
                |r| { describe_user_scram_credentials::handle(broker, ctx, r) }
            )
        }
        ApiKey::AlterUserScramCredentials => {
            call!(broker, buf, ctx, m::AlterUserScramCredentialsRequest, |r| {
                alter_user_scram_credentials::handle(broker, ctx, r)
            })
        }
        ApiKey::GetTelemetrySubscriptions => {
            call!(broker, buf, ctx, m::GetTelemetrySubscriptionsRequest, |r| {
                get_telemetry_subscriptions::handle(broker, ctx, r)
            })
        }
        ApiKey::PushTelemetry => call!(broker, buf, ctx, m::PushTelemetryRequest, |r| {
            push_telemetry::handle(broker, ctx, r)
        }),
        ApiKey::ListConfigResources => {
            call!(broker, buf, ctx, m::ListConfigResourcesRequest, |r| {
                list_config_resources::handle(broker, ctx, r)
            })
        }
        ApiKey::DescribeTopicPartitions => {
            call!(broker, buf, ctx, m::DescribeTopicPartitionsRequest, |r| {
                describe_topic_partitions::handle(broker, ctx, r)
            })
        }
        ApiKey::UpdateFeatures => call!(broker, buf, ctx, m::UpdateFeaturesRequest, |r| {
            update_features::handle(broker, ctx, r)
        }),
        ApiKey::DescribeAcls => call!(broker, buf, ctx, m::DescribeAclsRequest, |r| {
            describe_acls::handle(broker, ctx, r)
        }),
        ApiKey::CreateAcls => call!(broker, buf, ctx, m::CreateAclsRequest, |r| {
            create_acls::handle(broker, ctx, r)
        }),
        ApiKey::DeleteAcls => call!(broker, buf, ctx, m::DeleteAclsRequest, |r| {
            delete_acls::handle(broker, ctx, r)
        }),
        ApiKey::DescribeClientQuotas => {
            call!(broker, buf, ctx, m::DescribeClientQuotasRequest, |r| {
                describe_client_quotas::handle(broker, ctx, r)
            })
        }
        ApiKey::AlterClientQuotas => call!(broker, buf, ctx, m::AlterClientQuotasRequest, |r| {
            alter_client_quotas::handle(broker, ctx, r)
        }),
        ApiKey::ShareGroupHeartbeat => {
            call!(broker, buf, ctx, m::ShareGroupHeartbeatRequest, |r| {
                share_group_heartbeat::handle(broker, ctx, r)
            })
        }
        ApiKey::ShareFetch => call!(broker, buf, ctx, m::ShareFetchRequest, |r| {
            share_fetch::handle(broker, ctx, r)
        }),
        ApiKey::ShareAcknowledge => call!(broker, buf, ctx, m::ShareAcknowledgeRequest, |r| {
            share_acknowledge::handle(broker, ctx, r)
        }),
        ApiKey::ShareGroupDescribe => call!(broker, buf, ctx, m::ShareGroupDescribeRequest, |r| {
            share_group_describe::handle(broker, ctx, r)
        }),
        ApiKey::DescribeShareGroupOffsets => {
            call!(broker, buf, ctx, m::DescribeShareGroupOffsetsRequest, |r| {
                describe_share_group_offsets::handle(broker, ctx, r)
            })
        }
        ApiKey::AlterShareGroupOffsets => {
            call!(broker, buf, ctx, m::AlterShareGroupOffsetsRequest, |r| {
                alter_share_group_offsets::handle(broker, ctx, r)
            })
        }
        ApiKey::DeleteShareGroupOffsets => {
            call!(broker, buf, ctx, m::DeleteShareGroupOffsetsRequest, |r| {
                delete_share_group_offsets::handle(broker, ctx, r)
            })
        }
        ApiKey::InitializeShareGroupState => {
            call!(broker, buf, ctx, m::InitializeShareGroupStateRequest, |r| {
                initialize_share_group_state::handle(broker, ctx, r)
            })
        }
        ApiKey::ReadShareGroupState => {
            call!(broker, buf, ctx, m::ReadShareGroupStateRequest, |r| {
                read_share_group_state::handle(broker, ctx, r)
            })
        }
        ApiKey::WriteShareGroupState => {
            call!(broker, buf, ctx, m::WriteShareGroupStateRequest, |r| {
                write_share_group_state::handle(broker, ctx, r)
            })
        }
        ApiKey::DeleteShareGroupState => {
            call!(broker, buf, ctx, m::DeleteShareGroupStateRequest, |r| {
                delete_share_group_state::handle(broker, ctx, r)
            })
        }
        ApiKey::ReadShareGroupStateSummary => call!(
            broker,
            buf,
            ctx,
            m::ReadShareGroupStateSummaryRequest,
            |r| { read_share_group_state_summary::handle(broker, ctx, r) }
        ),
        other => Outcome::Close(format!("no handler for {other:?}")),
    }
}
