//! The request-time quota (`request_percentage`) applied to any response: the time
//! the broker spent on the request is recorded against the client's quota, and the
//! response's `throttle_time_ms` becomes the longer of that throttle and any byte-rate
//! throttle its handler already set. The connection then reads nothing more for that
//! long (see `Connection::muted_until`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use gregor_protocol::kp::messages as m;
use gregor_protocol::kp::messages::ApiKey;

use super::RequestContext;
use crate::broker::Broker;
use crate::quota::{self, QuotaKind};

/// A response that may carry `throttle_time_ms`.
pub trait ThrottleTime {
    fn throttle_time_ms(&mut self) -> Option<&mut i32>;
}

macro_rules! with_field {
    ($($t:ident,)*) => {
        $(impl ThrottleTime for m::$t {
            fn throttle_time_ms(&mut self) -> Option<&mut i32> {
                Some(&mut self.throttle_time_ms)
            }
        })*
    };
}

macro_rules! without_field {
    ($($t:ident,)*) => {
        $(impl ThrottleTime for m::$t {
            fn throttle_time_ms(&mut self) -> Option<&mut i32> {
                None
            }
        })*
    };
}

with_field!(
    AddOffsetsToTxnResponse,
    AddPartitionsToTxnResponse,
    AddRaftVoterResponse,
    AlterConfigsResponse,
    AlterPartitionReassignmentsResponse,
    AlterUserScramCredentialsResponse,
    ApiVersionsResponse,
    ConsumerGroupDescribeResponse,
    ConsumerGroupHeartbeatResponse,
    CreateAclsResponse,
    CreatePartitionsResponse,
    CreateTopicsResponse,
    DeleteAclsResponse,
    DeleteGroupsResponse,
    DeleteRecordsResponse,
    DeleteTopicsResponse,
    DescribeAclsResponse,
    DescribeClusterResponse,
    DescribeConfigsResponse,
    DescribeGroupsResponse,
    DescribeLogDirsResponse,
    DescribeProducersResponse,
    DescribeTopicPartitionsResponse,
    DescribeTransactionsResponse,
    DescribeUserScramCredentialsResponse,
    ElectLeadersResponse,
    EndTxnResponse,
    FetchResponse,
    FindCoordinatorResponse,
    GetTelemetrySubscriptionsResponse,
    HeartbeatResponse,
    IncrementalAlterConfigsResponse,
    InitProducerIdResponse,
    JoinGroupResponse,
    LeaveGroupResponse,
    ListConfigResourcesResponse,
    ListGroupsResponse,
    ListOffsetsResponse,
    ListPartitionReassignmentsResponse,
    ListTransactionsResponse,
    MetadataResponse,
    OffsetCommitResponse,
    OffsetDeleteResponse,
    OffsetFetchResponse,
    OffsetForLeaderEpochResponse,
    ProduceResponse,
    PushTelemetryResponse,
    RemoveRaftVoterResponse,
    SyncGroupResponse,
    TxnOffsetCommitResponse,
    UnregisterBrokerResponse,
    UpdateFeaturesResponse,
    UpdateRaftVoterResponse,
    DescribeClientQuotasResponse,
    AlterClientQuotasResponse,
    ShareGroupHeartbeatResponse,
    ShareGroupDescribeResponse,
    ShareFetchResponse,
    ShareAcknowledgeResponse,
    DescribeShareGroupOffsetsResponse,
    AlterShareGroupOffsetsResponse,
    DeleteShareGroupOffsetsResponse,
);

without_field!(
    DescribeQuorumResponse,
    WriteTxnMarkersResponse,
    InitializeShareGroupStateResponse,
    ReadShareGroupStateResponse,
    WriteShareGroupStateResponse,
    DeleteShareGroupStateResponse,
    ReadShareGroupStateSummaryResponse,
);

/// APIs whose handling time is not charged: ApiVersions (a client must always be able
/// to start), and those that park waiting for others (a fetch's long poll, a group's
/// rebalance), whose wall time is not work done for the client.
fn exempt(key: ApiKey) -> bool {
    matches!(
        key,
        ApiKey::ApiVersions
            | ApiKey::Fetch
            | ApiKey::JoinGroup
            | ApiKey::SyncGroup
            | ApiKey::WriteTxnMarkers
    )
}

/// Records the request's handling time against the client's `request_percentage` and
/// returns the throttle the response carries: the longest of that and what the
/// handler already set (byte rates). Remembered in `ctx` for the connection.
pub fn request_throttle(broker: &Arc<Broker>, ctx: &RequestContext) -> Duration {
    let already = Duration::from_millis(ctx.throttle_ms.load(Ordering::Relaxed));
    let key = ApiKey::try_from(ctx.header.request_api_key).ok();
    if key.is_none_or(exempt) {
        return already;
    }
    let image = broker.metadata.image();
    let recorded = broker.client_quotas.record(
        &image,
        QuotaKind::Request,
        &ctx.principal.name,
        ctx.header.client_id.as_deref().unwrap_or(""),
        quota::request_percentage(ctx.started.elapsed()),
    );
    let throttle = already.max(recorded.throttle);
    ctx.note_throttle(throttle);
    throttle
}

/// Applies [`request_throttle`] to a response.
pub fn apply<R: ThrottleTime>(broker: &Arc<Broker>, ctx: &RequestContext, resp: &mut R) {
    let throttle = request_throttle(broker, ctx);
    if throttle.is_zero() {
        return;
    }
    if let Some(field) = resp.throttle_time_ms() {
        *field = (*field).max(quota::throttle_ms(throttle));
    }
}
