//! Producer id allocation for InitProducerId: ids unique across brokers (low
//! 10 bits = broker id) and across restarts (time-based high bits), the ids
//! whose sequences the log checks for idempotence.

use std::sync::atomic::{AtomicI64, Ordering};

use crate::wire::clock::now_ms;

/// Hands out producer ids for one broker.
pub struct ProducerIds {
    broker_id: i32,
    next: AtomicI64,
}

impl ProducerIds {
    /// An allocator for broker `broker_id`.
    pub fn new(broker_id: i32) -> ProducerIds {
        ProducerIds {
            broker_id,
            next: AtomicI64::new(0),
        }
    }

    /// A fresh producer id, larger than every earlier one from this broker.
    pub fn allocate(&self) -> i64 {
        let fresh = (now_ms() << 10) | (self.broker_id as i64 & 0x3ff);
        let mut cur = self.next.load(Ordering::SeqCst);
        loop {
            let next = fresh.max(cur + 1024);
            match self
                .next
                .compare_exchange(cur, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return next,
                Err(v) => cur = v,
            }
        }
    }
}
