//! Stream-table join: each stream record looks its key up in the table's store (the table's
//! current value at processing time); the table side never triggers output.

use std::any::Any;
use std::sync::Arc;

use super::{Ctx, Processor};
use crate::error::Result;
use crate::record::DynRecord;
use crate::serde::SerdeRef;

/// `None` from the joiner drops the record (an inner join with no match).
pub(crate) type Joiner<K, V, VT, VR> = Arc<dyn Fn(&K, &V, Option<&VT>) -> Option<VR> + Send + Sync>;

pub(crate) struct StreamTableJoin<K, V, VT, VR> {
    pub(crate) name: String,
    pub(crate) store: String,
    pub(crate) key_serde: SerdeRef<K>,
    pub(crate) table_value_serde: SerdeRef<VT>,
    pub(crate) joiner: Joiner<K, V, VT, VR>,
}

impl<K, V, VT, VR> Processor for StreamTableJoin<K, V, VT, VR>
where
    K: Any + Send + Clone,
    V: Any,
    VT: Any,
    VR: Any + Send + Clone,
{
    fn process(&mut self, rec: DynRecord, ctx: &mut Ctx<'_>) -> Result<()> {
        let (k, v, ts) = rec.into_typed::<K, V>(&self.name)?;
        let Some(v) = v else { return Ok(()) };
        let kb = self.key_serde.serialize(&self.store, &k)?;
        let table_value = match ctx.store(&self.store)?.get(&kb) {
            Some(b) => Some(self.table_value_serde.deserialize(&self.store, Some(&b))?),
            None => None,
        };
        if let Some(out) = (self.joiner)(&k, &v, table_value.as_ref()) {
            ctx.forward(DynRecord::new(k, Some(out), ts));
        }
        Ok(())
    }
}
