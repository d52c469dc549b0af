//! The processor graph a `StreamsBuilder` produces, with types erased: records travel as
//! `Box<dyn Any>` keys and values between nodes whose closures were built by the typed API
//! (so every downcast matches by construction). One graph serves both the Kafka runtime
//! and the in-memory test driver.

use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::window::Windows;

pub(crate) type Dyn = Box<dyn Any + Send>;

/// A record inside the graph.
pub(crate) struct Rec {
    pub key: Dyn,
    pub value: Dyn,
    pub ts: i64,
}

pub(crate) type Cloner = Arc<dyn Fn(&Rec) -> Rec + Send + Sync>;
pub(crate) type StatelessFn = Box<dyn Fn(Rec, &mut Vec<Rec>) + Send + Sync>;
pub(crate) type EncodeFn = Arc<dyn Fn(&Rec) -> Result<(Vec<u8>, Vec<u8>), String> + Send + Sync>;
pub(crate) type KeyFn = Arc<dyn Fn(&Rec) -> Result<Vec<u8>, String> + Send + Sync>;
/// (record, old aggregate bytes, window start/end) -> (new aggregate bytes, record to forward).
pub(crate) type AggFn = Arc<
    dyn Fn(&Rec, Option<&[u8]>, Option<(i64, i64)>) -> Result<(Vec<u8>, Rec), String> + Send + Sync,
>;
/// (stream record, table value bytes) -> joined record (None: no output).
pub(crate) type JoinFn =
    Arc<dyn Fn(Rec, Option<&[u8]>) -> Result<Option<Rec>, String> + Send + Sync>;
/// (key bytes, value bytes, record timestamp) -> typed record with its event time.
pub(crate) type DecodeFn = Arc<dyn Fn(&[u8], &[u8], i64) -> Result<Rec, String> + Send + Sync>;

/// A topic name; internal ones get the application id prefixed when the topology runs.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum TopicName {
    User(String),
    /// `<application.id>-<name>-repartition`
    Repartition(String),
}

pub(crate) enum NodeKind {
    /// Entry of a source topic (forwards unchanged).
    Pass,
    Stateless(StatelessFn),
    Sink {
        topic: TopicName,
        encode: EncodeFn,
    },
    Aggregate {
        store: String,
        key: KeyFn,
        agg: AggFn,
        windows: Option<Windows>,
    },
    Join {
        store: String,
        key: KeyFn,
        join: JoinFn,
    },
}

pub(crate) struct Node {
    pub kind: NodeKind,
    pub children: Vec<usize>,
    pub cloner: Cloner,
}

pub(crate) struct Source {
    pub node: usize,
    pub decode: DecodeFn,
}

/// What a state store is and how its changelog topic is configured.
#[derive(Clone, Debug)]
pub struct StoreSpec {
    pub name: String,
    /// Some for window stores: the window definition (retention = size + grace).
    pub windows: Option<Windows>,
}

/// A built topology: sources, processors, sinks and state stores.
#[derive(Default)]
pub struct Topology {
    pub(crate) nodes: Vec<Node>,
    pub(crate) sources: BTreeMap<TopicName, Vec<Source>>,
    /// KTable source topics: materialized as raw bytes into the named store, then decoded
    /// and forwarded from the table's node (for `to_stream`).
    pub(crate) tables: BTreeMap<TopicName, (String, usize, DecodeFn)>,
    pub(crate) stores: Vec<StoreSpec>,
}

impl Topology {
    pub(crate) fn topic(app_id: &str, t: &TopicName) -> String {
        match t {
            TopicName::User(s) => s.clone(),
            TopicName::Repartition(n) => format!("{app_id}-{n}-repartition"),
        }
    }

    /// `<application.id>-<store>-changelog`
    pub fn changelog_topic(app_id: &str, store: &str) -> String {
        format!("{app_id}-{store}-changelog")
    }

    /// Every topic the topology reads, resolved for `app_id`.
    pub fn source_topics(&self, app_id: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .sources
            .keys()
            .map(|t| Self::topic(app_id, t))
            .collect();
        v.extend(self.tables.keys().map(|t| Self::topic(app_id, t)));
        v.sort();
        v.dedup();
        v
    }

    /// The repartition topics (internal, created by the runtime).
    pub fn repartition_topics(&self, app_id: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .sources
            .keys()
            .filter(|t| matches!(t, TopicName::Repartition(_)))
            .map(|t| Self::topic(app_id, t))
            .collect();
        v.sort();
        v
    }

    /// User topics read (not internal): their partition count decides the task count.
    pub fn user_source_topics(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .sources
            .keys()
            .chain(self.tables.keys())
            .filter_map(|t| match t {
                TopicName::User(s) => Some(s.clone()),
                _ => None,
            })
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Input topics that feed one sub-topology (a processor or a store reachable from
    /// both), two or more to a group: their records must be taken in timestamp order
    /// ([`crate::merge`]). Tables come first in each group (they win timestamp ties), then
    /// streams, each by name. A repartition topic starts a sub-topology of its own, as in
    /// Kafka Streams, so `payments → select_key → repartition → count` has no group.
    pub(crate) fn co_read_groups(&self) -> Vec<Vec<TopicName>> {
        // What each input topic reaches: node indices and store names.
        let mut inputs: Vec<(TopicName, BTreeSet<String>)> = Vec::new();
        let tables = self.tables.iter().map(|(t, (store, node, _))| {
            let mut seen = BTreeSet::from([format!("store:{store}")]);
            self.reach(*node, &mut seen);
            (t.clone(), seen)
        });
        let streams = self.sources.iter().map(|(t, srcs)| {
            let mut seen = BTreeSet::new();
            for s in srcs {
                self.reach(s.node, &mut seen);
            }
            (t.clone(), seen)
        });
        inputs.extend(tables);
        inputs.extend(streams);
        // Merge groups whose reach overlaps until none do (a handful of topics: quadratic is fine).
        let mut groups: Vec<(Vec<TopicName>, BTreeSet<String>)> = Vec::new();
        for (t, reach) in inputs {
            let mut merged = (vec![t], reach);
            groups.retain(|g| {
                if g.1.is_disjoint(&merged.1) {
                    return true;
                }
                merged.0.extend(g.0.iter().cloned());
                merged.1.extend(g.1.iter().cloned());
                false
            });
            groups.push(merged);
        }
        let mut out: Vec<Vec<TopicName>> = groups
            .into_iter()
            .filter(|g| g.0.len() > 1)
            .map(|(mut topics, _)| {
                topics.sort_by_key(|t| (!self.tables.contains_key(t), t.clone()));
                topics.dedup();
                topics
            })
            .collect();
        out.sort();
        out
    }

    /// The time a record of `topic` is ordered by in a co-read group: its event time as the
    /// topic's (first) reader extracts it, else the record's own timestamp (`ts`).
    pub(crate) fn event_time(
        &self,
        topic: &TopicName,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        ts: i64,
    ) -> i64 {
        let decode = match self.tables.get(topic) {
            Some((_, _, d)) => Some(d),
            None => self
                .sources
                .get(topic)
                .and_then(|s| s.first())
                .map(|s| &s.decode),
        };
        match (decode, value) {
            (Some(d), Some(v)) => d(key.unwrap_or_default(), v, ts).map_or(ts, |r| r.ts),
            _ => ts,
        }
    }

    fn reach(&self, node: usize, seen: &mut BTreeSet<String>) {
        if !seen.insert(format!("node:{node}")) {
            return;
        }
        let Some(n) = self.nodes.get(node) else {
            return;
        };
        match &n.kind {
            NodeKind::Aggregate { store, .. } | NodeKind::Join { store, .. } => {
                seen.insert(format!("store:{store}"));
            }
            _ => {}
        }
        for c in &n.children {
            self.reach(*c, seen);
        }
    }

    pub fn stores(&self) -> &[StoreSpec] {
        &self.stores
    }

    /// A short description (for logs and the README): sources, stores.
    pub fn describe(&self, app_id: &str) -> String {
        format!(
            "sources={:?} repartition={:?} stores={:?} nodes={}",
            self.source_topics(app_id),
            self.repartition_topics(app_id),
            self.stores
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>(),
            self.nodes.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::TopicName;
    use crate::{Consumed, Grouped, StreamsBuilder, StringSerde, Windows};

    fn user(t: &str) -> TopicName {
        TopicName::User(t.into())
    }

    #[test]
    fn a_stream_table_join_reads_both_topics_in_one_group_table_first() {
        let b = StreamsBuilder::new();
        let table = b.table("zz-table", Consumed::with(StringSerde, StringSerde), "t");
        b.stream("aa-stream", Consumed::with(StringSerde, StringSerde))
            .join(&table, |_, v, t| format!("{v}{t}"))
            .to("out", crate::Produced::with(StringSerde, StringSerde));
        b.stream("lonely", Consumed::with(StringSerde, StringSerde))
            .to("out2", crate::Produced::with(StringSerde, StringSerde));
        let t = b.build().unwrap();
        assert_eq!(
            t.co_read_groups(),
            vec![vec![user("zz-table"), user("aa-stream")]]
        );
    }

    #[test]
    fn a_repartition_topic_starts_a_sub_topology_of_its_own() {
        let b = StreamsBuilder::new();
        let s1 = b.stream("a", Consumed::with(StringSerde, StringSerde));
        let s2 = b.stream("b", Consumed::with(StringSerde, StringSerde));
        // Two streams into one sink topic share no processor: no order between them.
        s1.to("out", crate::Produced::with(StringSerde, StringSerde));
        s2.select_key(|_, v| v.clone())
            .group_by_key(Grouped::with("g", StringSerde, StringSerde))
            .windowed_by(Windows::Tumbling {
                size: Duration::from_secs(60),
                grace: Duration::ZERO,
            })
            .count("c");
        assert!(b.build().unwrap().co_read_groups().is_empty());
    }
}
