//! The Kafka client (replica fetchers use it): moved to `fjord_kafka::client`; re-exported here until the broker's modules import it from there.
pub use fjord_kafka::client::*;
