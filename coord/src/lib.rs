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
//!
//! Security (`security`): the secure client port accepts TLS (`tls`) and
//! hands the decrypted stream to the same `server` path; SASL DIGEST-MD5
//! (`sasl`) runs in `handler` as ZooKeeper's sasl packets.

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
pub mod sasl;
pub mod security;
pub mod server;
pub mod session;
pub mod timings;
pub mod tls;
pub mod tree;
pub mod txnlog;
pub mod watch;
