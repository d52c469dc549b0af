//! Replication (docs/architecture.md → Replication): the roles the state
//! znodes give this broker, the follower side (one fetcher task per leader
//! broker, truncating per KIP-101 first), the leader side's ISR upkeep
//! (shrink after `replica.lag.time.max.ms`, expand when caught up, written
//! through `cluster::Cluster`), and acks=all waiting for the high watermark.
//!
//! The HW itself lives in the partition (`log::hw`): the fetch handler
//! records follower LEOs there and the HW moves under the same lock that
//! append and the role check use, so produce never races a demotion.
//!
//! Children: `manager` (state and handles), `roles` (reconcile), `fetcher`,
//! `isr`, `ack`. This file only re-exports; children never reference it.

pub mod ack;
pub mod fetcher;
pub mod isr;
pub mod manager;
pub mod roles;

pub use ack::wait_committed;
pub use isr::isr_loop;
pub use manager::ReplicaManager;
