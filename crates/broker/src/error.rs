//! The one place where domain errors become Kafka error codes.
//!
//! Every match is exhaustive with no catch-all arm, so a new domain error cannot reach
//! the wire without someone deciding its code here.

use gregor_metadata::ControllerError;
use gregor_protocol::kp::ResponseError;
use gregor_protocol::BatchError;
use gregor_storage::LogError;

/// Errors of the replica manager (produce, fetch, list offsets on one partition).
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    #[error("This server does not host this topic-partition.")]
    UnknownTopicOrPartition,
    #[error("This server does not host this topic ID.")]
    UnknownTopicId,
    #[error("The request included message batch larger than the configured segment size on the server: {0} bytes")]
    MessageTooLarge(usize),
    #[error("{0}")]
    Batch(#[from] BatchError),
    #[error("{0}")]
    InvalidRecord(String),
    #[error("{0}")]
    InvalidTimestamp(String),
    #[error("The requested offset is not within the range of offsets maintained by the server.")]
    OffsetOutOfRange,
    #[error("The leader epoch in the request is older than the epoch on the broker.")]
    FencedLeaderEpoch,
    #[error("The leader epoch in the request is newer than the epoch on the broker.")]
    UnknownLeaderEpoch,
    #[error("The leader was just elected and its high watermark has not reached the start of its epoch yet.")]
    OffsetNotAvailable,
    #[error("storage: {0}")]
    Storage(LogError),
    #[error("The partition's log could not be opened or its log directory failed; it is offline on this broker.")]
    Offline,
    #[error("For requests intended only for the leader, this error indicates that the broker is not the current leader.")]
    NotLeaderOrFollower,
    #[error("Messages are rejected since there are fewer in-sync replicas than required.")]
    NotEnoughReplicas,
}

impl From<LogError> for ReplicaError {
    fn from(e: LogError) -> Self {
        match e {
            LogError::OffsetOutOfRange { .. } => ReplicaError::OffsetOutOfRange,
            LogError::Batch(b) => ReplicaError::Batch(b),
            other => ReplicaError::Storage(other),
        }
    }
}

impl From<crate::partition::AppendError> for ReplicaError {
    fn from(e: crate::partition::AppendError) -> Self {
        match e {
            crate::partition::AppendError::NotLeader => ReplicaError::NotLeaderOrFollower,
            crate::partition::AppendError::Log(e) => e.into(),
        }
    }
}

/// The Kafka error code for a replica-manager error.
pub fn replica_error_code(e: &ReplicaError) -> ResponseError {
    match e {
        ReplicaError::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
        ReplicaError::Offline => ResponseError::KafkaStorageError,
        ReplicaError::NotLeaderOrFollower => ResponseError::NotLeaderOrFollower,
        ReplicaError::NotEnoughReplicas => ResponseError::NotEnoughReplicas,
        ReplicaError::UnknownTopicId => ResponseError::UnknownTopicId,
        ReplicaError::MessageTooLarge(_) => ResponseError::MessageTooLarge,
        ReplicaError::Batch(b) => batch_error_code(b),
        ReplicaError::InvalidRecord(_) => ResponseError::InvalidRecord,
        ReplicaError::InvalidTimestamp(_) => ResponseError::InvalidTimestamp,
        ReplicaError::OffsetOutOfRange => ResponseError::OffsetOutOfRange,
        ReplicaError::FencedLeaderEpoch => ResponseError::FencedLeaderEpoch,
        ReplicaError::UnknownLeaderEpoch => ResponseError::UnknownLeaderEpoch,
        ReplicaError::OffsetNotAvailable => ResponseError::OffsetNotAvailable,
        ReplicaError::Storage(s) => log_error_code(s),
    }
}

/// A record batch that fails validation: a CRC mismatch or a truncated batch is
/// CORRUPT_MESSAGE (retriable, the bytes were damaged in flight); anything structural is
/// INVALID_RECORD, as Kafka's LogValidator answers. A payload that inflates past the
/// per-batch bound is CORRUPT_MESSAGE too: Kafka streams records out of a compressed
/// batch and has no such bound, but a bomb is no more a valid batch than a damaged one.
pub fn batch_error_code(e: &BatchError) -> ResponseError {
    match e {
        BatchError::CrcMismatch { .. }
        | BatchError::Truncated(_)
        | BatchError::Corrupt(_)
        | BatchError::DecompressedTooLarge { .. } => ResponseError::CorruptMessage,
        BatchError::UnsupportedMagic(_) | BatchError::InvalidRecord(_) => {
            ResponseError::InvalidRecord
        }
        BatchError::UnknownCompression(_) => ResponseError::UnsupportedCompressionType,
    }
}

/// Storage failures are KAFKA_STORAGE_ERROR: the client retries, possibly elsewhere.
pub fn log_error_code(e: &LogError) -> ResponseError {
    match e {
        LogError::Io(_) | LogError::Corrupt { .. } => ResponseError::KafkaStorageError,
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        LogError::Batch(b) => batch_error_code(b),
        LogError::Producer(gregor_storage::producer_state::ProducerError::InvalidEpoch {
            ..
        }) => ResponseError::InvalidProducerEpoch,
        LogError::Producer(gregor_storage::producer_state::ProducerError::OutOfOrder {
            ..
        }) => ResponseError::OutOfOrderSequenceNumber,
        LogError::Producer(gregor_storage::producer_state::ProducerError::CoordinatorFenced {
            ..
        }) => ResponseError::TransactionCoordinatorFenced,
    }
}

/// The Kafka error code for a controller decision.
pub fn controller_error_code(e: &ControllerError) -> ResponseError {
    match e {
        ControllerError::TopicAlreadyExists(_) => ResponseError::TopicAlreadyExists,
        ControllerError::InvalidTopic(_) => ResponseError::InvalidTopicException,
        ControllerError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
        ControllerError::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
        ControllerError::InvalidConfig(_) => ResponseError::InvalidConfig,
        ControllerError::InvalidRequest(_) => ResponseError::InvalidRequest,
        ControllerError::UnknownTopic => ResponseError::UnknownTopicOrPartition,
        ControllerError::UnknownTopicId => ResponseError::UnknownTopicId,
        ControllerError::InvalidUpdateVersion(_) => ResponseError::InvalidUpdateVersion,
        ControllerError::FencedLeaderEpoch(_) => ResponseError::FencedLeaderEpoch,
        ControllerError::NotLeader(_) => ResponseError::NotLeaderOrFollower,
        ControllerError::StaleBrokerEpoch(_) => ResponseError::StaleBrokerEpoch,
        ControllerError::IneligibleReplica(_) => ResponseError::IneligibleReplica,
        ControllerError::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
        ControllerError::NoReassignmentInProgress => ResponseError::NoReassignmentInProgress,
        ControllerError::BrokerIdNotRegistered(_) => ResponseError::BrokerIdNotRegistered,
    }
}

/// The Kafka error code for a refused GetTelemetrySubscriptions or PushTelemetry
/// (KIP-714), as Kafka's `ClientMetricsManager` answers.
pub fn telemetry_error_code(e: &crate::telemetry::TelemetryError) -> ResponseError {
    use crate::telemetry::TelemetryError as T;
    match e {
        T::InvalidClientInstanceId | T::Terminated => ResponseError::InvalidRequest,
        T::UnknownSubscriptionId => ResponseError::UnknownSubscriptionId,
        T::TooEarly => ResponseError::ThrottlingQuotaExceeded,
        T::TooLarge(_) => ResponseError::TelemetryTooLarge,
        T::UnsupportedCompression(_) => ResponseError::UnsupportedCompressionType,
        T::InvalidPayload(_) => ResponseError::InvalidRecord,
    }
}

/// Metadata store failures: a controller refusal keeps its code; I/O is retriable.
pub fn metadata_error_code(e: &gregor_metadata::MetadataError) -> ResponseError {
    use gregor_metadata::MetadataError as M;
    match e {
        M::Controller(c) => controller_error_code(c),
        M::Log(l) => log_error_code(l),
        M::Io(_) | M::Corrupt(_) | M::Batch(_) => ResponseError::KafkaStorageError,
    }
}

/// The Kafka error code for a group-coordinator error. A group's record that cannot be
/// stored is COORDINATOR_NOT_AVAILABLE (retriable), as Kafka answers when the
/// `__consumer_offsets` append fails.
pub fn group_error_code(e: &crate::group::GroupError) -> ResponseError {
    use crate::group::GroupError as G;
    match e {
        G::InvalidGroupId => ResponseError::InvalidGroupId,
        G::InvalidSessionTimeout => ResponseError::InvalidSessionTimeout,
        G::InconsistentGroupProtocol => ResponseError::InconsistentGroupProtocol,
        G::MemberIdRequired => ResponseError::MemberIdRequired,
        G::UnknownMemberId => ResponseError::UnknownMemberId,
        G::FencedInstanceId => ResponseError::FencedInstanceId,
        G::IllegalGeneration => ResponseError::IllegalGeneration,
        G::RebalanceInProgress => ResponseError::RebalanceInProgress,
        G::GroupMaxSizeReached => ResponseError::GroupMaxSizeReached,
        G::CoordinatorNotAvailable | G::Storage(_) => ResponseError::CoordinatorNotAvailable,
        G::NotCoordinator => ResponseError::NotCoordinator,
        G::ProducerFenced => ResponseError::ProducerFenced,
        G::NonEmptyGroup => ResponseError::NonEmptyGroup,
        G::GroupIdNotFound => ResponseError::GroupIdNotFound,
        G::GroupSubscribedToTopic => ResponseError::GroupSubscribedToTopic,
        G::OffsetMetadataTooLarge => ResponseError::OffsetMetadataTooLarge,
        G::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
        G::InvalidRequest => ResponseError::InvalidRequest,
        G::UnsupportedAssignor => ResponseError::UnsupportedAssignor,
        G::FencedMemberEpoch => ResponseError::FencedMemberEpoch,
        G::StaleMemberEpoch => ResponseError::StaleMemberEpoch,
        G::UnsupportedVersion => ResponseError::UnsupportedVersion,
        G::InvalidRegularExpression => ResponseError::InvalidRegularExpression,
    }
}

/// The Kafka error code for a transaction-coordinator error. `fenced_code` is what a
/// fenced producer gets at this request version: PRODUCER_FENCED from the versions
/// KIP-588 added it in, INVALID_PRODUCER_EPOCH before.
pub fn txn_error_code(e: &crate::txn::TxnError, fenced_code: ResponseError) -> ResponseError {
    use crate::txn::TxnError as T;
    match e {
        T::InvalidProducerIdMapping => ResponseError::InvalidProducerIdMapping,
        T::ProducerFenced => fenced_code,
        T::ConcurrentTransactions => ResponseError::ConcurrentTransactions,
        T::InvalidTxnState => ResponseError::InvalidTxnState,
        T::InvalidTransactionTimeout => ResponseError::InvalidTransactionTimeout,
        T::CoordinatorNotAvailable | T::Storage(_) => ResponseError::CoordinatorNotAvailable,
        T::NotCoordinator => ResponseError::NotCoordinator,
        T::TransactionalIdNotFound => ResponseError::TransactionalIdNotFound,
        // Kafka's TransactionCoordinator answers INVALID_REQUEST for an empty id on
        // EndTxn and AddPartitionsToTxn (AddOffsetsToTxn goes the same way). It has no
        // length check (its record serialisation throws); we answer the same code.
        T::EmptyTransactionalId | T::TransactionalIdTooLong => ResponseError::InvalidRequest,
    }
}

/// PRODUCER_FENCED at or above `since` (the version KIP-588 bumped the API to),
/// INVALID_PRODUCER_EPOCH below it.
pub fn fenced_code(version: i16, since: i16) -> ResponseError {
    if version >= since {
        ResponseError::ProducerFenced
    } else {
        ResponseError::InvalidProducerEpoch
    }
}

/// The Kafka error code for a share-group error (KIP-932).
pub fn share_error_code(e: &crate::share::ShareError) -> ResponseError {
    use crate::share::ShareError as S;
    match e {
        S::InvalidRequest(_) => ResponseError::InvalidRequest,
        S::InvalidRecordState => ResponseError::InvalidRecordState,
        S::UnknownMemberId => ResponseError::UnknownMemberId,
        S::FencedMemberEpoch => ResponseError::FencedMemberEpoch,
        S::GroupMaxSizeReached => ResponseError::GroupMaxSizeReached,
        S::ShareSessionNotFound => ResponseError::ShareSessionNotFound,
        S::InvalidShareSessionEpoch => ResponseError::InvalidShareSessionEpoch,
        // Kafka: a group of another type is "not found" for the share APIs.
        S::NotShareGroup(_) | S::GroupIdNotFound => ResponseError::GroupIdNotFound,
        S::NonEmptyGroup => ResponseError::NonEmptyGroup,
        S::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
        S::InvalidGroupId => ResponseError::InvalidGroupId,
        S::Storage => ResponseError::UnknownServerError,
    }
}

/// The Kafka error code for a share coordinator error (APIs 83–87).
pub fn share_state_error_code(e: &crate::share::state::StateError) -> ResponseError {
    use crate::share::state::StateError as S;
    match e {
        S::NotCoordinator => ResponseError::NotCoordinator,
        S::CoordinatorNotAvailable => ResponseError::CoordinatorNotAvailable,
        S::CoordinatorLoadInProgress => ResponseError::CoordinatorLoadInProgress,
        S::FencedLeaderEpoch => ResponseError::FencedLeaderEpoch,
        S::FencedStateEpoch => ResponseError::FencedStateEpoch,
        S::InvalidRequest(_) => ResponseError::InvalidRequest,
        S::Storage(_) => ResponseError::UnknownServerError,
    }
}

/// A share coordinator's answer for one share-partition as wire code and message
/// (`(0, None)` for success; CLUSTER_AUTHORIZATION_FAILED when `authorized` is false).
pub fn share_state_outcome<T>(
    authorized: bool,
    r: &Result<T, crate::share::state::StateError>,
) -> (i16, Option<gregor_protocol::kp::protocol::StrBytes>) {
    use gregor_protocol::kp::protocol::StrBytes;
    if !authorized {
        return (
            ResponseError::ClusterAuthorizationFailed.code(),
            Some(StrBytes::from_static_str("Cluster authorization failed.")),
        );
    }
    match r {
        Ok(_) => (0, None),
        Err(e) => (
            share_state_error_code(e).code(),
            Some(StrBytes::from_string(e.to_string())),
        ),
    }
}

/// A share-group error as wire code and message.
pub fn share_failure(
    e: &crate::share::ShareError,
) -> (i16, Option<gregor_protocol::kp::protocol::StrBytes>) {
    (
        share_error_code(e).code(),
        Some(gregor_protocol::kp::protocol::StrBytes::from_string(
            e.to_string(),
        )),
    )
}

/// The wire code for an optional group error (0 for success).
pub fn group_code(e: Option<&crate::group::GroupError>) -> i16 {
    e.map_or(0, |e| group_error_code(e).code())
}

/// A metadata change that failed: its code and the message for the client.
/// The Kafka error code for a metadata write the controller did not make. Not reaching
/// a controller is retriable (NOT_CONTROLLER, REQUEST_TIMED_OUT), so clients retry.
pub fn controller_failure_code(e: &gregor_metadata::active::ControllerFailure) -> ResponseError {
    use gregor_metadata::active::ControllerFailure as F;
    match e {
        F::NotController { .. } => ResponseError::NotController,
        F::Unavailable(_) => ResponseError::RequestTimedOut,
        F::Refused(c) => controller_error_code(c),
        F::DuplicateBrokerRegistration(_) => ResponseError::DuplicateBrokerRegistration,
        F::StaleBrokerEpoch(_) => ResponseError::StaleBrokerEpoch,
        F::BrokerIdNotRegistered(_) => ResponseError::BrokerIdNotRegistered,
        F::Storage(_) => ResponseError::UnknownServerError,
        F::Membership(m) => match m {
            gregor_metadata::quorum::MembershipError::DuplicateVoter(_) => {
                ResponseError::DuplicateVoter
            }
            gregor_metadata::quorum::MembershipError::VoterNotFound(_) => {
                ResponseError::VoterNotFound
            }
            gregor_metadata::quorum::MembershipError::InvalidVoter(_) => {
                ResponseError::InvalidRequest
            }
        },
    }
}

/// A controller failure as wire code + message.
/// A binding or filter the ACL model refuses: always INVALID_REQUEST, as in Kafka.
pub fn acl_error_code(e: &gregor_security::acl::AclError) -> ResponseError {
    use gregor_security::acl::AclError as A;
    match e {
        A::UnknownCode { .. } | A::UnknownName { .. } | A::Invalid(_) => {
            ResponseError::InvalidRequest
        }
    }
}

pub fn controller_failure(
    e: &gregor_metadata::active::ControllerFailure,
) -> (ResponseError, String) {
    (controller_failure_code(e), e.to_string())
}

pub fn metadata_failure(e: &gregor_metadata::MetadataError) -> (ResponseError, String) {
    let msg = match e {
        gregor_metadata::MetadataError::Controller(c) => c.to_string(),
        other => other.to_string(),
    };
    (metadata_error_code(e), msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_table() {
        let cases: Vec<(ReplicaError, i16)> = vec![
            (ReplicaError::UnknownTopicOrPartition, 3),
            (ReplicaError::Offline, 56),
            (ReplicaError::UnknownTopicId, 100),
            (ReplicaError::MessageTooLarge(1), 10),
            (
                ReplicaError::Batch(BatchError::CrcMismatch {
                    stored: 1,
                    computed: 2,
                }),
                2,
            ),
            (
                ReplicaError::Batch(BatchError::DecompressedTooLarge { limit: 1 }),
                2,
            ),
            (ReplicaError::Batch(BatchError::UnsupportedMagic(1)), 87),
            (ReplicaError::Batch(BatchError::UnknownCompression(7)), 76),
            (ReplicaError::InvalidRecord("x".into()), 87),
            (ReplicaError::InvalidTimestamp("x".into()), 32),
            (ReplicaError::OffsetOutOfRange, 1),
            (ReplicaError::FencedLeaderEpoch, 74),
            (ReplicaError::UnknownLeaderEpoch, 75),
            (ReplicaError::OffsetNotAvailable, 78),
            (
                ReplicaError::Storage(LogError::Io(std::io::Error::other("disk"))),
                56,
            ),
        ];
        for (e, code) in cases {
            assert_eq!(replica_error_code(&e).code(), code, "{e:?}");
        }
        assert_eq!(
            controller_error_code(&ControllerError::TopicAlreadyExists("t".into())).code(),
            36
        );
        assert_eq!(
            controller_error_code(&ControllerError::InvalidTopic("t".into())).code(),
            17
        );
        assert_eq!(
            controller_error_code(&ControllerError::InvalidPartitions("t".into())).code(),
            37
        );
        assert_eq!(
            controller_error_code(&ControllerError::InvalidReplicationFactor("t".into())).code(),
            38
        );
        assert_eq!(
            controller_error_code(&ControllerError::InvalidConfig("t".into())).code(),
            40
        );
        assert_eq!(
            controller_error_code(&ControllerError::InvalidUpdateVersion("t".into())).code(),
            95
        );
        assert_eq!(
            controller_error_code(&ControllerError::InvalidRequest("t".into())).code(),
            42
        );
    }

    #[test]
    fn telemetry_mapping_table() {
        use crate::telemetry::TelemetryError as T;
        let cases = [
            (T::InvalidClientInstanceId, 42),
            (T::Terminated, 42),
            (T::UnknownSubscriptionId, 117),
            (T::TooEarly, 89),
            (T::TooLarge(1), 118),
            (T::UnsupportedCompression(9), 76),
            (T::InvalidPayload("x".into()), 87),
        ];
        for (e, code) in cases {
            assert_eq!(telemetry_error_code(&e).code(), code, "{e:?}");
        }
    }

    #[test]
    fn group_mapping_table() {
        use crate::group::GroupError as G;
        let cases = [
            (G::InvalidGroupId, 24),
            (G::InvalidSessionTimeout, 26),
            (G::InconsistentGroupProtocol, 23),
            (G::MemberIdRequired, 79),
            (G::UnknownMemberId, 25),
            (G::FencedInstanceId, 82),
            (G::IllegalGeneration, 22),
            (G::RebalanceInProgress, 27),
            (G::GroupMaxSizeReached, 81),
            (G::CoordinatorNotAvailable, 15),
            (G::NotCoordinator, 16),
            (G::Storage("x".into()), 15),
            (G::NonEmptyGroup, 68),
            (G::GroupIdNotFound, 69),
            (G::GroupSubscribedToTopic, 86),
            (G::OffsetMetadataTooLarge, 12),
            (G::UnknownTopicOrPartition, 3),
            (G::InvalidRequest, 42),
            (G::UnsupportedAssignor, 112),
            (G::FencedMemberEpoch, 110),
            (G::StaleMemberEpoch, 113),
            (G::UnsupportedVersion, 35),
            (G::InvalidRegularExpression, 128),
        ];
        for (e, code) in cases {
            assert_eq!(group_error_code(&e).code(), code, "{e:?}");
        }
    }
}
