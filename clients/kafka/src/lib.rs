//! fjord-kafka: the Kafka client every Fjord program shares — the broker's
//! replica fetchers, the `fjord` CLI and the benchmarks.
//!
//! Modules: `client` (connections, version negotiation, one generic
//! request/response call over the kafka-protocol crate's types, metadata and
//! offsets helpers, record batches for producing and consuming), `batch`
//! (record batch v2 headers: parse, CRC, patch), `assignor` (the consumer
//! protocol's subscription/assignment encoding and the range assignor),
//! `member` (one consumer-group member: join, sync, heartbeat, commit, leave),
//! `admin` (the group administration calls kafka-consumer-groups makes),
//! `broker_admin` (one broker's log directory with each replica's size,
//! and its configs: what kafka-log-dirs and kafka-configs --entity-type
//! brokers read), `topic_admin` (create a topic, add partitions, describe and alter its
//! configs: what kafka-topics and kafka-configs send),
//! `security` (TLS and SASL from Kafka client settings; the SCRAM codec the
//! broker shares).
//! Every Kafka error code reaches callers as a [`client::KafkaError`], named
//! through kafka-protocol's `ResponseError`.

pub mod admin;
pub mod assignor;
pub mod batch;
pub mod broker_admin;
pub mod client;
pub mod member;
pub mod security;
#[doc(hidden)]
pub mod testing;
pub mod topic_admin;
pub mod transactions;
