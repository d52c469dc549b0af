//! Wire and disk messages that are Fjord's own (not ZooKeeper's or Kafka's).
//!
//! `coord` holds the coordinator's transaction log entries and snapshot records:
//! every non-deterministic input (time, session ids, passwords) is stamped into
//! the entry by the member that sequenced it, so replaying the log on any member
//! (or after a crash) produces the same tree.

/// Coordinator transactions and snapshot records (`proto/coord.proto`).
pub mod coord {
    include!(concat!(env!("OUT_DIR"), "/fjord.coord.rs"));
}

/// The coordinator ensemble's Raft peer messages and log records (`proto/raft.proto`).
pub mod raft {
    include!(concat!(env!("OUT_DIR"), "/fjord.raft.rs"));
}
