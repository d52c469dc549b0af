//! Where ACLs live and how every broker's cache follows them. In the
//! coordinator (`ZkAclStore`): a change is a versioned read-modify-write of
//! the pattern's znode (Kafka's layout, `codec`) followed by Kafka's change
//! notification; every broker holds persistent recursive watches on
//! `/kafka-acl` and `/kafka-acl-extended` and re-reads a pattern's znode on
//! each event, so a change written by any broker, or by Kafka's own tools,
//! reaches every cache in one watch delivery. After a reconnect or a new
//! session the whole tree is loaded again (events may have been missed).
//! Standalone brokers keep ACLs in memory only (`MemAclStore`, also the
//! in-memory twin for tests).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use fjord_zk::client::{CreateMode, SessionState, ZkClient, ZkError};
use fjord_zk::proto::{event, Acl, ErrorCode};
use tokio::sync::watch;

use super::cache::AclCache;
use super::codec::*;
use super::model::*;
use crate::cluster::next_session;

#[derive(Debug, thiserror::Error)]
pub enum AclStoreError {
    #[error("coordinator: {0}")]
    Coordinator(String),
    #[error("{0}")]
    Corrupt(String),
}

pub type Fut<'a, T> = Pin<Box<dyn Future<Output = Result<T, AclStoreError>> + Send + 'a>>;

/// Add or remove entries of one pattern.
pub trait AclStore: Send + Sync {
    /// Add `entries` to pattern `p` (already present ones are kept once).
    fn add<'a>(&'a self, p: &'a ResourcePattern, entries: &'a [AclEntry]) -> Fut<'a, ()>;
    /// Remove `entries` from pattern `p` (the znode goes with the last one).
    fn remove<'a>(&'a self, p: &'a ResourcePattern, entries: &'a [AclEntry]) -> Fut<'a, ()>;
}

fn merged(mut cur: Vec<AclEntry>, add: &[AclEntry], remove: &[AclEntry]) -> Vec<AclEntry> {
    cur.extend(add.iter().cloned());
    cur.retain(|e| !remove.contains(e));
    cur.sort();
    cur.dedup();
    cur
}

/// ACLs in memory: the cache is the store.
pub struct MemAclStore {
    cache: Arc<AclCache>,
}

impl MemAclStore {
    pub fn new(cache: Arc<AclCache>) -> MemAclStore {
        MemAclStore { cache }
    }
}

impl AclStore for MemAclStore {
    fn add<'a>(&'a self, p: &'a ResourcePattern, entries: &'a [AclEntry]) -> Fut<'a, ()> {
        self.cache.put(p, merged(self.cache.get(p), entries, &[]));
        Box::pin(async { Ok(()) })
    }
    fn remove<'a>(&'a self, p: &'a ResourcePattern, entries: &'a [AclEntry]) -> Fut<'a, ()> {
        self.cache.put(p, merged(self.cache.get(p), &[], entries));
        Box::pin(async { Ok(()) })
    }
}

/// ACLs in the coordinator, on the broker's session.
pub struct ZkAclStore {
    sessions: watch::Receiver<ZkClient>,
    cache: Arc<AclCache>,
}

const RETRIES: usize = 10;
/// Change notifications kept (Kafka purges them after 15 minutes; no
/// broker needs them since every broker watches the ACL znodes themselves).
const KEEP_NOTES: usize = 100;

fn zk_err(e: ZkError) -> AclStoreError {
    AclStoreError::Coordinator(e.to_string())
}

/// The roots Kafka creates at startup.
async fn ensure_roots(zk: &ZkClient) -> Result<(), ZkError> {
    for p in [
        LITERAL_ROOT,
        "/kafka-acl-extended/prefixed",
        LITERAL_CHANGES,
        EXTENDED_CHANGES,
    ] {
        zk.ensure_path(p).await?;
    }
    Ok(())
}

impl ZkAclStore {
    pub fn new(sessions: watch::Receiver<ZkClient>, cache: Arc<AclCache>) -> ZkAclStore {
        ZkAclStore { sessions, cache }
    }

    async fn update(
        &self,
        p: &ResourcePattern,
        add: &[AclEntry],
        remove: &[AclEntry],
    ) -> Result<(), AclStoreError> {
        let zk = self.sessions.borrow().clone();
        let path = resource_path(p);
        let parent = path.rsplit_once('/').map_or("/", |(a, _)| a).to_string();
        zk.ensure_path(&parent).await.map_err(zk_err)?;
        for _ in 0..RETRIES {
            let (cur, version) = match zk.get_data(&path).await {
                Ok((d, st)) => (
                    decode_acls(&d).map_err(|e| AclStoreError::Corrupt(format!("{path}: {e}")))?,
                    st.version,
                ),
                Err(e) if e.code() == Some(ErrorCode::NoNode) => (Vec::new(), -1),
                Err(e) => return Err(zk_err(e)),
            };
            let next = merged(cur.clone(), add, remove);
            if next == cur {
                self.cache.put(p, next);
                return Ok(());
            }
            let r = match (version, next.is_empty()) {
                (-1, _) => zk
                    .create(
                        &path,
                        &encode_acls(&next),
                        &Acl::open_unsafe(),
                        CreateMode::Persistent,
                    )
                    .await
                    .map(|_| ()),
                (v, true) => zk.delete(&path, v).await,
                (v, false) => zk.set_data(&path, &encode_acls(&next), v).await.map(|_| ()),
            };
            match r {
                Ok(()) => {
                    // Our own cache at once; the others through their watches.
                    self.cache.put(p, next);
                    let (notes, body) = change_note(p);
                    zk.create(
                        &format!("{notes}/{CHANGE_PREFIX}"),
                        &body,
                        &Acl::open_unsafe(),
                        CreateMode::PersistentSequential,
                    )
                    .await
                    .map_err(zk_err)?;
                    purge_notes(&zk, notes).await;
                    return Ok(());
                }
                Err(e)
                    if matches!(
                        e.code(),
                        Some(ErrorCode::BadVersion)
                            | Some(ErrorCode::NodeExists)
                            | Some(ErrorCode::NoNode)
                    ) => {}
                Err(e) => return Err(zk_err(e)),
            }
        }
        Err(AclStoreError::Coordinator(format!(
            "{path}: too many concurrent writers"
        )))
    }
}

/// Delete all but the newest `KEEP_NOTES` change notifications (best effort).
async fn purge_notes(zk: &ZkClient, parent: &str) {
    let Ok(mut names) = zk.get_children(parent).await else {
        return;
    };
    if names.len() <= KEEP_NOTES {
        return;
    }
    names.sort();
    let old = names.len() - KEEP_NOTES;
    for n in names.into_iter().take(old) {
        let _ = zk.delete(&format!("{parent}/{n}"), -1).await;
    }
}

impl AclStore for ZkAclStore {
    fn add<'a>(&'a self, p: &'a ResourcePattern, entries: &'a [AclEntry]) -> Fut<'a, ()> {
        Box::pin(self.update(p, entries, &[]))
    }
    fn remove<'a>(&'a self, p: &'a ResourcePattern, entries: &'a [AclEntry]) -> Fut<'a, ()> {
        Box::pin(self.update(p, &[], entries))
    }
}

/// Read every pattern under both roots.
async fn load_all(zk: &ZkClient) -> Result<Vec<(ResourcePattern, Vec<AclEntry>)>, ZkError> {
    let mut out = Vec::new();
    for root in [LITERAL_ROOT.to_string(), store_root(PatternType::Prefixed)] {
        let types = match zk.get_children(&root).await {
            Ok(t) => t,
            Err(e) if e.code() == Some(ErrorCode::NoNode) => continue,
            Err(e) => return Err(e),
        };
        for t in types {
            let dir = format!("{root}/{t}");
            let names = match zk.get_children(&dir).await {
                Ok(n) => n,
                Err(e) if e.code() == Some(ErrorCode::NoNode) => continue,
                Err(e) => return Err(e),
            };
            for n in names {
                let path = format!("{dir}/{n}");
                let Some(p) = parse_resource_path(&path) else {
                    continue;
                };
                match zk.get_data(&path).await {
                    Ok((d, _)) => match decode_acls(&d) {
                        Ok(entries) => out.push((p, entries)),
                        Err(e) => tracing::warn!(path, error = %e, "ACL znode unreadable; ignored"),
                    },
                    Err(e) if e.code() == Some(ErrorCode::NoNode) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    Ok(out)
}

/// Re-read one pattern's znode into the cache.
async fn refresh(zk: &ZkClient, cache: &AclCache, path: &str) -> Result<(), ZkError> {
    let Some(p) = parse_resource_path(path) else {
        return Ok(());
    };
    match zk.get_data(path).await {
        Ok((d, _)) => match decode_acls(&d) {
            Ok(entries) => cache.put(&p, entries),
            Err(e) => tracing::warn!(path, error = %e, "ACL znode unreadable; ignored"),
        },
        Err(e) if e.code() == Some(ErrorCode::NoNode) => cache.put(&p, Vec::new()),
        Err(e) => return Err(e),
    }
    Ok(())
}

/// Keep `cache` equal to the coordinator's ACLs for the broker's lifetime:
/// watch both roots, load, then apply each event; start over (load again)
/// after a reconnect or on the next session.
pub async fn watch_task(
    cache: Arc<AclCache>,
    mut sessions: watch::Receiver<ZkClient>,
    mut shutdown: watch::Receiver<bool>,
) {
    'session: loop {
        let Some(zk) = next_session(&mut sessions, &mut shutdown).await else {
            return;
        };
        let setup = async {
            ensure_roots(&zk).await?;
            let a = zk.add_watch(LITERAL_ROOT, true).await?;
            let b = zk.add_watch(EXTENDED_ROOT, true).await?;
            let all = load_all(&zk).await?;
            Ok::<_, ZkError>((a, b, all))
        };
        let (mut lit, mut ext) = match setup.await {
            Ok((a, b, all)) => {
                cache.replace_all(all);
                tracing::info!(entries = cache.len(), "ACLs loaded");
                (a, b)
            }
            Err(e) => {
                tracing::warn!(error = %e, "ACLs: cannot watch the coordinator; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue 'session;
            }
        };
        let mut state = zk.state();
        state.borrow_and_update();
        let mut disconnected = false;
        loop {
            let ev = tokio::select! {
                ev = lit.recv() => ev,
                ev = ext.recv() => ev,
                r = state.changed() => {
                    if r.is_err() { continue 'session; }
                    let s = *state.borrow();
                    match s {
                        SessionState::Expired | SessionState::Closed => continue 'session,
                        SessionState::Connected if disconnected => {
                            // Events may have been missed while away: reload.
                            disconnected = false;
                            match load_all(&zk).await {
                                Ok(all) => cache.replace_all(all),
                                Err(e) => tracing::warn!(error = %e, "ACLs: reload failed"),
                            }
                        }
                        SessionState::Connected => {}
                        _ => disconnected = true,
                    }
                    continue;
                }
                _ = shutdown.changed() => return,
            };
            let Some(ev) = ev else { continue 'session };
            if matches!(
                ev.event_type,
                event::NODE_CREATED | event::NODE_DATA_CHANGED | event::NODE_DELETED
            ) {
                if let Err(e) = refresh(&zk, &cache, &ev.path).await {
                    tracing::warn!(path = %ev.path, error = %e, "ACLs: re-read failed");
                }
            }
        }
    }
}
