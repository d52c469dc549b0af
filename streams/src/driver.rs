//! `TopologyTestDriver`: runs a topology in memory, one task, with time driven by the
//! records piped in (as Kafka Streams' TopologyTestDriver). Records written to repartition
//! topics are fed back in at once; every input is committed, so changelog records and
//! store contents are inspectable after each step.

use std::collections::{BTreeMap, VecDeque};

use crate::error::{Error, Result};
use crate::serdes::Serde;
use crate::store::{Backend, CachedStore, MemKv};
use crate::task::{Output, Task, TaskStats};
use crate::topology::{TopicName, Topology};

/// (key, value, timestamp) as written; None is a null key or value.
pub type RawRecord = (Option<Vec<u8>>, Option<Vec<u8>>, i64);
/// (key, value); a None value is a tombstone.
pub type ChangelogRecord = (Vec<u8>, Option<Vec<u8>>);

pub struct TopologyTestDriver {
    topology: Topology,
    app_id: String,
    task: Task,
    dead_letter: Option<String>,
    /// Every record written to a non-internal topic, by topic, in order.
    outputs: BTreeMap<String, VecDeque<Output>>,
    /// Changelog records per store, in order.
    changelogs: BTreeMap<String, Vec<ChangelogRecord>>,
    topics: BTreeMap<String, TopicName>,
}

impl TopologyTestDriver {
    pub fn new(topology: Topology, app_id: &str) -> Result<Self> {
        let mut stores = BTreeMap::new();
        for spec in topology.stores() {
            stores.insert(
                spec.name.clone(),
                CachedStore::new(spec.clone(), Backend::Mem(MemKv::default()))?,
            );
        }
        let mut topics = BTreeMap::new();
        for t in topology.sources.keys().chain(topology.tables.keys()) {
            topics.insert(Topology::topic(app_id, t), t.clone());
        }
        Ok(TopologyTestDriver {
            topology,
            app_id: app_id.to_string(),
            task: Task::new(0, stores),
            dead_letter: None,
            outputs: BTreeMap::new(),
            changelogs: BTreeMap::new(),
            topics,
        })
    }

    /// Like `errors.dead.letter.queue.topic.name`.
    pub fn with_dead_letter_topic(mut self, topic: &str) -> Self {
        self.dead_letter = Some(topic.to_string());
        self
    }

    /// Pipes one raw record into `topic` with timestamp `ts` (ms) and commits.
    pub fn pipe_raw(
        &mut self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        ts: i64,
    ) -> Result<()> {
        let mut queue = VecDeque::new();
        queue.push_back((
            topic.to_string(),
            key.map(|k| k.to_vec()),
            value.map(|v| v.to_vec()),
            ts,
        ));
        while let Some((t, k, v, ts)) = queue.pop_front() {
            let Some(name) = self.topics.get(&t).cloned() else {
                return Err(Error::Topology(format!(
                    "{t} is not a source topic of the topology"
                )));
            };
            let mut out = Vec::new();
            self.task.process(
                &self.topology,
                &self.app_id,
                &name,
                k.as_deref(),
                v.as_deref(),
                ts,
                self.dead_letter.as_deref(),
                &mut out,
            )?;
            for o in out {
                if o.repartition {
                    queue.push_back((o.topic, o.key, o.value, o.ts));
                } else {
                    self.outputs
                        .entry(o.topic.clone())
                        .or_default()
                        .push_back(o);
                }
            }
        }
        self.commit()
    }

    fn commit(&mut self) -> Result<()> {
        let mut cl = Vec::new();
        self.task.prepare_commit(&self.app_id, 0, &mut cl);
        for o in cl {
            let store = o
                .topic
                .strip_prefix(&format!("{}-", self.app_id))
                .and_then(|s| s.strip_suffix("-changelog"))
                .unwrap_or(&o.topic)
                .to_string();
            self.changelogs
                .entry(store)
                .or_default()
                .push((o.key.unwrap_or_default(), o.value));
        }
        self.task.finish_commit()
    }

    /// Pipes a typed record.
    pub fn pipe<K, V>(
        &mut self,
        topic: &str,
        ks: &impl Serde<K>,
        vs: &impl Serde<V>,
        key: &K,
        value: &V,
        ts: i64,
    ) -> Result<()> {
        let (k, v) = (ks.serialize(key)?, vs.serialize(value)?);
        self.pipe_raw(topic, Some(&k), Some(&v), ts)
    }

    /// Takes every record written to `topic` so far, raw.
    pub fn read_raw(&mut self, topic: &str) -> Vec<RawRecord> {
        self.outputs
            .remove(topic)
            .unwrap_or_default()
            .into_iter()
            .map(|o| (o.key, o.value, o.ts))
            .collect()
    }

    /// Takes every record written to `topic` so far, deserialized.
    pub fn read<K, V>(
        &mut self,
        topic: &str,
        ks: &impl Serde<K>,
        vs: &impl Serde<V>,
    ) -> Result<Vec<(K, V, i64)>> {
        self.read_raw(topic)
            .into_iter()
            .map(|(k, v, ts)| {
                Ok((
                    ks.deserialize(&k.unwrap_or_default())?,
                    vs.deserialize(&v.unwrap_or_default())?,
                    ts,
                ))
            })
            .collect()
    }

    /// The changelog records the store has produced so far (key, value or tombstone).
    pub fn changelog(&self, store: &str) -> Vec<ChangelogRecord> {
        self.changelogs.get(store).cloned().unwrap_or_default()
    }

    /// The committed contents of a store (window stores: keys are 1 + start (8 B BE) + key).
    pub fn store_entries(&self, store: &str) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        match self.task.stores.get(store) {
            Some(s) => s.entries(),
            None => Err(Error::Topology(format!("no store {store}"))),
        }
    }

    pub fn stats(&self) -> TaskStats {
        self.task.stats
    }
}
