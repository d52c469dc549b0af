//! The herder: connectors and their tasks on this worker — create, reconfigure,
//! pause/resume/stop, restart, delete, status, active topics and offsets (KIP-875).
//! The REST layer calls it; it starts task loops in `worker` and keeps their handles.
//! Standalone keeps configs in memory (as Kafka's standalone worker); distributed mode
//! will put a config store behind the same calls.

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

use crate::config::{self, ConfigMap, WorkerConfig};
use crate::connectors::{self, Kind};
use crate::storage::OffsetStore;
use crate::worker::{self, SharedStatus, Target, TaskCtx, TaskStatus};

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

type R<T> = Result<T, HerderError>;

struct Task {
    id: i32,
    config: ConfigMap,
    control: watch::Sender<Target>,
    status: SharedStatus,
    join: Option<JoinHandle<()>>,
}

struct Connector {
    config: ConfigMap,
    kind: Kind,
    target: Target,
    tasks: Vec<Task>,
    topics: Arc<Mutex<BTreeSet<String>>>,
}

pub struct Herder {
    connectors: tokio::sync::Mutex<BTreeMap<String, Connector>>,
    worker: Arc<WorkerConfig>,
    offsets: Arc<dyn OffsetStore>,
    pub worker_id: String,
}

fn not_found(name: &str) -> HerderError {
    HerderError::NotFound(format!("Connector {name} not found"))
}

impl Herder {
    pub fn new(worker: Arc<WorkerConfig>, offsets: Arc<dyn OffsetStore>) -> Self {
        let worker_id = worker.rest_addr.clone();
        Herder {
            connectors: tokio::sync::Mutex::new(BTreeMap::new()),
            worker,
            offsets,
            worker_id,
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
        let kind = connectors::plugin(
            config
                .get("connector.class")
                .map(|s| s.as_str())
                .unwrap_or(""),
        )
        .map(|p| p.kind)
        .ok_or_else(|| HerderError::BadRequest("unknown connector class".into()))?;
        let mut all = self.connectors.lock().await;
        let created = match all.get_mut(name) {
            Some(_) if !allow_update => {
                return Err(HerderError::Conflict(format!(
                    "Connector {name} already exists"
                )))
            }
            Some(c) => {
                self.stop_tasks(c).await;
                c.config = config;
                c.kind = kind;
                if c.target != Target::Stopped {
                    self.start_tasks(name, c);
                }
                false
            }
            None => {
                let mut c = Connector {
                    config,
                    kind,
                    target: Target::Running,
                    tasks: Vec::new(),
                    topics: Arc::default(),
                };
                self.start_tasks(name, &mut c);
                all.insert(name.to_string(), c);
                true
            }
        };
        let info = info_of(name, &all[name]);
        Ok((info, created))
    }

    fn start_tasks(&self, name: &str, c: &mut Connector) {
        c.tasks.clear();
        if c.target == Target::Stopped {
            return;
        }
        for (i, tc) in connectors::task_configs(&c.config).into_iter().enumerate() {
            c.tasks
                .push(self.spawn_task(name, i as i32, tc, c.target, c.topics.clone()));
        }
    }

    fn spawn_task(
        &self,
        name: &str,
        id: i32,
        config: ConfigMap,
        target: Target,
        topics: Arc<Mutex<BTreeSet<String>>>,
    ) -> Task {
        let (tx, rx) = watch::channel(target);
        let status: SharedStatus = Arc::new(Mutex::new(TaskStatus {
            state: "UNASSIGNED",
            trace: None,
        }));
        let ctx = TaskCtx {
            connector: name.to_string(),
            id,
            config: config.clone(),
            worker: self.worker.clone(),
            offsets: self.offsets.clone(),
            status: status.clone(),
            control: rx,
            topics,
        };
        let join = tokio::spawn(worker::run_task(ctx));
        Task {
            id,
            config,
            control: tx,
            status,
            join: Some(join),
        }
    }

    async fn stop_task(&self, t: &mut Task) {
        let _ = t.control.send(Target::Stopped);
        if let Some(j) = t.join.take() {
            let abort = j.abort_handle();
            if tokio::time::timeout(self.worker.shutdown_timeout, j)
                .await
                .is_err()
            {
                tracing::warn!(
                    task = t.id,
                    "task did not stop within tasks.shutdown.graceful.timeout.ms; cancelled"
                );
                abort.abort();
            }
        }
    }

    async fn stop_tasks(&self, c: &mut Connector) {
        for t in c.tasks.iter_mut() {
            let _ = t.control.send(Target::Stopped);
        }
        for t in c.tasks.iter_mut() {
            self.stop_task(t).await;
        }
        c.tasks.clear();
    }

    pub async fn names(&self) -> Vec<String> {
        self.connectors.lock().await.keys().cloned().collect()
    }

    pub async fn info(&self, name: &str) -> R<Value> {
        let all = self.connectors.lock().await;
        all.get(name)
            .map(|c| info_of(name, c))
            .ok_or_else(|| not_found(name))
    }

    pub async fn config(&self, name: &str) -> R<ConfigMap> {
        let all = self.connectors.lock().await;
        all.get(name)
            .map(|c| c.config.clone())
            .ok_or_else(|| not_found(name))
    }

    pub async fn status(&self, name: &str) -> R<Value> {
        let all = self.connectors.lock().await;
        let c = all.get(name).ok_or_else(|| not_found(name))?;
        Ok(self.status_of(name, c))
    }

    fn status_of(&self, name: &str, c: &Connector) -> Value {
        let state = match c.target {
            Target::Running => "RUNNING",
            Target::Paused => "PAUSED",
            Target::Stopped => "STOPPED",
        };
        let tasks: Vec<Value> = c.tasks.iter().map(|t| self.task_status_of(t)).collect();
        json!({
            "name": name,
            "connector": {"state": state, "worker_id": self.worker_id},
            "tasks": tasks,
            "type": c.kind.as_str(),
        })
    }

    fn task_status_of(&self, t: &Task) -> Value {
        let s = t.status.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut v = json!({"id": t.id, "state": s.state, "worker_id": self.worker_id});
        if let Some(trace) = s.trace {
            v["trace"] = Value::String(trace);
        }
        v
    }

    pub async fn tasks(&self, name: &str) -> R<Value> {
        let all = self.connectors.lock().await;
        let c = all.get(name).ok_or_else(|| not_found(name))?;
        Ok(Value::Array(
            c.tasks
                .iter()
                .map(|t| json!({"id": {"connector": name, "task": t.id}, "config": t.config}))
                .collect(),
        ))
    }

    pub async fn task_status(&self, name: &str, id: i32) -> R<Value> {
        let all = self.connectors.lock().await;
        let c = all.get(name).ok_or_else(|| not_found(name))?;
        let t = c.tasks.iter().find(|t| t.id == id).ok_or_else(|| {
            HerderError::NotFound(format!("No status found for task {name}-{id}"))
        })?;
        Ok(self.task_status_of(t))
    }

    pub async fn topics(&self, name: &str) -> R<Value> {
        let all = self.connectors.lock().await;
        let c = all.get(name).ok_or_else(|| not_found(name))?;
        let topics: Vec<String> = c
            .topics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect();
        Ok(json!({ name: {"topics": topics} }))
    }

    pub async fn reset_topics(&self, name: &str) -> R<()> {
        let all = self.connectors.lock().await;
        let c = all.get(name).ok_or_else(|| not_found(name))?;
        c.topics.lock().unwrap_or_else(|p| p.into_inner()).clear();
        Ok(())
    }

    /// POST /connectors/{n}/restart: `None` when only the connector was restarted (204),
    /// else the status after restarting the chosen tasks (202).
    pub async fn restart(
        &self,
        name: &str,
        include_tasks: bool,
        only_failed: bool,
    ) -> R<Option<Value>> {
        let mut all = self.connectors.lock().await;
        let c = all.get_mut(name).ok_or_else(|| not_found(name))?;
        if !include_tasks {
            // The connector object holds no running state of its own here: restarting
            // it is re-reading its config, which the next task start does anyway.
            return Ok(None);
        }
        let target = c.target;
        let topics = c.topics.clone();
        for i in 0..c.tasks.len() {
            let failed = c.tasks[i]
                .status
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .state
                == "FAILED";
            if only_failed && !failed {
                continue;
            }
            let id = c.tasks[i].id;
            let cfg = c.tasks[i].config.clone();
            self.stop_task(&mut c.tasks[i]).await;
            c.tasks[i] = self.spawn_task(name, id, cfg, target, topics.clone());
        }
        Ok(Some(self.status_of(name, c)))
    }

    pub async fn restart_task(&self, name: &str, id: i32) -> R<()> {
        let mut all = self.connectors.lock().await;
        let c = all.get_mut(name).ok_or_else(|| not_found(name))?;
        let (target, topics) = (c.target, c.topics.clone());
        let i = c
            .tasks
            .iter()
            .position(|t| t.id == id)
            .ok_or_else(|| HerderError::NotFound(format!("Task {name}-{id} not found")))?;
        let cfg = c.tasks[i].config.clone();
        self.stop_task(&mut c.tasks[i]).await;
        c.tasks[i] = self.spawn_task(name, id, cfg, target, topics);
        Ok(())
    }

    /// pause / resume / stop.
    pub async fn set_target(&self, name: &str, target: Target) -> R<()> {
        let mut all = self.connectors.lock().await;
        let c = all.get_mut(name).ok_or_else(|| not_found(name))?;
        let was = c.target;
        c.target = target;
        match (was, target) {
            (_, Target::Stopped) => self.stop_tasks(c).await,
            (Target::Stopped, _) => self.start_tasks(name, c),
            _ => {
                for t in &c.tasks {
                    let _ = t.control.send(target);
                }
            }
        }
        Ok(())
    }

    pub async fn delete(&self, name: &str) -> R<()> {
        let mut all = self.connectors.lock().await;
        let mut c = all.remove(name).ok_or_else(|| not_found(name))?;
        self.stop_tasks(&mut c).await;
        Ok(())
    }

    pub async fn shutdown(&self) {
        let mut all = self.connectors.lock().await;
        for c in all.values_mut() {
            self.stop_tasks(c).await;
        }
        if let Err(e) = self.offsets.flush() {
            tracing::error!(error = %e, "final offset flush failed");
        }
    }

    // ------------------------------------------------------------ offsets (KIP-875)

    async fn kind_and_topics(&self, name: &str, must_be_stopped: bool) -> R<(Kind, Vec<String>)> {
        let all = self.connectors.lock().await;
        let c = all.get(name).ok_or_else(|| not_found(name))?;
        if must_be_stopped && c.target != Target::Stopped {
            return Err(HerderError::BadRequest(format!(
                "Connectors must be in the STOPPED state before their offsets can be modified. This can be done for the specified connector by issuing a 'PUT' request to the '/connectors/{name}/stop' endpoint"
            )));
        }
        Ok((c.kind, config::list(&c.config, "topics")))
    }

    pub async fn offsets(&self, name: &str) -> R<Value> {
        let (kind, topics) = self.kind_and_topics(name, false).await?;
        let entries: Vec<Value> = match kind {
            Kind::Source => self
                .offsets
                .get(name)
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
                self.offsets.clear(name);
                self.offsets
                    .flush()
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

fn info_of(name: &str, c: &Connector) -> Value {
    json!({
        "name": name,
        "config": c.config,
        "tasks": c.tasks.iter().map(|t| json!({"connector": name, "task": t.id})).collect::<Vec<_>>(),
        "type": c.kind.as_str(),
    })
}
