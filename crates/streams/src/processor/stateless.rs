//! Processors built from closures: every stateless DSL operation and the sinks.

use std::any::Any;
use std::marker::PhantomData;

use super::{Ctx, Processor, SinkRecord, TopicName};
use crate::error::Result;
use crate::record::DynRecord;
use crate::serde::SerdeRef;

/// A processor that downcasts each record to `(K, Option<V>)` and hands it to a closure.
pub(crate) struct FnProcessor<K, V, F> {
    name: String,
    f: F,
    _types: PhantomData<fn(K, V)>,
}

impl<K, V, F> FnProcessor<K, V, F>
where
    K: Any,
    V: Any,
    F: FnMut(K, Option<V>, i64, &mut Ctx<'_>) -> Result<()> + Send,
{
    pub(crate) fn new(name: &str, f: F) -> Self {
        FnProcessor {
            name: name.to_string(),
            f,
            _types: PhantomData,
        }
    }
}

impl<K, V, F> Processor for FnProcessor<K, V, F>
where
    K: Any,
    V: Any,
    F: FnMut(K, Option<V>, i64, &mut Ctx<'_>) -> Result<()> + Send,
{
    fn process(&mut self, rec: DynRecord, ctx: &mut Ctx<'_>) -> Result<()> {
        let (k, v, ts) = rec.into_typed::<K, V>(&self.name)?;
        (self.f)(k, v, ts, ctx)
    }
}

/// Forwards records untouched (sources, merges).
pub(crate) struct PassThrough;

impl Processor for PassThrough {
    fn process(&mut self, rec: DynRecord, ctx: &mut Ctx<'_>) -> Result<()> {
        ctx.forward(rec);
        Ok(())
    }
}

/// Serializes records into a topic. A `None` value is written as a null (tombstone).
pub(crate) struct SinkProcessor<K, V> {
    pub(crate) name: String,
    pub(crate) topic: TopicName,
    pub(crate) key_serde: SerdeRef<K>,
    pub(crate) value_serde: SerdeRef<V>,
}

impl<K: Any, V: Any> Processor for SinkProcessor<K, V> {
    fn process(&mut self, rec: DynRecord, ctx: &mut Ctx<'_>) -> Result<()> {
        let (k, v, ts) = rec.into_typed::<K, V>(&self.name)?;
        let topic = self.topic.resolve(ctx.app_id);
        let key = self.key_serde.serialize(&topic, &k)?;
        let value = match v {
            Some(v) => Some(self.value_serde.serialize(&topic, &v)?),
            None => None,
        };
        ctx.sink.push(SinkRecord {
            topic,
            partition: None,
            key: Some(key),
            value,
            timestamp: ts,
            changelog_of: None,
        });
        Ok(())
    }
}
