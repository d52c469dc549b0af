//! Every Kafka error code the broker answers, in one place: the codes come
//! from the kafka-protocol crate's `ResponseError` (never written out by
//! hand), and the internal errors (`log::LogError`, `cluster::AdminError`)
//! map onto them here, so a newcomer finds "which code does a failure send"
//! in one file.
//!
//! The codes are `const` so handlers can `match` on them. The two mapping
//! functions name the leaf error modules of `log` and `cluster`; those modules
//! depend on nothing in the broker, so this creates no cycle.

use kafka_protocol::error::ResponseError as E;

use crate::cluster::admin::AdminError;
use crate::log::error::LogError;
use fjord_kafka::batch::BatchError;

/// No error.
pub const NONE: i16 = 0;
pub const UNKNOWN_SERVER_ERROR: i16 = E::UnknownServerError.code();
pub const OFFSET_OUT_OF_RANGE: i16 = E::OffsetOutOfRange.code();
pub const CORRUPT_MESSAGE: i16 = E::CorruptMessage.code();
pub const INVALID_RECORD: i16 = E::InvalidRecord.code();
pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = E::UnknownTopicOrPartition.code();
pub const LEADER_NOT_AVAILABLE: i16 = E::LeaderNotAvailable.code();
pub const NOT_LEADER_OR_FOLLOWER: i16 = E::NotLeaderOrFollower.code();
pub const REQUEST_TIMED_OUT: i16 = E::RequestTimedOut.code();
pub const MESSAGE_TOO_LARGE: i16 = E::MessageTooLarge.code();
pub const OFFSET_METADATA_TOO_LARGE: i16 = E::OffsetMetadataTooLarge.code();
pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = E::CoordinatorLoadInProgress.code();
pub const COORDINATOR_NOT_AVAILABLE: i16 = E::CoordinatorNotAvailable.code();
pub const NOT_COORDINATOR: i16 = E::NotCoordinator.code();
pub const INVALID_TOPIC_EXCEPTION: i16 = E::InvalidTopicException.code();
pub const NOT_ENOUGH_REPLICAS: i16 = E::NotEnoughReplicas.code();
pub const NOT_ENOUGH_REPLICAS_AFTER_APPEND: i16 = E::NotEnoughReplicasAfterAppend.code();
pub const INVALID_REQUIRED_ACKS: i16 = E::InvalidRequiredAcks.code();
pub const ILLEGAL_GENERATION: i16 = E::IllegalGeneration.code();
pub const INCONSISTENT_GROUP_PROTOCOL: i16 = E::InconsistentGroupProtocol.code();
pub const INVALID_GROUP_ID: i16 = E::InvalidGroupId.code();
pub const UNKNOWN_MEMBER_ID: i16 = E::UnknownMemberId.code();
pub const INVALID_SESSION_TIMEOUT: i16 = E::InvalidSessionTimeout.code();
pub const REBALANCE_IN_PROGRESS: i16 = E::RebalanceInProgress.code();
pub const UNSUPPORTED_VERSION: i16 = E::UnsupportedVersion.code();
// SASL and SCRAM users (broker/src/security, api/scram_users.rs).
pub const UNSUPPORTED_SASL_MECHANISM: i16 = E::UnsupportedSaslMechanism.code();
pub const ILLEGAL_SASL_STATE: i16 = E::IllegalSaslState.code();
pub const SASL_AUTHENTICATION_FAILED: i16 = E::SaslAuthenticationFailed.code();
pub const RESOURCE_NOT_FOUND: i16 = E::ResourceNotFound.code();
pub const DUPLICATE_RESOURCE: i16 = E::DuplicateResource.code();
pub const UNACCEPTABLE_CREDENTIAL: i16 = E::UnacceptableCredential.code();
pub const TOPIC_ALREADY_EXISTS: i16 = E::TopicAlreadyExists.code();
pub const INVALID_PARTITIONS: i16 = E::InvalidPartitions.code();
pub const INVALID_REPLICATION_FACTOR: i16 = E::InvalidReplicationFactor.code();
pub const INVALID_REPLICA_ASSIGNMENT: i16 = E::InvalidReplicaAssignment.code();
pub const INVALID_CONFIG: i16 = E::InvalidConfig.code();
pub const NOT_CONTROLLER: i16 = E::NotController.code();
pub const INVALID_REQUEST: i16 = E::InvalidRequest.code();
pub const UNSUPPORTED_FOR_MESSAGE_FORMAT: i16 = E::UnsupportedForMessageFormat.code();
pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = E::OutOfOrderSequenceNumber.code();
pub const INVALID_PRODUCER_EPOCH: i16 = E::InvalidProducerEpoch.code();
pub const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i16 = E::TransactionalIdAuthorizationFailed.code();
// ACLs (broker/src/acl): what an authorizer refusal answers.
pub const TOPIC_AUTHORIZATION_FAILED: i16 = E::TopicAuthorizationFailed.code();
pub const GROUP_AUTHORIZATION_FAILED: i16 = E::GroupAuthorizationFailed.code();
pub const CLUSTER_AUTHORIZATION_FAILED: i16 = E::ClusterAuthorizationFailed.code();
pub const SECURITY_DISABLED: i16 = E::SecurityDisabled.code();
pub const OPERATION_NOT_ATTEMPTED: i16 = E::OperationNotAttempted.code();
pub const KAFKA_STORAGE_ERROR: i16 = E::KafkaStorageError.code();
pub const NON_EMPTY_GROUP: i16 = E::NonEmptyGroup.code();
pub const GROUP_ID_NOT_FOUND: i16 = E::GroupIdNotFound.code();
pub const TOPIC_DELETION_DISABLED: i16 = E::TopicDeletionDisabled.code();
pub const FENCED_LEADER_EPOCH: i16 = E::FencedLeaderEpoch.code();
pub const UNKNOWN_LEADER_EPOCH: i16 = E::UnknownLeaderEpoch.code();
pub const MEMBER_ID_REQUIRED: i16 = E::MemberIdRequired.code();
pub const FENCED_INSTANCE_ID: i16 = E::FencedInstanceId.code();
pub const GROUP_SUBSCRIBED_TO_TOPIC: i16 = E::GroupSubscribedToTopic.code();

/// The code a log failure answers with.
pub fn log_error(e: &LogError) -> i16 {
    match e {
        LogError::Batch(BatchError::UnsupportedMagic) => UNSUPPORTED_FOR_MESSAGE_FORMAT,
        LogError::Batch(_) => CORRUPT_MESSAGE,
        LogError::OutOfOrderSequence => OUT_OF_ORDER_SEQUENCE_NUMBER,
        LogError::InvalidProducerEpoch => INVALID_PRODUCER_EPOCH,
        LogError::InvalidTxnState => E::InvalidTxnState.code(),
        LogError::CoordinatorFenced => E::TransactionCoordinatorFenced.code(),
        LogError::OffsetOutOfRange => OFFSET_OUT_OF_RANGE,
        LogError::NotLeader => NOT_LEADER_OR_FOLLOWER,
        LogError::Offline
        | LogError::Storage(_)
        | LogError::Db(_)
        | LogError::Stopped
        | LogError::Meta(_)
        | LogError::Open { .. }
        | LogError::NonContiguous { .. } => KAFKA_STORAGE_ERROR,
    }
}

/// The code an admin (cluster-state) failure answers with.
pub fn admin_error(e: &AdminError) -> i16 {
    match e {
        AdminError::TopicExists => TOPIC_ALREADY_EXISTS,
        AdminError::UnknownTopic => UNKNOWN_TOPIC_OR_PARTITION,
        AdminError::InvalidPartitions(_) => INVALID_PARTITIONS,
        AdminError::InvalidReplicationFactor(_) => INVALID_REPLICATION_FACTOR,
        AdminError::InvalidReplicaAssignment(_) => INVALID_REPLICA_ASSIGNMENT,
        AdminError::InvalidConfig(_) => INVALID_CONFIG,
        AdminError::InvalidTopic(_) => INVALID_TOPIC_EXCEPTION,
        AdminError::DeletionDisabled => TOPIC_DELETION_DISABLED,
        AdminError::Timeout => REQUEST_TIMED_OUT,
        AdminError::Unavailable(_) => COORDINATOR_NOT_AVAILABLE,
        AdminError::NotController => NOT_CONTROLLER,
        AdminError::NeedsCoordinator => INVALID_REQUEST,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_the_kafka_numbers_the_clients_expect() {
        // The numbers the pytest suites and clients check, pinned.
        assert_eq!(UNKNOWN_SERVER_ERROR, -1);
        assert_eq!(UNKNOWN_TOPIC_OR_PARTITION, 3);
        assert_eq!(NOT_LEADER_OR_FOLLOWER, 6);
        assert_eq!(TOPIC_ALREADY_EXISTS, 36);
        assert_eq!(INVALID_CONFIG, 40);
        assert_eq!(OUT_OF_ORDER_SEQUENCE_NUMBER, 45);
        assert_eq!(TOPIC_DELETION_DISABLED, 73);
        assert_eq!(GROUP_SUBSCRIBED_TO_TOPIC, 86);
        assert_eq!(admin_error(&AdminError::Unavailable(String::new())), 15);
        assert_eq!(log_error(&LogError::Offline), 56);
    }
}
