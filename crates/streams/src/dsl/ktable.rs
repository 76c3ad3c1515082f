//! `KTable`: a changelog stream read as the latest value per key. Updates flow downstream
//! as records whose value is the new value, or null (`None`) when the key was deleted.

use std::marker::PhantomData;
use std::sync::Arc;

use super::builder::Shared;
use super::{Data, KStream, Suppressed};
use crate::processor::stateless::FnProcessor;
use crate::processor::windowed::SuppressUntilWindowCloses;
use crate::processor::{Ctx, ProcessorFactory};
use crate::record::DynRecord;
use crate::serde::SerdeRef;
use crate::state::StoreKind;
use crate::window::Windowed;
use crate::{Result, StreamsError};

/// A table of `K → V`.
pub struct KTable<K, V> {
    pub(crate) b: Shared,
    pub(crate) node: usize,
    /// The store holding this table, when it is materialized (sources, aggregations).
    pub(crate) store: Option<String>,
    pub(crate) key_serde: Option<SerdeRef<K>>,
    pub(crate) value_serde: Option<SerdeRef<V>>,
    /// The grace period of a windowed aggregation (suppression needs it).
    pub(crate) grace_ms: Option<i64>,
    pub(crate) _types: PhantomData<fn(K, V)>,
}

type Step<K, V> = dyn FnMut(K, Option<V>, i64, &mut Ctx<'_>) -> Result<()> + Send;

impl<K: Data, V: Data> KTable<K, V> {
    fn step<V2: Data>(
        &self,
        prefix: &str,
        value_serde: Option<SerdeRef<V2>>,
        make: impl Fn() -> Box<Step<K, V>> + Send + Sync + 'static,
    ) -> KTable<K, V2> {
        let mut b = self.b.borrow_mut();
        let name = b.name(prefix);
        let pn = name.clone();
        let factory: ProcessorFactory = Arc::new(move || Box::new(FnProcessor::new(&pn, make())));
        let node = b.add_node(name, &[self.node], factory, Vec::new());
        KTable {
            b: self.b.clone(),
            node,
            store: None,
            key_serde: self.key_serde.clone(),
            value_serde,
            grace_ms: self.grace_ms,
            _types: PhantomData,
        }
    }

    /// Keeps the entries matching `pred`; an update that no longer matches is forwarded as
    /// a delete.
    pub fn filter(&self, pred: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> KTable<K, V> {
        let pred = Arc::new(pred);
        self.step("KTABLE-FILTER", self.value_serde.clone(), move || {
            let pred = pred.clone();
            Box::new(move |k, v, ts, ctx| {
                let v = v.filter(|v| pred(&k, v));
                ctx.forward(DynRecord::new(k, v, ts));
                Ok(())
            })
        })
    }

    /// Drops the entries matching `pred`.
    pub fn filter_not(
        &self,
        pred: impl Fn(&K, &V) -> bool + Send + Sync + 'static,
    ) -> KTable<K, V> {
        self.filter(move |k, v| !pred(k, v))
    }

    /// A new value per entry (deletes stay deletes).
    pub fn map_values<V2: Data>(
        &self,
        f: impl Fn(&V) -> V2 + Send + Sync + 'static,
    ) -> KTable<K, V2> {
        let f = Arc::new(f);
        self.step("KTABLE-MAPVALUES", None, move || {
            let f = f.clone();
            Box::new(move |k, v, ts, ctx| {
                ctx.forward(DynRecord::new(k, v.as_ref().map(|v| f(v)), ts));
                Ok(())
            })
        })
    }

    /// The table's updates as a stream (deletes become records with a null value).
    pub fn to_stream(&self) -> KStream<K, V> {
        KStream::new(self.b.clone(), self.node, false)
    }

    /// The store to query this table with, when it is materialized.
    pub fn queryable_store_name(&self) -> Option<&str> {
        self.store.as_deref()
    }
}

impl<K: Data, V: Data> KTable<Windowed<K>, V> {
    /// Holds back updates: with [`Suppressed::UntilWindowCloses`], only the final result of
    /// each window is emitted, once stream time passes the window's end plus grace.
    pub fn suppress(&self, suppressed: Suppressed) -> Result<KTable<Windowed<K>, V>> {
        let Suppressed::UntilWindowCloses = suppressed;
        let (Some(grace_ms), Some(key_serde), Some(value_serde)) = (
            self.grace_ms,
            self.key_serde.clone(),
            self.value_serde.clone(),
        ) else {
            return Err(StreamsError::Topology(
                "suppress(untilWindowCloses) needs a windowed aggregation".into(),
            ));
        };
        let mut b = self.b.borrow_mut();
        let store = b.name("KTABLE-SUPPRESS-STATE-STORE");
        b.add_store(&store, StoreKind::KeyValue);
        let name = b.name("KTABLE-SUPPRESS");
        let (pn, ps, pk, pv) = (
            name.clone(),
            store.clone(),
            key_serde.clone(),
            value_serde.clone(),
        );
        let factory: ProcessorFactory = Arc::new(move || {
            Box::new(SuppressUntilWindowCloses {
                name: pn.clone(),
                store: ps.clone(),
                grace_ms,
                key_serde: pk.clone(),
                value_serde: pv.clone(),
                stream_time: i64::MIN,
            })
        });
        let node = b.add_node(name, &[self.node], factory, vec![store]);
        Ok(KTable {
            b: self.b.clone(),
            node,
            store: None,
            key_serde: Some(key_serde),
            value_serde: Some(value_serde),
            grace_ms: Some(grace_ms),
            _types: PhantomData,
        })
    }
}
