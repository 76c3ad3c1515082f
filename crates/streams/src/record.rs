//! Type-erased records as they travel between processors. The DSL is typed (`KStream<K,
//! V>`); each node downcasts what it receives to the types it was built for, so a
//! mismatch can only be a bug in this crate, reported as `StreamsError::TypeMismatch`.

use std::any::Any;

use crate::error::{Result, StreamsError};

/// A cloneable, sendable value of any type.
pub(crate) trait DynValue: Any + Send {
    fn clone_box(&self) -> Box<dyn DynValue>;
    fn into_any(self: Box<Self>) -> Box<dyn Any>;
}

impl<T: Any + Send + Clone> DynValue for T {
    fn clone_box(&self) -> Box<dyn DynValue> {
        Box::new(self.clone())
    }
    fn into_any(self: Box<Self>) -> Box<dyn Any> {
        self
    }
}

pub(crate) type Boxed = Box<dyn DynValue>;

/// One record between two processors. `value` is `None` for a table tombstone.
pub(crate) struct DynRecord {
    pub(crate) key: Boxed,
    pub(crate) value: Option<Boxed>,
    pub(crate) timestamp: i64,
}

impl Clone for DynRecord {
    fn clone(&self) -> Self {
        DynRecord {
            key: self.key.clone_box(),
            value: self.value.as_ref().map(|v| v.clone_box()),
            timestamp: self.timestamp,
        }
    }
}

pub(crate) fn boxed<T: Any + Send + Clone>(v: T) -> Boxed {
    Box::new(v)
}

pub(crate) fn unbox<T: 'static>(v: Boxed, node: &str) -> Result<T> {
    v.into_any()
        .downcast::<T>()
        .map(|b| *b)
        .map_err(|_| StreamsError::TypeMismatch(node.to_string()))
}

impl DynRecord {
    pub(crate) fn new<K: Any + Send + Clone, V: Any + Send + Clone>(
        key: K,
        value: Option<V>,
        timestamp: i64,
    ) -> Self {
        DynRecord {
            key: boxed(key),
            value: value.map(boxed),
            timestamp,
        }
    }

    /// The typed key and value.
    pub(crate) fn into_typed<K: 'static, V: 'static>(
        self,
        node: &str,
    ) -> Result<(K, Option<V>, i64)> {
        let key = unbox::<K>(self.key, node)?;
        let value = match self.value {
            Some(v) => Some(unbox::<V>(v, node)?),
            None => None,
        };
        Ok((key, value, self.timestamp))
    }
}

/// A record read from (or written to) a topic, as bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    /// Topic name.
    pub topic: String,
    /// Key bytes (`None` = null).
    pub key: Option<Vec<u8>>,
    /// Value bytes (`None` = null, a tombstone).
    pub value: Option<Vec<u8>>,
    /// Record timestamp (ms).
    pub timestamp: i64,
}
