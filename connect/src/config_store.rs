//! Where connector configs live. A connector's record holds its config, the target
//! state that pause/resume/stop set, the task configs it was split into and the
//! restarts asked of each task; every worker derives what it runs from these records.
//! The trait has the standalone in-memory twin here; distributed mode keeps the
//! records in the coordinator (`distributed::ZkConfigs`), so every worker of a group
//! reads one truth and any worker can take a REST write.

use std::collections::BTreeMap;
use std::sync::Mutex;

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};

use crate::config::ConfigMap;
use crate::worker::Target;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConnectorRecord {
    pub config: ConfigMap,
    pub target: Target,
    /// The task configs the connector's config splits into; empty while STOPPED,
    /// as Kafka's (KIP-875).
    pub tasks: Vec<ConfigMap>,
    /// Restarts asked of each task: whoever runs task `i` restarts it when its count
    /// moves, so a restart request works from any worker.
    #[serde(default)]
    pub restarts: BTreeMap<i32, u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the connector exists")]
    Exists,
    #[error("the connector changed meanwhile")]
    Changed,
    #[error("the connector does not exist")]
    NotFound,
    #[error("config store: {0}")]
    Backend(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

pub trait ConfigStore: Send + Sync {
    /// Every connector's name, sorted.
    fn list(&self) -> BoxFuture<'_, StoreResult<Vec<String>>>;
    /// A record and its version (for `put`'s compare-and-set).
    fn get<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, StoreResult<Option<(ConnectorRecord, i32)>>>;
    /// Create (`version` None: `Exists` if it is there) or replace if the record is
    /// still at `version` (`Changed` if not, `NotFound` if it went).
    fn put<'a>(
        &'a self,
        name: &'a str,
        rec: &'a ConnectorRecord,
        version: Option<i32>,
    ) -> BoxFuture<'a, StoreResult<()>>;
    fn delete<'a>(&'a self, name: &'a str) -> BoxFuture<'a, StoreResult<()>>;
}

/// The standalone worker's store: configs live as long as the process, as Kafka's
/// standalone worker (its connectors come from the command line again at start).
#[derive(Default)]
pub struct MemoryConfigs {
    map: Mutex<BTreeMap<String, (ConnectorRecord, i32)>>,
}

impl MemoryConfigs {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, (ConnectorRecord, i32)>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ConfigStore for MemoryConfigs {
    fn list(&self) -> BoxFuture<'_, StoreResult<Vec<String>>> {
        let names = self.map().keys().cloned().collect();
        Box::pin(async move { Ok(names) })
    }

    fn get<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, StoreResult<Option<(ConnectorRecord, i32)>>> {
        let r = self.map().get(name).cloned();
        Box::pin(async move { Ok(r) })
    }

    fn put<'a>(
        &'a self,
        name: &'a str,
        rec: &'a ConnectorRecord,
        version: Option<i32>,
    ) -> BoxFuture<'a, StoreResult<()>> {
        let mut m = self.map();
        let r = match (m.get(name).map(|(_, v)| *v), version) {
            (Some(_), None) => Err(StoreError::Exists),
            (None, Some(_)) => Err(StoreError::NotFound),
            (Some(have), Some(want)) if have != want => Err(StoreError::Changed),
            (have, _) => {
                m.insert(name.to_string(), (rec.clone(), have.map_or(0, |v| v + 1)));
                Ok(())
            }
        };
        Box::pin(async move { r })
    }

    fn delete<'a>(&'a self, name: &'a str) -> BoxFuture<'a, StoreResult<()>> {
        let r = match self.map().remove(name) {
            Some(_) => Ok(()),
            None => Err(StoreError::NotFound),
        };
        Box::pin(async move { r })
    }
}

/// The contract a store keeps (the coordinator's is exercised through real workers
/// in tests/python/connect/test_distributed.py).
#[cfg(test)]
pub async fn exercise(s: &dyn ConfigStore) {
    let rec = |n: &str| ConnectorRecord {
        config: [("name".to_string(), n.to_string())].into(),
        target: Target::Running,
        tasks: vec![ConfigMap::new()],
        restarts: BTreeMap::new(),
    };
    assert!(s.get("a").await.unwrap().is_none());
    s.put("b", &rec("b"), None).await.unwrap();
    s.put("a", &rec("a"), None).await.unwrap();
    assert!(matches!(
        s.put("a", &rec("a"), None).await,
        Err(StoreError::Exists)
    ));
    assert_eq!(s.list().await.unwrap(), vec!["a", "b"]);
    let (mut got, v) = s.get("a").await.unwrap().unwrap();
    assert_eq!(got, rec("a"));
    got.target = Target::Paused;
    got.restarts.insert(0, 1);
    s.put("a", &got, Some(v)).await.unwrap();
    assert!(matches!(
        s.put("a", &got, Some(v)).await,
        Err(StoreError::Changed)
    ));
    assert_eq!(s.get("a").await.unwrap().unwrap().0, got);
    s.delete("a").await.unwrap();
    assert!(matches!(s.delete("a").await, Err(StoreError::NotFound)));
    assert!(matches!(
        s.put("a", &got, Some(v)).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(s.list().await.unwrap(), vec!["b"]);
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn memory_twin_keeps_the_contract() {
        super::exercise(&super::MemoryConfigs::default()).await;
    }
}
