//! fjord-zk: ZooKeeper's wire protocol and an async client for it.
//!
//! `jute` is the serialization (ints, strings, buffers, vectors, each length
//! checked before anything is allocated); `proto` holds the records, op codes
//! and error codes of zookeeper.jute, so the coordinator and every client speak
//! one dialect; `client` is the async session (pipelining, pings, reconnects,
//! watches) that the broker, the CLI and the benchmarks use. Nothing here
//! knows about the coordinator's storage or Raft.

pub mod client;
pub mod jute;
pub mod proto;
pub mod tls;
