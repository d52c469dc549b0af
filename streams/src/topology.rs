//! The processor graph a `StreamsBuilder` produces, with types erased: records travel as
//! `Box<dyn Any>` keys and values between nodes whose closures were built by the typed API
//! (so every downcast matches by construction). One graph serves both the Kafka runtime
//! and the in-memory test driver.

use std::any::Any;
use std::collections::BTreeMap;
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
pub(crate) type EncodeFn = Arc<dyn Fn(&Rec) -> (Vec<u8>, Vec<u8>) + Send + Sync>;
pub(crate) type KeyFn = Arc<dyn Fn(&Rec) -> Vec<u8> + Send + Sync>;
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
