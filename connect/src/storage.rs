//! Source offsets behind a small trait: an in-memory twin (tests, REST-only runs) and
//! the standalone file (`offset.storage.file.filename`), rewritten whole and renamed
//! into place so a crash leaves the previous flush, never half a file. Distributed
//! mode will bring a third implementation over the cluster (see docs/architecture.md).
//!
//! Keys are Connect's: per connector, a source partition (a JSON object such as
//! `{"filename":"/x"}`) → its offset (`{"position":123}`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use std::sync::Mutex;

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
}

pub trait OffsetStore: Send + Sync {
    /// Every partition → offset of `connector`.
    fn get(&self, connector: &str) -> Vec<(Value, Value)>;
    /// Set (or, with `None`, remove) offsets; durable after `flush`.
    fn put(&self, connector: &str, entries: Vec<(Value, Option<Value>)>);
    /// Drop every offset of `connector` (DELETE /connectors/{n}/offsets).
    fn clear(&self, connector: &str);
    /// Make every `put` so far durable.
    fn flush(&self) -> Result<(), StorageError>;
}

/// In-memory twin.
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

impl OffsetStore for MemoryOffsets {
    fn get(&self, connector: &str) -> Vec<(Value, Value)> {
        get_in(&lock(&self.map), connector)
    }
    fn put(&self, connector: &str, entries: Vec<(Value, Option<Value>)>) {
        put_in(&mut lock(&self.map), connector, entries)
    }
    fn clear(&self, connector: &str) {
        lock(&self.map).remove(connector);
    }
    fn flush(&self) -> Result<(), StorageError> {
        Ok(())
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
    fn get(&self, connector: &str) -> Vec<(Value, Value)> {
        get_in(&lock(&self.map), connector)
    }
    fn put(&self, connector: &str, entries: Vec<(Value, Option<Value>)>) {
        put_in(&mut lock(&self.map), connector, entries)
    }
    fn clear(&self, connector: &str) {
        lock(&self.map).remove(connector);
    }
    fn flush(&self) -> Result<(), StorageError> {
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

    fn exercise(s: &dyn OffsetStore) {
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
            s.get("c"),
            vec![(json!({"filename":"/a"}), json!({"position":10}))]
        );
        assert!(s.get("other").is_empty());
    }

    #[test]
    fn memory_twin() {
        exercise(&MemoryOffsets::default());
    }

    #[test]
    fn file_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("offsets");
        let s = FileOffsets::open(path.clone()).unwrap();
        exercise(&s);
        s.flush().unwrap();
        let again = FileOffsets::open(path.clone()).unwrap();
        assert_eq!(
            again.get("c"),
            vec![(json!({"filename":"/a"}), json!({"position":10}))]
        );
        again.clear("c");
        again.flush().unwrap();
        assert!(FileOffsets::open(path.clone()).unwrap().get("c").is_empty());
        std::fs::write(&path, b"{oops").unwrap();
        assert!(matches!(
            FileOffsets::open(path),
            Err(StorageError::Corrupt { .. })
        ));
    }
}
