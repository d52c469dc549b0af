//! fjord-coord: a coordinator that speaks ZooKeeper's wire protocol.
//!
//! A request flows socket → `jute`/`proto` (codec) → handler → tree → txn log.
//! The same `proto` records serve the async `client` that brokers and the CLI use.

pub mod jute;
pub mod proto;
