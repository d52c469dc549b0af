//! acks=all on the leader: a produce answers once the high watermark (the
//! rule in `log::hw`) covers its last offset, the deadline passes, or this
//! replica stops leading.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::log::{Partition, Role};
use crate::wire::error as err;

/// acks=all: wait until the high watermark covers `last` (every ISR member
/// has it), the deadline passes (REQUEST_TIMED_OUT) or this replica stops
/// leading (NOT_LEADER_OR_FOLLOWER: the producer retries on the new leader,
/// idempotence making the retry safe). Solo partitions return at once.
/// Committed while the ISR had shrunk below min.insync.replicas: the batch is
/// in the log but on fewer copies than asked, NOT_ENOUGH_REPLICAS_AFTER_APPEND.
pub async fn wait_committed(
    p: &Arc<Partition>,
    last: i64,
    min_isr: usize,
    deadline: tokio::time::Instant,
) -> i16 {
    let committed = || {
        if p.offsets().high_watermark <= last {
            return None;
        }
        if min_isr > 1 && p.isr_view().0.len().max(1) < min_isr {
            return Some(err::NOT_ENOUGH_REPLICAS_AFTER_APPEND);
        }
        Some(err::NONE)
    };
    if let Some(c) = committed() {
        return c;
    }
    let notify = Arc::new(Notify::new());
    loop {
        p.add_waiter(&notify);
        if let Some(c) = committed() {
            return c;
        }
        if p.role().0 != Role::Leader {
            return err::NOT_LEADER_OR_FOLLOWER;
        }
        tokio::select! {
            _ = notify.notified() => {}
            _ = tokio::time::sleep_until(deadline) => return err::REQUEST_TIMED_OUT,
        }
    }
}
