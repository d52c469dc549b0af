//! The typed topology DSL (as Kafka Streams' StreamsBuilder/KStream/KTable): every method
//! adds a node to the type-erased graph of `topology.rs` with closures that know the types.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::serdes::{I64Serde, Serde};
use crate::topology::{
    AggFn, Cloner, DecodeFn, Dyn, EncodeFn, JoinFn, KeyFn, Node, NodeKind, Rec, Source, StoreSpec,
    TopicName, Topology,
};
use crate::window::{Windowed, Windows};

/// What keys and values must be: cloned when a stream fans out to several children.
pub trait Data: Clone + Send + 'static {}
impl<T: Clone + Send + 'static> Data for T {}

type Shared = Rc<RefCell<(Topology, Vec<String>)>>;
type TsExtractor<K, V> = Arc<dyn Fn(&K, &V, i64) -> i64 + Send + Sync>;

fn cloner<K: Data, V: Data>() -> Cloner {
    Arc::new(|r: &Rec| Rec {
        key: Box::new(key_ref::<K>(r).clone()),
        value: Box::new(val_ref::<V>(r).clone()),
        ts: r.ts,
    })
}

// The graph is built only through this typed API, so a node receives exactly the types its
// closures were written for: a failed downcast is a bug in this file, not bad input.
fn key_ref<K: 'static>(r: &Rec) -> &K {
    r.key
        .downcast_ref::<K>()
        .expect("fjord-streams: key type fixed by the typed builder")
}
fn val_ref<V: 'static>(r: &Rec) -> &V {
    r.value
        .downcast_ref::<V>()
        .expect("fjord-streams: value type fixed by the typed builder")
}
fn take<K: 'static, V: 'static>(r: Rec) -> (K, V, i64) {
    let k = *r
        .key
        .downcast::<K>()
        .expect("fjord-streams: key type fixed by the typed builder");
    let v = *r
        .value
        .downcast::<V>()
        .expect("fjord-streams: value type fixed by the typed builder");
    (k, v, r.ts)
}
fn rec<K: Send + 'static, V: Send + 'static>(k: K, v: V, ts: i64) -> Rec {
    Rec {
        key: Box::new(k) as Dyn,
        value: Box::new(v) as Dyn,
        ts,
    }
}

fn add_node(t: &Shared, parent: Option<usize>, kind: NodeKind, cloner: Cloner) -> usize {
    let mut b = t.borrow_mut();
    let id = b.0.nodes.len();
    b.0.nodes.push(Node {
        kind,
        children: Vec::new(),
        cloner,
    });
    if let Some(p) = parent {
        b.0.nodes[p].children.push(id);
    }
    id
}

/// How a source topic is read: serdes and the timestamp extractor.
pub struct Consumed<K, V> {
    key: Arc<dyn Serde<K>>,
    value: Arc<dyn Serde<V>>,
    ts: Option<TsExtractor<K, V>>,
}

impl<K: Data, V: Data> Consumed<K, V> {
    /// Event time = the record's timestamp (Kafka's default extractor).
    pub fn with(key: impl Serde<K>, value: impl Serde<V>) -> Self {
        Consumed {
            key: Arc::new(key),
            value: Arc::new(value),
            ts: None,
        }
    }

    /// Event time taken from the record itself (a field): `f(key, value, record_ts)`.
    pub fn with_timestamp_extractor(
        mut self,
        f: impl Fn(&K, &V, i64) -> i64 + Send + Sync + 'static,
    ) -> Self {
        self.ts = Some(Arc::new(f));
        self
    }

    fn decode(&self) -> DecodeFn {
        let (ks, vs, ts) = (self.key.clone(), self.value.clone(), self.ts.clone());
        Arc::new(move |k: &[u8], v: &[u8], rts: i64| {
            let key = ks.deserialize(k).map_err(|e| format!("key: {e}"))?;
            let value = vs.deserialize(v).map_err(|e| format!("value: {e}"))?;
            let t = match &ts {
                Some(f) => f(&key, &value, rts),
                None => rts,
            };
            Ok(rec(key, value, t))
        })
    }
}

/// How a stream is written to a topic.
pub struct Produced<K, V> {
    key: Arc<dyn Serde<K>>,
    value: Arc<dyn Serde<V>>,
}

impl<K: Data, V: Data> Produced<K, V> {
    pub fn with(key: impl Serde<K>, value: impl Serde<V>) -> Self {
        Produced {
            key: Arc::new(key),
            value: Arc::new(value),
        }
    }
    fn encode(&self) -> EncodeFn {
        let (ks, vs) = (self.key.clone(), self.value.clone());
        Arc::new(move |r: &Rec| {
            let k = ks
                .serialize(key_ref::<K>(r))
                .map_err(|e| format!("key: {e}"))?;
            let v = vs
                .serialize(val_ref::<V>(r))
                .map_err(|e| format!("value: {e}"))?;
            Ok((k, v))
        })
    }
}

/// A grouping (or repartition): its name gives the internal topic
/// `<application.id>-<name>-repartition`; the serdes write and read it.
pub struct Grouped<K, V> {
    name: String,
    key: Arc<dyn Serde<K>>,
    value: Arc<dyn Serde<V>>,
}

impl<K: Data, V: Data> Grouped<K, V> {
    pub fn with(name: &str, key: impl Serde<K>, value: impl Serde<V>) -> Self {
        Grouped {
            name: name.to_string(),
            key: Arc::new(key),
            value: Arc::new(value),
        }
    }
}

/// Builds a `Topology`.
pub struct StreamsBuilder {
    t: Shared,
}

impl Default for StreamsBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl StreamsBuilder {
    pub fn new() -> Self {
        StreamsBuilder {
            t: Rc::new(RefCell::new((Topology::default(), Vec::new()))),
        }
    }

    /// A record stream read from `topic`.
    pub fn stream<K: Data, V: Data>(&self, topic: &str, consumed: Consumed<K, V>) -> KStream<K, V> {
        let node = add_node(&self.t, None, NodeKind::Pass, cloner::<K, V>());
        self.t
            .borrow_mut()
            .0
            .sources
            .entry(TopicName::User(topic.to_string()))
            .or_default()
            .push(Source {
                node,
                decode: consumed.decode(),
            });
        KStream::new(self.t.clone(), node, false)
    }

    /// A changelog stream read from `topic` into a key-value store named `store` (latest
    /// value per key; a null value deletes). Joinable from a co-partitioned stream.
    pub fn table<K: Data, V: Data>(
        &self,
        topic: &str,
        consumed: Consumed<K, V>,
        store: &str,
    ) -> KTable<K, V> {
        let node = add_node(&self.t, None, NodeKind::Pass, cloner::<K, V>());
        {
            let mut b = self.t.borrow_mut();
            let name = TopicName::User(topic.to_string());
            b.0.tables
                .insert(name, (store.to_string(), node, consumed.decode()));
            b.0.stores.push(StoreSpec {
                name: store.to_string(),
                windows: None,
            });
        }
        KTable {
            t: self.t.clone(),
            node,
            store: store.to_string(),
            key: consumed.key,
            value: consumed.value,
        }
    }

    /// The topology, or what is wrong with it (e.g. a join after a key change).
    pub fn build(self) -> Result<Topology> {
        // Streams and tables built from this builder may still hold it: take the graph out.
        let (topology, errors) = std::mem::take(&mut *self.t.borrow_mut());
        if !errors.is_empty() {
            return Err(Error::Topology(errors.join("; ")));
        }
        let mut names: Vec<&str> = topology.stores.iter().map(|s| s.name.as_str()).collect();
        names.sort();
        let n = names.len();
        names.dedup();
        if names.len() != n {
            return Err(Error::Topology("two state stores share a name".into()));
        }
        Ok(topology)
    }
}

/// An unbounded stream of key-value records.
pub struct KStream<K, V> {
    t: Shared,
    node: usize,
    /// A key-changing operation happened since the last (re)partitioning: grouping and joins
    /// need a repartition topic first, as Kafka Streams decides.
    key_changed: bool,
    _p: PhantomData<fn() -> (K, V)>,
}

impl<K: Data, V: Data> KStream<K, V> {
    fn new(t: Shared, node: usize, key_changed: bool) -> Self {
        KStream {
            t,
            node,
            key_changed,
            _p: PhantomData,
        }
    }

    fn stateless<K2: Data, V2: Data>(
        &self,
        key_changed: bool,
        f: impl Fn(Rec, &mut Vec<Rec>) + Send + Sync + 'static,
    ) -> KStream<K2, V2> {
        let node = add_node(
            &self.t,
            Some(self.node),
            NodeKind::Stateless(Box::new(f)),
            cloner::<K2, V2>(),
        );
        KStream::new(self.t.clone(), node, key_changed)
    }

    pub fn filter(&self, f: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> KStream<K, V> {
        self.stateless(self.key_changed, move |r, out| {
            if f(key_ref::<K>(&r), val_ref::<V>(&r)) {
                out.push(r)
            }
        })
    }

    pub fn filter_not(&self, f: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> KStream<K, V> {
        self.filter(move |k, v| !f(k, v))
    }

    pub fn map<K2: Data, V2: Data>(
        &self,
        f: impl Fn(K, V) -> (K2, V2) + Send + Sync + 'static,
    ) -> KStream<K2, V2> {
        self.stateless(true, move |r, out| {
            let (k, v, ts) = take::<K, V>(r);
            let (k2, v2) = f(k, v);
            out.push(rec(k2, v2, ts))
        })
    }

    pub fn map_values<V2: Data>(
        &self,
        f: impl Fn(&K, V) -> V2 + Send + Sync + 'static,
    ) -> KStream<K, V2> {
        self.stateless(self.key_changed, move |r, out| {
            let (k, v, ts) = take::<K, V>(r);
            let v2 = f(&k, v);
            out.push(rec(k, v2, ts))
        })
    }

    pub fn flat_map<K2: Data, V2: Data, I>(
        &self,
        f: impl Fn(K, V) -> I + Send + Sync + 'static,
    ) -> KStream<K2, V2>
    where
        I: IntoIterator<Item = (K2, V2)>,
    {
        self.stateless(true, move |r, out| {
            let (k, v, ts) = take::<K, V>(r);
            for (k2, v2) in f(k, v) {
                out.push(rec(k2, v2, ts))
            }
        })
    }

    pub fn flat_map_values<V2: Data, I>(
        &self,
        f: impl Fn(&K, V) -> I + Send + Sync + 'static,
    ) -> KStream<K, V2>
    where
        I: IntoIterator<Item = V2>,
    {
        self.stateless(self.key_changed, move |r, out| {
            let (k, v, ts) = take::<K, V>(r);
            for v2 in f(&k, v) {
                out.push(rec(k.clone(), v2, ts))
            }
        })
    }

    /// A new key from the record; grouping or joining afterwards goes through a repartition topic.
    pub fn select_key<K2: Data>(
        &self,
        f: impl Fn(&K, &V) -> K2 + Send + Sync + 'static,
    ) -> KStream<K2, V> {
        self.stateless(true, move |r, out| {
            let (k, v, ts) = take::<K, V>(r);
            let k2 = f(&k, &v);
            out.push(rec(k2, v, ts))
        })
    }

    pub fn peek(&self, f: impl Fn(&K, &V) + Send + Sync + 'static) -> KStream<K, V> {
        self.stateless(self.key_changed, move |r, out| {
            f(key_ref::<K>(&r), val_ref::<V>(&r));
            out.push(r)
        })
    }

    /// Writes the stream to `topic` (partitioned by the producer's partitioner on the key bytes).
    pub fn to(&self, topic: &str, produced: Produced<K, V>) {
        let kind = NodeKind::Sink {
            topic: TopicName::User(topic.to_string()),
            encode: produced.encode(),
        };
        add_node(&self.t, Some(self.node), kind, cloner::<K, V>());
    }

    /// Writes the stream through `<application.id>-<name>-repartition` (partitioned by key)
    /// and reads it back: afterwards records with equal keys are in the same task.
    pub fn repartition(&self, grouped: &Grouped<K, V>) -> KStream<K, V> {
        let topic = TopicName::Repartition(grouped.name.clone());
        let produced = Produced {
            key: grouped.key.clone(),
            value: grouped.value.clone(),
        };
        let kind = NodeKind::Sink {
            topic: topic.clone(),
            encode: produced.encode(),
        };
        add_node(&self.t, Some(self.node), kind, cloner::<K, V>());
        let node = add_node(&self.t, None, NodeKind::Pass, cloner::<K, V>());
        let consumed = Consumed {
            key: grouped.key.clone(),
            value: grouped.value.clone(),
            ts: None,
        };
        self.t
            .borrow_mut()
            .0
            .sources
            .entry(topic)
            .or_default()
            .push(Source {
                node,
                decode: consumed.decode(),
            });
        KStream::new(self.t.clone(), node, false)
    }

    /// Groups by the current key (repartitioning first when the key was changed).
    pub fn group_by_key(&self, grouped: Grouped<K, V>) -> KGroupedStream<K, V> {
        let node = if self.key_changed {
            self.repartition(&grouped).node
        } else {
            self.node
        };
        KGroupedStream {
            t: self.t.clone(),
            node,
            key: grouped.key,
            value: grouped.value,
        }
    }

    /// Inner stream–table join: each stream record looks up the table's current value for its
    /// key; no output when there is none. Stream and table must be co-partitioned.
    pub fn join<VT: Data, VR: Data>(
        &self,
        table: &KTable<K, VT>,
        f: impl Fn(&K, &V, &VT) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        self.join_impl(table, move |k, v, t| t.map(|t| f(k, v, t)))
    }

    /// Left stream–table join: `None` when the table has no value for the key.
    pub fn left_join<VT: Data, VR: Data>(
        &self,
        table: &KTable<K, VT>,
        f: impl Fn(&K, &V, Option<&VT>) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        self.join_impl(table, move |k, v, t| Some(f(k, v, t)))
    }

    fn join_impl<VT: Data, VR: Data>(
        &self,
        table: &KTable<K, VT>,
        f: impl Fn(&K, &V, Option<&VT>) -> Option<VR> + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        if self.key_changed {
            self.t.borrow_mut().1.push(format!(
                "join with table {}: the stream's key was changed; call repartition() first (co-partitioning)",
                table.store
            ));
        }
        let ks = table.key.clone();
        let key: KeyFn = Arc::new(move |r: &Rec| {
            ks.serialize(key_ref::<K>(r))
                .map_err(|e| format!("key: {e}"))
        });
        let vs = table.value.clone();
        let join: JoinFn = Arc::new(move |r: Rec, tv: Option<&[u8]>| {
            let tv = match tv {
                Some(b) => Some(vs.deserialize(b).map_err(|e| format!("table value: {e}"))?),
                None => None,
            };
            let (k, v, ts) = take::<K, V>(r);
            Ok(f(&k, &v, tv.as_ref()).map(|vr| rec(k, vr, ts)))
        });
        let kind = NodeKind::Join {
            store: table.store.clone(),
            key,
            join,
        };
        let node = add_node(&self.t, Some(self.node), kind, cloner::<K, VR>());
        KStream::new(self.t.clone(), node, false)
    }
}

/// A stream grouped by key, ready to aggregate.
pub struct KGroupedStream<K, V> {
    t: Shared,
    node: usize,
    key: Arc<dyn Serde<K>>,
    value: Arc<dyn Serde<V>>,
}

type Step<K, V, VA> = Arc<dyn Fn(&K, &V, Option<VA>) -> VA + Send + Sync>;

/// Gives a closure its higher-ranked signature (inference alone would not).
fn step<K, V, VA>(f: impl Fn(&K, &V, Option<VA>) -> VA + Send + Sync + 'static) -> Step<K, V, VA> {
    Arc::new(f)
}

fn aggregate_node<K: Data, V: Data, VA: Data, KO: Data>(
    t: &Shared,
    parent: usize,
    key: &Arc<dyn Serde<K>>,
    windows: Option<Windows>,
    store: &str,
    serde: Arc<dyn Serde<VA>>,
    step: Step<K, V, VA>,
) -> usize {
    let ks = key.clone();
    let keyf: KeyFn = Arc::new(move |r: &Rec| {
        ks.serialize(key_ref::<K>(r))
            .map_err(|e| format!("key: {e}"))
    });
    let agg: AggFn = Arc::new(
        move |r: &Rec, old: Option<&[u8]>, win: Option<(i64, i64)>| {
            let (k, v) = (key_ref::<K>(r), val_ref::<V>(r));
            let old = match old {
                Some(b) => Some(
                    serde
                        .deserialize(b)
                        .map_err(|e| format!("stored aggregate: {e}"))?,
                ),
                None => None,
            };
            let new = step(k, v, old);
            let bytes = serde
                .serialize(&new)
                .map_err(|e| format!("aggregate: {e}"))?;
            let out_key: Dyn = match win {
                Some((start, end)) => Box::new(Windowed {
                    key: k.clone(),
                    start,
                    end,
                }),
                None => Box::new(k.clone()),
            };
            Ok((
                bytes,
                Rec {
                    key: out_key,
                    value: Box::new(new),
                    ts: r.ts,
                },
            ))
        },
    );
    t.borrow_mut().0.stores.push(StoreSpec {
        name: store.to_string(),
        windows,
    });
    let kind = NodeKind::Aggregate {
        store: store.to_string(),
        key: keyf,
        agg,
        windows,
    };
    add_node(t, Some(parent), kind, cloner::<KO, VA>())
}

impl<K: Data, V: Data> KGroupedStream<K, V> {
    pub fn windowed_by(self, windows: Windows) -> TimeWindowedKStream<K, V> {
        TimeWindowedKStream { g: self, windows }
    }

    fn agg<VA: Data>(
        &self,
        store: &str,
        serde: Arc<dyn Serde<VA>>,
        step: Step<K, V, VA>,
    ) -> KTable<K, VA> {
        let node = aggregate_node::<K, V, VA, K>(
            &self.t,
            self.node,
            &self.key,
            None,
            store,
            serde.clone(),
            step,
        );
        KTable {
            t: self.t.clone(),
            node,
            store: store.to_string(),
            key: self.key.clone(),
            value: serde,
        }
    }

    /// Records per key, in the key-value store `store`.
    pub fn count(&self, store: &str) -> KTable<K, i64> {
        self.agg(
            store,
            Arc::new(I64Serde),
            step(|_, _, old| old.unwrap_or(0) + 1),
        )
    }

    pub fn aggregate<VA: Data>(
        &self,
        init: impl Fn() -> VA + Send + Sync + 'static,
        f: impl Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
        store: &str,
        serde: impl Serde<VA>,
    ) -> KTable<K, VA> {
        self.agg(
            store,
            Arc::new(serde),
            step(move |k, v, old| f(k, v, old.unwrap_or_else(&init))),
        )
    }

    pub fn reduce(
        &self,
        f: impl Fn(V, V) -> V + Send + Sync + 'static,
        store: &str,
    ) -> KTable<K, V> {
        let serde = self.value.clone();
        self.agg(
            store,
            serde,
            step(move |_, v: &V, old| match old {
                None => v.clone(),
                Some(o) => f(o, v.clone()),
            }),
        )
    }
}

/// A grouped stream over time windows.
pub struct TimeWindowedKStream<K, V> {
    g: KGroupedStream<K, V>,
    windows: Windows,
}

impl<K: Data, V: Data> TimeWindowedKStream<K, V> {
    fn agg<VA: Data>(
        &self,
        store: &str,
        serde: Arc<dyn Serde<VA>>,
        step: Step<K, V, VA>,
    ) -> KTable<Windowed<K>, VA> {
        let g = &self.g;
        let node = aggregate_node::<K, V, VA, Windowed<K>>(
            &g.t,
            g.node,
            &g.key,
            Some(self.windows),
            store,
            serde.clone(),
            step,
        );
        KTable {
            t: g.t.clone(),
            node,
            store: store.to_string(),
            key: Arc::new(NoKeySerde),
            value: serde,
        }
    }

    /// Records per key and window, in the window store `store`.
    pub fn count(&self, store: &str) -> KTable<Windowed<K>, i64> {
        self.agg(
            store,
            Arc::new(I64Serde),
            step(|_, _, old| old.unwrap_or(0) + 1),
        )
    }

    pub fn aggregate<VA: Data>(
        &self,
        init: impl Fn() -> VA + Send + Sync + 'static,
        f: impl Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
        store: &str,
        serde: impl Serde<VA>,
    ) -> KTable<Windowed<K>, VA> {
        self.agg(
            store,
            Arc::new(serde),
            step(move |k, v, old| f(k, v, old.unwrap_or_else(&init))),
        )
    }

    pub fn reduce(
        &self,
        f: impl Fn(V, V) -> V + Send + Sync + 'static,
        store: &str,
    ) -> KTable<Windowed<K>, V> {
        let serde = self.g.value.clone();
        self.agg(
            store,
            serde,
            step(move |_, v: &V, old| match old {
                None => v.clone(),
                Some(o) => f(o, v.clone()),
            }),
        )
    }
}

/// Windowed tables are not joinable (their store is keyed by window too): a placeholder serde.
struct NoKeySerde;
impl<K: 'static> Serde<Windowed<K>> for NoKeySerde {
    fn serialize(&self, _: &Windowed<K>) -> Result<Vec<u8>> {
        Err(Error::Serde("windowed table keys are not written".into()))
    }
    fn deserialize(&self, _: &[u8]) -> Result<Windowed<K>> {
        Err(Error::Serde(
            "windowed table keys are not readable back".into(),
        ))
    }
}

/// A changelog view: the latest value per key, materialized in a store.
pub struct KTable<K, V> {
    t: Shared,
    node: usize,
    store: String,
    key: Arc<dyn Serde<K>>,
    value: Arc<dyn Serde<V>>,
}

impl<K: Data, V: Data> KTable<K, V> {
    /// Every update of the table as a record.
    pub fn to_stream(&self) -> KStream<K, V> {
        KStream::new(self.t.clone(), self.node, false)
    }

    pub fn store_name(&self) -> &str {
        &self.store
    }
}
