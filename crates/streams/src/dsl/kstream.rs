//! `KStream`: an unbounded stream of independent records.
//!
//! Records with a null value (tombstones, which only reach a stream through
//! `KTable::to_stream`) are passed on by `merge`, `to` and joins' left side drop them;
//! every operation that takes a closure skips them, since there is no value to give it.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use super::builder::Shared;
use super::grouped::KGroupedStream;
use super::{Data, Grouped, KTable, Produced, StreamJoined};
use crate::processor::join::{Joiner, StreamTableJoin};
use crate::processor::stateless::{FnProcessor, PassThrough, SinkProcessor};
use crate::processor::stream_join::{JoinSide, OuterJoin, ValueJoiner};
use crate::processor::{Ctx, ProcessorFactory, TopicName};
use crate::record::DynRecord;
use crate::serde::SerdeRef;
use crate::state::StoreKind;
use crate::window::JoinWindows;
use crate::Consumed;

/// A stream of `(K, V)` records.
pub struct KStream<K, V> {
    pub(crate) b: Shared,
    pub(crate) node: usize,
    /// The key may differ from the partitioning key (set by `map`, `select_key`,
    /// `flat_map`): a grouping or join must repartition first.
    pub(crate) key_changed: bool,
    _types: PhantomData<fn(K, V)>,
}

impl<K: Data, V: Data> Clone for KStream<K, V> {
    fn clone(&self) -> Self {
        KStream::new(self.b.clone(), self.node, self.key_changed)
    }
}

type Step<K, V> = dyn FnMut(K, Option<V>, i64, &mut Ctx<'_>) -> crate::Result<()> + Send;

impl<K: Data, V: Data> KStream<K, V> {
    pub(crate) fn new(b: Shared, node: usize, key_changed: bool) -> Self {
        KStream {
            b,
            node,
            key_changed,
            _types: PhantomData,
        }
    }

    /// Adds a child node running a closure made per task by `make`.
    fn step<K2: Data, V2: Data>(
        &self,
        prefix: &str,
        key_changed: bool,
        make: impl Fn() -> Box<Step<K, V>> + Send + Sync + 'static,
    ) -> KStream<K2, V2> {
        let mut b = self.b.borrow_mut();
        let name = b.name(prefix);
        let pn = name.clone();
        let factory: ProcessorFactory = Arc::new(move || Box::new(FnProcessor::new(&pn, make())));
        let node = b.add_node(name, &[self.node], factory, Vec::new());
        KStream::new(self.b.clone(), node, key_changed)
    }

    /// Keeps the records for which `pred` is true.
    pub fn filter(&self, pred: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> KStream<K, V> {
        let pred = Arc::new(pred);
        self.step("KSTREAM-FILTER", self.key_changed, move || {
            let pred = pred.clone();
            Box::new(move |k, v, ts, ctx| {
                if let Some(v) = v {
                    if pred(&k, &v) {
                        ctx.forward(DynRecord::new(k, Some(v), ts));
                    }
                }
                Ok(())
            })
        })
    }

    /// Drops the records for which `pred` is true.
    pub fn filter_not(
        &self,
        pred: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
    ) -> KStream<K, V> {
        self.filter(move |k, v| !pred(k, v))
    }

    /// A new key and value per record (marks the stream for repartitioning).
    pub fn map<K2: Data, V2: Data>(
        &self,
        f: impl Fn(K, V) -> (K2, V2) + Send + Sync + 'static,
    ) -> KStream<K2, V2> {
        let f = Arc::new(f);
        self.step("KSTREAM-MAP", true, move || {
            let f = f.clone();
            Box::new(move |k, v, ts, ctx| {
                if let Some(v) = v {
                    let (k2, v2) = f(k, v);
                    ctx.forward(DynRecord::new(k2, Some(v2), ts));
                }
                Ok(())
            })
        })
    }

    /// A new value per record; the key is kept (no repartitioning).
    pub fn map_values<V2: Data>(
        &self,
        f: impl Fn(V) -> V2 + Send + Sync + 'static,
    ) -> KStream<K, V2> {
        let f = Arc::new(f);
        self.step("KSTREAM-MAPVALUES", self.key_changed, move || {
            let f = f.clone();
            Box::new(move |k, v, ts, ctx| {
                if let Some(v) = v {
                    ctx.forward(DynRecord::new(k, Some(f(v)), ts));
                }
                Ok(())
            })
        })
    }

    /// Zero or more records per record (marks the stream for repartitioning).
    pub fn flat_map<K2: Data, V2: Data, I>(
        &self,
        f: impl Fn(K, V) -> I + Send + Sync + 'static,
    ) -> KStream<K2, V2>
    where
        I: IntoIterator<Item = (K2, V2)>,
    {
        let f = Arc::new(f);
        self.step("KSTREAM-FLATMAP", true, move || {
            let f = f.clone();
            Box::new(move |k, v, ts, ctx| {
                if let Some(v) = v {
                    for (k2, v2) in f(k, v) {
                        ctx.forward(DynRecord::new(k2, Some(v2), ts));
                    }
                }
                Ok(())
            })
        })
    }

    /// Zero or more values per record, each with the record's key.
    pub fn flat_map_values<V2: Data, I>(
        &self,
        f: impl Fn(V) -> I + Send + Sync + 'static,
    ) -> KStream<K, V2>
    where
        I: IntoIterator<Item = V2>,
    {
        let f = Arc::new(f);
        self.step("KSTREAM-FLATMAPVALUES", self.key_changed, move || {
            let f = f.clone();
            Box::new(move |k: K, v, ts, ctx| {
                if let Some(v) = v {
                    for v2 in f(v) {
                        ctx.forward(DynRecord::new(k.clone(), Some(v2), ts));
                    }
                }
                Ok(())
            })
        })
    }

    /// A new key computed from the record (marks the stream for repartitioning).
    pub fn select_key<K2: Data>(
        &self,
        f: impl Fn(&K, &V) -> K2 + Send + Sync + 'static,
    ) -> KStream<K2, V> {
        let f = Arc::new(f);
        self.step("KSTREAM-KEY-SELECT", true, move || {
            let f = f.clone();
            Box::new(move |k, v, ts, ctx| {
                if let Some(v) = v {
                    ctx.forward(DynRecord::new(f(&k, &v), Some(v), ts));
                }
                Ok(())
            })
        })
    }

    /// Calls `f` on each record and passes it on.
    pub fn peek(&self, f: impl Fn(&K, &V) + Send + Sync + 'static) -> KStream<K, V> {
        let f = Arc::new(f);
        self.step("KSTREAM-PEEK", self.key_changed, move || {
            let f = f.clone();
            Box::new(move |k, v, ts, ctx| {
                if let Some(v) = &v {
                    f(&k, v);
                }
                ctx.forward(DynRecord::new(k, v, ts));
                Ok(())
            })
        })
    }

    /// Calls `f` on each record (a terminal operation).
    pub fn foreach(&self, f: impl Fn(&K, &V) + Send + Sync + 'static) {
        let f = Arc::new(f);
        let _: KStream<K, V> = self.step("KSTREAM-FOREACH", self.key_changed, move || {
            let f = f.clone();
            Box::new(move |k, v, _, _| {
                if let Some(v) = &v {
                    f(&k, v);
                }
                Ok(())
            })
        });
    }

    /// Splits the stream: each record goes to the first branch whose predicate holds.
    pub fn split(&self, prefix: &str) -> BranchedKStream<K, V> {
        BranchedKStream {
            stream: self.clone(),
            prefix: prefix.to_string(),
            branches: Vec::new(),
        }
    }

    /// Both streams' records in one stream.
    pub fn merge(&self, other: &KStream<K, V>) -> KStream<K, V> {
        let mut b = self.b.borrow_mut();
        let name = b.name("KSTREAM-MERGE");
        let node = b.add_node(
            name,
            &[self.node, other.node],
            Arc::new(|| Box::new(PassThrough)),
            Vec::new(),
        );
        KStream::new(self.b.clone(), node, self.key_changed || other.key_changed)
    }

    /// Writes every record to `topic` (null values as tombstones).
    pub fn to(&self, topic: &str, produced: Produced<K, V>) {
        self.add_sink(
            TopicName::User(topic.to_string()),
            produced.key_serde,
            produced.value_serde,
        );
    }

    fn add_sink(&self, topic: TopicName, key_serde: SerdeRef<K>, value_serde: SerdeRef<V>) {
        let mut b = self.b.borrow_mut();
        let name = b.name("KSTREAM-SINK");
        let pn = name.clone();
        let factory: ProcessorFactory = Arc::new(move || {
            Box::new(SinkProcessor {
                name: pn.clone(),
                topic: topic.clone(),
                key_serde: key_serde.clone(),
                value_serde: value_serde.clone(),
            })
        });
        b.add_node(name, &[self.node], factory, Vec::new());
    }

    /// Groups by the current key (repartitioning first if the key was changed).
    pub fn group_by_key(&self, grouped: Grouped<K, V>) -> KGroupedStream<K, V> {
        KGroupedStream::new(self, grouped)
    }

    /// Groups by a new key (always through a repartition topic).
    pub fn group_by<K2: Data>(
        &self,
        selector: impl Fn(&K, &V) -> K2 + Send + Sync + 'static,
        grouped: Grouped<K2, V>,
    ) -> KGroupedStream<K2, V> {
        self.select_key(selector).group_by_key(grouped)
    }

    /// Writes the stream to an internal topic and reads it back, so that records are
    /// partitioned by their current key. Returns the stream read back.
    pub(crate) fn repartition_through(
        &self,
        suffix: &str,
        key_serde: SerdeRef<K>,
        value_serde: SerdeRef<V>,
    ) -> KStream<K, V> {
        let topic = TopicName::Internal(suffix.to_string());
        self.add_sink(topic.clone(), key_serde.clone(), value_serde.clone());
        let sink_node = self.b.borrow().nodes.len() - 1;
        self.b
            .borrow_mut()
            .repartition_topics
            .push((suffix.to_string(), sink_node));
        let source =
            self.b
                .borrow_mut()
                .add_source(topic, Consumed::with(key_serde, value_serde), false);
        KStream::new(self.b.clone(), source, false)
    }

    /// Joins each record with the table's current value for its key; records without a
    /// match are dropped.
    pub fn join<VT: Data, VR: Data>(
        &self,
        table: &KTable<K, VT>,
        joiner: impl Fn(&V, &VT) -> VR + Send + Sync + 'static,
        grouped: Grouped<K, V>,
    ) -> crate::Result<KStream<K, VR>> {
        self.join_inner(
            table,
            Arc::new(move |_, v, vt| vt.map(|vt| joiner(v, vt))),
            grouped,
            "KSTREAM-JOIN",
        )
    }

    /// Like [`join`](Self::join), but records without a match are joined with `None`.
    pub fn left_join<VT: Data, VR: Data>(
        &self,
        table: &KTable<K, VT>,
        joiner: impl Fn(&V, Option<&VT>) -> VR + Send + Sync + 'static,
        grouped: Grouped<K, V>,
    ) -> crate::Result<KStream<K, VR>> {
        self.join_inner(
            table,
            Arc::new(move |_, v, vt| Some(joiner(v, vt))),
            grouped,
            "KSTREAM-LEFTJOIN",
        )
    }

    fn join_inner<VT: Data, VR: Data>(
        &self,
        table: &KTable<K, VT>,
        joiner: Joiner<K, V, VT, VR>,
        grouped: Grouped<K, V>,
        prefix: &str,
    ) -> crate::Result<KStream<K, VR>> {
        let (Some(store), Some(key_serde), Some(table_value_serde)) = (
            table.store.clone(),
            table.key_serde.clone(),
            table.value_serde.clone(),
        ) else {
            return Err(crate::StreamsError::Topology(
                "a stream-table join needs a table materialized from a topic".into(),
            ));
        };
        let left = if self.key_changed {
            let name = grouped
                .name
                .clone()
                .unwrap_or_else(|| self.b.borrow_mut().name(prefix));
            self.repartition_through(
                &format!("{name}-repartition"),
                grouped.key_serde,
                grouped.value_serde,
            )
        } else {
            self.clone()
        };
        let mut b = self.b.borrow_mut();
        let name = b.name(prefix);
        let (pn, ps) = (name.clone(), store.clone());
        let factory: ProcessorFactory = Arc::new(move || {
            Box::new(StreamTableJoin {
                name: pn.clone(),
                store: ps.clone(),
                key_serde: key_serde.clone(),
                table_value_serde: table_value_serde.clone(),
                joiner: joiner.clone(),
            })
        });
        let node = b.add_node(name, &[left.node], factory, vec![store]);
        Ok(KStream::new(self.b.clone(), node, false))
    }
}

impl<K: Data, V: Data> KStream<K, V> {
    /// Stream-stream inner join: each record joins every record of `other` with the same
    /// key whose timestamp is within `windows` (in both directions: whichever arrives
    /// second produces the result, with its own timestamp).
    pub fn join_windowed<VO: Data, VR: Data>(
        &self,
        other: &KStream<K, VO>,
        joiner: impl Fn(&V, &VO) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined<K, V, VO>,
    ) -> KStream<K, VR> {
        let joiner = Arc::new(move |_: &K, v: Option<&V>, o: Option<&VO>| match (v, o) {
            (Some(v), Some(o)) => Some(joiner(v, o)),
            _ => None,
        });
        self.stream_join(
            other,
            joiner,
            windows,
            joined,
            (false, false),
            "KSTREAM-JOIN",
        )
    }

    /// Stream-stream left join: as [`join_windowed`](Self::join_windowed), and a record of
    /// this stream that no record of `other` joined within the window is emitted with
    /// `None` once its window has closed (stream time past its timestamp + after + grace),
    /// as Kafka does since 3.1: never a `(v, None)` that a later partner contradicts.
    pub fn left_join_windowed<VO: Data, VR: Data>(
        &self,
        other: &KStream<K, VO>,
        joiner: impl Fn(&V, Option<&VO>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined<K, V, VO>,
    ) -> KStream<K, VR> {
        let joiner = Arc::new(move |_: &K, v: Option<&V>, o: Option<&VO>| v.map(|v| joiner(v, o)));
        self.stream_join(
            other,
            joiner,
            windows,
            joined,
            (true, false),
            "KSTREAM-LEFTJOIN",
        )
    }

    /// Stream-stream outer join: as [`left_join_windowed`](Self::left_join_windowed), for
    /// the records of both streams.
    pub fn outer_join_windowed<VO: Data, VR: Data>(
        &self,
        other: &KStream<K, VO>,
        joiner: impl Fn(Option<&V>, Option<&VO>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined<K, V, VO>,
    ) -> KStream<K, VR> {
        let joiner = Arc::new(move |_: &K, v: Option<&V>, o: Option<&VO>| Some(joiner(v, o)));
        self.stream_join(
            other,
            joiner,
            windows,
            joined,
            (true, true),
            "KSTREAM-OUTERJOIN",
        )
    }

    /// The windowed join: `outer` says which sides (this, other) emit unmatched records;
    /// the joiner returns `None` for results the join kind does not emit.
    fn stream_join<VO: Data, VR: Data>(
        &self,
        other: &KStream<K, VO>,
        joiner: ValueJoiner<K, V, VO, VR>,
        windows: JoinWindows,
        joined: StreamJoined<K, V, VO>,
        outer: (bool, bool),
        prefix: &str,
    ) -> KStream<K, VR> {
        let name = joined
            .name
            .clone()
            .unwrap_or_else(|| self.b.borrow_mut().name(prefix));
        let left = if self.key_changed {
            self.repartition_through(
                &format!("{name}-left-repartition"),
                joined.key_serde.clone(),
                joined.value_serde.clone(),
            )
        } else {
            self.clone()
        };
        let right = if other.key_changed {
            other.repartition_through(
                &format!("{name}-right-repartition"),
                joined.key_serde.clone(),
                joined.other_value_serde.clone(),
            )
        } else {
            other.clone()
        };
        let (this_store, other_store) = (
            format!("{name}-this-join-store"),
            format!("{name}-other-join-store"),
        );
        let retention_ms = windows
            .before_ms
            .saturating_add(windows.after_ms)
            .saturating_add(windows.grace_ms);
        let mut b = self.b.borrow_mut();
        b.add_store(&this_store, StoreKind::Window { retention_ms });
        b.add_store(&other_store, StoreKind::Window { retention_ms });
        let outer_store = format!("{name}-outer-shared-join-store");
        let (left_outer, right_outer) = if outer.0 || outer.1 {
            b.add_store(&outer_store, StoreKind::KeyValue);
            let side = |side, this_outer, other_outer| OuterJoin {
                store: outer_store.clone(),
                side,
                this_outer,
                other_outer,
            };
            (
                Some(side(0, outer.0, outer.1)),
                Some(side(1, outer.1, outer.0)),
            )
        } else {
            (None, None)
        };
        let mut left_stores = vec![this_store.clone(), other_store.clone()];
        let mut right_stores = vec![other_store.clone(), this_store.clone()];
        if left_outer.is_some() {
            left_stores.push(outer_store.clone());
            right_stores.push(outer_store);
        }
        let left_joiner: ValueJoiner<K, V, VO, VR> = joiner.clone();
        let right_joiner: ValueJoiner<K, VO, V, VR> = Arc::new(move |k, o, v| joiner(k, v, o));
        let left_name = b.name("KSTREAM-JOINTHIS");
        let (pn, ts, os, j) = (
            left_name.clone(),
            this_store.clone(),
            other_store.clone(),
            joined,
        );
        let (ks, vs, ovs) = (
            j.key_serde.clone(),
            j.value_serde.clone(),
            j.other_value_serde.clone(),
        );
        let (ks2, vs2, ovs2) = (ks.clone(), vs.clone(), ovs.clone());
        let left_factory: ProcessorFactory = Arc::new(move || {
            Box::new(JoinSide {
                name: pn.clone(),
                this_store: ts.clone(),
                other_store: os.clone(),
                before_ms: windows.before_ms,
                after_ms: windows.after_ms,
                grace_ms: windows.grace_ms,
                key_serde: ks.clone(),
                value_serde: vs.clone(),
                other_value_serde: ovs.clone(),
                joiner: left_joiner.clone(),
                stream_time: i64::MIN,
                last_expiry: i64::MIN,
                outer: left_outer.clone(),
            })
        });
        let left_node = b.add_node(left_name, &[left.node], left_factory, left_stores);
        let right_name = b.name("KSTREAM-JOINOTHER");
        let (pn, ts, os) = (right_name.clone(), other_store.clone(), this_store.clone());
        let right_factory: ProcessorFactory = Arc::new(move || {
            Box::new(JoinSide {
                name: pn.clone(),
                this_store: ts.clone(),
                other_store: os.clone(),
                before_ms: windows.after_ms,
                after_ms: windows.before_ms,
                grace_ms: windows.grace_ms,
                key_serde: ks2.clone(),
                value_serde: ovs2.clone(),
                other_value_serde: vs2.clone(),
                joiner: right_joiner.clone(),
                stream_time: i64::MIN,
                last_expiry: i64::MIN,
                outer: right_outer.clone(),
            })
        });
        let right_node = b.add_node(right_name, &[right.node], right_factory, right_stores);
        let merge_name = b.name("KSTREAM-MERGE");
        let node = b.add_node(
            merge_name,
            &[left_node, right_node],
            Arc::new(|| Box::new(PassThrough)),
            Vec::new(),
        );
        KStream::new(self.b.clone(), node, false)
    }
}

type Predicate<K, V> = Arc<dyn Fn(&K, &V) -> bool + Send + Sync>;

/// The branches of [`KStream::split`].
pub struct BranchedKStream<K, V> {
    stream: KStream<K, V>,
    prefix: String,
    branches: Vec<(String, Predicate<K, V>)>,
}

impl<K: Data, V: Data> BranchedKStream<K, V> {
    /// A branch named `<prefix><name>` for the records matching `pred` (and no earlier
    /// branch).
    pub fn branch(
        mut self,
        name: &str,
        pred: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.branches
            .push((format!("{}{}", self.prefix, name), Arc::new(pred)));
        self
    }

    /// The branches, plus `<prefix><name>` for records no branch matched.
    pub fn default_branch(mut self, name: &str) -> HashMap<String, KStream<K, V>> {
        self.branches
            .push((format!("{}{}", self.prefix, name), Arc::new(|_, _| true)));
        self.no_default_branch()
    }

    /// The branches; records no branch matched are dropped.
    pub fn no_default_branch(self) -> HashMap<String, KStream<K, V>> {
        let mut out = HashMap::new();
        let mut earlier: Vec<Predicate<K, V>> = Vec::new();
        for (name, pred) in self.branches {
            let before = earlier.clone();
            let p = pred.clone();
            let s = self
                .stream
                .filter(move |k, v| p(k, v) && !before.iter().any(|b| b(k, v)));
            earlier.push(pred);
            out.insert(name, s);
        }
        out
    }
}
