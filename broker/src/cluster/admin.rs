//! Cluster administration vocabulary shared by both backends: the admin
//! failures (`AdminError`, mapped to Kafka codes in `wire::error`), a topic to
//! create (`NewTopic`), Kafka's topic-name rule, the pure placement planner
//! and the base64 uuids Kafka prints. Pure functions; no I/O.

use std::collections::BTreeMap;

use super::metadata::assign_replicas;

/// An edit of a topic's configs (see `Cluster::update_topic_configs`).
pub type ConfigEdit<'a> =
    dyn Fn(&mut BTreeMap<String, String>) -> Result<(), AdminError> + Send + Sync + 'a;

/// Every key and value of a topic's configs is one Fjord knows and accepts.
pub(crate) fn validate_configs(configs: &BTreeMap<String, String>) -> Result<(), AdminError> {
    configs
        .iter()
        .try_for_each(|(k, v)| crate::config::validate_topic_config(k, v))
        .map_err(AdminError::InvalidConfig)
}

/// Admin failures, each mapping onto one Kafka error code.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("topic already exists")]
    TopicExists,
    #[error("unknown topic")]
    UnknownTopic,
    #[error("invalid partitions: {0}")]
    InvalidPartitions(String),
    #[error("invalid replication factor: {0}")]
    InvalidReplicationFactor(String),
    #[error("invalid replica assignment: {0}")]
    InvalidReplicaAssignment(String),
    #[error("invalid config: {0}")]
    InvalidConfig(String),
    #[error("invalid topic name: {0}")]
    InvalidTopic(String),
    #[error("topic deletion disabled")]
    DeletionDisabled,
    #[error("request timed out")]
    Timeout,
    #[error("coordinator unavailable: {0}")]
    Unavailable(String),
    #[error("this broker is not the controller")]
    NotController,
    #[error("reassignment needs a coordinator (standalone mode)")]
    NeedsCoordinator,
}

/// A leader's ISR change for one partition: who writes (`me`, leading at
/// `epoch`), what it last saw (`cached_isr` at znode version
/// `cached_version`, -1 = unknown) and the members to add and remove.
#[derive(Debug, Clone, Copy)]
pub struct IsrChange<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub me: i32,
    pub epoch: i32,
    pub cached_isr: &'a [i32],
    pub cached_version: i32,
    pub add: &'a [i32],
    pub remove: &'a [i32],
}

/// A topic to create, as CreateTopics (or auto-creation) describes it.
#[derive(Debug, Clone)]
pub struct NewTopic {
    pub name: String,
    pub partitions: i32,
    pub replication_factor: i16,
    /// Explicit assignment partition → replicas; overrides the two counts.
    pub assignments: Option<BTreeMap<i32, Vec<i32>>>,
    pub configs: BTreeMap<String, String>,
}

/// Kafka's topic name rule: [a-zA-Z0-9._-], 1..=249 chars, not "." or "..".
pub fn validate_topic_name(name: &str) -> Result<(), AdminError> {
    if name.is_empty() || name.len() > 249 || name == "." || name == ".." {
        return Err(AdminError::InvalidTopic(name.to_string()));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    {
        return Err(AdminError::InvalidTopic(name.to_string()));
    }
    Ok(())
}

/// Resolve a NewTopic into a concrete assignment over `live` brokers.
pub fn plan_assignment(
    t: &NewTopic,
    live: &[i32],
    start: usize,
) -> Result<BTreeMap<i32, Vec<i32>>, AdminError> {
    validate_topic_name(&t.name)?;
    for (k, v) in &t.configs {
        crate::config::validate_topic_config(k, v).map_err(AdminError::InvalidConfig)?;
    }
    if let Some(a) = &t.assignments {
        if a.is_empty() {
            return Err(AdminError::InvalidReplicaAssignment("empty".into()));
        }
        for (i, (p, r)) in a.iter().enumerate() {
            if *p != i as i32 || r.is_empty() {
                return Err(AdminError::InvalidReplicaAssignment(format!(
                    "partition {p}"
                )));
            }
            let mut d = r.clone();
            d.sort_unstable();
            d.dedup();
            if d.len() != r.len() {
                return Err(AdminError::InvalidReplicaAssignment(
                    "duplicate replica".into(),
                ));
            }
            if let Some(b) = r.iter().find(|b| !live.contains(b)) {
                return Err(AdminError::InvalidReplicaAssignment(format!(
                    "unknown broker {b}"
                )));
            }
        }
        return Ok(a.clone());
    }
    if t.partitions < 1 {
        return Err(AdminError::InvalidPartitions("must be at least 1".into()));
    }
    if t.replication_factor < 1 {
        return Err(AdminError::InvalidReplicationFactor(
            "must be at least 1".into(),
        ));
    }
    assign_replicas(live, t.partitions, t.replication_factor, start, 0).ok_or_else(|| {
        AdminError::InvalidReplicationFactor(format!(
            "Replication factor: {} larger than available brokers: {}.",
            t.replication_factor,
            live.len()
        ))
    })
}

/// A fresh 22-character base64url cluster/topic id, as Kafka prints them.
pub fn new_base64_uuid() -> (uuid::Uuid, String) {
    use base64::Engine;
    let u = uuid::Uuid::new_v4();
    let s = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(u.as_bytes());
    (u, s)
}

/// Parse a base64url uuid as stored in znodes.
pub fn parse_base64_uuid(s: &str) -> Option<uuid::Uuid> {
    use base64::Engine;
    let b = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s.trim_end_matches('='))
        .ok()?;
    uuid::Uuid::from_slice(&b).ok()
}
