//! Time windows: tumbling and hopping windows with a grace period, and the windowed key
//! an aggregation over them emits.

use std::time::Duration;

/// A key and the window `[start, end)` (milliseconds since the epoch) it was aggregated in.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Windowed<K> {
    pub key: K,
    pub start: i64,
    pub end: i64,
}

/// How records are grouped in time. A record whose window ended more than `grace` before
/// the task's stream time (the largest timestamp it has seen) is dropped as late, as in
/// Kafka Streams (`windowEnd + grace <= streamTime`).
#[derive(Clone, Copy, Debug)]
pub enum Windows {
    Tumbling {
        size: Duration,
        grace: Duration,
    },
    Hopping {
        size: Duration,
        advance: Duration,
        grace: Duration,
    },
}

impl Windows {
    pub(crate) fn size_ms(&self) -> i64 {
        match self {
            Windows::Tumbling { size, .. } | Windows::Hopping { size, .. } => {
                size.as_millis() as i64
            }
        }
    }

    pub(crate) fn advance_ms(&self) -> i64 {
        match self {
            Windows::Tumbling { size, .. } => size.as_millis() as i64,
            Windows::Hopping { advance, .. } => advance.as_millis() as i64,
        }
    }

    pub(crate) fn grace_ms(&self) -> i64 {
        match self {
            Windows::Tumbling { grace, .. } | Windows::Hopping { grace, .. } => {
                grace.as_millis() as i64
            }
        }
    }

    /// How long a window store keeps a window: its size plus the grace period (what the
    /// changelog's `retention.ms` is set to).
    pub fn retention_ms(&self) -> i64 {
        self.size_ms() + self.grace_ms()
    }

    /// The start of every window containing `ts` (ascending). Kafka's TimeWindows.windowsFor.
    pub(crate) fn starts_for(&self, ts: i64) -> Vec<i64> {
        let (size, adv) = (self.size_ms().max(1), self.advance_ms().max(1));
        let mut start = ((ts - size + adv).max(0) / adv) * adv;
        let mut out = Vec::new();
        while start <= ts {
            if ts < start + size {
                out.push(start);
            }
            start += adv;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tumbling_and_hopping_starts() {
        let t = Windows::Tumbling {
            size: Duration::from_millis(10),
            grace: Duration::ZERO,
        };
        assert_eq!(t.starts_for(0), vec![0]);
        assert_eq!(t.starts_for(9), vec![0]);
        assert_eq!(t.starts_for(10), vec![10]);
        let h = Windows::Hopping {
            size: Duration::from_millis(10),
            advance: Duration::from_millis(5),
            grace: Duration::ZERO,
        };
        assert_eq!(h.starts_for(3), vec![0]);
        assert_eq!(h.starts_for(7), vec![0, 5]);
        assert_eq!(h.starts_for(10), vec![5, 10]);
    }
}
