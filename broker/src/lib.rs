//! fjord-broker: the Kafka half of Fjord (docs/architecture.md → Broker).
//!
//! Modules, top down (dependencies point one way; `scripts/check-cycles.py
//! broker/src` checks there is no cycle):
//! * `ops` — the operations endpoints (`metrics.listeners`: `/metrics`,
//!   `/metrics/cluster`, `/health`, `/ready`), beside `server`: reads the
//!   broker's handles;
//! * `server` — listener and connections; hands each decoded request to
//! * `api` — one file per Kafka API group and the one dispatch `match`;
//! * `security` — listeners' TLS and SASL (PLAIN, SCRAM), principals and the
//!   SCRAM credential store; used by `server` (connection states), `api`
//!   (SCRAM user APIs) and `broker` (the store handle);
//! * `broker` — wires the pieces below together (the handles `api` reads);
//! * `acl` — the authorizer (Kafka's AclAuthorizer): ACL model, Kafka's
//!   znode layout, the watch-fed cache and the decision; asked by `api`;
//! * `group` — consumer groups and committed offsets (state, no wire);
//! * `txn` — the transaction coordinator (records, state machine, markers,
//!   timeouts); beside `group`, whose placement and offset paths it uses;
//! * `replica` — roles, follower fetchers, ISR upkeep, acks=all waits;
//! * `registry` — the Schema Registry's REST API and its state in the
//!   coordinator (beside `group`: `broker` wires it);
//! * `log` — the partition log on RocksDB (partition state, group commit,
//!   the high-watermark rule, retention);
//! * `cluster` — cluster state in fjord-coord or standalone, behind one
//!   interface, with the metadata cache and the controller's pure rules;
//! * `wire` — request/response codec, Kafka error codes, the clock;
//! * `metrics` — the counters the layers above count through (atomics,
//!   handed to them as an `Arc<BrokerMetrics>`) and the Prometheus text format.
//!
//! Beside them: `config` (server.properties), `logging` (text or JSON log
//! lines) and `alloc_guard` (the process allocator guard). Record batches and the Kafka client the replica fetchers
//! use come from `fjord-kafka`; the coordinator client from `fjord-zk`.

pub mod acl;
pub mod alloc_guard;
pub mod api;
pub mod broker;
pub mod cluster;
pub mod config;
pub mod group;
pub mod log;
pub mod logging;
pub mod metrics;
pub mod ops;
pub mod registry;
pub mod replica;
pub mod security;
pub mod server;
pub mod txn;
pub mod wire;

pub use broker::Broker;
pub use config::BrokerConfig;
