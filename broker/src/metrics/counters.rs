//! `BrokerMetrics`: what the request path counts. Each count is a relaxed
//! atomic add; per-topic counters live in a `DashMap` keyed by topic name
//! (one shard read lock on the produce path once a topic is known). When
//! `metrics.listeners` is absent the handle is disabled and every method
//! returns at once, so the benchmark's "off" run counts nothing.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;

use super::histogram::Histogram;

/// API keys with their own request counter and histogram (Kafka's keys are
/// all below this); anything above is counted under the last slot.
const API_SLOTS: usize = 128;

/// Kafka's `BrokerState` values (`kafka_server_kafkaserver_brokerstate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum BrokerState {
    NotRunning = 0,
    Starting = 1,
    Running = 3,
    PendingControlledShutdown = 6,
    ShuttingDown = 7,
}

/// One topic's counters (`BrokerTopicMetrics` with a `topic` tag).
#[derive(Default)]
pub struct TopicCounters {
    pub messages_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
}

/// One API's request count and total-time histogram (`RequestMetrics`).
#[derive(Default)]
pub struct ApiStats {
    pub requests: AtomicU64,
    pub total_time: Histogram,
}

/// The broker's counters, shared by everything that counts.
pub struct BrokerMetrics {
    enabled: bool,
    /// All-topic `BrokerTopicMetrics` (no `topic` tag).
    pub all: TopicCounters,
    topics: DashMap<String, Arc<TopicCounters>>,
    pub isr_shrinks: AtomicU64,
    pub isr_expands: AtomicU64,
    apis: Box<[ApiStats]>,
    state: AtomicU8,
    /// Set once the broker has started (its listener accepted work).
    started: AtomicBool,
}

impl BrokerMetrics {
    /// Counters that count (`enabled`) or a handle whose methods do nothing.
    pub fn new(enabled: bool) -> BrokerMetrics {
        BrokerMetrics {
            enabled,
            all: TopicCounters::default(),
            topics: DashMap::new(),
            isr_shrinks: AtomicU64::new(0),
            isr_expands: AtomicU64::new(0),
            apis: (0..API_SLOTS).map(|_| ApiStats::default()).collect(),
            state: AtomicU8::new(BrokerState::Starting as u8),
            started: AtomicBool::new(false),
        }
    }

    /// Whether anything is counted.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    fn topic(&self, name: &str) -> Arc<TopicCounters> {
        if let Some(t) = self.topics.get(name) {
            return t.clone();
        }
        self.topics.entry(name.to_string()).or_default().clone()
    }

    /// Records appended by a produce request (leader side).
    pub fn produced(&self, topic: &str, messages: u64, bytes: u64) {
        if !self.enabled {
            return;
        }
        self.all.messages_in.fetch_add(messages, Ordering::Relaxed);
        self.all.bytes_in.fetch_add(bytes, Ordering::Relaxed);
        let t = self.topic(topic);
        t.messages_in.fetch_add(messages, Ordering::Relaxed);
        t.bytes_in.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Record bytes sent to a consumer (follower fetches are replication, as
    /// Kafka counts them apart).
    pub fn fetched(&self, topic: &str, bytes: u64) {
        if !self.enabled {
            return;
        }
        self.all.bytes_out.fetch_add(bytes, Ordering::Relaxed);
        self.topic(topic)
            .bytes_out
            .fetch_add(bytes, Ordering::Relaxed);
    }

    /// A leader's ISR write that removed (`shrunk`) or added (`expanded`) members.
    pub fn isr_changed(&self, shrunk: bool, expanded: bool) {
        if !self.enabled {
            return;
        }
        if shrunk {
            self.isr_shrinks.fetch_add(1, Ordering::Relaxed);
        }
        if expanded {
            self.isr_expands.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One request answered after `total` (read to response ready).
    pub fn request(&self, api_key: i16, total: Duration) {
        if !self.enabled {
            return;
        }
        let slot = (api_key.max(0) as usize).min(API_SLOTS - 1);
        let s = &self.apis[slot];
        s.requests.fetch_add(1, Ordering::Relaxed);
        s.total_time.record(total);
    }

    /// Per API key that saw requests: (key, stats).
    pub fn apis(&self) -> impl Iterator<Item = (i16, &ApiStats)> {
        self.apis
            .iter()
            .enumerate()
            .filter(|(_, s)| s.requests.load(Ordering::Relaxed) > 0)
            .map(|(i, s)| (i as i16, s))
    }

    /// Per-topic counters, sorted by topic.
    pub fn topics(&self) -> Vec<(String, Arc<TopicCounters>)> {
        let mut v: Vec<_> = self
            .topics
            .iter()
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// Forget a deleted topic's counters.
    pub fn forget_topic(&self, topic: &str) {
        self.topics.remove(topic);
    }

    /// Move the broker's lifecycle state.
    pub fn set_state(&self, s: BrokerState) {
        self.state.store(s as u8, Ordering::SeqCst);
        if s == BrokerState::Running {
            self.started.store(true, Ordering::SeqCst);
        }
    }

    /// The lifecycle state as Kafka numbers it.
    pub fn state(&self) -> u8 {
        self.state.load(Ordering::SeqCst)
    }

    /// True while the broker is running (not starting, not stopping).
    pub fn running(&self) -> bool {
        self.state() == BrokerState::Running as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_only_when_enabled() {
        let on = BrokerMetrics::new(true);
        on.produced("t", 3, 300);
        on.produced("t", 2, 200);
        on.produced("u", 1, 10);
        on.fetched("t", 50);
        on.request(0, Duration::from_millis(2));
        on.isr_changed(true, false);
        assert_eq!(on.all.messages_in.load(Ordering::Relaxed), 6);
        let t = on.topics();
        assert_eq!(t[0].0, "t");
        assert_eq!(t[0].1.bytes_in.load(Ordering::Relaxed), 500);
        assert_eq!(t[0].1.bytes_out.load(Ordering::Relaxed), 50);
        assert_eq!(on.apis().count(), 1);
        assert_eq!(on.isr_shrinks.load(Ordering::Relaxed), 1);
        let off = BrokerMetrics::new(false);
        off.produced("t", 3, 300);
        off.request(0, Duration::from_millis(2));
        assert_eq!(off.all.messages_in.load(Ordering::Relaxed), 0);
        assert!(off.topics().is_empty());
        assert_eq!(off.apis().count(), 0);
    }
}
