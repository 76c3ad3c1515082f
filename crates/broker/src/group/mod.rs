//! The group coordinator: classic consumer groups (JoinGroup/SyncGroup/Heartbeat/
//! LeaveGroup) and committed offsets, persisted in `__consumer_offsets`.
//!
//! # Layout
//! - [`state`]: one group's state machine (Empty, PreparingRebalance,
//!   CompletingRebalance, Stable, Dead). Synchronous and free of wire types: it takes
//!   requests and the time, answers through the responders it holds, and says what to
//!   persist.
//! - [`coordinator`]: the registry of groups. Each live group is owned by one task (an
//!   actor, `task.rs`) that applies commands in order and sleeps until the group's next
//!   deadline (session expiry, rebalance timeout, initial delay, offset expiry), so no
//!   lock is shared between groups and none is held across an `.await`. An idle group's
//!   task unloads itself and leaves only its data (`state/lifecycle.rs`).
//! - `replay.rs`: reading `__consumer_offsets` back into per-group data.
//! - [`records`]: Kafka's key/value schemas for `__consumer_offsets`.
//!
//! # Invariants
//! - A request's effect is in the log before it is answered (commits, assignments).
//! - Replaying `__consumer_offsets` rebuilds every group's offsets and its last stable
//!   membership; the newest record per key wins, a tombstone deletes.
//! - One group's bad request never touches another group: every group is its own task.

pub mod consumer;
pub mod coordinator;
mod replay;
pub mod state;
mod task;

/// The `__consumer_offsets` record codecs (pure, in `gregor-coordinator`).
pub use gregor_coordinator::group::records;

use bytes::Bytes;

pub use coordinator::GroupCoordinator;

/// Why a group operation failed; mapped to a Kafka error code in `crate::error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    #[error("The configured groupId is invalid.")]
    InvalidGroupId,
    #[error("The session timeout is not within the range allowed by the broker.")]
    InvalidSessionTimeout,
    #[error(
        "The group member's supported protocols are incompatible with those of existing members."
    )]
    InconsistentGroupProtocol,
    #[error("The group member needs to have a valid member id before actually entering a consumer group.")]
    MemberIdRequired,
    #[error("The coordinator is not aware of this member.")]
    UnknownMemberId,
    #[error("The broker rejected this static consumer since another consumer with the same group.instance.id has registered with a different member.id.")]
    FencedInstanceId,
    #[error("Specified group generation id is not valid.")]
    IllegalGeneration,
    #[error("The group is rebalancing, so a rejoin is needed.")]
    RebalanceInProgress,
    #[error("The consumer group has reached its max size.")]
    GroupMaxSizeReached,
    #[error("The coordinator is not available.")]
    CoordinatorNotAvailable,
    #[error("This is not the correct coordinator.")]
    NotCoordinator,
    #[error("The group is not empty.")]
    NonEmptyGroup,
    #[error("The group id does not exist.")]
    GroupIdNotFound,
    #[error("The consumer group is actively subscribed to the topic.")]
    GroupSubscribedToTopic,
    #[error("The metadata field of the offset request was too large.")]
    OffsetMetadataTooLarge,
    #[error("This server does not host this topic-partition.")]
    UnknownTopicOrPartition,
    #[error("The request is invalid.")]
    InvalidRequest,
    #[error("The assignor is not supported by the consumer group.")]
    UnsupportedAssignor,
    #[error("The member epoch is fenced by the group coordinator.")]
    FencedMemberEpoch,
    #[error("The member epoch is stale.")]
    StaleMemberEpoch,
    #[error("The version of this request is not supported for this group.")]
    UnsupportedVersion,
    #[error("The regular expression is not valid.")]
    InvalidRegularExpression,
    #[error("storage: {0}")]
    Storage(String),
    #[error(
        "There is a newer producer with the same transactionalId which fences the current one."
    )]
    ProducerFenced,
}

/// Splits a commit's offsets, in request order: those of partitions this broker does not
/// host are refused here (a `Some` slot, UNKNOWN_TOPIC_OR_PARTITION), the rest go to the
/// group (`None` slots, in order, and the offsets).
pub fn split_known(
    offsets: impl IntoIterator<Item = OffsetCommit>,
    hosted: impl Fn(&str, i32) -> bool,
) -> (Vec<Option<GroupError>>, Vec<OffsetCommit>) {
    let mut early = Vec::new();
    let mut known = Vec::new();
    for o in offsets {
        if hosted(&o.topic, o.partition) {
            early.push(None);
            known.push(o);
        } else {
            early.push(Some(GroupError::UnknownTopicOrPartition));
        }
    }
    (early, known)
}

/// Per-partition errors, in request order: a slot the handler decided (`Some` in
/// `early`) keeps its error; the others take, in turn, the group's results, or the
/// group-level error for all of them.
pub fn merge_partition_results(
    early: Vec<Option<GroupError>>,
    group: Result<Vec<Result<(), GroupError>>, GroupError>,
) -> Vec<Option<GroupError>> {
    let mut results = match &group {
        Ok(r) => r.clone().into_iter(),
        Err(_) => Vec::new().into_iter(),
    };
    early
        .into_iter()
        .map(|slot| match slot {
            Some(e) => Some(e),
            None => match &group {
                Err(e) => Some(e.clone()),
                Ok(_) => results.next().and_then(Result::err),
            },
        })
        .collect()
}

/// Limits and timings from the broker config (Kafka's `group.*` and `offsets.*`).
#[derive(Debug, Clone)]
pub struct GroupConfig {
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub initial_rebalance_delay_ms: i32,
    pub max_size: usize,
    pub offsets_retention_ms: i64,
    pub offsets_retention_check_interval_ms: i64,
    pub offset_metadata_max_bytes: usize,
    pub offsets_partitions: i32,
    /// KIP-848: `group.consumer.session.timeout.ms` and `group.consumer.heartbeat.interval.ms`.
    pub consumer_session_timeout_ms: i32,
    pub consumer_heartbeat_interval_ms: i32,
}

/// A JoinGroup request, version differences already resolved by the handler.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    pub client_id: String,
    pub client_host: String,
    /// v4+ (KIP-394): a dynamic member must first obtain its member id.
    pub require_known_member_id: bool,
    /// v9+ (KIP-814): a static leader rejoining a stable group may skip assignment.
    pub supports_skip_assignment: bool,
}

/// A member as the leader sees it in the JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub metadata: Bytes,
}

#[derive(Debug, Clone, Default)]
pub struct JoinResponse {
    pub error: Option<GroupError>,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub skip_assignment: bool,
    pub member_id: String,
    pub members: Vec<JoinedMember>,
}

impl JoinResponse {
    pub fn error(e: GroupError, member_id: String) -> Self {
        Self {
            error: Some(e),
            generation_id: -1,
            member_id,
            ..Self::default()
        }
    }
}

#[derive(Debug, Clone)]
pub struct SyncRequest {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub generation_id: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignments: Vec<(String, Bytes)>,
}

#[derive(Debug, Clone, Default)]
pub struct SyncResponse {
    pub error: Option<GroupError>,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResponse {
    pub fn error(e: GroupError) -> Self {
        Self {
            error: Some(e),
            ..Self::default()
        }
    }
}

#[derive(Debug, Clone)]
pub struct MemberRef {
    pub member_id: String,
    pub group_instance_id: Option<String>,
}

/// One partition's offset to commit.
#[derive(Debug, Clone)]
pub struct OffsetCommit {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

#[derive(Debug, Clone)]
pub struct CommitRequest {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub generation_id: i32,
    pub offsets: Vec<OffsetCommit>,
    /// OffsetCommit version: consumer (KIP-848) groups need v9+.
    pub version: i16,
}

/// A committed offset as OffsetFetch returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    /// An open transaction holds an offset for this partition (UNSTABLE_OFFSET_COMMIT
    /// for readers that require stable offsets).
    pub unstable: bool,
}

/// One member in a DescribeGroups answer.
#[derive(Debug, Clone)]
pub struct MemberDescription {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: Bytes,
    pub assignment: Bytes,
}

#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub group_id: String,
    pub state: state::GroupState,
    /// The state as Kafka names it for this group's type.
    pub state_name: &'static str,
    /// "Classic" or "Consumer" (ListGroups v5).
    pub group_type: &'static str,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<MemberDescription>,
    /// Whether the group exists at all (Dead groups are gone).
    pub exists: bool,
}

/// A KIP-848 member as ConsumerGroupDescribe shows it.
#[derive(Debug, Clone)]
pub struct ConsumerMemberDescription {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub member_epoch: i32,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    /// (topic id, topic name, partitions)
    pub assignment: Vec<(uuid::Uuid, String, Vec<i32>)>,
    pub target_assignment: Vec<(uuid::Uuid, String, Vec<i32>)>,
}

#[derive(Debug, Clone)]
pub struct ConsumerGroupDescription {
    pub state: &'static str,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: String,
    pub members: Vec<ConsumerMemberDescription>,
}
