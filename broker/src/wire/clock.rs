//! Wall-clock milliseconds since the epoch, the time unit of Kafka's wire
//! (timestamps, commit times, registration stamps). A leaf: used everywhere.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the epoch (0 if the clock is before 1970).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
