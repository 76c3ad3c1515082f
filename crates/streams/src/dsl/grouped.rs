//! Grouped streams and their aggregations (count, reduce, aggregate), plain or windowed.

use std::marker::PhantomData;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use super::{Data, Grouped, KStream, KTable, Materialized};
use crate::processor::aggregate::{Aggregator, KvAggregate};
use crate::processor::windowed::WindowedAggregate;
use crate::processor::ProcessorFactory;
use crate::serde::{SerdeRef, Serdes};
use crate::state::StoreKind;
use crate::window::{TimeWindows, Windowed};

/// A stream grouped by key, ready to aggregate.
pub struct KGroupedStream<K, V> {
    stream: KStream<K, V>,
    grouped: Grouped<K, V>,
}

impl<K: Data, V: Data> KGroupedStream<K, V> {
    pub(crate) fn new(stream: &KStream<K, V>, grouped: Grouped<K, V>) -> Self {
        KGroupedStream {
            stream: stream.clone(),
            grouped,
        }
    }

    /// The store name, and the stream to aggregate: read back from
    /// `<application.id>-<name>-repartition` if the key changed upstream.
    pub(crate) fn prepare(
        &self,
        materialized: &Materialized,
        prefix: &str,
    ) -> (String, KStream<K, V>) {
        let store = materialized
            .name
            .clone()
            .unwrap_or_else(|| self.stream.b.borrow_mut().name(prefix));
        let input = if self.stream.key_changed {
            let name = self.grouped.name.clone().unwrap_or_else(|| store.clone());
            self.stream.repartition_through(
                &format!("{name}-repartition"),
                self.grouped.key_serde.clone(),
                self.grouped.value_serde.clone(),
            )
        } else {
            self.stream.clone()
        };
        (store, input)
    }

    fn aggregate_with<A: Data>(
        &self,
        agg: Aggregator<K, V, A>,
        agg_serde: SerdeRef<A>,
        materialized: Materialized,
    ) -> KTable<K, A> {
        let (store, input) = self.prepare(&materialized, "KSTREAM-AGGREGATE-STATE-STORE");
        let mut b = self.stream.b.borrow_mut();
        b.add_store(&store, StoreKind::KeyValue);
        let name = b.name("KSTREAM-AGGREGATE");
        let (pn, ps, pk, pa) = (
            name.clone(),
            store.clone(),
            self.grouped.key_serde.clone(),
            agg_serde.clone(),
        );
        let factory: ProcessorFactory = Arc::new(move || {
            Box::new(KvAggregate {
                name: pn.clone(),
                store: ps.clone(),
                key_serde: pk.clone(),
                agg_serde: pa.clone(),
                agg: agg.clone(),
            })
        });
        let node = b.add_node(name, &[input.node], factory, vec![store.clone()]);
        KTable {
            b: self.stream.b.clone(),
            node,
            store: Some(store),
            key_serde: Some(self.grouped.key_serde.clone()),
            value_serde: Some(agg_serde),
            grace_ms: None,
            _types: PhantomData,
        }
    }

    /// The number of records per key.
    pub fn count(&self, materialized: Materialized) -> KTable<K, i64> {
        self.aggregate_with(count_aggregator(), Serdes::i64(), materialized)
    }

    /// Combines the values of each key with `reducer(aggregate, value)`.
    pub fn reduce(
        &self,
        reducer: impl Fn(V, &V) -> V + Send + Sync + 'static,
        materialized: Materialized,
    ) -> KTable<K, V> {
        self.aggregate_with(
            reduce_aggregator(reducer),
            self.grouped.value_serde.clone(),
            materialized,
        )
    }

    /// Folds the values of each key into an `A`, starting from `init()`.
    pub fn aggregate<A: Data>(
        &self,
        init: impl Fn() -> A + Send + Sync + 'static,
        aggregator: impl Fn(&K, &V, A) -> A + Send + Sync + 'static,
        agg_serde: SerdeRef<A>,
        materialized: Materialized,
    ) -> KTable<K, A> {
        self.aggregate_with(fold_aggregator(init, aggregator), agg_serde, materialized)
    }

    /// Aggregates per key and session.
    pub fn windowed_by_session(
        &self,
        windows: crate::SessionWindows,
    ) -> super::SessionWindowedKStream<K, V> {
        super::SessionWindowedKStream::new(
            KGroupedStream {
                stream: self.stream.clone(),
                grouped: Grouped {
                    key_serde: self.grouped.key_serde.clone(),
                    value_serde: self.grouped.value_serde.clone(),
                    name: self.grouped.name.clone(),
                },
            },
            windows,
        )
    }

    pub(crate) fn stream(&self) -> &KStream<K, V> {
        &self.stream
    }

    pub(crate) fn grouped(&self) -> &Grouped<K, V> {
        &self.grouped
    }

    /// Aggregates per key and event-time window.
    pub fn windowed_by(&self, windows: TimeWindows) -> TimeWindowedKStream<K, V> {
        TimeWindowedKStream {
            grouped: KGroupedStream {
                stream: self.stream.clone(),
                grouped: Grouped {
                    key_serde: self.grouped.key_serde.clone(),
                    value_serde: self.grouped.value_serde.clone(),
                    name: self.grouped.name.clone(),
                },
            },
            windows,
        }
    }
}

pub(crate) fn count_aggregator<K, V>() -> Aggregator<K, V, i64> {
    Aggregator {
        first: Arc::new(|_, _| 1),
        next: Arc::new(|_, _, a| a.saturating_add(1)),
    }
}

pub(crate) fn reduce_aggregator<K, V: Clone>(
    reducer: impl Fn(V, &V) -> V + Send + Sync + 'static,
) -> Aggregator<K, V, V> {
    Aggregator {
        first: Arc::new(|_, v: &V| v.clone()),
        next: Arc::new(move |_, v, a| reducer(a, v)),
    }
}

pub(crate) fn fold_aggregator<K, V, A>(
    init: impl Fn() -> A + Send + Sync + 'static,
    aggregator: impl Fn(&K, &V, A) -> A + Send + Sync + 'static,
) -> Aggregator<K, V, A> {
    let aggregator = Arc::new(aggregator);
    let first_agg = aggregator.clone();
    Aggregator {
        first: Arc::new(move |k, v| first_agg(k, v, init())),
        next: Arc::new(move |k, v, a| aggregator(k, v, a)),
    }
}

/// A grouped stream with event-time windows.
pub struct TimeWindowedKStream<K, V> {
    grouped: KGroupedStream<K, V>,
    windows: TimeWindows,
}

impl<K: Data, V: Data> TimeWindowedKStream<K, V> {
    fn aggregate_with<A: Data>(
        &self,
        agg: Aggregator<K, V, A>,
        agg_serde: SerdeRef<A>,
        materialized: Materialized,
    ) -> KTable<Windowed<K>, A> {
        let (store, input) = self
            .grouped
            .prepare(&materialized, "KSTREAM-AGGREGATE-STATE-STORE");
        let windows = self.windows;
        let min_retention = windows.size_ms().saturating_add(windows.grace_ms());
        let retention_ms = materialized
            .retention
            .map(|r| i64::try_from(r.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(min_retention)
            .max(min_retention);
        let b = &self.grouped.stream.b;
        let mut bm = b.borrow_mut();
        bm.add_store(&store, StoreKind::Window { retention_ms });
        let name = bm.name("KSTREAM-WINDOWED-AGGREGATE");
        let key_serde = self.grouped.grouped.key_serde.clone();
        let (pn, ps, pk, pa) = (
            name.clone(),
            store.clone(),
            key_serde.clone(),
            agg_serde.clone(),
        );
        let factory: ProcessorFactory = Arc::new(move || {
            Box::new(WindowedAggregate {
                name: pn.clone(),
                store: ps.clone(),
                windows,
                retention_ms,
                key_serde: pk.clone(),
                agg_serde: pa.clone(),
                agg: agg.clone(),
                stream_time: i64::MIN,
                last_expiry: i64::MIN,
                dropped_late: Arc::new(AtomicU64::new(0)),
            })
        });
        let node = bm.add_node(name, &[input.node], factory, vec![store.clone()]);
        KTable {
            b: b.clone(),
            node,
            store: Some(store),
            key_serde: Some(Serdes::windowed(key_serde, windows.size_ms())),
            value_serde: Some(agg_serde),
            grace_ms: Some(windows.grace_ms()),
            _types: PhantomData,
        }
    }

    /// The number of records per key and window.
    pub fn count(&self, materialized: Materialized) -> KTable<Windowed<K>, i64> {
        self.aggregate_with(count_aggregator(), Serdes::i64(), materialized)
    }

    /// Combines the values of each key and window.
    pub fn reduce(
        &self,
        reducer: impl Fn(V, &V) -> V + Send + Sync + 'static,
        materialized: Materialized,
    ) -> KTable<Windowed<K>, V> {
        let vs = self.grouped.grouped.value_serde.clone();
        self.aggregate_with(reduce_aggregator(reducer), vs, materialized)
    }

    /// Folds the values of each key and window into an `A`.
    pub fn aggregate<A: Data>(
        &self,
        init: impl Fn() -> A + Send + Sync + 'static,
        aggregator: impl Fn(&K, &V, A) -> A + Send + Sync + 'static,
        agg_serde: SerdeRef<A>,
        materialized: Materialized,
    ) -> KTable<Windowed<K>, A> {
        self.aggregate_with(fold_aggregator(init, aggregator), agg_serde, materialized)
    }
}
