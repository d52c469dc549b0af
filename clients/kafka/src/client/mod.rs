//! A small async Kafka client (the `fjord` CLI's commands, the broker's
//! replica fetchers): one TCP connection per broker, one request in flight
//! per connection, versions negotiated through ApiVersions, and one generic
//! call ([`Conn::call`], [`Client::call`]) for every request type.
//!
//! Requests and responses are the `kafka-protocol` crate's types. Nothing
//! read from the network is unwrapped: every malformed frame or batch
//! becomes a [`ClientError`]. Files: `error` (what fails), `conn` (one
//! broker), `cluster` (the [`Client`] over all brokers), `records` (record
//! batches in and out), `partitioner` (keys to partitions).

mod cluster;
mod conn;
mod error;
mod partitioner;
mod records;

pub use cluster::{list_offsets_request, BrokerInfo, Client, Node, PartitionInfo, TopicInfo};
pub use conn::{ClientConfig, Conn};
pub use error::{check, ClientError, KafkaError};
pub use partitioner::{murmur2, partition_for_key};
pub use records::{
    decode_records, encode_batch, parse_compression, ConsumedRecord, ProducerRecord,
};
