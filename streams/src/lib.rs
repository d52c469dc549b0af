//! fjord-streams: stream processing on Kafka (and Fjord) in the manner of Kafka Streams.
//!
//! Build a topology with [`StreamsBuilder`] (`stream`, `filter`, `map`, `flat_map`,
//! `select_key`, `group_by_key`, `windowed_by`, `count`/`aggregate`/`reduce`, `table`, joins,
//! `to`; serdes for JSON, strings, bytes and the Schema Registry's Avro, JSON Schema and
//! Protobuf), then run it with [`KafkaStreams`] against brokers (state in RocksDB, changelog
//! topics, `at_least_once` or `exactly_once_v2`) or with [`TopologyTestDriver`] in memory.

mod builder;
mod checkpoint;
mod config;
mod driver;
mod error;
mod merge;
mod poll;
mod registry_serde;
mod runtime;
mod serdes;
mod store;
mod task;
mod topology;
mod window;

pub use builder::{
    Consumed, Data, Grouped, KGroupedStream, KStream, KTable, Produced, StreamsBuilder,
    TimeWindowedKStream,
};
pub use config::{Guarantee, StreamsConfig};
pub use driver::{ChangelogRecord, RawRecord, TopologyTestDriver};
pub use error::{Error, Result};
pub use fjord_schema::SchemaType;
pub use merge::TaskIdle;
pub use registry_serde::RegistrySerde;
pub use runtime::{KafkaStreams, RunStats};
pub use serdes::{BytesSerde, I64Serde, JsonSerde, Serde, StringSerde, WindowedSerde};
pub use task::TaskStats;
pub use topology::{StoreSpec, Topology};
pub use window::{Windowed, Windows};
