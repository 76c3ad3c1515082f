//! Serdes: how keys and values become bytes. The built-in ones use the same encodings as
//! Kafka's (`StringSerde` is UTF-8, `LongSerde`/`IntegerSerde` are big-endian), so a Java
//! or Python client reads what a topology writes. [`AvroSerde`] is Confluent's
//! `KafkaAvroSerde`: schema-registry framing, schemas registered and resolved;
//! [`JsonSchemaSerde`] is `KafkaJsonSchemaSerde`.
//!
//! Layout: this file (the trait, the built-in serdes); `registry.rs` (the
//! schema-registry config, client and errors shared by registry serdes); `avro.rs`;
//! `json_schema.rs`.

mod avro;
#[cfg(test)]
mod fake_registry;
mod json_schema;
mod registry;

pub use avro::AvroSerde;
pub use json_schema::JsonSchemaSerde;
pub use registry::{RegistrySerdeConfig, RegistrySerdeError};

use std::marker::PhantomData;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Result, StreamsError};
use crate::window::Windowed;

/// Turns a `T` into bytes and back. `data` is `None` for a null key or value.
pub trait Serde<T>: Send + Sync {
    /// Encodes a value.
    fn serialize(&self, topic: &str, value: &T) -> Result<Vec<u8>>;
    /// Decodes a value; `None` is a null on the wire.
    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<T>;
}

/// A shareable serde.
pub type SerdeRef<T> = Arc<dyn Serde<T>>;

/// Constructors for the built-in serdes.
pub struct Serdes;

impl Serdes {
    /// Raw bytes (a null reads as empty).
    pub fn bytes() -> SerdeRef<Vec<u8>> {
        Arc::new(BytesSerde)
    }
    /// UTF-8 strings (a null reads as the empty string).
    pub fn string() -> SerdeRef<String> {
        Arc::new(StringSerde)
    }
    /// 8-byte big-endian signed integers (Kafka's `LongSerde`).
    pub fn i64() -> SerdeRef<i64> {
        Arc::new(I64Serde)
    }
    /// 4-byte big-endian signed integers (Kafka's `IntegerSerde`).
    pub fn i32() -> SerdeRef<i32> {
        Arc::new(I32Serde)
    }
    /// JSON through serde.
    pub fn json<T: Serialize + DeserializeOwned + Send + Sync + 'static>() -> SerdeRef<T> {
        Arc::new(JsonSerde(PhantomData))
    }
    /// Windowed keys as Kafka's `TimeWindowedSerde` writes them: the inner key's bytes
    /// followed by the window start (8 bytes, big-endian). `window_size_ms` gives the end
    /// back when reading.
    pub fn windowed<K: 'static>(inner: SerdeRef<K>, window_size_ms: i64) -> SerdeRef<Windowed<K>> {
        Arc::new(WindowedSerde {
            inner,
            window_size_ms,
        })
    }

    /// Session-windowed keys as Kafka's `SessionWindowedSerde` writes them: the inner key's
    /// bytes, then the session end and start (8 bytes each, big-endian).
    pub fn session_windowed<K: 'static>(inner: SerdeRef<K>) -> SerdeRef<Windowed<K>> {
        Arc::new(SessionWindowedSerde { inner })
    }
}

struct SessionWindowedSerde<K> {
    inner: SerdeRef<K>,
}
impl<K> Serde<Windowed<K>> for SessionWindowedSerde<K> {
    fn serialize(&self, topic: &str, value: &Windowed<K>) -> Result<Vec<u8>> {
        let mut out = self.inner.serialize(topic, &value.key)?;
        out.extend_from_slice(&value.window.end.to_be_bytes());
        out.extend_from_slice(&value.window.start.to_be_bytes());
        Ok(out)
    }
    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<Windowed<K>> {
        let data = data.unwrap_or_default();
        let split = data
            .len()
            .checked_sub(16)
            .ok_or_else(|| StreamsError::serde(topic, "session key shorter than 16 bytes"))?;
        let (key, times) = data.split_at(split);
        let end = i64::from_be_bytes(fixed::<8>(topic, times.get(..8))?);
        let start = i64::from_be_bytes(fixed::<8>(topic, times.get(8..))?);
        Ok(Windowed {
            key: self.inner.deserialize(topic, Some(key))?,
            window: crate::window::Window { start, end },
        })
    }
}

struct BytesSerde;
impl Serde<Vec<u8>> for BytesSerde {
    fn serialize(&self, _: &str, value: &Vec<u8>) -> Result<Vec<u8>> {
        Ok(value.clone())
    }
    fn deserialize(&self, _: &str, data: Option<&[u8]>) -> Result<Vec<u8>> {
        Ok(data.unwrap_or_default().to_vec())
    }
}

struct StringSerde;
impl Serde<String> for StringSerde {
    fn serialize(&self, _: &str, value: &String) -> Result<Vec<u8>> {
        Ok(value.as_bytes().to_vec())
    }
    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<String> {
        String::from_utf8(data.unwrap_or_default().to_vec())
            .map_err(|e| StreamsError::serde(topic, e))
    }
}

fn fixed<const N: usize>(topic: &str, data: Option<&[u8]>) -> Result<[u8; N]> {
    let data =
        data.ok_or_else(|| StreamsError::serde(topic, "null where a number was expected"))?;
    data.try_into()
        .map_err(|_| StreamsError::serde(topic, format!("expected {N} bytes, got {}", data.len())))
}

struct I64Serde;
impl Serde<i64> for I64Serde {
    fn serialize(&self, _: &str, value: &i64) -> Result<Vec<u8>> {
        Ok(value.to_be_bytes().to_vec())
    }
    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<i64> {
        Ok(i64::from_be_bytes(fixed::<8>(topic, data)?))
    }
}

struct I32Serde;
impl Serde<i32> for I32Serde {
    fn serialize(&self, _: &str, value: &i32) -> Result<Vec<u8>> {
        Ok(value.to_be_bytes().to_vec())
    }
    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<i32> {
        Ok(i32::from_be_bytes(fixed::<4>(topic, data)?))
    }
}

struct JsonSerde<T>(PhantomData<fn() -> T>);
impl<T: Serialize + DeserializeOwned> Serde<T> for JsonSerde<T> {
    fn serialize(&self, topic: &str, value: &T) -> Result<Vec<u8>> {
        serde_json::to_vec(value).map_err(|e| StreamsError::serde(topic, e))
    }
    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<T> {
        let data =
            data.ok_or_else(|| StreamsError::serde(topic, "null where JSON was expected"))?;
        serde_json::from_slice(data).map_err(|e| StreamsError::serde(topic, e))
    }
}

struct WindowedSerde<K> {
    inner: SerdeRef<K>,
    window_size_ms: i64,
}
impl<K> Serde<Windowed<K>> for WindowedSerde<K> {
    fn serialize(&self, topic: &str, value: &Windowed<K>) -> Result<Vec<u8>> {
        let mut out = self.inner.serialize(topic, &value.key)?;
        out.extend_from_slice(&value.window.start.to_be_bytes());
        Ok(out)
    }
    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<Windowed<K>> {
        let data = data.unwrap_or_default();
        let split = data
            .len()
            .checked_sub(8)
            .ok_or_else(|| StreamsError::serde(topic, "windowed key shorter than 8 bytes"))?;
        let (key, ts) = data.split_at(split);
        let start = i64::from_be_bytes(fixed::<8>(topic, Some(ts))?);
        Ok(Windowed {
            key: self.inner.deserialize(topic, Some(key))?,
            window: crate::window::Window {
                start,
                end: start.saturating_add(self.window_size_ms),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_encodings() {
        assert_eq!(
            Serdes::i64().serialize("t", &1).unwrap(),
            vec![0, 0, 0, 0, 0, 0, 0, 1]
        );
        assert_eq!(
            Serdes::i32().deserialize("t", Some(&[0, 0, 1, 0])).unwrap(),
            256
        );
        assert!(Serdes::i64().deserialize("t", Some(&[1, 2])).is_err());
        assert!(Serdes::i64().deserialize("t", None).is_err());
        assert_eq!(Serdes::string().deserialize("t", None).unwrap(), "");
        let w = Serdes::windowed(Serdes::string(), 60_000);
        let key = Windowed {
            key: "a".to_string(),
            window: crate::window::Window {
                start: 120_000,
                end: 180_000,
            },
        };
        let bytes = w.serialize("t", &key).unwrap();
        assert_eq!(&bytes[..1], b"a");
        assert_eq!(w.deserialize("t", Some(&bytes)).unwrap(), key);
    }
}
