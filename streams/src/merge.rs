//! Timestamp order across the topics one sub-topology reads (Kafka Streams' PartitionGroup,
//! with KIP-695's `max.task.idle.ms`). A stream–table join, or any graph fed by two topics,
//! must see their records in event-time order, not in the order fetches happen to arrive:
//! otherwise a stream record is joined against a table that is missing the update stamped
//! before it (or already holds one stamped after it). Each co-read topic of a task is a
//! lane; the group hands out the lane head with the smallest timestamp, and only once every
//! lane either holds a record or is known to be at its end (so nothing older can still
//! come). Pure logic over any record type: the runtime feeds it librdkafka messages.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// `max.task.idle.ms`: how long a task may wait for a lane that has nothing buffered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskIdle {
    /// -1: never wait; process whatever is buffered (arrival order between lanes).
    Never,
    /// 0 (Kafka's default): wait only while an empty lane may still have records at the
    /// broker (its end not reached yet); a lane at its end holds nothing up.
    UntilCaughtUp,
    /// > 0: as 0, and also wait this long for a lane that is at its end.
    For(Duration),
}

struct Lane<R> {
    queue: VecDeque<(i64, R)>,
    /// The fetcher reached the lane's end (a partition EOF) since its last record.
    at_end: bool,
}

/// The co-read lanes of one task.
pub struct PartitionGroup<R> {
    lanes: Vec<Lane<R>>,
    /// Since when the group has waited only for lanes at their end (`TaskIdle::For`).
    idle_since: Option<Instant>,
}

impl<R> PartitionGroup<R> {
    /// `lanes` lanes; on ties the lower lane index goes first (the runtime puts tables
    /// first, so a stream record sees a table update stamped with the same time).
    pub fn new(lanes: usize) -> Self {
        PartitionGroup {
            lanes: (0..lanes)
                .map(|_| Lane {
                    queue: VecDeque::new(),
                    at_end: false,
                })
                .collect(),
            idle_since: None,
        }
    }

    pub fn push(&mut self, lane: usize, ts: i64, r: R) {
        if let Some(l) = self.lanes.get_mut(lane) {
            l.at_end = false;
            l.queue.push_back((ts, r));
        }
    }

    /// The lane's partition reached its end (EOF).
    pub fn at_end(&mut self, lane: usize) {
        if let Some(l) = self.lanes.get_mut(lane) {
            l.at_end = true;
        }
    }

    /// Records buffered in `lane`.
    pub fn buffered(&self, lane: usize) -> usize {
        self.lanes.get(lane).map_or(0, |l| l.queue.len())
    }

    /// Drops everything buffered and forgets the lanes' ends (after a seek or a rebalance).
    pub fn clear(&mut self) {
        for l in &mut self.lanes {
            l.queue.clear();
            l.at_end = false;
        }
        self.idle_since = None;
    }

    /// The next record in timestamp order with its lane, if the group may go on at `now`.
    pub fn next(&mut self, idle: TaskIdle, now: Instant) -> Option<(usize, R)> {
        let mut best: Option<(usize, i64)> = None;
        let mut waiting_for_data = false;
        let mut waiting_at_end = false;
        for (i, l) in self.lanes.iter().enumerate() {
            match l.queue.front() {
                Some((ts, _)) => {
                    if best.is_none_or(|(_, b)| *ts < b) {
                        best = Some((i, *ts));
                    }
                }
                None if l.at_end => waiting_at_end = true,
                None => waiting_for_data = true,
            }
        }
        let (lane, _) = best?;
        let go = match idle {
            TaskIdle::Never => true,
            TaskIdle::UntilCaughtUp => !waiting_for_data,
            TaskIdle::For(d) => {
                if waiting_for_data {
                    false
                } else if waiting_at_end {
                    let since = *self.idle_since.get_or_insert(now);
                    now.saturating_duration_since(since) >= d
                } else {
                    true
                }
            }
        };
        if !go {
            return None;
        }
        if !waiting_at_end {
            self.idle_since = None;
        }
        self.lanes[lane].queue.pop_front().map(|(_, r)| (lane, r))
    }

    /// When a `TaskIdle::For` wait ends (None: not waiting on time).
    pub fn idle_deadline(&self, idle: TaskIdle) -> Option<Instant> {
        match (idle, self.idle_since) {
            (TaskIdle::For(d), Some(s)) => Some(s + d),
            _ => None,
        }
    }
}

/// A task's group: its partition number and the index of its topic group.
pub type GroupKey = (usize, i32);

/// Every assigned task's groups: which topic partition is which lane of which group.
pub struct Merger<R> {
    /// Each co-read group's topics (resolved names), in lane order (tables first).
    topics: Vec<Vec<String>>,
    by_topic: HashMap<String, usize>,
    /// Per task with two or more of a group's topics assigned: those topics, as lanes.
    active: HashMap<GroupKey, (Vec<String>, PartitionGroup<R>)>,
    pub idle: TaskIdle,
}

impl<R> Merger<R> {
    pub fn new(topics: Vec<Vec<String>>, idle: TaskIdle) -> Self {
        let by_topic = topics
            .iter()
            .enumerate()
            .flat_map(|(g, ts)| ts.iter().map(move |t| (t.clone(), g)))
            .collect();
        Merger {
            topics,
            by_topic,
            active: HashMap::new(),
            idle,
        }
    }

    /// Builds the groups of a new assignment (what was buffered is dropped).
    pub fn assign(&mut self, assigned: &[(String, i32)]) {
        self.active.clear();
        let mut lanes: HashMap<GroupKey, Vec<String>> = HashMap::new();
        for (g, topics) in self.topics.iter().enumerate() {
            for t in topics {
                for (_, p) in assigned.iter().filter(|(at, _)| at == t) {
                    lanes.entry((g, *p)).or_default().push(t.clone());
                }
            }
        }
        for (k, ts) in lanes {
            if ts.len() > 1 {
                let n = ts.len();
                self.active.insert(k, (ts, PartitionGroup::new(n)));
            }
        }
    }

    /// Drops what is buffered and forgets the lanes' ends (after a seek).
    pub fn clear(&mut self) {
        for (_, g) in self.active.values_mut() {
            g.clear();
        }
    }

    /// The group and lane of `topic` [`p`], when its records go through a group.
    pub fn lane(&self, topic: &str, p: i32) -> Option<(GroupKey, usize)> {
        let g = *self.by_topic.get(topic)?;
        let (lanes, _) = self.active.get(&(g, p))?;
        let lane = lanes.iter().position(|t| t == topic)?;
        Some(((g, p), lane))
    }

    pub fn push(&mut self, k: GroupKey, lane: usize, ts: i64, r: R) {
        if let Some((_, g)) = self.active.get_mut(&k) {
            g.push(lane, ts, r);
        }
    }

    /// `topic` [`p`] reached its end; the group that may now go on.
    pub fn eof(&mut self, topic: &str, p: i32) -> Option<GroupKey> {
        let (k, lane) = self.lane(topic, p)?;
        self.active.get_mut(&k)?.1.at_end(lane);
        Some(k)
    }

    pub fn next(&mut self, k: GroupKey, now: Instant) -> Option<R> {
        let idle = self.idle;
        let (_, g) = self.active.get_mut(&k)?;
        g.next(idle, now).map(|(_, r)| r)
    }

    /// The topic of a lane and how many records it holds.
    pub fn buffered(&self, k: GroupKey, lane: usize) -> Option<(&str, usize)> {
        let (lanes, g) = self.active.get(&k)?;
        Some((lanes.get(lane)?.as_str(), g.buffered(lane)))
    }

    /// Groups whose `TaskIdle::For` wait has ended by `now`.
    pub fn due(&self, now: Instant) -> Vec<GroupKey> {
        self.active
            .iter()
            .filter(|(_, (_, g))| g.idle_deadline(self.idle).is_some_and(|d| d <= now))
            .map(|(k, _)| *k)
            .collect()
    }

    /// The topics of a group's lanes, in lane order.
    pub fn lanes_of(&self, k: GroupKey) -> Vec<String> {
        self.active
            .get(&k)
            .map(|(l, _)| l.clone())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(g: &mut PartitionGroup<&'static str>, idle: TaskIdle) -> Vec<&'static str> {
        let now = Instant::now();
        std::iter::from_fn(|| g.next(idle, now).map(|(_, r)| r)).collect()
    }

    #[test]
    fn hands_out_records_in_timestamp_order_across_lanes() {
        let mut g = PartitionGroup::new(2);
        g.push(1, 10, "s10");
        g.push(1, 30, "s30");
        g.push(0, 20, "t20");
        g.push(0, 40, "t40");
        // Lane 0 runs dry after t20 (t40 stays: lane 1 might still bring something older).
        assert_eq!(
            drain(&mut g, TaskIdle::UntilCaughtUp),
            ["s10", "t20", "s30"]
        );
        g.at_end(1);
        assert_eq!(drain(&mut g, TaskIdle::UntilCaughtUp), ["t40"]);
    }

    #[test]
    fn waits_for_a_lane_that_has_not_reached_its_end() {
        let mut g = PartitionGroup::new(2);
        g.push(1, 50, "s50");
        assert!(drain(&mut g, TaskIdle::UntilCaughtUp).is_empty());
        // The table's update stamped earlier arrives late: it still goes first.
        g.push(0, 5, "t5");
        assert_eq!(drain(&mut g, TaskIdle::UntilCaughtUp), ["t5"]);
        g.at_end(0);
        assert_eq!(drain(&mut g, TaskIdle::UntilCaughtUp), ["s50"]);
    }

    #[test]
    fn ties_go_to_the_lower_lane() {
        let mut g = PartitionGroup::new(2);
        g.push(1, 7, "stream");
        g.push(0, 7, "table");
        g.at_end(0);
        g.at_end(1);
        assert_eq!(drain(&mut g, TaskIdle::UntilCaughtUp), ["table", "stream"]);
    }

    #[test]
    fn never_idle_takes_what_is_there() {
        let mut g = PartitionGroup::new(2);
        g.push(1, 50, "s50");
        assert_eq!(drain(&mut g, TaskIdle::Never), ["s50"]);
    }

    #[test]
    fn positive_idle_waits_for_a_lane_at_its_end_then_goes_on() {
        let mut g = PartitionGroup::new(2);
        g.push(1, 50, "s50");
        g.at_end(0);
        let idle = TaskIdle::For(Duration::from_millis(100));
        let t0 = Instant::now();
        assert!(g.next(idle, t0).is_none());
        assert_eq!(g.idle_deadline(idle), Some(t0 + Duration::from_millis(100)));
        assert!(g.next(idle, t0 + Duration::from_millis(99)).is_none());
        assert_eq!(
            g.next(idle, t0 + Duration::from_millis(100))
                .map(|(_, r)| r),
            Some("s50")
        );
        // A record on every lane ends the wait.
        g.push(0, 60, "t60");
        g.push(1, 70, "s70");
        assert_eq!(g.next(idle, t0).map(|(_, r)| r), Some("t60"));
        assert_eq!(g.idle_deadline(idle), None);
    }

    #[test]
    fn merger_groups_only_tasks_with_two_co_read_topics_assigned() {
        let mut m: Merger<&str> = Merger::new(
            vec![vec!["customers".into(), "payments".into()]],
            TaskIdle::UntilCaughtUp,
        );
        m.assign(&[
            ("customers".into(), 0),
            ("payments".into(), 0),
            ("payments".into(), 1),
            ("other".into(), 0),
        ]);
        assert_eq!(
            m.lane("payments", 1),
            None,
            "customers [1] is not assigned here"
        );
        assert_eq!(m.lane("other", 0), None);
        let (k, lane) = m.lane("payments", 0).unwrap();
        assert_eq!((k, lane), ((0, 0), 1));
        m.push(k, lane, 9, "p9");
        assert_eq!(
            m.next(k, Instant::now()),
            None,
            "customers [0] may hold older updates"
        );
        assert_eq!(m.eof("customers", 0), Some(k));
        assert_eq!(m.next(k, Instant::now()), Some("p9"));
    }

    #[test]
    fn a_new_record_clears_the_end_and_clear_forgets_everything() {
        let mut g = PartitionGroup::new(2);
        g.at_end(0);
        g.push(0, 1, "t1");
        g.push(1, 2, "s2");
        assert_eq!(g.buffered(0), 1);
        assert_eq!(drain(&mut g, TaskIdle::UntilCaughtUp), ["t1"]);
        // Lane 0 is empty again and not known to be at its end: s2 waits.
        assert_eq!(g.buffered(1), 1);
        g.clear();
        assert_eq!(g.buffered(1), 0);
        g.push(1, 3, "s3");
        assert!(drain(&mut g, TaskIdle::UntilCaughtUp).is_empty());
    }
}
