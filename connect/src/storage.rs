//! Source offsets behind a small trait: an in-memory twin (tests, REST-only runs) and
//! the standalone file (`offset.storage.file.filename`), rewritten whole and renamed
//! into place so a crash leaves the previous flush, never half a file. Distributed
//! mode keeps them in the coordinator (`distributed::ZkOffsets`). The trait's reads and
//! flushes are futures because that third store answers over the network.
//!
//! Keys are Connect's: per connector, a source partition (a JSON object such as
//! `{"filename":"/x"}`) → its offset (`{"position":123}`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use std::sync::Mutex;

use futures_util::future::BoxFuture;
use serde_json::Value;

/// connector → (partition JSON text → offset)
type Offsets = BTreeMap<String, BTreeMap<String, Value>>;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("offset file {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("offset file {path} is not valid: {message}")]
    Corrupt { path: String, message: String },
    #[error("offsets in the coordinator: {0}")]
    Coordinator(String),
}

pub trait OffsetStore: Send + Sync {
    /// Every partition → offset of `connector`.
    fn get<'a>(
        &'a self,
        connector: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(Value, Value)>, StorageError>>;
    /// Set (or, with `None`, remove) offsets; durable after `flush`.
    fn put(&self, connector: &str, entries: Vec<(Value, Option<Value>)>);
    /// Drop every offset of `connector` (DELETE /connectors/{n}/offsets), durably.
    fn clear<'a>(&'a self, connector: &'a str) -> BoxFuture<'a, Result<(), StorageError>>;
    /// Make every `put` so far durable.
    fn flush(&self) -> BoxFuture<'_, Result<(), StorageError>>;
}

/// In-memory twin, for tests.
#[cfg(test)]
#[derive(Default)]
pub struct MemoryOffsets {
    map: Mutex<Offsets>,
}

fn lock(m: &Mutex<Offsets>) -> std::sync::MutexGuard<'_, Offsets> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn get_in(map: &Offsets, connector: &str) -> Vec<(Value, Value)> {
    map.get(connector)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        serde_json::from_str(k).unwrap_or(Value::String(k.clone())),
                        v.clone(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn put_in(map: &mut Offsets, connector: &str, entries: Vec<(Value, Option<Value>)>) {
    let m = map.entry(connector.to_string()).or_default();
    for (p, o) in entries {
        let key = p.to_string();
        match o {
            Some(o) => {
                m.insert(key, o);
            }
            None => {
                m.remove(&key);
            }
        }
    }
}

#[cfg(test)]
impl OffsetStore for MemoryOffsets {
    fn get<'a>(
        &'a self,
        connector: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(Value, Value)>, StorageError>> {
        let v = get_in(&lock(&self.map), connector);
        Box::pin(async move { Ok(v) })
    }
    fn put(&self, connector: &str, entries: Vec<(Value, Option<Value>)>) {
        put_in(&mut lock(&self.map), connector, entries)
    }
    fn clear<'a>(&'a self, connector: &'a str) -> BoxFuture<'a, Result<(), StorageError>> {
        lock(&self.map).remove(connector);
        Box::pin(async { Ok(()) })
    }
    fn flush(&self) -> BoxFuture<'_, Result<(), StorageError>> {
        Box::pin(async { Ok(()) })
    }
}

/// The standalone worker's offset file (JSON; Kafka's is a Java-serialised map, which
/// no one reads by hand; this one can be).
pub struct FileOffsets {
    path: PathBuf,
    map: Mutex<Offsets>,
    /// Serialises writers of the file (flush from the timer and from shutdown).
    write: Mutex<()>,
}

impl FileOffsets {
    pub fn open(path: PathBuf) -> Result<Self, StorageError> {
        let p = path.display().to_string();
        let map = match std::fs::read(&path) {
            Ok(bytes) if bytes.is_empty() => Offsets::new(),
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| StorageError::Corrupt {
                path: p,
                message: e.to_string(),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Offsets::new(),
            Err(source) => return Err(StorageError::Io { path: p, source }),
        };
        Ok(FileOffsets {
            path,
            map: Mutex::new(map),
            write: Mutex::new(()),
        })
    }
}

impl OffsetStore for FileOffsets {
    fn get<'a>(
        &'a self,
        connector: &'a str,
    ) -> BoxFuture<'a, Result<Vec<(Value, Value)>, StorageError>> {
        let v = get_in(&lock(&self.map), connector);
        Box::pin(async move { Ok(v) })
    }
    fn put(&self, connector: &str, entries: Vec<(Value, Option<Value>)>) {
        put_in(&mut lock(&self.map), connector, entries)
    }
    fn clear<'a>(&'a self, connector: &'a str) -> BoxFuture<'a, Result<(), StorageError>> {
        lock(&self.map).remove(connector);
        Box::pin(async move { self.write() })
    }
    fn flush(&self) -> BoxFuture<'_, Result<(), StorageError>> {
        Box::pin(async move { self.write() })
    }
}

impl FileOffsets {
    /// The whole map to a temporary file, synced, then renamed over the old one.
    fn write(&self) -> Result<(), StorageError> {
        let _w = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let bytes = serde_json::to_vec_pretty(&*lock(&self.map)).unwrap_or_default();
        let p = self.path.display().to_string();
        let io = |source| StorageError::Io {
            path: p.clone(),
            source,
        };
        let tmp = self.path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp).map_err(io)?;
        f.write_all(&bytes).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, &self.path).map_err(io)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    async fn exercise(s: &dyn OffsetStore) {
        s.put(
            "c",
            vec![(json!({"filename":"/a"}), Some(json!({"position":10})))],
        );
        s.put(
            "c",
            vec![(json!({"filename":"/b"}), Some(json!({"position":3})))],
        );
        s.put("c", vec![(json!({"filename":"/b"}), None)]);
        assert_eq!(
            s.get("c").await.unwrap(),
            vec![(json!({"filename":"/a"}), json!({"position":10}))]
        );
        assert!(s.get("other").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn memory_twin() {
        exercise(&MemoryOffsets::default()).await;
    }

    #[tokio::test]
    async fn file_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("offsets");
        let s = FileOffsets::open(path.clone()).unwrap();
        exercise(&s).await;
        s.flush().await.unwrap();
        let again = FileOffsets::open(path.clone()).unwrap();
        assert_eq!(
            again.get("c").await.unwrap(),
            vec![(json!({"filename":"/a"}), json!({"position":10}))]
        );
        again.clear("c").await.unwrap();
        let reopened = FileOffsets::open(path.clone()).unwrap();
        assert!(reopened.get("c").await.unwrap().is_empty());
        std::fs::write(&path, b"{oops").unwrap();
        assert!(matches!(
            FileOffsets::open(path),
            Err(StorageError::Corrupt { .. })
        ));
    }
}
