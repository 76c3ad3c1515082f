//! The share coordinator's pure parts (KIP-932).
//!
//! - [`group`]: a share group's membership and its assignor (every member may get any
//!   partition; more members than partitions wrap around).
//! - [`partition`]: one share-partition's state machine: record states, acquisition
//!   locks, delivery counts, the start offset (SPSO) and end offset (SPEO).
//! - [`state`]: a share-partition's durable state (Kafka's ShareSnapshot) and the
//!   `__share_group_state` record codecs.

pub mod group;
pub mod partition;
pub mod state;

/// Why a share-group operation failed; mapped to a Kafka error code by the broker
/// (`gregor_broker::error::share_error_code`), its one mapping point.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShareError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error(
        "The record state is invalid. The acknowledgement of delivery could not be completed."
    )]
    InvalidRecordState,
    #[error("The coordinator is not aware of this member.")]
    UnknownMemberId,
    #[error("The member epoch is fenced by the group coordinator.")]
    FencedMemberEpoch,
    #[error("The share group has reached its max size.")]
    GroupMaxSizeReached,
    #[error("The share session was not found.")]
    ShareSessionNotFound,
    #[error("The share session epoch is invalid.")]
    InvalidShareSessionEpoch,
    #[error("Group {0} is not a share group.")]
    NotShareGroup(String),
    #[error("The group id does not exist.")]
    GroupIdNotFound,
    #[error("The group is not empty.")]
    NonEmptyGroup,
    #[error("This server does not host this topic-partition.")]
    UnknownTopicOrPartition,
    #[error("The configured groupId is invalid.")]
    InvalidGroupId,
    #[error("share-partition state could not be stored")]
    Storage,
}
