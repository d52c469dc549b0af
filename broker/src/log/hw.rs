//! Replication state of one partition and the high-watermark rule, in one
//! place. The state sits under the partition lock (see `partition`) so the
//! HW, an append's role check and the follower LEOs move together; the
//! leader's side of acks=all (`replica::ack`) waits on the HW computed here,
//! and the ISR upkeep (`replica::isr`) changes the set it counts.

use std::collections::HashMap;
use std::time::Instant;

/// Which side of replication this broker is on for a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Accepts produce; HW = min LEO over the ISR (the local log end when solo).
    Leader,
    /// Appends the leader's batches verbatim; HW follows the leader's.
    Follower,
}

/// What the leader knows about one follower, from its fetches.
#[derive(Debug, Clone, Copy)]
pub struct FollowerState {
    /// The follower's log end offset: its last fetch offset (-1 = unknown yet).
    pub leo: i64,
    /// Last time the follower was known to have everything the leader had (Kafka's lastCaughtUpTime).
    pub caught_up: Instant,
    pub(crate) last_fetch: Instant,
    /// The leader's log end when that last fetch arrived.
    pub(crate) leo_at_last_fetch: i64,
}

/// Replication bookkeeping of one partition. Kept under the partition lock so
/// that the HW, the role check of an append and the follower LEOs move together.
#[derive(Debug)]
pub(crate) struct Repl {
    pub(crate) role: Role,
    pub(crate) epoch: i32,
    /// ISR counted for the HW. Maximal: a member being added counts from the
    /// moment the leader decides to add it (before the znode write), a member
    /// being removed until the write is committed. Fewer than two members:
    /// solo, HW = durable log end (the replication-factor-1 fast path).
    pub(crate) isr: Vec<i32>,
    pub(crate) me: i32,
    pub(crate) followers: HashMap<i32, FollowerState>,
}

/// Leader HW: solo → the written log end; else max(HW, min(written end, LEO of
/// every other ISR member)). A member that has not fetched yet holds it back.
pub(crate) fn recompute_hw(repl: &Repl, durable: i64, hw_now: &mut i64) {
    if repl.role != Role::Leader {
        return;
    }
    if repl.isr.len() < 2 {
        *hw_now = durable;
        return;
    }
    let mut hw = durable;
    for r in &repl.isr {
        if *r == repl.me {
            continue;
        }
        match repl.followers.get(r) {
            Some(f) if f.leo >= 0 => hw = hw.min(f.leo),
            _ => return,
        }
    }
    if hw > *hw_now {
        *hw_now = hw;
    }
}
