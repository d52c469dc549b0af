//! Broker configuration: Kafka's `server.properties` keys, unchanged, so an
//! operator's existing file works (docs/operations.md lists them).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use fjord_kafka::client::ClientConfig;
use fjord_kafka::security::ClientSecurity;

/// How this broker connects to the others (the inter-broker listener's
/// protocol, TLS material and SASL user), set once at start by the binary
/// (`security::listener::inter_broker_client`); plaintext until then.
static INTER_BROKER_CLIENT: OnceLock<ClientSecurity> = OnceLock::new();

/// Set the inter-broker client security (first call wins).
pub fn set_inter_broker_client(s: ClientSecurity) {
    let _ = INTER_BROKER_CLIENT.set(s);
}

/// Client settings for a connection to another broker (replica fetchers,
/// liveness probes, transaction markers, cluster metrics): `client_id`,
/// the inter-broker security, the library's defaults otherwise.
pub fn inter_broker_client(client_id: String) -> ClientConfig {
    let mut cfg = ClientConfig::new("");
    cfg.client_id = client_id;
    if let Some(s) = INTER_BROKER_CLIENT.get() {
        cfg.security = s.clone();
    }
    cfg
}

/// Why a configuration could not be used; the binary maps `Invalid` to exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("cannot read {file}: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    /// A key carries a value we cannot use; names the key and the file as Kafka does.
    #[error("invalid value {value:?} for configuration key {key} in {file}: {reason}")]
    Invalid {
        key: String,
        value: String,
        file: String,
        reason: String,
    },
}

/// One `listeners` entry: where we accept and what we advertise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

/// The wire protocol a listener speaks (Kafka's `SecurityProtocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    /// Kafka's spelling (`SASL_SSL`).
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }
    /// Parse Kafka's spelling (case-insensitive).
    pub fn parse(s: &str) -> Option<SecurityProtocol> {
        match s.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Some(SecurityProtocol::Plaintext),
            "SSL" => Some(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Some(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Some(SecurityProtocol::SaslSsl),
            _ => None,
        }
    }
    /// The connection starts with a TLS handshake.
    pub fn tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }
    /// The connection must authenticate with SASL before other requests.
    pub fn sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

/// One `listeners` entry with its protocol and `advertised.listeners` twin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerSpec {
    /// The listener name (`PLAINTEXT`, or a named listener such as `INTERNAL`).
    pub name: String,
    pub protocol: SecurityProtocol,
    pub bind: Endpoint,
    pub advertised: Endpoint,
}

/// Every setting the broker acts on, with Kafka's defaults.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub broker_id: i32,
    /// The inter-broker listener's bind and advertised endpoints (what
    /// `/brokers/ids/<id>` names as host/port, what replicas fetch from).
    pub listen: Endpoint,
    pub advertised: Endpoint,
    /// Every listener (`listeners`, `listener.security.protocol.map`,
    /// `advertised.listeners`); the first is the inter-broker one unless
    /// `inter.broker.listener.name`/`security.inter.broker.protocol` says.
    pub listeners: Vec<ListenerSpec>,
    /// The name of the listener replica fetchers and probes use.
    pub inter_broker_listener: String,
    pub log_dir: PathBuf,
    /// `host:port,...[/chroot]`; empty means standalone (cluster state kept locally).
    pub zookeeper_connect: String,
    pub zookeeper_session_timeout: Duration,
    pub zookeeper_connection_timeout: Duration,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub min_insync_replicas: i32,
    pub auto_create_topics: bool,
    pub delete_topic_enable: bool,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    pub retention_check_interval: Duration,
    pub segment_bytes: i64,
    /// Compaction (docs/architecture.md → Log compaction): the broker
    /// defaults of the topic configs and the cleaner's own knobs.
    pub cleaner: CleanerDefaults,
    pub offsets_topic_replication_factor: i16,
    pub unclean_leader_election: bool,
    pub replica_lag_time_max: Duration,
    /// replica.high.watermark.checkpoint.interval.ms: how often HWs are
    /// checkpointed (a restart starts from there, never the log end).
    pub hw_checkpoint_interval: Duration,
    /// broker.failure.detection.ms: a broker that has not answered the
    /// probes of the others for this long (or whose port refuses) counts as
    /// dead for the controller, before its coordinator session expires.
    pub broker_failure_detection: Duration,
    /// SIGTERM first hands this broker's leaderships to other ISR members.
    pub controlled_shutdown: bool,
    /// How long a controlled shutdown waits for the controller (Kafka's
    /// retries × backoff) before stopping anyway.
    pub controlled_shutdown_timeout: Duration,
    /// The controller moves leadership back to preferred replicas.
    pub auto_leader_rebalance: bool,
    pub leader_imbalance_check_interval: Duration,
    pub leader_imbalance_per_broker_percentage: u32,
    pub message_max_bytes: i32,
    pub socket_request_max_bytes: i32,
    /// fsync (RocksDB sync write) after this many messages; i64::MAX = never force.
    pub flush_interval_messages: i64,
    /// fsync at least this often; None = leave it to the OS.
    pub flush_interval_ms: Option<u64>,
    /// `log.dir.min.free.bytes` / `log.dir.min.free.percent`: produce is
    /// refused below this free space (issue 19, `log::disk`).
    pub free_space: crate::log::FreeSpaceLimits,
    /// How long a new group waits for more members before its first rebalance.
    pub group_initial_rebalance_delay: Duration,
    /// The session timeouts a JoinGroup may ask for, inclusive.
    pub group_min_session_timeout_ms: i32,
    pub group_max_session_timeout_ms: i32,
    /// Longest metadata string an OffsetCommit may attach to an offset.
    pub offset_metadata_max_bytes: usize,
    /// Largest `transaction.timeout.ms` an InitProducerId may ask for.
    pub transaction_max_timeout_ms: i32,
    /// producer.id.expiration.ms: a producer silent this long is forgotten by
    /// the partitions it wrote to (no open transaction there).
    pub producer_id_expiration_ms: i64,
    /// producer.id.expiration.check.interval.ms: how often they look.
    pub producer_id_expiration_check_interval: Duration,
    /// How often the transaction coordinator aborts timed-out transactions
    /// (and finishes ones a deposed coordinator left prepared).
    pub transaction_abort_interval: Duration,
    /// transactional.id.expiration.ms: a transactional id idle this long
    /// (and not in a transaction) is forgotten by its coordinator.
    pub transactional_id_expiration_ms: i64,
    /// transaction.remove.expired.transaction.cleanup.interval.ms: how often
    /// the coordinator looks for such ids.
    pub transaction_remove_expired_interval: Duration,
    /// schema.registry.listeners (`http://host:port`): where the Schema
    /// Registry's REST API listens; None (the key absent) keeps it off.
    pub schema_registry_listen: Option<Endpoint>,
    /// metrics.listeners (`http://host:port`): where `/metrics`,
    /// `/metrics/cluster`, `/health` and `/ready` are served; None (the key
    /// absent) keeps the endpoint off and the counters idle.
    pub metrics_listen: Option<Endpoint>,
    /// log.slow.request.ms: a request answered later than this is logged
    /// (API, client, duration); 0 turns the log line off.
    pub slow_request_ms: u64,
    /// log.format: `text` or `json` (FJORD_LOG_FORMAT overrides; read by
    /// the binary before the rest of the file, see `logging`).
    pub log_format: String,
    /// The file this came from, for error messages.
    pub source: String,
    /// Raw key/values, so DescribeConfigs can echo what was set.
    pub raw: BTreeMap<String, String>,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig {
            broker_id: 0,
            listen: Endpoint {
                host: "0.0.0.0".into(),
                port: 9092,
            },
            advertised: Endpoint {
                host: "127.0.0.1".into(),
                port: 9092,
            },
            listeners: Vec::new(),
            inter_broker_listener: "PLAINTEXT".into(),
            log_dir: PathBuf::from("/tmp/fjord/broker-0"),
            zookeeper_connect: String::new(),
            zookeeper_session_timeout: Duration::from_millis(18_000),
            zookeeper_connection_timeout: Duration::from_millis(18_000),
            num_partitions: 1,
            default_replication_factor: 1,
            min_insync_replicas: 1,
            auto_create_topics: true,
            delete_topic_enable: true,
            retention_ms: 168 * 3_600_000,
            retention_bytes: -1,
            retention_check_interval: Duration::from_millis(300_000),
            segment_bytes: 1 << 30,
            cleaner: CleanerDefaults::default(),
            offsets_topic_replication_factor: 3,
            unclean_leader_election: false,
            replica_lag_time_max: Duration::from_millis(30_000),
            hw_checkpoint_interval: Duration::from_millis(5_000),
            broker_failure_detection: Duration::from_millis(3_000),
            controlled_shutdown: true,
            controlled_shutdown_timeout: Duration::from_millis(3 * 5_000),
            auto_leader_rebalance: true,
            leader_imbalance_check_interval: Duration::from_secs(300),
            leader_imbalance_per_broker_percentage: 10,
            message_max_bytes: 1_048_588,
            socket_request_max_bytes: 104_857_600,
            flush_interval_messages: i64::MAX,
            flush_interval_ms: None,
            // Room for RocksDB to flush a full memtable (64 MB) and more.
            free_space: crate::log::FreeSpaceLimits {
                min_free_bytes: 100 << 20,
                min_free_percent: 0.0,
            },
            group_initial_rebalance_delay: Duration::from_millis(3000),
            group_min_session_timeout_ms: 6000,
            group_max_session_timeout_ms: 1_800_000,
            offset_metadata_max_bytes: 4096,
            transaction_max_timeout_ms: 900_000,
            producer_id_expiration_ms: 86_400_000,
            producer_id_expiration_check_interval: Duration::from_millis(600_000),
            transaction_abort_interval: Duration::from_millis(10_000),
            transactional_id_expiration_ms: 604_800_000,
            transaction_remove_expired_interval: Duration::from_millis(3_600_000),
            schema_registry_listen: None,
            metrics_listen: None,
            slow_request_ms: 1000,
            log_format: "text".into(),
            source: "<defaults>".into(),
            raw: BTreeMap::new(),
        }
    }
}

/// The log cleaner's broker-level settings (Kafka's `log.cleaner.*`,
/// `log.cleanup.policy`, `log.roll.*`) with Kafka's defaults.
#[derive(Debug, Clone)]
pub struct CleanerDefaults {
    /// log.cleaner.enable: run the cleaner at all.
    pub enable: bool,
    /// log.cleaner.threads: partitions cleaned at the same time.
    pub threads: usize,
    /// log.cleaner.backoff.ms: sleep when nothing was cleanable.
    pub backoff: Duration,
    /// log.cleanup.policy: the topic default (`delete`, `compact`, both).
    pub cleanup_policy: String,
    /// log.cleaner.delete.retention.ms: how long a cleaned tombstone stays.
    pub delete_retention_ms: i64,
    /// log.cleaner.min.cleanable.ratio.
    pub min_cleanable_ratio: f64,
    /// log.cleaner.min.compaction.lag.ms.
    pub min_compaction_lag_ms: i64,
    /// log.cleaner.max.compaction.lag.ms.
    pub max_compaction_lag_ms: i64,
    /// log.roll.ms / log.roll.hours: the default segment.ms.
    pub segment_ms: i64,
    /// log.cleaner.dedupe.buffer.size: memory for the key → offset map of one pass.
    pub dedupe_buffer_size: i64,
}

impl Default for CleanerDefaults {
    fn default() -> Self {
        CleanerDefaults {
            enable: true,
            threads: 1,
            backoff: Duration::from_millis(15_000),
            cleanup_policy: "delete".into(),
            delete_retention_ms: 86_400_000,
            min_cleanable_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            segment_ms: 604_800_000,
            dedupe_buffer_size: 128 << 20,
        }
    }
}

/// Keys accepted silently: recognised but not acted on yet.
const KNOWN_PASSIVE: &[&str] = &[
    "num.network.threads",
    "num.io.threads",
    "socket.send.buffer.bytes",
    "socket.receive.buffer.bytes",
    "num.recovery.threads.per.data.dir",
    "transaction.state.log.replication.factor",
    "transaction.state.log.min.isr",
    "offsets.topic.num.partitions",
    "broker.rack",
];

/// `NAME://host:port` entries of `listeners`/`advertised.listeners`, in order.
fn parse_listener_list(v: &str) -> Result<Vec<(String, Endpoint)>, String> {
    let mut out: Vec<(String, Endpoint)> = Vec::new();
    for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, rest) = match item.split_once("://") {
            Some((n, r)) => (n.trim().to_ascii_uppercase(), r),
            None => ("PLAINTEXT".to_string(), item),
        };
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| format!("expected NAME://host:port, got {item:?}"))?;
        let port: u16 = port.parse().map_err(|_| format!("bad port {port:?}"))?;
        if out.iter().any(|(n, _)| *n == name) {
            return Err(format!("listener name {name} appears twice"));
        }
        out.push((
            name,
            Endpoint {
                host: host.trim_matches(['[', ']']).to_string(),
                port,
            },
        ));
    }
    if out.is_empty() {
        return Err("no listener".into());
    }
    Ok(out)
}

/// `listener.security.protocol.map`: `NAME:PROTOCOL,...`.
fn parse_protocol_map(v: &str) -> Result<BTreeMap<String, SecurityProtocol>, String> {
    let mut m = BTreeMap::new();
    for item in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (n, p) = item
            .split_once(':')
            .ok_or_else(|| format!("expected NAME:PROTOCOL, got {item:?}"))?;
        let p =
            SecurityProtocol::parse(p).ok_or_else(|| format!("unknown security protocol {p:?}"))?;
        m.insert(n.trim().to_ascii_uppercase(), p);
    }
    Ok(m)
}

/// Combine `listeners`, the protocol map and `advertised.listeners` into specs.
fn build_listeners(
    raw: &BTreeMap<String, String>,
) -> Result<(Vec<ListenerSpec>, String), (String, String)> {
    let get = |k: &str| raw.get(k).map(String::as_str);
    let err = |k: &str, e: String| (k.to_string(), e);
    let listeners = match get("listeners") {
        Some(v) => parse_listener_list(v).map_err(|e| err("listeners", e))?,
        None => vec![(
            "PLAINTEXT".to_string(),
            Endpoint {
                host: "0.0.0.0".into(),
                port: 9092,
            },
        )],
    };
    let map = match get("listener.security.protocol.map") {
        Some(v) => parse_protocol_map(v).map_err(|e| err("listener.security.protocol.map", e))?,
        None => BTreeMap::new(),
    };
    let advertised = match get("advertised.listeners") {
        Some(v) => parse_listener_list(v).map_err(|e| err("advertised.listeners", e))?,
        None => Vec::new(),
    };
    let mut specs = Vec::new();
    for (name, bind) in listeners {
        let protocol = match map.get(&name) {
            Some(p) => *p,
            None => SecurityProtocol::parse(&name).ok_or_else(|| {
                err(
                    "listener.security.protocol.map",
                    format!("no security protocol for listener {name}"),
                )
            })?,
        };
        let adv = match advertised.iter().find(|(n, _)| *n == name) {
            Some((_, e)) => e.clone(),
            // A one-listener advertised list written without a name keeps working.
            None if advertised.len() == 1 && advertised[0].0 == "PLAINTEXT" && specs.is_empty() => {
                advertised[0].1.clone()
            }
            None => Endpoint {
                host: if bind.host.is_empty() || bind.host == "0.0.0.0" {
                    "127.0.0.1".to_string()
                } else {
                    bind.host.clone()
                },
                port: bind.port,
            },
        };
        specs.push(ListenerSpec {
            name,
            protocol,
            bind,
            advertised: adv,
        });
    }
    let inter = if let Some(n) = get("inter.broker.listener.name") {
        let n = n.trim().to_ascii_uppercase();
        if !specs.iter().any(|s| s.name == n) {
            return Err(err(
                "inter.broker.listener.name",
                format!("{n} is not in listeners"),
            ));
        }
        n
    } else if let Some(p) = get("security.inter.broker.protocol") {
        let p = SecurityProtocol::parse(p)
            .ok_or_else(|| err("security.inter.broker.protocol", "unknown protocol".into()))?;
        specs
            .iter()
            .find(|s| s.protocol == p)
            .map(|s| s.name.clone())
            .ok_or_else(|| {
                err(
                    "security.inter.broker.protocol",
                    format!("no listener speaks {}", p.name()),
                )
            })?
    } else {
        specs
            .iter()
            .find(|s| s.name == "PLAINTEXT")
            .unwrap_or(&specs[0])
            .name
            .clone()
    };
    Ok((specs, inter))
}

/// `http://host:port` (first of a list); bare `host:port` accepted too.
fn parse_http_endpoint(v: &str) -> Result<Endpoint, String> {
    let first = v.split(',').next().unwrap_or("").trim();
    let rest = match first.split_once("://") {
        Some((proto, rest)) if proto.eq_ignore_ascii_case("http") => rest,
        Some((proto, _)) => return Err(format!("only http listeners are supported, got {proto}")),
        None => first,
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| "expected http://host:port".to_string())?;
    let port: u16 = port.parse().map_err(|_| format!("bad port {port:?}"))?;
    Ok(Endpoint {
        host: host.trim_matches(['[', ']']).to_string(),
        port,
    })
}

impl BrokerConfig {
    /// Read and validate a `server.properties` file.
    pub fn load(path: &Path) -> Result<BrokerConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            file: path.display().to_string(),
            source,
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parse properties text; `file` only names the source in errors.
    pub fn parse(text: &str, file: &str) -> Result<BrokerConfig, ConfigError> {
        let mut raw = BTreeMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let (k, v) = match line.find(['=', ':']) {
                Some(i) => (line[..i].trim(), line[i + 1..].trim()),
                None => (line, ""),
            };
            raw.insert(k.to_string(), v.to_string());
        }
        Self::from_map(raw, file)
    }

    /// Build from key/values (also used by tests and the standalone mode).
    pub fn from_map(
        raw: BTreeMap<String, String>,
        file: &str,
    ) -> Result<BrokerConfig, ConfigError> {
        let mut c = BrokerConfig {
            source: file.to_string(),
            ..Default::default()
        };
        let bad = |k: &str, v: &str, reason: String| ConfigError::Invalid {
            key: k.to_string(),
            value: v.to_string(),
            file: file.to_string(),
            reason,
        };
        fn num<T: std::str::FromStr>(v: &str) -> Result<T, String> {
            v.parse::<T>()
                .map_err(|_| "not a number in range".to_string())
        }
        fn boolean(v: &str) -> Result<bool, String> {
            match v.to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err("expected true or false".into()),
            }
        }
        fn at_least<T>(v: &str, min: T) -> Result<T, String>
        where
            T: std::str::FromStr + PartialOrd + std::fmt::Display,
        {
            let n: T = num(v)?;
            if n < min {
                return Err(format!("must be >= {min}"));
            }
            Ok(n)
        }
        let mut hours = None;
        let mut minutes = None;
        let mut ms = None;
        let (mut roll_ms, mut roll_hours) = (None, None);
        let (mut cs_retries, mut cs_backoff) = (3u64, 5_000u64);
        for (k, v) in &raw {
            let r: Result<(), String> = (|| {
                match k.as_str() {
                    "broker.id" => c.broker_id = at_least(v, 0)?,
                    // Parsed together below (build_listeners).
                    "listeners"
                    | "advertised.listeners"
                    | "listener.security.protocol.map"
                    | "inter.broker.listener.name"
                    | "security.inter.broker.protocol" => {}
                    // Read by `security` (TLS and SASL settings, global and per listener).
                    k if k.starts_with("ssl.")
                        || k.starts_with("sasl.")
                        || k.starts_with("listener.name.")
                        || k == "connection.failed.authentication.delay.ms"
                        || k == "connections.max.reauth.ms" => {}
                    // ACLs (broker/src/acl reads them again from `raw`).
                    "authorizer.class.name" | "super.users" | "allow.everyone.if.no.acl.found" => {
                        let mut one = BTreeMap::new();
                        one.insert(k.clone(), v.clone());
                        if k != "authorizer.class.name" {
                            one.insert(
                                "authorizer.class.name".into(),
                                "kafka.security.authorizer.AclAuthorizer".into(),
                            );
                        }
                        crate::acl::authorizer::AclSettings::from_raw(&one).map_err(|e| {
                            e.split_once(": ").map_or(e.clone(), |(_, r)| r.to_string())
                        })?;
                    }
                    "log.dirs" | "log.dir" => {
                        let first = v.split(',').next().unwrap_or("").trim();
                        if first.is_empty() {
                            return Err("empty path".into());
                        }
                        c.log_dir = PathBuf::from(first);
                    }
                    "zookeeper.connect" => c.zookeeper_connect = v.clone(),
                    "zookeeper.session.timeout.ms" => {
                        c.zookeeper_session_timeout = Duration::from_millis(num(v)?)
                    }
                    "zookeeper.connection.timeout.ms" => {
                        c.zookeeper_connection_timeout = Duration::from_millis(num(v)?)
                    }
                    "num.partitions" => c.num_partitions = at_least(v, 1)?,
                    "default.replication.factor" => c.default_replication_factor = at_least(v, 1)?,
                    "min.insync.replicas" => c.min_insync_replicas = num(v)?,
                    "auto.create.topics.enable" => c.auto_create_topics = boolean(v)?,
                    "delete.topic.enable" => c.delete_topic_enable = boolean(v)?,
                    "log.retention.hours" => hours = Some(num::<i64>(v)?),
                    "log.retention.minutes" => minutes = Some(num::<i64>(v)?),
                    "log.retention.ms" => ms = Some(num::<i64>(v)?),
                    "log.retention.bytes" => c.retention_bytes = num(v)?,
                    "log.retention.check.interval.ms" => {
                        c.retention_check_interval = Duration::from_millis(num(v)?)
                    }
                    "log.segment.bytes" => c.segment_bytes = at_least(v, 1)?,
                    "log.cleaner.enable" => c.cleaner.enable = boolean(v)?,
                    "log.cleaner.threads" => c.cleaner.threads = at_least(v, 1)?,
                    "log.cleaner.backoff.ms" => {
                        c.cleaner.backoff = Duration::from_millis(at_least(v, 1)?)
                    }
                    "log.cleanup.policy" => {
                        validate_topic_config("cleanup.policy", v)?;
                        c.cleaner.cleanup_policy = v.clone();
                    }
                    "log.cleaner.delete.retention.ms" => {
                        c.cleaner.delete_retention_ms = at_least(v, 0)?
                    }
                    "log.cleaner.min.cleanable.ratio" => {
                        let r: f64 = num(v)?;
                        if !(0.0..=1.0).contains(&r) {
                            return Err("must be between 0 and 1".into());
                        }
                        c.cleaner.min_cleanable_ratio = r;
                    }
                    "log.cleaner.min.compaction.lag.ms" => {
                        c.cleaner.min_compaction_lag_ms = at_least(v, 0)?
                    }
                    "log.cleaner.max.compaction.lag.ms" => {
                        c.cleaner.max_compaction_lag_ms = at_least(v, 1)?
                    }
                    "log.cleaner.dedupe.buffer.size" => {
                        c.cleaner.dedupe_buffer_size = at_least(v, 1 << 20)?
                    }
                    "log.roll.ms" => roll_ms = Some(at_least::<i64>(v, 1)?),
                    "log.roll.hours" => roll_hours = Some(at_least::<i64>(v, 1)?),
                    "log.cleaner.io.max.bytes.per.second"
                    | "log.cleaner.io.buffer.size"
                    | "log.cleaner.io.buffer.load.factor" => {}
                    "offsets.topic.replication.factor" => {
                        c.offsets_topic_replication_factor = num(v)?
                    }
                    "unclean.leader.election.enable" => c.unclean_leader_election = boolean(v)?,
                    "replica.lag.time.max.ms" => {
                        c.replica_lag_time_max = Duration::from_millis(num(v)?)
                    }
                    "replica.high.watermark.checkpoint.interval.ms" => {
                        c.hw_checkpoint_interval = Duration::from_millis(at_least(v, 1)?)
                    }
                    "broker.failure.detection.ms" => {
                        c.broker_failure_detection = Duration::from_millis(at_least(v, 300)?)
                    }
                    "controlled.shutdown.enable" => c.controlled_shutdown = boolean(v)?,
                    "controlled.shutdown.max.retries" => cs_retries = num(v)?,
                    "controlled.shutdown.retry.backoff.ms" => cs_backoff = num(v)?,
                    "auto.leader.rebalance.enable" => c.auto_leader_rebalance = boolean(v)?,
                    "leader.imbalance.check.interval.seconds" => {
                        c.leader_imbalance_check_interval = Duration::from_secs(at_least(v, 1)?)
                    }
                    "leader.imbalance.per.broker.percentage" => {
                        c.leader_imbalance_per_broker_percentage = num(v)?;
                        if c.leader_imbalance_per_broker_percentage > 100 {
                            return Err("must be between 0 and 100".into());
                        }
                    }
                    "message.max.bytes" => c.message_max_bytes = at_least(v, 64)?,
                    "socket.request.max.bytes" => c.socket_request_max_bytes = at_least(v, 1024)?,
                    "log.flush.interval.messages" => c.flush_interval_messages = at_least(v, 1)?,
                    "log.flush.interval.ms" => c.flush_interval_ms = Some(num(v)?),
                    "log.dir.min.free.bytes" => c.free_space.min_free_bytes = num(v)?,
                    "log.dir.min.free.percent" => {
                        c.free_space.min_free_percent = num(v)?;
                        if !(0.0..=100.0).contains(&c.free_space.min_free_percent) {
                            return Err("must be between 0 and 100".into());
                        }
                    }
                    "group.initial.rebalance.delay.ms" => {
                        c.group_initial_rebalance_delay = Duration::from_millis(num(v)?)
                    }
                    "group.min.session.timeout.ms" => {
                        c.group_min_session_timeout_ms = at_least(v, 0)?
                    }
                    "group.max.session.timeout.ms" => {
                        c.group_max_session_timeout_ms = at_least(v, 0)?
                    }
                    "offset.metadata.max.bytes" => c.offset_metadata_max_bytes = num(v)?,
                    "transaction.max.timeout.ms" => c.transaction_max_timeout_ms = at_least(v, 1)?,
                    "producer.id.expiration.ms" => c.producer_id_expiration_ms = at_least(v, 1)?,
                    "producer.id.expiration.check.interval.ms" => {
                        c.producer_id_expiration_check_interval =
                            Duration::from_millis(at_least(v, 1)?)
                    }
                    "transaction.abort.timed.out.transaction.cleanup.interval.ms" => {
                        c.transaction_abort_interval = Duration::from_millis(at_least(v, 1)?)
                    }
                    "transactional.id.expiration.ms" => {
                        c.transactional_id_expiration_ms = at_least(v, 1)?
                    }
                    "transaction.remove.expired.transaction.cleanup.interval.ms" => {
                        c.transaction_remove_expired_interval =
                            Duration::from_millis(at_least(v, 1)?)
                    }
                    "schema.registry.listeners" => {
                        c.schema_registry_listen = Some(parse_http_endpoint(v)?)
                    }
                    "metrics.listeners" => c.metrics_listen = Some(parse_http_endpoint(v)?),
                    "log.slow.request.ms" => c.slow_request_ms = num(v)?,
                    "log.format" => match v.as_str() {
                        "text" | "json" => c.log_format = v.clone(),
                        _ => return Err("expected text or json".into()),
                    },
                    other if KNOWN_PASSIVE.contains(&other) => {}
                    // TLS and ACLs towards the coordinator: read by cluster/zk.rs.
                    other
                        if other.starts_with("zookeeper.ssl.")
                            || other == "zookeeper.set.acl"
                            || other == "zookeeper.clientCnxnSocket" => {}
                    other => tracing::warn!(key = other, file, "unknown configuration key ignored"),
                }
                Ok(())
            })();
            r.map_err(|reason| bad(k, v, reason))?;
        }
        if c.group_max_session_timeout_ms < c.group_min_session_timeout_ms {
            let k = "group.max.session.timeout.ms";
            let v = raw.get(k).map_or("", String::as_str);
            return Err(bad(k, v, "must be >= group.min.session.timeout.ms".into()));
        }
        c.controlled_shutdown_timeout =
            Duration::from_millis(cs_retries.max(1).saturating_mul(cs_backoff));
        if let Some(ms) = roll_ms {
            c.cleaner.segment_ms = ms;
        } else if let Some(h) = roll_hours {
            c.cleaner.segment_ms = h.saturating_mul(3_600_000);
        }
        if let Some(ms) = ms {
            c.retention_ms = ms;
        } else if let Some(m) = minutes {
            c.retention_ms = m.saturating_mul(60_000);
        } else if let Some(h) = hours {
            c.retention_ms = h.saturating_mul(3_600_000);
        }
        let (specs, inter) = build_listeners(&raw).map_err(|(k, reason)| {
            let v = raw.get(&k).cloned().unwrap_or_default();
            bad(&k, &v, reason)
        })?;
        if let Some(ib) = specs.iter().find(|s| s.name == inter) {
            c.listen = ib.bind.clone();
            c.advertised = ib.advertised.clone();
        }
        c.listeners = specs;
        c.inter_broker_listener = inter;
        if !raw.contains_key("log.dirs") && !raw.contains_key("log.dir") {
            c.log_dir = PathBuf::from(format!("/tmp/fjord/broker-{}", c.broker_id));
        }
        c.raw = raw;
        Ok(c)
    }
}

/// Is `key` one of Kafka's PASSWORD-typed configs (`ssl.keystore.password`,
/// `sasl.jaas.config`, their `listener.name.<l>.` forms, key material)?
/// DescribeConfigs never sends their values, as Kafka does not.
pub fn is_password_key(key: &str) -> bool {
    const SUFFIXES: &[&str] = &[
        ".password",
        "jaas.config",
        "secret",
        "secret.key",
        "ssl.keystore.key",
        "ssl.keystore.certificate.chain",
        "ssl.truststore.certificates",
    ];
    SUFFIXES.iter().any(|s| key.ends_with(s))
}

/// Topic-level configs with the broker-level key that supplies their default,
/// as DescribeConfigs reports them (name, broker key, default).
pub fn topic_config_defaults(
    c: &BrokerConfig,
) -> Vec<(&'static str, Option<&'static str>, String)> {
    #[rustfmt::skip]
    let with_broker_key = [
        ("cleanup.policy", "log.cleanup.policy", c.cleaner.cleanup_policy.clone()),
        ("delete.retention.ms", "log.cleaner.delete.retention.ms",
            c.cleaner.delete_retention_ms.to_string()),
        ("min.cleanable.dirty.ratio", "log.cleaner.min.cleanable.ratio",
            c.cleaner.min_cleanable_ratio.to_string()),
        ("min.compaction.lag.ms", "log.cleaner.min.compaction.lag.ms",
            c.cleaner.min_compaction_lag_ms.to_string()),
        ("max.compaction.lag.ms", "log.cleaner.max.compaction.lag.ms",
            c.cleaner.max_compaction_lag_ms.to_string()),
        ("segment.ms", "log.roll.ms", c.cleaner.segment_ms.to_string()),
        ("compression.type", "compression.type", "producer".to_string()),
        ("retention.ms", "log.retention.ms", c.retention_ms.to_string()),
        ("retention.bytes", "log.retention.bytes", c.retention_bytes.to_string()),
        ("segment.bytes", "log.segment.bytes", c.segment_bytes.to_string()),
        ("max.message.bytes", "message.max.bytes", c.message_max_bytes.to_string()),
        ("min.insync.replicas", "min.insync.replicas", c.min_insync_replicas.to_string()),
        ("unclean.leader.election.enable", "unclean.leader.election.enable",
            c.unclean_leader_election.to_string()),
        ("message.timestamp.type", "log.message.timestamp.type", "CreateTime".to_string()),
        ("flush.messages", "log.flush.interval.messages", c.flush_interval_messages.to_string()),
    ];
    with_broker_key
        .into_iter()
        .map(|(k, bk, v)| (k, Some(bk), v))
        .collect()
}

/// `cleanup.policy` as (compact, delete): a comma-separated list of
/// `compact` and `delete`, as Kafka's list type (spaces trimmed).
pub fn cleanup_policy(value: &str) -> Option<(bool, bool)> {
    let (mut compact, mut delete) = (false, false);
    for part in value.split(',').map(str::trim) {
        match part {
            "compact" => compact = true,
            "delete" => delete = true,
            _ => return None,
        }
    }
    Some((compact, delete))
}

/// Validate one topic config value; returns a reason when unusable.
pub fn validate_topic_config(name: &str, value: &str) -> Result<(), String> {
    match name {
        "retention.ms" | "retention.bytes" | "flush.messages" => value
            .parse::<i64>()
            .map(|_| ())
            .map_err(|_| format!("{name} must be an integer")),
        "segment.bytes" | "max.message.bytes" | "min.insync.replicas" => value
            .parse::<i32>()
            .ok()
            .filter(|v| *v >= 1)
            .map(|_| ())
            .ok_or_else(|| format!("{name} must be a positive integer")),
        "segment.ms" | "max.compaction.lag.ms" => value
            .parse::<i64>()
            .ok()
            .filter(|v| *v >= 1)
            .map(|_| ())
            .ok_or_else(|| format!("{name} must be an integer >= 1")),
        "delete.retention.ms" | "min.compaction.lag.ms" => value
            .parse::<i64>()
            .ok()
            .filter(|v| *v >= 0)
            .map(|_| ())
            .ok_or_else(|| format!("{name} must be an integer >= 0")),
        "min.cleanable.dirty.ratio" => value
            .parse::<f64>()
            .ok()
            .filter(|v| (0.0..=1.0).contains(v))
            .map(|_| ())
            .ok_or_else(|| format!("{name} must be a number in [0, 1]")),
        "cleanup.policy" => cleanup_policy(value)
            .map(|_| ())
            .ok_or_else(|| "cleanup.policy must be delete, compact or compact,delete".into()),
        "unclean.leader.election.enable"
        | "confluent.value.schema.validation"
        | "confluent.key.schema.validation" => match value {
            "true" | "false" => Ok(()),
            _ => Err(format!("{name} must be true or false")),
        },
        "compression.type" | "message.timestamp.type" => Ok(()),
        _ => validate_ignored_topic_config(name, value),
    }
}

/// Topic configs Kafka 3.x accepts that Fjord stores and reports but does not
/// act on (legacy ones such as `message.format.version`, and knobs of Kafka's
/// own log layout, cleaner and tiered storage). Kafka's type checks still apply,
/// so a typo in a value fails as it would on Kafka; unknown names fail.
fn validate_ignored_topic_config(name: &str, value: &str) -> Result<(), String> {
    let int = |min: i64| {
        value
            .parse::<i64>()
            .ok()
            .filter(|v| *v >= min)
            .map(|_| ())
            .ok_or_else(|| format!("{name} must be an integer >= {min}"))
    };
    let boolean = || match value {
        "true" | "false" => Ok(()),
        _ => Err(format!("{name} must be true or false")),
    };
    match name {
        "segment.jitter.ms"
        | "flush.ms"
        | "file.delete.delay.ms"
        | "message.timestamp.difference.max.ms"
        | "message.timestamp.before.max.ms"
        | "message.timestamp.after.max.ms" => int(0),
        "local.retention.ms" | "local.retention.bytes" => int(-2),
        "segment.index.bytes" | "index.interval.bytes" => int(0),
        "compression.gzip.level" | "compression.lz4.level" | "compression.zstd.level" => {
            int(i32::MIN as i64)
        }
        "preallocate"
        | "message.downconversion.enable"
        | "remote.storage.enable"
        | "remote.log.copy.disable"
        | "remote.log.delete.on.disable" => boolean(),
        "leader.replication.throttled.replicas" | "follower.replication.throttled.replicas" => {
            Ok(())
        }
        // Deprecated since 3.0 and ignored by Kafka for the 3.x protocol; any
        // Kafka version string (0.10.0, 0.10.0.0, 2.8-IV1, 3.0) is accepted.
        "message.format.version" => {
            let (v, iv) = value.split_once("-IV").unwrap_or((value, "0"));
            let parts: Vec<&str> = v.split('.').collect();
            let numeric = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
            if (2..=4).contains(&parts.len()) && parts.iter().all(|x| numeric(x)) && numeric(iv) {
                Ok(())
            } else {
                Err(format!("{value} is not a valid Kafka version for {name}"))
            }
        }
        _ => Err(format!("unknown topic config {name}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_keys_are_kafkas_password_configs() {
        for k in [
            "ssl.keystore.password",
            "ssl.key.password",
            "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config",
            "sasl.jaas.config",
            "ssl.keystore.key",
            "delegation.token.secret.key",
        ] {
            assert!(is_password_key(k), "{k}");
        }
        for k in [
            "ssl.keystore.location",
            "sasl.enabled.mechanisms",
            "log.dirs",
        ] {
            assert!(!is_password_key(k), "{k}");
        }
    }

    #[test]
    fn legacy_topic_configs_accepted_unknown_rejected() {
        for (k, v) in [
            ("message.format.version", "0.10.0.0"),
            ("message.format.version", "2.8-IV1"),
            ("message.format.version", "3.0"),
            ("preallocate", "true"),
            ("min.cleanable.dirty.ratio", "0.5"),
            ("cleanup.policy", "compact, delete"),
            ("min.compaction.lag.ms", "0"),
            ("max.compaction.lag.ms", "1"),
            ("delete.retention.ms", "0"),
            ("segment.jitter.ms", "10"),
            ("message.timestamp.difference.max.ms", "1000"),
            ("follower.replication.throttled.replicas", "*"),
        ] {
            assert_eq!(validate_topic_config(k, v), Ok(()), "{k}={v}");
        }
        for (k, v) in [
            ("message.format.version", "ten"),
            ("preallocate", "yes"),
            ("min.cleanable.dirty.ratio", "2"),
            ("cleanup.policy", "compacted"),
            ("max.compaction.lag.ms", "0"),
            ("delete.retention.ms", "-1"),
            ("segment.ms", "0"),
            ("segment.jitter.ms", "-1"),
            ("no.such.config", "1"),
        ] {
            assert!(validate_topic_config(k, v).is_err(), "{k}={v}");
        }
    }

    #[test]
    fn parses_named_listeners() {
        let c = BrokerConfig::parse(
            "listeners=INTERNAL://0.0.0.0:9092,EXTERNAL://0.0.0.0:9094,SSL://127.0.0.1:9093\n\
             listener.security.protocol.map=INTERNAL:PLAINTEXT,EXTERNAL:SASL_SSL,SSL:SSL\n\
             advertised.listeners=INTERNAL://10.0.0.1:9092,EXTERNAL://kafka.example.com:9094\n\
             inter.broker.listener.name=internal\n",
            "t.properties",
        )
        .unwrap();
        let names: Vec<_> = c
            .listeners
            .iter()
            .map(|l| (l.name.as_str(), l.protocol))
            .collect();
        assert_eq!(
            names,
            vec![
                ("INTERNAL", SecurityProtocol::Plaintext),
                ("EXTERNAL", SecurityProtocol::SaslSsl),
                ("SSL", SecurityProtocol::Ssl)
            ]
        );
        assert_eq!(c.inter_broker_listener, "INTERNAL");
        assert_eq!(c.advertised.host, "10.0.0.1");
        assert_eq!(c.listeners[1].advertised.host, "kafka.example.com");
        // Not advertised: the bind address (127.0.0.1 for a wildcard).
        assert_eq!(c.listeners[2].advertised.host, "127.0.0.1");
        let c = BrokerConfig::parse(
            "listeners=PLAINTEXT://127.0.0.1:1,SASL_SSL://127.0.0.1:2\n\
             security.inter.broker.protocol=SASL_SSL\n",
            "t",
        )
        .unwrap();
        assert_eq!(c.inter_broker_listener, "SASL_SSL");
        assert_eq!(c.listen.port, 2);
        for bad in [
            "listeners=CUSTOM://127.0.0.1:1\n",
            "listeners=PLAINTEXT://127.0.0.1:1,PLAINTEXT://127.0.0.1:2\n",
            "listeners=PLAINTEXT://127.0.0.1\n",
            "listeners=PLAINTEXT://127.0.0.1:1\ninter.broker.listener.name=OTHER\n",
            "listeners=A://127.0.0.1:1\nlistener.security.protocol.map=A:TLS\n",
        ] {
            assert!(BrokerConfig::parse(bad, "t").is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_kafka_keys() {
        let c = BrokerConfig::parse(
            "broker.id=3\nlisteners=PLAINTEXT://127.0.0.1:19093\nlog.dirs=/tmp/x,/tmp/y\n\
             log.retention.hours=1\nzookeeper.connect=127.0.0.1:2181/fjord\n",
            "t.properties",
        )
        .unwrap();
        assert_eq!(c.broker_id, 3);
        assert_eq!(c.listen.port, 19093);
        assert_eq!(c.advertised.host, "127.0.0.1");
        assert_eq!(c.log_dir, PathBuf::from("/tmp/x"));
        assert_eq!(c.retention_ms, 3_600_000);
        assert_eq!(c.zookeeper_connect, "127.0.0.1:2181/fjord");
    }

    #[test]
    fn free_space_keys_parse_with_defaults_and_bounds() {
        let d = BrokerConfig::parse("", "d.properties").unwrap();
        assert_eq!(d.free_space.min_free_bytes, 100 << 20);
        assert_eq!(d.free_space.min_free_percent, 0.0);
        let c = BrokerConfig::parse(
            "log.dir.min.free.bytes=0\nlog.dir.min.free.percent=2.5\n",
            "f.properties",
        )
        .unwrap();
        assert_eq!(c.free_space.min_free_bytes, 0);
        assert_eq!(c.free_space.min_free_percent, 2.5);
        assert!(BrokerConfig::parse("log.dir.min.free.percent=101\n", "f.properties").is_err());
        assert!(BrokerConfig::parse("log.dir.min.free.bytes=-1\n", "f.properties").is_err());
    }

    #[test]
    fn producer_expiration_keys() {
        let c = BrokerConfig::parse(
            "producer.id.expiration.ms=1000\nproducer.id.expiration.check.interval.ms=50\n",
            "p.properties",
        )
        .unwrap();
        assert_eq!(
            (
                c.producer_id_expiration_ms,
                c.producer_id_expiration_check_interval
            ),
            (1000, Duration::from_millis(50))
        );
        let d = BrokerConfig::parse("", "d.properties").unwrap();
        assert_eq!(d.producer_id_expiration_ms, 86_400_000);
        refused_naming_key_and_file(&[
            "producer.id.expiration.ms=0",
            "producer.id.expiration.check.interval.ms=soon",
        ]);
    }

    /// Each `key=value` line alone is refused with an error naming the key and the file.
    fn refused_naming_key_and_file(lines: &[&str]) {
        for bad in lines {
            let e = BrokerConfig::parse(bad, "p.properties")
                .unwrap_err()
                .to_string();
            let key = bad.split('=').next().unwrap_or_default();
            assert!(e.contains(key) && e.contains("p.properties"), "{e}");
        }
    }

    #[test]
    fn transactional_id_expiration_keys() {
        let d = BrokerConfig::parse("", "d.properties").unwrap();
        assert_eq!(
            (
                d.transactional_id_expiration_ms,
                d.transaction_remove_expired_interval
            ),
            (604_800_000, Duration::from_millis(3_600_000))
        );
        let c = BrokerConfig::parse(
            "transactional.id.expiration.ms=1500\n\
             transaction.remove.expired.transaction.cleanup.interval.ms=300\n",
            "t.properties",
        )
        .unwrap();
        assert_eq!(
            (
                c.transactional_id_expiration_ms,
                c.transaction_remove_expired_interval
            ),
            (1500, Duration::from_millis(300))
        );
        refused_naming_key_and_file(&[
            "transactional.id.expiration.ms=0",
            "transactional.id.expiration.ms=7d",
            "transaction.remove.expired.transaction.cleanup.interval.ms=-5",
            "transaction.remove.expired.transaction.cleanup.interval.ms=hourly",
        ]);
    }

    #[test]
    fn group_keys_are_typed_and_validated() {
        let c = BrokerConfig::parse(
            "group.initial.rebalance.delay.ms=0\ngroup.min.session.timeout.ms=100\n\
             group.max.session.timeout.ms=200\noffset.metadata.max.bytes=10\n",
            "g.properties",
        )
        .unwrap();
        assert_eq!(c.group_initial_rebalance_delay, Duration::ZERO);
        assert_eq!(c.group_min_session_timeout_ms, 100);
        assert_eq!(c.group_max_session_timeout_ms, 200);
        assert_eq!(c.offset_metadata_max_bytes, 10);
        let d = BrokerConfig::parse("", "d.properties").unwrap();
        assert_eq!(d.group_initial_rebalance_delay, Duration::from_millis(3000));
        assert_eq!(
            (
                d.group_min_session_timeout_ms,
                d.group_max_session_timeout_ms
            ),
            (6000, 1_800_000)
        );
        assert_eq!(d.offset_metadata_max_bytes, 4096);
        for bad in [
            "group.initial.rebalance.delay.ms=soon",
            "group.initial.rebalance.delay.ms=-1",
            "group.min.session.timeout.ms=6s",
            "group.min.session.timeout.ms=-5",
            "group.max.session.timeout.ms=99999999999",
            "offset.metadata.max.bytes=-1",
            "group.min.session.timeout.ms=10\ngroup.max.session.timeout.ms=5",
        ] {
            let e = BrokerConfig::parse(bad, "srv.properties").unwrap_err();
            let key = bad
                .lines()
                .last()
                .and_then(|l| l.split('=').next())
                .unwrap();
            let s = e.to_string();
            assert!(matches!(e, ConfigError::Invalid { .. }), "{bad}: {s}");
            assert!(
                s.contains(key) && s.contains("srv.properties"),
                "{bad}: {s}"
            );
        }
    }

    #[test]
    fn cleaner_keys_parse_and_reach_topic_defaults() {
        let c = BrokerConfig::parse(
            "log.cleanup.policy=compact\nlog.cleaner.backoff.ms=50\nlog.cleaner.threads=2\n\
             log.cleaner.delete.retention.ms=100\nlog.cleaner.min.cleanable.ratio=0.1\n\
             log.roll.hours=2\nlog.cleaner.enable=false\n",
            "c.properties",
        )
        .unwrap();
        assert!(!c.cleaner.enable);
        assert_eq!(c.cleaner.threads, 2);
        assert_eq!(c.cleaner.backoff, Duration::from_millis(50));
        assert_eq!(c.cleaner.segment_ms, 7_200_000);
        let d = topic_config_defaults(&c);
        let get = |k: &str| d.iter().find(|x| x.0 == k).map(|x| x.2.clone());
        assert_eq!(get("cleanup.policy").as_deref(), Some("compact"));
        assert_eq!(get("delete.retention.ms").as_deref(), Some("100"));
        assert_eq!(get("min.cleanable.dirty.ratio").as_deref(), Some("0.1"));
        assert_eq!(get("segment.ms").as_deref(), Some("7200000"));
        for bad in [
            "log.cleanup.policy=shred",
            "log.cleaner.min.cleanable.ratio=1.5",
            "log.cleaner.threads=0",
        ] {
            assert!(BrokerConfig::parse(bad, "c.properties").is_err(), "{bad}");
        }
    }

    #[test]
    fn ops_keys_parse() {
        let c = BrokerConfig::parse(
            "metrics.listeners=http://127.0.0.1:9644\nlog.slow.request.ms=250\nlog.format=json\n",
            "o.properties",
        )
        .unwrap();
        assert_eq!(
            c.metrics_listen,
            Some(Endpoint {
                host: "127.0.0.1".into(),
                port: 9644
            })
        );
        assert_eq!((c.slow_request_ms, c.log_format.as_str()), (250, "json"));
        let d = BrokerConfig::parse("", "d.properties").unwrap();
        assert_eq!((d.metrics_listen, d.slow_request_ms), (None, 1000));
        for bad in [
            "log.format=xml",
            "metrics.listeners=https://h:1",
            "log.slow.request.ms=-1",
        ] {
            assert!(BrokerConfig::parse(bad, "o.properties").is_err(), "{bad}");
        }
    }

    #[test]
    fn invalid_value_names_key_and_file() {
        let e = BrokerConfig::parse("num.partitions=abc\n", "srv.properties").unwrap_err();
        let s = e.to_string();
        assert!(
            s.contains("num.partitions") && s.contains("srv.properties"),
            "{s}"
        );
    }
}
