//! fjord-coord: a coordinator that speaks ZooKeeper's wire protocol.
//!
//! A request flows socket (`server`) → codec (`fjord_zk::jute`,
//! `fjord_zk::proto`) → `handler` (checks, in ZooKeeper's order) → state
//! (`tree`, `watch`, `session`, in `core`) → `txnlog` (fsync, group commit) →
//! reply. The same `proto` records serve the async client
//! (`fjord_zk::client`) that brokers and the CLI use.
//!
//! In ensemble mode (`server.N` lines) a write instead goes socket → codec →
//! `raft` (propose, forward to the leader, persist, replicate) → applied on
//! every member through the same `handler` → state → reply from the member
//! holding the client's connection.

pub mod acl;
pub mod config;
pub mod core;
pub mod diskguard;
pub mod fourlw;
pub mod handler;
pub mod http;
pub mod monitor;
pub mod raft;
pub mod recfile;
pub mod server;
pub mod session;
pub mod timings;
pub mod tree;
pub mod txnlog;
pub mod watch;
