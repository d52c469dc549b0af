//! Serdes: how keys and values become bytes on topics and in state stores (JSON through
//! serde, UTF-8 strings, raw bytes, big-endian i64 for counts, windowed keys).

use std::marker::PhantomData;

use crate::error::{Error, Result};
use crate::window::Windowed;

/// A serializer/deserializer pair for one type. Both are fallible: records come from the
/// network and from disk, and a value may not fit the schema it is written with (a
/// serialization error stops the task, as Kafka Streams' default handler does).
pub trait Serde<T>: Send + Sync + 'static {
    fn serialize(&self, value: &T) -> Result<Vec<u8>>;
    fn deserialize(&self, bytes: &[u8]) -> Result<T>;
}

/// JSON through serde_json.
pub struct JsonSerde<T>(PhantomData<fn() -> T>);

impl<T> JsonSerde<T> {
    pub fn new() -> Self {
        JsonSerde(PhantomData)
    }
}

impl<T> Default for JsonSerde<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Serde<T> for JsonSerde<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned + 'static,
{
    fn serialize(&self, value: &T) -> Result<Vec<u8>> {
        serde_json::to_vec(value).map_err(|e| Error::Serde(e.to_string()))
    }
    fn deserialize(&self, bytes: &[u8]) -> Result<T> {
        serde_json::from_slice(bytes).map_err(|e| Error::Serde(e.to_string()))
    }
}

/// UTF-8 strings (a null key reads as the empty string).
#[derive(Clone, Copy, Default)]
pub struct StringSerde;

impl Serde<String> for StringSerde {
    fn serialize(&self, value: &String) -> Result<Vec<u8>> {
        Ok(value.as_bytes().to_vec())
    }
    fn deserialize(&self, bytes: &[u8]) -> Result<String> {
        String::from_utf8(bytes.to_vec()).map_err(|e| Error::Serde(e.to_string()))
    }
}

/// Raw bytes, unchanged.
#[derive(Clone, Copy, Default)]
pub struct BytesSerde;

impl Serde<Vec<u8>> for BytesSerde {
    fn serialize(&self, value: &Vec<u8>) -> Result<Vec<u8>> {
        Ok(value.clone())
    }
    fn deserialize(&self, bytes: &[u8]) -> Result<Vec<u8>> {
        Ok(bytes.to_vec())
    }
}

/// 8 bytes big-endian, as Kafka's LongSerde (counts are stored with it).
#[derive(Clone, Copy, Default)]
pub struct I64Serde;

impl Serde<i64> for I64Serde {
    fn serialize(&self, value: &i64) -> Result<Vec<u8>> {
        Ok(value.to_be_bytes().to_vec())
    }
    fn deserialize(&self, bytes: &[u8]) -> Result<i64> {
        let a: [u8; 8] = bytes
            .try_into()
            .map_err(|_| Error::Serde(format!("i64 needs 8 bytes, got {}", bytes.len())))?;
        Ok(i64::from_be_bytes(a))
    }
}

/// A windowed key: the inner key's bytes, then the window start and end (8 bytes BE each),
/// as Kafka's TimeWindowedSerde with the end added so a reader needs no window size.
pub struct WindowedSerde<K, S>(pub S, PhantomData<fn() -> K>);

impl<K, S: Serde<K>> WindowedSerde<K, S> {
    pub fn new(inner: S) -> Self {
        WindowedSerde(inner, PhantomData)
    }
}

impl<K: 'static, S: Serde<K>> Serde<Windowed<K>> for WindowedSerde<K, S> {
    fn serialize(&self, value: &Windowed<K>) -> Result<Vec<u8>> {
        let mut b = self.0.serialize(&value.key)?;
        b.extend_from_slice(&value.start.to_be_bytes());
        b.extend_from_slice(&value.end.to_be_bytes());
        Ok(b)
    }
    fn deserialize(&self, bytes: &[u8]) -> Result<Windowed<K>> {
        if bytes.len() < 16 {
            return Err(Error::Serde("windowed key shorter than 16 bytes".into()));
        }
        let n = bytes.len() - 16;
        let start = i64::from_be_bytes(bytes[n..n + 8].try_into().unwrap_or([0; 8]));
        let end = i64::from_be_bytes(bytes[n + 8..].try_into().unwrap_or([0; 8]));
        Ok(Windowed {
            key: self.0.deserialize(&bytes[..n])?,
            start,
            end,
        })
    }
}
