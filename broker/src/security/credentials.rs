//! Where SCRAM credentials live: in the coordinator at Kafka's znode
//! `/config/users/<user>` (`{"version":1,"config":{"SCRAM-SHA-256":"salt=...,
//! stored_key=...,server_key=...,iterations=4096"}}`, the user name
//! sanitized as Kafka's `Sanitizer` does), with the `/config/changes/
//! config_change_<seq>` notification Kafka writes after a change, so
//! `kafka-configs --entity-type users` and Fjord see the same users. Every
//! broker reads the znode when a client authenticates (no cache to go
//! stale). Standalone brokers keep the same JSON in `<log.dir>/scram-users.json`
//! (`FileStore`, also the in-memory twin for tests).

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use fjord_zk::client::{CreateMode, ZkClient, ZkError};
use fjord_zk::proto::{Acl, ErrorCode};
use parking_lot::Mutex;
use serde_json::{json, Value};
use tokio::sync::watch;

use super::scram::{ScramCredential, ScramMechanism};

/// A user's credentials, one per mechanism.
pub type UserCredentials = BTreeMap<ScramMechanism, ScramCredential>;

/// Why the store could not answer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("coordinator: {0}")]
    Coordinator(String),
    #[error("credential store file: {0}")]
    File(String),
}

pub type Fut<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// The SCRAM credential store (coordinator or file).
pub trait ScramStore: Send + Sync {
    /// A user's credentials (empty when the user has none).
    fn get<'a>(&'a self, user: &'a str) -> Fut<'a, UserCredentials>;
    /// Set (Some) or remove (None) one mechanism's credential of a user.
    fn set<'a>(
        &'a self,
        user: &'a str,
        mech: ScramMechanism,
        cred: Option<ScramCredential>,
    ) -> Fut<'a, ()>;
    /// Every user that has at least one credential.
    fn users(&self) -> Fut<'_, Vec<String>>;
}

/// Kafka's `Sanitizer.sanitize`: URL-encode all but `[A-Za-z0-9._-]` (so a
/// user name is one znode path segment).
pub fn sanitize(name: &str) -> String {
    let mut out = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The inverse of [`sanitize`] (invalid escapes kept as they are).
pub fn desanitize(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 3 <= b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
            if let Ok(v) = u8::from_str_radix(hex, 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse a `/config/users/<user>` body into its SCRAM credentials (other
/// configs, quotas for example, are left alone).
pub fn parse_user_config(data: &[u8]) -> (UserCredentials, serde_json::Map<String, Value>) {
    let v: Value = serde_json::from_slice(data).unwrap_or(Value::Null);
    let config = v
        .get("config")
        .and_then(|c| c.as_object())
        .cloned()
        .unwrap_or_default();
    let creds = config
        .iter()
        .filter_map(|(k, v)| {
            let m = ScramMechanism::parse(k)?;
            Some((m, ScramCredential::parse_kafka_string(v.as_str()?)?))
        })
        .collect();
    (creds, config)
}

fn user_json(config: &serde_json::Map<String, Value>) -> Vec<u8> {
    json!({"version": 1, "config": config})
        .to_string()
        .into_bytes()
}

/// The store in the coordinator, on the broker's session.
pub struct ZkScramStore {
    sessions: watch::Receiver<ZkClient>,
}

const USERS: &str = "/config/users";
const RETRIES: usize = 5;

fn zk_err(e: ZkError) -> StoreError {
    StoreError::Coordinator(e.to_string())
}

impl ZkScramStore {
    pub fn new(sessions: watch::Receiver<ZkClient>) -> ZkScramStore {
        ZkScramStore { sessions }
    }
    fn zk(&self) -> ZkClient {
        self.sessions.borrow().clone()
    }

    async fn set_inner(
        &self,
        user: &str,
        mech: ScramMechanism,
        cred: Option<ScramCredential>,
    ) -> Result<(), ZkError> {
        let zk = self.zk();
        let path = format!("{USERS}/{}", sanitize(user));
        zk.ensure_path(USERS).await?;
        zk.ensure_path("/config/changes").await?;
        let mut last = None;
        for _ in 0..RETRIES {
            let (data, version) = match zk.get_data(&path).await {
                Ok((d, st)) => (Some(d), st.version),
                Err(e) if e.code() == Some(ErrorCode::NoNode) => (None, -1),
                Err(e) => return Err(e),
            };
            let (_, mut config) = parse_user_config(data.as_deref().unwrap_or(b"{}"));
            match &cred {
                Some(c) => {
                    config.insert(mech.name().to_string(), json!(c.to_kafka_string()));
                }
                None => {
                    config.remove(mech.name());
                }
            }
            let body = user_json(&config);
            let r = if version < 0 {
                zk.create(&path, &body, &Acl::open_unsafe(), CreateMode::Persistent)
                    .await
                    .map(|_| ())
            } else {
                zk.set_data(&path, &body, version).await.map(|_| ())
            };
            match r {
                Ok(()) => {
                    let note =
                        json!({"version": 2, "entity_path": format!("users/{}", sanitize(user))});
                    zk.create(
                        "/config/changes/config_change_",
                        note.to_string().as_bytes(),
                        &Acl::open_unsafe(),
                        CreateMode::PersistentSequential,
                    )
                    .await?;
                    return Ok(());
                }
                Err(e)
                    if matches!(
                        e.code(),
                        Some(ErrorCode::BadVersion) | Some(ErrorCode::NodeExists)
                    ) =>
                {
                    last = Some(e);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last.unwrap_or_else(|| ZkError::Protocol("conflicting writers".into())))
    }
}

impl ScramStore for ZkScramStore {
    fn get<'a>(&'a self, user: &'a str) -> Fut<'a, UserCredentials> {
        Box::pin(async move {
            let path = format!("{USERS}/{}", sanitize(user));
            match self.zk().get_data(&path).await {
                Ok((d, _)) => Ok(parse_user_config(&d).0),
                Err(e) if e.code() == Some(ErrorCode::NoNode) => Ok(BTreeMap::new()),
                Err(e) => Err(zk_err(e)),
            }
        })
    }

    fn set<'a>(
        &'a self,
        user: &'a str,
        mech: ScramMechanism,
        cred: Option<ScramCredential>,
    ) -> Fut<'a, ()> {
        Box::pin(async move { self.set_inner(user, mech, cred).await.map_err(zk_err) })
    }

    fn users(&self) -> Fut<'_, Vec<String>> {
        Box::pin(async move {
            let zk = self.zk();
            let names = match zk.get_children(USERS).await {
                Ok(n) => n,
                Err(e) if e.code() == Some(ErrorCode::NoNode) => Vec::new(),
                Err(e) => return Err(zk_err(e)),
            };
            let mut out = Vec::new();
            for n in names {
                let user = desanitize(&n);
                if !self.get(&user).await?.is_empty() {
                    out.push(user);
                }
            }
            out.sort();
            Ok(out)
        })
    }
}

/// Standalone brokers' store: the same JSON per user, in one file (or only
/// in memory when `path` is None).
pub struct FileStore {
    path: Option<PathBuf>,
    users: Mutex<BTreeMap<String, serde_json::Map<String, Value>>>,
}

impl FileStore {
    pub fn in_memory() -> FileStore {
        FileStore {
            path: None,
            users: Mutex::new(BTreeMap::new()),
        }
    }
    /// Open (or start) the file; an unreadable file is an error, not an empty store.
    pub fn open(path: PathBuf) -> Result<FileStore, StoreError> {
        let users = match std::fs::read(&path) {
            Ok(d) => serde_json::from_slice(&d).map_err(|e| StoreError::File(e.to_string()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(StoreError::File(e.to_string())),
        };
        Ok(FileStore {
            path: Some(path),
            users: Mutex::new(users),
        })
    }
    fn save(
        &self,
        users: &BTreeMap<String, serde_json::Map<String, Value>>,
    ) -> Result<(), StoreError> {
        let Some(p) = &self.path else { return Ok(()) };
        let tmp = p.with_extension("tmp");
        let body = serde_json::to_vec(users).map_err(|e| StoreError::File(e.to_string()))?;
        std::fs::write(&tmp, body).map_err(|e| StoreError::File(e.to_string()))?;
        std::fs::rename(&tmp, p).map_err(|e| StoreError::File(e.to_string()))
    }
}

impl ScramStore for FileStore {
    fn get<'a>(&'a self, user: &'a str) -> Fut<'a, UserCredentials> {
        let r = self
            .users
            .lock()
            .get(user)
            .map(|c| parse_user_config(&user_json(c)).0)
            .unwrap_or_default();
        Box::pin(async move { Ok(r) })
    }
    fn set<'a>(
        &'a self,
        user: &'a str,
        mech: ScramMechanism,
        cred: Option<ScramCredential>,
    ) -> Fut<'a, ()> {
        let r = {
            let mut users = self.users.lock();
            let entry = users.entry(user.to_string()).or_default();
            match cred {
                Some(c) => {
                    entry.insert(mech.name().to_string(), json!(c.to_kafka_string()));
                }
                None => {
                    entry.remove(mech.name());
                }
            }
            if entry.is_empty() {
                users.remove(user);
            }
            self.save(&users)
        };
        Box::pin(async move { r })
    }
    fn users(&self) -> Fut<'_, Vec<String>> {
        let r = self.users.lock().keys().cloned().collect();
        Box::pin(async move { Ok(r) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sanitize_round_trip() {
        assert_eq!(sanitize("alice"), "alice");
        assert_eq!(sanitize("a b/c"), "a%20b%2Fc");
        assert_eq!(desanitize("a%20b%2Fc"), "a b/c");
        assert_eq!(desanitize("50%"), "50%");
    }

    #[tokio::test]
    async fn file_store_sets_and_removes() {
        let s = FileStore::in_memory();
        let c = ScramCredential::new(ScramMechanism::Sha256, b"pw", None, 4096);
        s.set("alice", ScramMechanism::Sha256, Some(c.clone()))
            .await
            .unwrap();
        assert_eq!(
            s.get("alice").await.unwrap().get(&ScramMechanism::Sha256),
            Some(&c)
        );
        assert_eq!(s.users().await.unwrap(), vec!["alice".to_string()]);
        s.set("alice", ScramMechanism::Sha256, None).await.unwrap();
        assert!(s.get("alice").await.unwrap().is_empty());
        assert!(s.users().await.unwrap().is_empty());
    }
}
