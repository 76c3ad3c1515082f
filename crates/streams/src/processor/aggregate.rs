//! Key-value aggregations and table materialization. Each update is written to the store
//! (and so to its changelog) and forwarded downstream as the table's new value; there is
//! no record cache, so every update is emitted (Kafka Streams with
//! `statestore.cache.max.bytes = 0`).

use std::any::Any;
use std::sync::Arc;

use super::{Ctx, Processor};
use crate::error::Result;
use crate::record::DynRecord;
use crate::serde::SerdeRef;

pub(crate) type First<K, V, A> = Arc<dyn Fn(&K, &V) -> A + Send + Sync>;
pub(crate) type Next<K, V, A> = Arc<dyn Fn(&K, &V, A) -> A + Send + Sync>;

/// How an aggregate starts (the first value of a key) and goes on.
pub(crate) struct Aggregator<K, V, A> {
    pub(crate) first: First<K, V, A>,
    pub(crate) next: Next<K, V, A>,
}

impl<K, V, A> Clone for Aggregator<K, V, A> {
    fn clone(&self) -> Self {
        Aggregator {
            first: self.first.clone(),
            next: self.next.clone(),
        }
    }
}

impl<K, V, A> Aggregator<K, V, A> {
    pub(crate) fn apply(&self, key: &K, value: &V, old: Option<A>) -> A {
        match old {
            None => (self.first)(key, value),
            Some(a) => (self.next)(key, value, a),
        }
    }
}

pub(crate) struct KvAggregate<K, V, A> {
    pub(crate) name: String,
    pub(crate) store: String,
    pub(crate) key_serde: SerdeRef<K>,
    pub(crate) agg_serde: SerdeRef<A>,
    pub(crate) agg: Aggregator<K, V, A>,
}

impl<K, V, A> Processor for KvAggregate<K, V, A>
where
    K: Any + Send + Clone,
    V: Any,
    A: Any + Send + Clone,
{
    fn process(&mut self, rec: DynRecord, ctx: &mut Ctx<'_>) -> Result<()> {
        let (k, v, ts) = rec.into_typed::<K, V>(&self.name)?;
        // Kafka drops null values before an aggregation.
        let Some(v) = v else { return Ok(()) };
        let kb = self.key_serde.serialize(&self.store, &k)?;
        let store = ctx.store(&self.store)?;
        let old = match store.get(&kb) {
            Some(b) => Some(self.agg_serde.deserialize(&self.store, Some(&b))?),
            None => None,
        };
        let new = self.agg.apply(&k, &v, old);
        let bytes = self.agg_serde.serialize(&self.store, &new)?;
        store.put(kb, Some(bytes));
        ctx.forward(DynRecord::new(k, Some(new), ts));
        Ok(())
    }
}

/// Materializes a table from its source topic: a value is an upsert, a null a delete.
pub(crate) struct TableMaterialize<K, V> {
    pub(crate) name: String,
    pub(crate) store: String,
    pub(crate) key_serde: SerdeRef<K>,
    pub(crate) value_serde: SerdeRef<V>,
}

impl<K, V> Processor for TableMaterialize<K, V>
where
    K: Any + Send + Clone,
    V: Any + Send + Clone,
{
    fn process(&mut self, rec: DynRecord, ctx: &mut Ctx<'_>) -> Result<()> {
        let (k, v, ts) = rec.into_typed::<K, V>(&self.name)?;
        let kb = self.key_serde.serialize(&self.store, &k)?;
        let vb = match &v {
            Some(v) => Some(self.value_serde.serialize(&self.store, v)?),
            None => None,
        };
        ctx.store(&self.store)?.put(kb, vb);
        ctx.forward(DynRecord::new(k, v, ts));
        Ok(())
    }
}
