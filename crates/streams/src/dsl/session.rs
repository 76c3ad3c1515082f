//! Session-windowed aggregations.

use std::marker::PhantomData;
use std::sync::Arc;

use super::grouped::{count_aggregator, fold_aggregator, reduce_aggregator, KGroupedStream};
use super::{Data, KTable, Materialized};
use crate::processor::aggregate::Aggregator;
use crate::processor::session::{Merger, SessionAggregate};
use crate::processor::ProcessorFactory;
use crate::serde::{SerdeRef, Serdes};
use crate::state::StoreKind;
use crate::window::{SessionWindows, Windowed};

/// A grouped stream with session windows.
pub struct SessionWindowedKStream<K, V> {
    grouped: KGroupedStream<K, V>,
    windows: SessionWindows,
}

impl<K: Data, V: Data> SessionWindowedKStream<K, V> {
    pub(crate) fn new(grouped: KGroupedStream<K, V>, windows: SessionWindows) -> Self {
        SessionWindowedKStream { grouped, windows }
    }

    fn aggregate_with<A: Data>(
        &self,
        agg: Aggregator<K, V, A>,
        merger: Merger<K, A>,
        agg_serde: SerdeRef<A>,
        materialized: Materialized,
    ) -> KTable<Windowed<K>, A> {
        let (store, input) = self
            .grouped
            .prepare(&materialized, "KSTREAM-SESSION-AGGREGATE-STATE-STORE");
        let windows = self.windows;
        let min_retention = windows.gap_ms().saturating_add(windows.grace_ms());
        let retention_ms = materialized
            .retention
            .map(|r| i64::try_from(r.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(min_retention)
            .max(min_retention);
        let b = &self.grouped.stream().b;
        let mut bm = b.borrow_mut();
        bm.add_store(&store, StoreKind::Window { retention_ms });
        let name = bm.name("KSTREAM-SESSION-AGGREGATE");
        let key_serde = self.grouped.grouped().key_serde.clone();
        let (pn, ps, pk, pa) = (
            name.clone(),
            store.clone(),
            key_serde.clone(),
            agg_serde.clone(),
        );
        let factory: ProcessorFactory = Arc::new(move || {
            Box::new(SessionAggregate {
                name: pn.clone(),
                store: ps.clone(),
                windows,
                retention_ms,
                key_serde: pk.clone(),
                agg_serde: pa.clone(),
                agg: agg.clone(),
                merger: merger.clone(),
                stream_time: i64::MIN,
                last_expiry: i64::MIN,
            })
        });
        let node = bm.add_node(name, &[input.node], factory, vec![store.clone()]);
        KTable {
            b: b.clone(),
            node,
            store: Some(store),
            key_serde: Some(Serdes::session_windowed(key_serde)),
            value_serde: Some(agg_serde),
            // A session can still grow by a record up to `gap` after its end, so it is final
            // only once stream time passes end + gap + grace (as Kafka's suppression).
            grace_ms: Some(windows.grace_ms().saturating_add(windows.gap_ms())),
            _types: PhantomData,
        }
    }

    /// The number of records per key and session.
    pub fn count(&self, materialized: Materialized) -> KTable<Windowed<K>, i64> {
        self.aggregate_with(
            count_aggregator(),
            Arc::new(|_, a, b| a.saturating_add(b)),
            Serdes::i64(),
            materialized,
        )
    }

    /// Combines the values of each key and session (merged sessions with the reducer).
    pub fn reduce(
        &self,
        reducer: impl Fn(V, &V) -> V + Send + Sync + 'static,
        materialized: Materialized,
    ) -> KTable<Windowed<K>, V> {
        let reducer = Arc::new(reducer);
        let r = reducer.clone();
        let vs = self.grouped.grouped().value_serde.clone();
        self.aggregate_with(
            reduce_aggregator(move |a, v| r(a, v)),
            Arc::new(move |_, a, b| reducer(a, &b)),
            vs,
            materialized,
        )
    }

    /// Folds the values of each key and session; `merger` combines two sessions'
    /// aggregates when a record joins them.
    pub fn aggregate<A: Data>(
        &self,
        init: impl Fn() -> A + Send + Sync + 'static,
        aggregator: impl Fn(&K, &V, A) -> A + Send + Sync + 'static,
        merger: impl Fn(&K, A, A) -> A + Send + Sync + 'static,
        agg_serde: SerdeRef<A>,
        materialized: Materialized,
    ) -> KTable<Windowed<K>, A> {
        self.aggregate_with(
            fold_aggregator(init, aggregator),
            Arc::new(merger),
            agg_serde,
            materialized,
        )
    }
}
