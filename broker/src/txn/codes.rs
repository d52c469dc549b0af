//! The Kafka error codes of the transaction APIs (beside `wire::error`'s
//! general ones, which the coordinator also answers).

use kafka_protocol::error::ResponseError as E;

pub use crate::wire::error::{
    COORDINATOR_LOAD_IN_PROGRESS, COORDINATOR_NOT_AVAILABLE, INVALID_PRODUCER_EPOCH,
    INVALID_REQUEST, NONE, NOT_COORDINATOR, UNKNOWN_TOPIC_OR_PARTITION,
};

pub const INVALID_TXN_STATE: i16 = E::InvalidTxnState.code();
pub const INVALID_PRODUCER_ID_MAPPING: i16 = E::InvalidProducerIdMapping.code();
pub const INVALID_TRANSACTION_TIMEOUT: i16 = E::InvalidTransactionTimeout.code();
pub const CONCURRENT_TRANSACTIONS: i16 = E::ConcurrentTransactions.code();
pub const OPERATION_NOT_ATTEMPTED: i16 = E::OperationNotAttempted.code();
pub const PRODUCER_FENCED: i16 = E::ProducerFenced.code();
pub const UNSTABLE_OFFSET_COMMIT: i16 = E::UnstableOffsetCommit.code();
pub const TRANSACTIONAL_ID_NOT_FOUND: i16 = E::TransactionalIdNotFound.code();
