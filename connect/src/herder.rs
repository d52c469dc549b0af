//! The herder: connectors and their tasks — create, reconfigure, pause/resume/stop,
//! restart, delete, status, active topics and offsets (KIP-875). The REST layer calls
//! it. Every write goes to the config store first; then `reconcile` brings this
//! worker's running tasks in line with the records: the tasks the assignment gives
//! this worker (all of them in standalone), with their config, target and restart
//! count. Distributed mode calls `reconcile` again whenever the cluster changes, so
//! a write taken by one worker reaches the tasks on every other.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::assignment;
use crate::config::{self, ConfigMap};
use crate::config_store::{ConfigStore, ConnectorRecord, StoreError};
use crate::connectors::{self, Kind};
use crate::distributed::Cluster;
use crate::storage::OffsetStore;
use crate::worker::{self, SharedStatus, Target, TaskCtx, TaskStatus};
use crate::worker_config::WorkerConfig;

/// Errors with the HTTP status Connect answers them with.
#[derive(Debug, thiserror::Error)]
pub enum HerderError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Internal(String),
}

impl HerderError {
    pub fn status(&self) -> u16 {
        match self {
            HerderError::NotFound(_) => 404,
            HerderError::Conflict(_) => 409,
            HerderError::BadRequest(_) => 400,
            HerderError::Internal(_) => 500,
        }
    }
}

impl From<StoreError> for HerderError {
    fn from(e: StoreError) -> Self {
        HerderError::Internal(e.to_string())
    }
}

type R<T> = Result<T, HerderError>;

/// A task running on this worker.
struct Running {
    config: ConfigMap,
    restarts: u64,
    target: Target,
    /// The cluster session it was claimed under (0 in standalone).
    epoch: u64,
    control: watch::Sender<Target>,
    status: SharedStatus,
    join: Option<JoinHandle<()>>,
    /// What was last published to the cluster, so only changes are written.
    published: Option<(&'static str, Option<String>)>,
}

type Key = (String, i32);

/// What every worker agrees on at one moment: live workers, records, and who runs what.
#[derive(Default)]
struct Plan {
    records: BTreeMap<String, ConnectorRecord>,
    owners: BTreeMap<assignment::Unit, String>,
    workers: Vec<String>,
}

pub struct Herder {
    store: Arc<dyn ConfigStore>,
    offsets: Arc<dyn OffsetStore>,
    /// Distributed mode's membership; `None` in standalone, where every task is here.
    cluster: Option<Arc<Cluster>>,
    worker: Arc<WorkerConfig>,
    pub worker_id: String,
    local: tokio::sync::Mutex<BTreeMap<Key, Running>>,
    /// Each connector's active topics as seen on this worker, and (distributed) what
    /// of them was published.
    topics: Mutex<BTreeMap<String, ActiveTopics>>,
}

/// A connector's active topics as its tasks here record them, and what of them was
/// published to the cluster.
type ActiveTopics = (Arc<Mutex<BTreeSet<String>>>, BTreeSet<String>);

fn not_found(name: &str) -> HerderError {
    HerderError::NotFound(format!("Connector {name} not found"))
}

fn kind_of(config: &ConfigMap) -> Kind {
    connectors::plugin(config.get("connector.class").map_or("", |s| s.as_str()))
        .map_or(Kind::Source, |p| p.kind)
}

fn state_of(target: Target) -> &'static str {
    match target {
        Target::Running => "RUNNING",
        Target::Paused => "PAUSED",
        Target::Stopped => "STOPPED",
    }
}

impl Herder {
    pub fn new(
        worker: Arc<WorkerConfig>,
        store: Arc<dyn ConfigStore>,
        offsets: Arc<dyn OffsetStore>,
        cluster: Option<Arc<Cluster>>,
    ) -> Self {
        let worker_id = match &cluster {
            Some(c) => c.me.clone(),
            None => worker.rest_addr.clone(),
        };
        Herder {
            store,
            offsets,
            cluster,
            worker,
            worker_id,
            local: tokio::sync::Mutex::new(BTreeMap::new()),
            topics: Mutex::new(BTreeMap::new()),
        }
    }

    /// Check a config the way create does; the first error, naming its key.
    pub fn check(name: &str, config: &ConfigMap) -> R<()> {
        if name.trim().is_empty() {
            return Err(HerderError::BadRequest(
                "Connector name cannot be empty".into(),
            ));
        }
        let errs = connectors::validate(config);
        if errs.is_empty() {
            return Ok(());
        }
        let lines: Vec<String> = errs
            .iter()
            .map(|e| format!("Invalid value for configuration {}: {}", e.key, e.message))
            .collect();
        Err(HerderError::BadRequest(format!(
            "Connector configuration is invalid and contains the following {} error(s):\n{}\nYou can also find the above list of errors at the endpoint `/connector-plugins/{{connectorType}}/config/validate`",
            errs.len(),
            lines.join("\n")
        )))
    }

    async fn record(&self, name: &str) -> R<ConnectorRecord> {
        Ok(self
            .store
            .get(name)
            .await?
            .ok_or_else(|| not_found(name))?
            .0)
    }

    /// Change a connector's record with `f`, retrying when another worker changed it
    /// meanwhile; then bring the local tasks in line.
    async fn update(&self, name: &str, f: impl Fn(&mut ConnectorRecord)) -> R<ConnectorRecord> {
        loop {
            let (mut rec, v) = self.store.get(name).await?.ok_or_else(|| not_found(name))?;
            f(&mut rec);
            match self.store.put(name, &rec, Some(v)).await {
                Ok(()) => {
                    self.reconcile().await;
                    return Ok(rec);
                }
                Err(StoreError::Changed) => continue,
                Err(StoreError::NotFound) => return Err(not_found(name)),
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Create (or, with `allow_update`, replace) a connector. Returns its info and
    /// whether it was created.
    pub async fn put(
        &self,
        name: &str,
        mut config: ConfigMap,
        allow_update: bool,
    ) -> R<(Value, bool)> {
        match config.get("name") {
            Some(n) if n != name => {
                return Err(HerderError::BadRequest(format!(
                    "Connector name configuration ({n}) doesn't match connector name in the URL ({name})"
                )))
            }
            _ => {
                config.insert("name".into(), name.to_string());
            }
        }
        Self::check(name, &config)?;
        let exists = || HerderError::Conflict(format!("Connector {name} already exists"));
        let (rec, created) = loop {
            match self.store.get(name).await? {
                Some(_) if !allow_update => return Err(exists()),
                Some((old, v)) => {
                    let rec = ConnectorRecord {
                        tasks: if old.target == Target::Stopped {
                            Vec::new()
                        } else {
                            connectors::task_configs(&config)
                        },
                        config: config.clone(),
                        target: old.target,
                        restarts: old.restarts,
                    };
                    match self.store.put(name, &rec, Some(v)).await {
                        Ok(()) => break (rec, false),
                        Err(StoreError::Changed | StoreError::NotFound) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
                None => {
                    let rec = ConnectorRecord {
                        tasks: connectors::task_configs(&config),
                        config: config.clone(),
                        target: Target::Running,
                        restarts: BTreeMap::new(),
                    };
                    match self.store.put(name, &rec, None).await {
                        Ok(()) => break (rec, true),
                        Err(StoreError::Exists) if !allow_update => return Err(exists()),
                        Err(StoreError::Exists) => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        };
        self.reconcile().await;
        Ok((info_of(name, &rec), created))
    }

    async fn plan(&self) -> R<Plan> {
        let workers = match &self.cluster {
            Some(c) => c.workers().await.map_err(HerderError::Internal)?,
            None => vec![self.worker_id.clone()],
        };
        let mut records = BTreeMap::new();
        for name in self.store.list().await? {
            if let Some((rec, _)) = self.store.get(&name).await? {
                records.insert(name, rec);
            }
        }
        let counts: BTreeMap<String, usize> = records
            .iter()
            .map(|(n, r)| (n.clone(), r.tasks.len()))
            .collect();
        let owners = assignment::assign(&workers, &counts);
        Ok(Plan {
            records,
            owners,
            workers,
        })
    }

    /// Bring this worker's tasks in line with the records and the assignment: stop
    /// what is no longer ours or changed, pass new targets on, start what is ours
    /// and not running (in distributed mode once its `owners` node is ours).
    pub async fn reconcile(&self) {
        let mut local = self.local.lock().await;
        let plan = if self.cluster.as_ref().is_some_and(|c| c.expired()) {
            // Stop everything until a new session is registered (`Cluster::watch`).
            Plan::default()
        } else {
            match self.plan().await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the connectors' records; tasks unchanged");
                    return;
                }
            }
        };
        let epoch = self.cluster.as_ref().map_or(0, |c| c.epoch());
        let mut mine: BTreeMap<Key, (&ConnectorRecord, &ConfigMap)> = BTreeMap::new();
        for ((name, task), owner) in &plan.owners {
            let (Some(id), true) = (task, *owner == self.worker_id) else {
                continue;
            };
            let Some(rec) = plan.records.get(name) else {
                continue;
            };
            if let Some(tc) = rec.tasks.get(*id as usize) {
                mine.insert((name.clone(), *id), (rec, tc));
            }
        }
        let stale: Vec<Key> = local
            .iter()
            .filter(|(k, r)| match mine.get(*k) {
                None => true,
                Some((rec, tc)) => {
                    **tc != r.config
                        || rec.restarts.get(&k.1).copied().unwrap_or(0) != r.restarts
                        || r.epoch != epoch
                }
            })
            .map(|(k, _)| k.clone())
            .collect();
        for k in &stale {
            if let Some(r) = local.get(k) {
                let _ = r.control.send(Target::Stopped);
            }
        }
        for k in stale {
            if let Some(mut r) = local.remove(&k) {
                self.stop_task(&k, &mut r).await;
                if let (Some(c), true) = (&self.cluster, r.epoch == epoch) {
                    c.release(&k.0, k.1).await;
                }
            }
        }
        for (k, r) in local.iter_mut() {
            if let Some((rec, _)) = mine.get(k) {
                if r.target != rec.target {
                    r.target = rec.target;
                    let _ = r.control.send(rec.target);
                }
            }
        }
        for (k, (rec, tc)) in mine {
            if local.contains_key(&k) {
                continue;
            }
            if let Some(c) = &self.cluster {
                match c.claim(&k.0, k.1).await {
                    Ok(true) => {}
                    // Still held by the worker it moves from: next time round.
                    Ok(false) => continue,
                    Err(e) => {
                        tracing::warn!(error = %e, connector = %k.0, task = k.1, "cannot claim a task");
                        continue;
                    }
                }
            }
            let restarts = rec.restarts.get(&k.1).copied().unwrap_or(0);
            let r = self.spawn_task(&k, tc.clone(), rec.target, restarts, epoch);
            local.insert(k, r);
        }
        if let Some(c) = &self.cluster {
            self.publish(c, &mut local).await;
        }
    }

    /// Statuses and active topics of this worker's tasks that changed, to the cluster.
    async fn publish(&self, c: &Cluster, local: &mut BTreeMap<Key, Running>) {
        for ((name, id), r) in local.iter_mut() {
            let s = r.status.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let now = (s.state, s.trace);
            if r.published.as_ref() != Some(&now) {
                c.publish_status(name, *id, now.0, now.1.as_deref()).await;
                r.published = Some(now);
            }
        }
        let fresh: Vec<(String, String)> = {
            let mut topics = self.topics.lock().unwrap_or_else(|p| p.into_inner());
            let mut out = Vec::new();
            for (name, (seen, published)) in topics.iter_mut() {
                let seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                for t in seen.difference(published) {
                    out.push((name.clone(), t.clone()));
                }
                published.extend(seen.iter().cloned());
            }
            out
        };
        for (name, t) in fresh {
            if let Err(e) = c.add_topic(&name, &t).await {
                tracing::warn!(error = %e, connector = %name, topic = %t, "cannot record an active topic");
                if let Some((_, published)) = self
                    .topics
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_mut(&name)
                {
                    published.remove(&t);
                }
            }
        }
    }

    fn topics_of(&self, name: &str) -> Arc<Mutex<BTreeSet<String>>> {
        self.topics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(name.to_string())
            .or_default()
            .0
            .clone()
    }

    fn spawn_task(
        &self,
        (name, id): &Key,
        config: ConfigMap,
        target: Target,
        restarts: u64,
        epoch: u64,
    ) -> Running {
        let (tx, rx) = watch::channel(target);
        let status: SharedStatus = Arc::new(Mutex::new(TaskStatus {
            state: "UNASSIGNED",
            trace: None,
        }));
        let ctx = TaskCtx {
            connector: name.to_string(),
            id: *id,
            config: config.clone(),
            worker: self.worker.clone(),
            offsets: self.offsets.clone(),
            status: status.clone(),
            control: rx,
            topics: self.topics_of(name),
        };
        let join = tokio::spawn(worker::run_task(ctx));
        Running {
            config,
            restarts,
            target,
            epoch,
            control: tx,
            status,
            join: Some(join),
            published: None,
        }
    }

    async fn stop_task(&self, (name, id): &Key, t: &mut Running) {
        let _ = t.control.send(Target::Stopped);
        if let Some(j) = t.join.take() {
            let abort = j.abort_handle();
            if tokio::time::timeout(self.worker.shutdown_timeout, j)
                .await
                .is_err()
            {
                tracing::warn!(
                    connector = %name,
                    task = id,
                    "task did not stop within tasks.shutdown.graceful.timeout.ms; cancelled"
                );
                abort.abort();
            }
        }
    }

    pub async fn names(&self) -> R<Vec<String>> {
        Ok(self.store.list().await?)
    }

    pub async fn info(&self, name: &str) -> R<Value> {
        Ok(info_of(name, &self.record(name).await?))
    }

    pub async fn config(&self, name: &str) -> R<ConfigMap> {
        Ok(self.record(name).await?.config)
    }

    pub async fn status(&self, name: &str) -> R<Value> {
        let plan = self.plan().await?;
        let rec = plan.records.get(name).ok_or_else(|| not_found(name))?;
        let remote = self.remote_statuses(name).await;
        let local = self.local.lock().await;
        let owner = |u: Option<i32>| {
            plan.owners
                .get(&(name.to_string(), u))
                .cloned()
                .unwrap_or_else(|| self.worker_id.clone())
        };
        let tasks: Vec<Value> = (0..rec.tasks.len() as i32)
            .map(|id| {
                self.task_status_of(&local, &remote, &plan.workers, name, id, owner(Some(id)))
            })
            .collect();
        Ok(json!({
            "name": name,
            "connector": {"state": state_of(rec.target), "worker_id": owner(None)},
            "tasks": tasks,
            "type": kind_of(&rec.config).as_str(),
        }))
    }

    async fn remote_statuses(&self, name: &str) -> BTreeMap<i32, Value> {
        match &self.cluster {
            Some(c) => c.statuses(name).await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, connector = %name, "cannot read task statuses");
                BTreeMap::new()
            }),
            None => BTreeMap::new(),
        }
    }

    /// A task's status: from here if it runs here, else what its worker published
    /// while that worker is alive, else UNASSIGNED on the worker it is assigned to.
    fn task_status_of(
        &self,
        local: &BTreeMap<Key, Running>,
        remote: &BTreeMap<i32, Value>,
        workers: &[String],
        name: &str,
        id: i32,
        assigned: String,
    ) -> Value {
        if let Some(r) = local.get(&(name.to_string(), id)) {
            let s = r.status.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let mut v = json!({"id": id, "state": s.state, "worker_id": self.worker_id});
            if let Some(trace) = s.trace {
                v["trace"] = Value::String(trace);
            }
            return v;
        }
        if let Some(v) = remote.get(&id) {
            let w = v.get("worker_id").and_then(|w| w.as_str()).unwrap_or("");
            if w != self.worker_id && w == assigned && workers.iter().any(|x| x == w) {
                let mut v = v.clone();
                v["id"] = json!(id);
                return v;
            }
        }
        json!({"id": id, "state": "UNASSIGNED", "worker_id": assigned})
    }

    pub async fn tasks(&self, name: &str) -> R<Value> {
        let rec = self.record(name).await?;
        Ok(Value::Array(
            rec.tasks
                .iter()
                .enumerate()
                .map(|(i, tc)| json!({"id": {"connector": name, "task": i}, "config": tc}))
                .collect(),
        ))
    }

    pub async fn task_status(&self, name: &str, id: i32) -> R<Value> {
        let s = self.status(name).await?;
        s["tasks"]
            .as_array()
            .and_then(|ts| ts.iter().find(|t| t["id"] == json!(id)))
            .cloned()
            .ok_or_else(|| HerderError::NotFound(format!("No status found for task {name}-{id}")))
    }

    pub async fn topics(&self, name: &str) -> R<Value> {
        self.record(name).await?;
        let mut topics: BTreeSet<String> = self
            .topics_of(name)
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(c) = &self.cluster {
            topics.extend(c.topics(name).await.map_err(HerderError::Internal)?);
        }
        Ok(json!({ name: {"topics": topics} }))
    }

    pub async fn reset_topics(&self, name: &str) -> R<()> {
        self.record(name).await?;
        if let Some((seen, published)) = self
            .topics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_mut(name)
        {
            seen.lock().unwrap_or_else(|p| p.into_inner()).clear();
            published.clear();
        }
        if let Some(c) = &self.cluster {
            c.reset_topics(name).await.map_err(HerderError::Internal)?;
        }
        Ok(())
    }

    /// POST /connectors/{n}/restart: `None` when only the connector was restarted (204),
    /// else the status after asking the chosen tasks to restart (202).
    pub async fn restart(
        &self,
        name: &str,
        include_tasks: bool,
        only_failed: bool,
    ) -> R<Option<Value>> {
        let before = self.status(name).await?;
        if !include_tasks {
            // The connector object holds no running state of its own here: restarting
            // it is re-reading its config, which the next task start does anyway.
            return Ok(None);
        }
        let chosen: Vec<i32> = before["tasks"]
            .as_array()
            .map(|ts| {
                ts.iter()
                    .filter(|t| !only_failed || t["state"] == "FAILED")
                    .filter_map(|t| t["id"].as_i64().map(|i| i as i32))
                    .collect()
            })
            .unwrap_or_default();
        self.update(name, |rec| {
            for id in &chosen {
                *rec.restarts.entry(*id).or_default() += 1;
            }
        })
        .await?;
        let mut after = self.status(name).await?;
        // Tasks on other workers restart when those workers see the request.
        if let Some(ts) = after["tasks"].as_array_mut() {
            for t in ts {
                let id = t["id"].as_i64().unwrap_or(-1) as i32;
                if chosen.contains(&id) && t["worker_id"] != json!(self.worker_id) {
                    t["state"] = json!("RESTARTING");
                }
            }
        }
        Ok(Some(after))
    }

    pub async fn restart_task(&self, name: &str, id: i32) -> R<()> {
        let rec = self.record(name).await?;
        if id < 0 || id as usize >= rec.tasks.len() {
            return Err(HerderError::NotFound(format!("Task {name}-{id} not found")));
        }
        self.update(name, |rec| *rec.restarts.entry(id).or_default() += 1)
            .await?;
        Ok(())
    }

    /// pause / resume / stop. A stopped connector has no tasks (KIP-875); leaving
    /// STOPPED splits its config into tasks again.
    pub async fn set_target(&self, name: &str, target: Target) -> R<()> {
        self.update(name, |rec| {
            rec.target = target;
            if target == Target::Stopped {
                rec.tasks.clear();
            } else if rec.tasks.is_empty() {
                rec.tasks = connectors::task_configs(&rec.config);
            }
        })
        .await?;
        Ok(())
    }

    pub async fn delete(&self, name: &str) -> R<()> {
        match self.store.delete(name).await {
            Ok(()) => {}
            Err(StoreError::NotFound) => return Err(not_found(name)),
            Err(e) => return Err(e.into()),
        }
        self.reconcile().await;
        self.topics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        if let Some(c) = &self.cluster {
            c.forget(name).await.map_err(HerderError::Internal)?;
        }
        Ok(())
    }

    /// Stop every local task (gracefully, within the timeout), give up their claims
    /// and flush the offsets.
    pub async fn shutdown(&self) {
        let mut local = self.local.lock().await;
        for r in local.values() {
            let _ = r.control.send(Target::Stopped);
        }
        let all = std::mem::take(&mut *local);
        for (k, mut r) in all {
            self.stop_task(&k, &mut r).await;
            if let Some(c) = &self.cluster {
                c.release(&k.0, k.1).await;
            }
        }
        if let Err(e) = self.offsets.flush().await {
            tracing::error!(error = %e, "final offset flush failed");
        }
    }

    // ------------------------------------------------------------ offsets (KIP-875)

    async fn kind_and_topics(&self, name: &str, must_be_stopped: bool) -> R<(Kind, Vec<String>)> {
        let c = self.record(name).await?;
        if must_be_stopped && c.target != Target::Stopped {
            return Err(HerderError::BadRequest(format!(
                "Connectors must be in the STOPPED state before their offsets can be modified. This can be done for the specified connector by issuing a 'PUT' request to the '/connectors/{name}/stop' endpoint"
            )));
        }
        Ok((kind_of(&c.config), config::list(&c.config, "topics")))
    }

    pub async fn offsets(&self, name: &str) -> R<Value> {
        let (kind, topics) = self.kind_and_topics(name, false).await?;
        let entries: Vec<Value> = match kind {
            Kind::Source => self
                .offsets
                .get(name)
                .await
                .map_err(|e| HerderError::Internal(e.to_string()))?
                .into_iter()
                .map(|(p, o)| json!({"partition": p, "offset": o}))
                .collect(),
            Kind::Sink => {
                let bootstrap = self.worker.bootstrap_servers.clone();
                let group = worker::sink_group(name);
                tokio::task::spawn_blocking(move || sink_offsets(&bootstrap, &group, &topics))
                    .await
                    .map_err(|e| HerderError::Internal(e.to_string()))?
                    .map_err(HerderError::Internal)?
            }
        };
        Ok(json!({ "offsets": entries }))
    }

    pub async fn alter_offsets(&self, name: &str, body: &Value) -> R<String> {
        let (kind, _) = self.kind_and_topics(name, true).await?;
        let list = body
            .get("offsets")
            .and_then(|o| o.as_array())
            .ok_or_else(|| {
                HerderError::BadRequest(
                    "Partitions / offsets need to be provided for an alter offsets request".into(),
                )
            })?;
        match kind {
            Kind::Source => {
                let mut entries = Vec::new();
                for e in list {
                    let p = e
                        .get("partition")
                        .filter(|p| p.is_object())
                        .ok_or_else(|| {
                            HerderError::BadRequest("Source partitions must be JSON objects".into())
                        })?;
                    let o = match e.get("offset") {
                        None | Some(Value::Null) => None,
                        Some(o @ Value::Object(_)) => Some(o.clone()),
                        Some(_) => {
                            return Err(HerderError::BadRequest(
                                "Source offsets must be JSON objects or null".into(),
                            ))
                        }
                    };
                    entries.push((p.clone(), o));
                }
                self.offsets.put(name, entries);
                self.offsets
                    .flush()
                    .await
                    .map_err(|e| HerderError::Internal(e.to_string()))?;
            }
            Kind::Sink => {
                let mut tpl = TopicPartitionList::new();
                for e in list {
                    let p = e.get("partition");
                    let topic = p
                        .and_then(|p| p.get("kafka_topic"))
                        .and_then(|t| t.as_str());
                    let part = p
                        .and_then(|p| p.get("kafka_partition"))
                        .and_then(|t| t.as_i64());
                    let (Some(topic), Some(part)) = (topic, part) else {
                        return Err(HerderError::BadRequest("Sink partitions need kafka_topic (string) and kafka_partition (integer)".into()));
                    };
                    let off = e
                        .get("offset")
                        .and_then(|o| o.get("kafka_offset"))
                        .and_then(|o| o.as_i64());
                    let Some(off) = off.filter(|o| *o >= 0) else {
                        return Err(HerderError::BadRequest(
                            "Sink offsets need kafka_offset (a non-negative integer); to reset a sink connector's offsets use DELETE".into(),
                        ));
                    };
                    tpl.add_partition_offset(topic, part as i32, Offset::Offset(off))
                        .map_err(|e| HerderError::BadRequest(e.to_string()))?;
                }
                let bootstrap = self.worker.bootstrap_servers.clone();
                let group = worker::sink_group(name);
                tokio::task::spawn_blocking(move || -> Result<(), String> {
                    let c: BaseConsumer = group_client(&bootstrap, &group)
                        .create()
                        .map_err(|e| e.to_string())?;
                    // The stopped tasks' consumers may still be leaving the group: the
                    // broker refuses a commit into a group with members until they have.
                    let deadline = std::time::Instant::now() + Duration::from_secs(15);
                    loop {
                        match c.commit(&tpl, CommitMode::Sync) {
                            Ok(()) => return Ok(()),
                            Err(e) if std::time::Instant::now() < deadline => {
                                tracing::debug!(error = %e, "offsets not altered yet; retrying");
                                std::thread::sleep(Duration::from_millis(200));
                            }
                            Err(e) => {
                                return Err(format!(
                                    "could not alter the offsets of group {group} (are its tasks still stopping?): {e}"
                                ))
                            }
                        }
                    }
                })
                .await
                .map_err(|e| HerderError::Internal(e.to_string()))?
                .map_err(HerderError::Internal)?;
            }
        }
        Ok("The offsets for this connector have been altered successfully".into())
    }

    pub async fn reset_offsets(&self, name: &str) -> R<String> {
        let (kind, _) = self.kind_and_topics(name, true).await?;
        match kind {
            Kind::Source => {
                self.offsets
                    .clear(name)
                    .await
                    .map_err(|e| HerderError::Internal(e.to_string()))?;
            }
            Kind::Sink => {
                let mut cc = ClientConfig::new();
                cc.set("bootstrap.servers", &self.worker.bootstrap_servers);
                let admin: AdminClient<DefaultClientContext> = cc
                    .create()
                    .map_err(|e| HerderError::Internal(e.to_string()))?;
                let group = worker::sink_group(name);
                // As for PATCH: the stopped tasks may still be leaving the group.
                let deadline = std::time::Instant::now() + Duration::from_secs(15);
                loop {
                    let r = admin
                        .delete_groups(
                            &[group.as_str()],
                            &AdminOptions::new().request_timeout(Some(Duration::from_secs(30))),
                        )
                        .await
                        .map_err(|e| HerderError::Internal(e.to_string()))?;
                    let failed = r.into_iter().find_map(|g| match g {
                        Err((_, code))
                            if code != rdkafka::types::RDKafkaErrorCode::GroupIdNotFound =>
                        {
                            Some(code)
                        }
                        _ => None,
                    });
                    match failed {
                        None => break,
                        Some(rdkafka::types::RDKafkaErrorCode::NonEmptyGroup)
                            if std::time::Instant::now() < deadline =>
                        {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                        Some(code) => {
                            return Err(HerderError::Internal(format!(
                                "could not delete the offsets of group {group}: {code}"
                            )))
                        }
                    }
                }
            }
        }
        Ok("The offsets for this connector have been reset successfully".into())
    }
}

fn group_client(bootstrap: &str, group: &str) -> ClientConfig {
    let mut cc = ClientConfig::new();
    cc.set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false");
    cc
}

/// The sink group's committed offsets over every partition of its topics.
fn sink_offsets(bootstrap: &str, group: &str, topics: &[String]) -> Result<Vec<Value>, String> {
    let c: BaseConsumer = group_client(bootstrap, group)
        .create()
        .map_err(|e| e.to_string())?;
    let mut tpl = TopicPartitionList::new();
    for t in topics {
        let md = c
            .fetch_metadata(Some(t), Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        for mt in md.topics() {
            for p in mt.partitions() {
                tpl.add_partition(mt.name(), p.id());
            }
        }
    }
    if tpl.count() == 0 {
        return Ok(Vec::new());
    }
    let committed = c
        .committed_offsets(tpl, Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    Ok(committed
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some(json!({
                "partition": {"kafka_topic": e.topic(), "kafka_partition": e.partition()},
                "offset": {"kafka_offset": o},
            })),
            _ => None,
        })
        .collect())
}

fn info_of(name: &str, c: &ConnectorRecord) -> Value {
    json!({
        "name": name,
        "config": c.config,
        "tasks": (0..c.tasks.len()).map(|i| json!({"connector": name, "task": i})).collect::<Vec<_>>(),
        "type": kind_of(&c.config).as_str(),
    })
}
