//! The console's own history, for its charts: every
//! `console.sample.interval.ms` it reads every partition's end offset and
//! every group's committed offsets and lag (the calls its pages make) and
//! keeps the last 15 minutes of the produce rate (end offsets advanced per
//! second), the consume rate (committed offsets advanced per second), the
//! total lag and each group's lag; and each topic's size on disk as last
//! seen (DescribeLogDirs, for the topic list). Only what this process saw: nothing
//! survives a restart, and a sample the cluster does not answer is skipped.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use fjord_kafka::admin::TopicPartition;
use fjord_kafka::client::Client;

use crate::cluster::Seen;
use crate::config::ConsoleConfig;
use crate::groups::GroupRow;

/// How far back the charts look.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// A series never holds more points than this (a short interval thins nothing,
/// it just forgets sooner).
const MAX_POINTS: usize = 2000;

/// Points of one chart: (ms since the epoch, value).
pub type Series = VecDeque<(i64, f64)>;

#[derive(Default)]
struct State {
    produce: Series,
    consume: Series,
    total_lag: Series,
    lag: HashMap<String, Series>,
    topics: HashMap<String, TopicFigures>,
    /// Each topic's size on disk (`disk::Disk::topics`) at the latest sample.
    sizes: HashMap<String, i64>,
    last: Option<Last>,
}

/// One topic as of the latest sample, for the topic list.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct TopicFigures {
    /// Messages produced per second since the sample before (None on the first).
    pub rate: Option<f64>,
    /// The lag of the groups with offsets on it, summed (None: no group reads it).
    pub lag: Option<i64>,
}

/// The previous sample, to turn offsets into rates.
struct Last {
    at: Instant,
    ends: HashMap<TopicPartition, i64>,
    committed: HashMap<(String, TopicPartition), i64>,
}

/// The samples so far, shared by the sampler task and the pages.
#[derive(Default)]
pub struct History(Mutex<State>);

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn push(s: &mut Series, at: i64, v: f64) {
    s.push_back((at, v));
    let oldest = at - WINDOW.as_millis() as i64;
    while s.front().is_some_and(|(t, _)| *t < oldest) || s.len() > MAX_POINTS {
        s.pop_front();
    }
}

/// How far the offsets in `new` moved past `old`, over keys in both: a
/// partition that shrank (deleted and recreated) or a group reset backwards
/// counts as 0, not as negative traffic.
pub fn advanced<K: std::hash::Hash + Eq>(old: &HashMap<K, i64>, new: &HashMap<K, i64>) -> i64 {
    new.iter()
        .filter_map(|(k, n)| old.get(k).map(|o| (n - o).max(0)))
        .sum()
}

impl History {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn produce(&self) -> Vec<(i64, f64)> {
        self.state().produce.iter().copied().collect()
    }
    pub fn consume(&self) -> Vec<(i64, f64)> {
        self.state().consume.iter().copied().collect()
    }
    pub fn total_lag(&self) -> Vec<(i64, f64)> {
        self.state().total_lag.iter().copied().collect()
    }
    /// Each topic's rate and group lag as of the latest sample.
    pub fn topics(&self) -> HashMap<String, TopicFigures> {
        self.state().topics.clone()
    }
    /// Each topic's size on disk as of the latest sample that read it.
    pub fn topic_sizes(&self) -> HashMap<String, i64> {
        self.state().sizes.clone()
    }
    pub fn group_lag(&self, group: &str) -> Vec<(i64, f64)> {
        self.state()
            .lag
            .get(group)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Add one sample taken at `at` (wall clock `ms`).
    fn record(
        &self,
        at: Instant,
        ms: i64,
        ends: HashMap<TopicPartition, i64>,
        groups: Vec<GroupRow>,
    ) {
        let committed: HashMap<(String, TopicPartition), i64> = groups
            .iter()
            .flat_map(|g| {
                g.committed
                    .iter()
                    .map(move |(tp, o)| ((g.name.clone(), tp.clone()), *o))
            })
            .collect();
        let mut topics: HashMap<String, TopicFigures> = HashMap::new();
        for g in &groups {
            for (tp, c) in &g.committed {
                if let Some(e) = ends.get(tp) {
                    let f = topics.entry(tp.0.clone()).or_default();
                    f.lag = Some(f.lag.unwrap_or(0) + (e - c).max(0));
                }
            }
        }
        let mut st = self.state();
        if let Some(last) = &st.last {
            let secs = at.duration_since(last.at).as_secs_f64().max(0.001);
            for (tp, n) in &ends {
                if let Some(o) = last.ends.get(tp) {
                    let f = topics.entry(tp.0.clone()).or_default();
                    f.rate = Some(f.rate.unwrap_or(0.0) + (n - o).max(0) as f64 / secs);
                }
            }
            let p = advanced(&last.ends, &ends) as f64 / secs;
            let c = advanced(&last.committed, &committed) as f64 / secs;
            push(&mut st.produce, ms, p);
            push(&mut st.consume, ms, c);
        }
        push(
            &mut st.total_lag,
            ms,
            groups.iter().map(|g| g.lag).sum::<i64>() as f64,
        );
        for g in &groups {
            push(st.lag.entry(g.name.clone()).or_default(), ms, g.lag as f64);
        }
        // Groups gone for the whole window are forgotten.
        let oldest = ms - WINDOW.as_millis() as i64;
        st.lag
            .retain(|_, s| s.back().is_some_and(|(t, _)| *t >= oldest));
        st.topics = topics;
        st.last = Some(Last {
            at,
            ends,
            committed,
        });
    }
}

/// Sample until the process ends (spawned by `main`), into `history`; the
/// brokers it sees alive join `seen`, as a page's would.
pub async fn run(cfg: ConsoleConfig, seen: Arc<Seen>, history: Arc<History>) {
    let mut tick = tokio::time::interval(cfg.sample_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut client: Option<Client> = None;
    // One sample may take as long as a page may.
    let limit = cfg.timeout * 2;
    loop {
        tick.tick().await;
        let once = sample(&cfg, &seen, &history, &mut client);
        match tokio::time::timeout(limit, once).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::debug!(error = %format!("{e:#}"), "sample skipped");
                client = None;
            }
            Err(_) => {
                tracing::debug!("sample skipped: the cluster did not answer in time");
                client = None;
            }
        }
    }
}

async fn sample(
    cfg: &ConsoleConfig,
    seen: &Seen,
    history: &History,
    client: &mut Option<Client>,
) -> anyhow::Result<()> {
    if client.is_none() {
        *client = Some(crate::cluster::connect(&cfg.bootstrap, cfg.timeout).await?);
    }
    let Some(c) = client.as_mut() else {
        return Ok(());
    };
    let snap = crate::cluster::snapshot(c, None, seen).await?;
    let parts: std::collections::BTreeSet<TopicPartition> = snap
        .partitions()
        .map(|(t, p)| (t.name.clone(), p.index))
        .collect();
    let ends = fjord_kafka::admin::offsets_at(c, &parts, -1).await?;
    let groups = crate::groups::list(c).await?;
    history.record(Instant::now(), now_ms(), ends.into_iter().collect(), groups);
    // A broker that cannot say leaves its partitions to their other replicas.
    let disk = crate::disk::read(c, snap.live.keys().copied(), None).await;
    history.state().sizes = disk.topics();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, BTreeSet};

    fn group(name: &str, lag: i64, committed: &[(&str, i32, i64)]) -> GroupRow {
        GroupRow {
            name: name.into(),
            state: "Stable".into(),
            members: 1,
            topics: BTreeSet::new(),
            lag,
            committed: committed
                .iter()
                .map(|(t, p, o)| ((t.to_string(), *p), *o))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    #[test]
    fn rates_from_offsets_moving() {
        let h = History::default();
        let t0 = Instant::now();
        let ends =
            |a: i64, b: i64| HashMap::from([(("t".to_string(), 0), a), (("t".to_string(), 1), b)]);
        h.record(
            t0,
            1_000,
            ends(100, 50),
            vec![group("g", 150, &[("t", 0, 0)])],
        );
        assert!(h.produce().is_empty(), "one sample is no rate yet");
        assert_eq!(h.topics()["t"].rate, None);
        assert_eq!(h.total_lag(), vec![(1_000, 150.0)]);
        // 2 s later: 200 more produced, 40 more committed.
        h.record(
            t0 + Duration::from_secs(2),
            3_000,
            ends(250, 100),
            vec![group("g", 310, &[("t", 0, 40)])],
        );
        assert_eq!(h.produce(), vec![(3_000, 100.0)]);
        let t = h.topics()["t"];
        assert_eq!(t.rate, Some(100.0));
        assert_eq!(t.lag, Some(210)); // committed 40 on partition 0, which ends at 250
        assert_eq!(h.consume(), vec![(3_000, 20.0)]);
        assert_eq!(h.group_lag("g"), vec![(1_000, 150.0), (3_000, 310.0)]);
        // A reset backwards and a recreated (shorter) partition are not traffic.
        h.record(
            t0 + Duration::from_secs(4),
            5_000,
            ends(10, 100),
            vec![group("g", 100, &[("t", 0, 0)])],
        );
        assert_eq!(h.produce().last(), Some(&(5_000, 0.0)));
        assert_eq!(h.consume().last(), Some(&(5_000, 0.0)));
        assert!(h.group_lag("nobody").is_empty());
    }

    #[test]
    fn old_points_age_out() {
        let mut s = Series::new();
        push(&mut s, 0, 1.0);
        push(&mut s, 1_000, 2.0);
        push(&mut s, WINDOW.as_millis() as i64 + 500, 3.0);
        assert_eq!(s.len(), 2);
        assert_eq!(s.front(), Some(&(1_000, 2.0)));
    }
}
