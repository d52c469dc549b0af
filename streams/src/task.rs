//! A task: the topology's processors over one partition number (partition p of every source
//! topic, and changelog partition p of every store), with the task's stores. The Kafka
//! runtime and the test driver both push records through `Task::process`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::store::{window_key, CachedStore};
use crate::topology::{NodeKind, Rec, TopicName, Topology};

/// A record the task wants written.
#[derive(Clone, Debug)]
pub(crate) struct Output {
    pub topic: String,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
    pub ts: i64,
    /// Some for changelog records (the task's partition); None lets the runtime choose
    /// (repartition topics: hash of the key; user topics: the producer's partitioner).
    pub partition: Option<i32>,
    pub repartition: bool,
}

/// Counters a task keeps (summed over tasks by the runtime).
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq, Eq)]
pub struct TaskStats {
    /// Records taken from source topics (user and repartition).
    pub processed: u64,
    /// Records whose window had closed (window end + grace <= stream time): not aggregated.
    pub late_dropped: u64,
    /// Records that could not be deserialized (sent to the dead-letter topic when set).
    pub deserialization_errors: u64,
    pub dead_lettered: u64,
}

impl TaskStats {
    pub fn add(&mut self, o: &TaskStats) {
        self.processed += o.processed;
        self.late_dropped += o.late_dropped;
        self.deserialization_errors += o.deserialization_errors;
        self.dead_lettered += o.dead_lettered;
    }
}

pub(crate) struct Task {
    pub partition: i32,
    pub stores: BTreeMap<String, CachedStore>,
    pub stats: TaskStats,
}

impl Task {
    pub(crate) fn new(partition: i32, stores: BTreeMap<String, CachedStore>) -> Self {
        Task {
            partition,
            stores,
            stats: TaskStats::default(),
        }
    }

    /// One record from `topic` (a resolved source or table topic of the topology).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn process(
        &mut self,
        topo: &Topology,
        app_id: &str,
        topic: &TopicName,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        ts: i64,
        dead_letter: Option<&str>,
        out: &mut Vec<Output>,
    ) -> Result<()> {
        self.stats.processed += 1;
        if let Some((store, node, decode)) = topo.tables.get(topic) {
            if let Some(s) = self.stores.get_mut(store) {
                s.put(key.unwrap_or_default().to_vec(), value.map(|v| v.to_vec()));
            }
            if topo.nodes[*node].children.is_empty() {
                return Ok(());
            }
            if let Some(v) = value {
                if let Ok(rec) = decode(key.unwrap_or_default(), v, ts) {
                    self.forward(topo, app_id, *node, rec, out)?;
                }
            }
            return Ok(());
        }
        let Some(sources) = topo.sources.get(topic) else {
            return Ok(());
        };
        for src in sources {
            match (src.decode)(key.unwrap_or_default(), value.unwrap_or_default(), ts) {
                Ok(rec) => self.run(topo, app_id, src.node, rec, out)?,
                Err(e) => {
                    self.stats.deserialization_errors += 1;
                    let t = Topology::topic(app_id, topic);
                    match dead_letter {
                        Some(dlq) => {
                            tracing::warn!(topic = %t, partition = self.partition, error = %e, dlq, "undeserializable record sent to the dead-letter topic");
                            self.stats.dead_lettered += 1;
                            out.push(Output {
                                topic: dlq.to_string(),
                                key: key.map(|k| k.to_vec()),
                                value: value.map(|v| v.to_vec()),
                                ts,
                                partition: None,
                                repartition: false,
                            });
                        }
                        None => {
                            tracing::warn!(topic = %t, partition = self.partition, error = %e, "undeserializable record skipped")
                        }
                    }
                    break; // one dead letter per record even if several streams read the topic
                }
            }
        }
        Ok(())
    }

    fn forward(
        &mut self,
        topo: &Topology,
        app: &str,
        node: usize,
        rec: Rec,
        out: &mut Vec<Output>,
    ) -> Result<()> {
        let n = &topo.nodes[node];
        let Some((last, rest)) = n.children.split_last() else {
            return Ok(());
        };
        for c in rest {
            let copy = (n.cloner)(&rec);
            self.run(topo, app, *c, copy, out)?;
        }
        self.run(topo, app, *last, rec, out)
    }

    fn run(
        &mut self,
        topo: &Topology,
        app: &str,
        node: usize,
        rec: Rec,
        out: &mut Vec<Output>,
    ) -> Result<()> {
        match &topo.nodes[node].kind {
            NodeKind::Pass => self.forward(topo, app, node, rec, out),
            NodeKind::Stateless(f) => {
                let mut next = Vec::new();
                f(rec, &mut next);
                for r in next {
                    self.forward(topo, app, node, r, out)?;
                }
                Ok(())
            }
            NodeKind::Sink { topic, encode } => {
                // Kafka Streams' default: a record that cannot be serialized stops the task.
                let (k, v) = encode(&rec).map_err(|e| {
                    Error::Serde(format!("writing to {}: {e}", Topology::topic(app, topic)))
                })?;
                out.push(Output {
                    topic: Topology::topic(app, topic),
                    key: Some(k),
                    value: Some(v),
                    ts: rec.ts,
                    partition: None,
                    repartition: matches!(topic, TopicName::Repartition(_)),
                });
                Ok(())
            }
            NodeKind::Aggregate {
                store,
                key,
                agg,
                windows,
            } => {
                let kb = key(&rec).map_err(|e| Error::Serde(format!("store {store}: {e}")))?;
                let part = self.partition;
                let Some(s) = self.stores.get_mut(store) else {
                    return Ok(());
                };
                let mut fwd = Vec::new();
                match windows {
                    None => {
                        let old = s.get(&kb)?;
                        match agg(&rec, old.as_deref(), None) {
                            Ok((bytes, r)) => {
                                s.put(kb, Some(bytes));
                                fwd.push(r);
                            }
                            Err(e) => {
                                tracing::warn!(store = %store, error = %e, "aggregate skipped")
                            }
                        }
                    }
                    Some(w) => {
                        if rec.ts < 0 {
                            tracing::warn!(store = %store, ts = rec.ts, "record with a negative timestamp skipped");
                            return Ok(());
                        }
                        let stream_time = s.observe(rec.ts);
                        for start in w.starts_for(rec.ts) {
                            let end = start + w.size_ms();
                            if end + w.grace_ms() <= stream_time {
                                self.stats.late_dropped += 1;
                                tracing::info!(
                                    store = %store, partition = part, ts = rec.ts, window_start = start,
                                    window_end = end, stream_time, "late record dropped: its window closed (end + grace <= stream time)"
                                );
                                continue;
                            }
                            let wk = window_key(start, &kb);
                            let old = s.get(&wk)?;
                            match agg(&rec, old.as_deref(), Some((start, end))) {
                                Ok((bytes, r)) => {
                                    s.put(wk, Some(bytes));
                                    fwd.push(r);
                                }
                                Err(e) => {
                                    tracing::warn!(store = %store, error = %e, "aggregate skipped")
                                }
                            }
                        }
                    }
                }
                for r in fwd {
                    self.forward(topo, app, node, r, out)?;
                }
                Ok(())
            }
            NodeKind::Join { store, key, join } => {
                let kb = key(&rec).map_err(|e| Error::Serde(format!("store {store}: {e}")))?;
                let tv = match self.stores.get(store) {
                    Some(s) => s.get(&kb)?,
                    None => None,
                };
                match join(rec, tv.as_deref()) {
                    Ok(Some(r)) => self.forward(topo, app, node, r, out),
                    Ok(None) => Ok(()),
                    Err(e) => {
                        tracing::warn!(store = %store, error = %e, "join skipped");
                        Ok(())
                    }
                }
            }
        }
    }

    /// The changelog records of everything written since the last commit, stamped with the
    /// wall clock `now_ms` (so a window changelog's time retention counts from the write,
    /// whatever the event times are).
    pub(crate) fn prepare_commit(&mut self, app_id: &str, now_ms: i64, out: &mut Vec<Output>) {
        for (name, s) in self.stores.iter_mut() {
            let topic = Topology::changelog_topic(app_id, name);
            for (k, v) in s.prepare_commit() {
                out.push(Output {
                    topic: topic.clone(),
                    key: Some(k.clone()),
                    value: v.clone(),
                    ts: now_ms,
                    partition: Some(self.partition),
                    repartition: false,
                });
            }
        }
    }

    pub(crate) fn finish_commit(&mut self) -> Result<()> {
        for s in self.stores.values_mut() {
            s.finish_commit()?;
        }
        Ok(())
    }

    pub(crate) fn rollback(&mut self) -> Result<()> {
        for s in self.stores.values_mut() {
            s.rollback()?;
        }
        Ok(())
    }
}
