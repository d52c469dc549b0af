//! zoo.cfg / zookeeper.properties, read unchanged: the keys ZooKeeper users
//! already have in their files mean the same thing here.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

/// A config problem, naming the file and the key so the operator can fix it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: invalid value {value:?} for key {key}: {why}")]
    Invalid {
        file: PathBuf,
        key: String,
        value: String,
        why: String,
    },
    #[error("{file}: missing required key {key}")]
    Missing { file: PathBuf, key: String },
    /// `dataDir/myid` is missing, unreadable, or names no `server.N` line.
    #[error("{file}: {why}")]
    MyId { file: PathBuf, why: String },
}

/// One ensemble member line:
/// `server.N=host:peerPort:electionPort[:role][;[clientAddr:]clientPort]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLine {
    pub id: u64,
    pub host: String,
    pub peer_port: u16,
    pub election_port: u16,
    /// The client address after `;`, as written (for `/zookeeper/config`).
    pub client: Option<String>,
}

impl ServerLine {
    /// The member as Raft membership stores it (openraft's `BasicNode`
    /// address): `host:peer:election[;client]`, so `/zookeeper/config` can
    /// be rendered from the membership alone.
    pub fn spec(&self) -> String {
        let mut s = format!("{}:{}:{}", self.host, self.peer_port, self.election_port);
        if let Some(c) = &self.client {
            s.push(';');
            s.push_str(c);
        }
        s
    }

    /// Parses a `server.N=...` entry as `reconfig` sends it (`joining`,
    /// `newMembers`): `None` if malformed.
    pub fn parse_entry(entry: &str) -> Option<ServerLine> {
        let (k, v) = entry.trim().split_once('=')?;
        let id = k.trim().strip_prefix("server.")?;
        parse_server_line(Path::new("reconfig"), k, id, v.trim()).ok()
    }
}

/// The peer address (`host:peerPort`) of a membership node address, which
/// is a [`ServerLine::spec`] (or a bare `host:port` from older logs).
pub fn peer_addr(spec: &str) -> String {
    let addr = spec.split(';').next().unwrap_or_default();
    let mut parts = addr.split(':');
    match (parts.next(), parts.next()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        _ => addr.to_string(),
    }
}

/// The coordinator's settings.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    pub tick_time_ms: u64,
    pub data_dir: PathBuf,
    pub data_log_dir: PathBuf,
    pub client_port: u16,
    pub client_port_address: IpAddr,
    /// Connections allowed from one IP; 0 = unlimited.
    pub max_client_cnxns: usize,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub init_limit: u64,
    pub sync_limit: u64,
    pub servers: Vec<ServerLine>,
    /// This member's id from `dataDir/myid`; `Some` exactly when `servers`
    /// is non-empty (ensemble mode).
    pub my_id: Option<u64>,
    pub snap_retain_count: usize,
    /// Hours between purges of old snapshots/logs; 0 = never.
    pub purge_interval_hours: u64,
    /// Four-letter words allowed on the client port ("*" = all).
    pub four_letter_words: Vec<String>,
    /// ZooKeeper's AdminServer (`admin.enableServer`, default true;
    /// `admin.serverAddress`:`admin.serverPort`, default 0.0.0.0:8080).
    pub admin_server: Option<SocketAddr>,
    /// The Prometheus endpoint, on when `metricsProvider.className` is set
    /// (`metricsProvider.httpHost`:`httpPort`, default 0.0.0.0:7000).
    pub metrics_provider: Option<SocketAddr>,
    /// Largest frame accepted from a client, in bytes.
    pub jute_max_buffer: usize,
    /// Transactions between snapshots.
    pub snap_count: u64,
    /// `digest` user:base64(sha1) that bypasses every ACL.
    pub super_digest: Option<String>,
    /// `reconfigEnabled`: whether clients may change the membership.
    pub reconfig_enabled: bool,
    /// `readonlymode.enabled`: a member cut off from the quorum serves
    /// read-only clients.
    pub read_only_enabled: bool,
    /// `skipACL=yes` (`-Dzookeeper.skipACL=yes`): no ACL is checked.
    pub skip_acl: bool,
    /// `maxCnxns`: client connections allowed in all; 0 = unlimited.
    pub max_cnxns: usize,
    /// `fjord.minFreeBytes` / `fjord.minFreePercent`: client writes are
    /// refused below this free space in dataDir/dataLogDir (`diskguard`).
    pub min_free_bytes: u64,
    pub min_free_percent: f64,
    /// TLS ports, SASL and the secure schemes' super users (security.rs).
    pub security: crate::security::Security,
    /// Every key as written, for the `conf` four-letter word.
    pub raw: Vec<(String, String)>,
}

const KNOWN: &[&str] = &[
    "tickTime",
    "dataDir",
    "dataLogDir",
    "clientPort",
    "clientPortAddress",
    "maxClientCnxns",
    "minSessionTimeout",
    "maxSessionTimeout",
    "initLimit",
    "syncLimit",
    "autopurge.snapRetainCount",
    "autopurge.purgeInterval",
    "4lw.commands.whitelist",
    "admin.serverPort",
    "admin.enableServer",
    "admin.serverAddress",
    "metricsProvider.httpHost",
    "metricsProvider.exportJvmInfo",
    "jute.maxbuffer",
    "snapCount",
    "DigestAuthenticationProvider.superDigest",
    "zookeeper.DigestAuthenticationProvider.superDigest",
    "standaloneEnabled",
    "reconfigEnabled",
    "metricsProvider.className",
    "metricsProvider.httpPort",
    "preAllocSize",
    "forceSync",
    "globalOutstandingLimit",
    "readonlymode.enabled",
    "quorumListenOnAllIPs",
    "skipACL",
    "maxCnxns",
    "fjord.minFreeBytes",
    "fjord.minFreePercent",
];

/// The Java system properties ZooKeeper reads that fjord-coord implements,
/// with the config key each sets here. Given as `-Dname=value` in
/// `SERVER_JVMFLAGS` or `JVMFLAGS` (the later wins, as on zkServer.sh's java
/// command line), they apply when the config file does not set the key.
pub const SYSTEM_PROPERTIES: &[(&str, &str)] = &[
    (
        "zookeeper.DigestAuthenticationProvider.superDigest",
        "zookeeper.DigestAuthenticationProvider.superDigest",
    ),
    ("zookeeper.skipACL", "skipACL"),
    ("zookeeper.maxCnxns", "maxCnxns"),
    ("readonlymode.enabled", "readonlymode.enabled"),
    ("jute.maxbuffer", "jute.maxbuffer"),
    ("zookeeper.4lw.commands.whitelist", "4lw.commands.whitelist"),
    ("zookeeper.snapCount", "snapCount"),
    ("zookeeper.admin.enableServer", "admin.enableServer"),
    ("zookeeper.admin.serverAddress", "admin.serverAddress"),
    ("zookeeper.admin.serverPort", "admin.serverPort"),
];

/// The `-Dname=value` flags of a JVM flags string (`-Dname` alone is
/// `name=""`, as Java reads it); everything else in it is ignored.
fn jvm_properties(flags: &str) -> Vec<(String, String)> {
    flags
        .split_whitespace()
        .filter_map(|f| f.strip_prefix("-D"))
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (k.to_string(), v.trim_matches(['"', '\'']).to_string())
        })
        .collect()
}

/// `SERVER_JVMFLAGS` then `JVMFLAGS`, as zkServer.sh passes them to java.
fn jvm_flags_from_env() -> String {
    ["SERVER_JVMFLAGS", "JVMFLAGS"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .collect::<Vec<_>>()
        .join(" ")
}

impl Config {
    /// Reads a zoo.cfg-style file. Unknown keys are warned about, not fatal,
    /// as ZooKeeper does; invalid values are fatal.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
            file: file.to_path_buf(),
            source,
        })?;
        Self::parse(file, &text)
    }

    /// Parses the text of `file` (split from `load` so tests need no files),
    /// with the system properties in `SERVER_JVMFLAGS`/`JVMFLAGS`.
    pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
        Self::parse_with_flags(file, text, &jvm_flags_from_env())
    }

    /// [`Config::parse`] with the JVM flags given: the keys the file does
    /// not set are taken from its [`SYSTEM_PROPERTIES`].
    pub fn parse_with_flags(
        file: &Path,
        text: &str,
        jvm_flags: &str,
    ) -> Result<Config, ConfigError> {
        let mut raw = Vec::new();
        let mut map = HashMap::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let (k, v) = match line.split_once('=').or_else(|| line.split_once(':')) {
                Some((k, v)) => (k.trim().to_string(), v.trim().to_string()),
                None => (line.to_string(), String::new()),
            };
            if !KNOWN.contains(&k.as_str())
                && !k.starts_with("server.")
                && !crate::security::is_key(&k)
            {
                tracing::warn!(file = %file.display(), key = %k, "unknown configuration key ignored");
            }
            map.insert(k.clone(), v.clone());
            raw.push((k, v));
        }
        let mut from_env: Vec<(String, String)> = Vec::new();
        for (prop, v) in jvm_properties(jvm_flags) {
            let Some((_, key)) = SYSTEM_PROPERTIES.iter().find(|(p, _)| *p == prop) else {
                if crate::security::is_key(&prop) {
                    // Read by security.rs as written (`zookeeper.ssl.*`...).
                    from_env.retain(|(k, _)| *k != prop);
                    from_env.push((prop, v));
                    continue;
                }
                tracing::debug!(property = %prop, "JVM flag ignored: not a property fjord-coord implements");
                continue;
            };
            from_env.retain(|(k, _)| k != key);
            from_env.push((key.to_string(), v));
        }
        for (k, v) in from_env {
            let file_sets = map.contains_key(&k)
                || (k == "zookeeper.DigestAuthenticationProvider.superDigest"
                    && map.contains_key("DigestAuthenticationProvider.superDigest"));
            if !file_sets {
                map.insert(k.clone(), v.clone());
                raw.push((k, v));
            }
        }
        let p = Parser { file, map: &map };
        let tick_time_ms: u64 = p.num("tickTime", 2000)?;
        if tick_time_ms == 0 {
            return Err(p.invalid("tickTime", "must be positive"));
        }
        let data_dir = PathBuf::from(
            map.get("dataDir")
                .cloned()
                .unwrap_or_else(|| "/tmp/fjord/coord".into()),
        );
        let data_log_dir = map
            .get("dataLogDir")
            .map(PathBuf::from)
            .unwrap_or_else(|| data_dir.clone());
        let client_port: u16 = p.num("clientPort", 2181)?;
        let client_port_address: IpAddr = p.num("clientPortAddress", IpAddr::from([0, 0, 0, 0]))?;
        let tick = tick_time_ms.min(i32::MAX as u64 / 20) as i32;
        let min_session_timeout_ms: i32 = p.num("minSessionTimeout", tick * 2)?;
        let max_session_timeout_ms: i32 = p.num("maxSessionTimeout", tick * 20)?;
        if min_session_timeout_ms <= 0 || max_session_timeout_ms < min_session_timeout_ms {
            return Err(p.invalid(
                "maxSessionTimeout",
                "must be positive and not below minSessionTimeout",
            ));
        }
        let mut servers: Vec<ServerLine> = Vec::new();
        for (k, v) in &raw {
            if let Some(id) = k.strip_prefix("server.") {
                let line = parse_server_line(file, k, id, v)?;
                if servers.iter().any(|s| s.id == line.id) {
                    return Err(ConfigError::Invalid {
                        file: file.to_path_buf(),
                        key: k.clone(),
                        value: v.clone(),
                        why: "duplicate server id".into(),
                    });
                }
                servers.push(line);
            }
        }
        servers.sort_by_key(|s| s.id);
        let four_letter_words = match map.get("4lw.commands.whitelist") {
            None => vec!["srvr".to_string()],
            Some(v) => v
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
        };
        let jute_max_buffer: usize = p.num("jute.maxbuffer", 0xfffff)?;
        if jute_max_buffer < 1024 {
            return Err(p.invalid("jute.maxbuffer", "must be at least 1024"));
        }
        let super_digest = map
            .get("DigestAuthenticationProvider.superDigest")
            .or_else(|| map.get("zookeeper.DigestAuthenticationProvider.superDigest"))
            .cloned();
        let read_only_enabled = p.flag("readonlymode.enabled")?;
        let any: IpAddr = IpAddr::from([0, 0, 0, 0]);
        let admin_server = (!map.contains_key("admin.enableServer")
            || p.flag("admin.enableServer")?)
        .then(|| -> Result<SocketAddr, ConfigError> {
            Ok(SocketAddr::new(
                p.num("admin.serverAddress", any)?,
                p.num("admin.serverPort", 8080)?,
            ))
        })
        .transpose()?;
        let metrics_provider = map
            .get("metricsProvider.className")
            .filter(|v| !v.is_empty())
            .map(|_| -> Result<SocketAddr, ConfigError> {
                Ok(SocketAddr::new(
                    p.num("metricsProvider.httpHost", any)?,
                    p.num("metricsProvider.httpPort", 7000)?,
                ))
            })
            .transpose()?;
        Ok(Config {
            file: file.to_path_buf(),
            tick_time_ms,
            data_dir,
            data_log_dir,
            client_port,
            client_port_address,
            max_client_cnxns: p.num("maxClientCnxns", 60)?,
            min_session_timeout_ms,
            max_session_timeout_ms,
            init_limit: p.num("initLimit", 10)?,
            sync_limit: p.num("syncLimit", 5)?,
            servers,
            my_id: None,
            snap_retain_count: p.num::<usize>("autopurge.snapRetainCount", 3)?.max(3),
            purge_interval_hours: p.num("autopurge.purgeInterval", 0)?,
            four_letter_words,
            admin_server,
            metrics_provider,
            jute_max_buffer,
            snap_count: p.num::<u64>("snapCount", 100_000)?.max(1000),
            super_digest,
            reconfig_enabled: p.flag("reconfigEnabled")?,
            read_only_enabled,
            skip_acl: p.flag("skipACL")?,
            max_cnxns: p.num("maxCnxns", 0)?,
            // Room for a snapshot of a large tree and the log behind it.
            min_free_bytes: p.num("fjord.minFreeBytes", 100 << 20)?,
            min_free_percent: p.num("fjord.minFreePercent", 0.0)?,
            security: crate::security::Security::parse(&|k: &str| {
                map.get(k)
                    .or_else(|| map.get(&format!("zookeeper.{k}")))
                    .cloned()
            })
            .map_err(|(key, why)| ConfigError::Invalid {
                file: file.to_path_buf(),
                value: map.get(&key).cloned().unwrap_or_default(),
                key,
                why,
            })?,
            raw,
        })
    }

    /// Reads `dataDir/myid` when the file lists `server.N` lines, as
    /// ZooKeeper does; without them the member runs standalone.
    pub fn read_my_id(&mut self) -> Result<(), ConfigError> {
        if self.servers.is_empty() {
            return Ok(());
        }
        let file = self.data_dir.join("myid");
        let bad = |why: String| ConfigError::MyId {
            file: file.clone(),
            why,
        };
        let text = std::fs::read_to_string(&file).map_err(|e| {
            bad(format!(
                "cannot read the member id (needed with server.N lines): {e}"
            ))
        })?;
        let id: u64 = text.trim().parse().map_err(|_| {
            bad(format!(
                "invalid member id {:?}: expected a number",
                text.trim()
            ))
        })?;
        if !self.servers.iter().any(|s| s.id == id) {
            return Err(bad(format!(
                "member id {id} has no server.{id} line in {}",
                self.file.display()
            )));
        }
        self.my_id = Some(id);
        Ok(())
    }

    /// The Raft timing ZooKeeper users already tune: a follower that hears
    /// nothing from a leader for between 1.5 and 2 ticks campaigns (what
    /// openraft's timer plus lease gave before; a leader whose process
    /// died is replaced at once instead, see `raft::elect`); the leader
    /// heartbeats ten times per tick. Returns (heartbeat, election timeout
    /// min, max) in ms.
    pub fn raft_timing(&self) -> (u64, u64, u64) {
        let tick = self.tick_time_ms.max(20);
        let heartbeat = (tick / 10).max(5);
        (heartbeat, tick * 3 / 2, tick * 2)
    }

    /// Whether the four-letter word `cmd` may run.
    pub fn four_letter_allowed(&self, cmd: &str) -> bool {
        self.four_letter_words.iter().any(|w| w == "*" || w == cmd)
    }
}

struct Parser<'a> {
    file: &'a Path,
    map: &'a HashMap<String, String>,
}

impl Parser<'_> {
    fn num<T: std::str::FromStr>(&self, key: &str, default: T) -> Result<T, ConfigError>
    where
        T::Err: std::fmt::Display,
    {
        match self.map.get(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|e: T::Err| self.invalid(key, &e.to_string())),
        }
    }

    /// A boolean key, false when absent (ZooKeeper's `true`/`false`).
    fn flag(&self, key: &str) -> Result<bool, ConfigError> {
        match self.map.get(key).map(|v| v.to_ascii_lowercase()) {
            None => Ok(false),
            Some(v) if v == "true" || v == "yes" => Ok(true),
            Some(v) if v == "false" || v == "no" => Ok(false),
            Some(_) => Err(self.invalid(key, "expected true or false")),
        }
    }

    fn invalid(&self, key: &str, why: &str) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_path_buf(),
            key: key.to_string(),
            value: self.map.get(key).cloned().unwrap_or_default(),
            why: why.to_string(),
        }
    }
}

fn parse_server_line(file: &Path, key: &str, id: &str, v: &str) -> Result<ServerLine, ConfigError> {
    let bad = |why: &str| ConfigError::Invalid {
        file: file.to_path_buf(),
        key: key.to_string(),
        value: v.to_string(),
        why: why.to_string(),
    };
    let id: u64 = id.parse().map_err(|_| bad("server id must be a number"))?;
    // host:peer:election[:role][;clientAddr:clientPort]
    let mut halves = v.splitn(2, ';');
    let addr = halves.next().unwrap_or_default();
    let client = halves
        .next()
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty());
    let parts: Vec<&str> = addr.split(':').collect();
    if parts.len() < 3 {
        return Err(bad("expected host:peerPort:electionPort"));
    }
    Ok(ServerLine {
        id,
        host: parts[0].to_string(),
        peer_port: parts[1].parse().map_err(|_| bad("bad peer port"))?,
        election_port: parts[2].parse().map_err(|_| bad("bad election port"))?,
        client,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_zoo_cfg() {
        let c = Config::parse(
            Path::new("zoo.cfg"),
            "tickTime=1000\ndataDir=/d\nclientPort=2999\nserver.1=a:2888:3888\n4lw.commands.whitelist=ruok, srvr\n",
        )
        .unwrap();
        assert_eq!(c.tick_time_ms, 1000);
        assert_eq!(c.min_session_timeout_ms, 2000);
        assert_eq!(c.max_session_timeout_ms, 20000);
        assert_eq!(c.data_log_dir, PathBuf::from("/d"));
        assert_eq!(c.servers[0].peer_port, 2888);
        assert!(!c.reconfig_enabled && !c.read_only_enabled);
        let l = ServerLine::parse_entry("server.4=h:1:2:participant;127.0.0.1:2184").unwrap();
        assert_eq!((l.id, l.spec()), (4, "h:1:2;127.0.0.1:2184".to_string()));
        assert_eq!(peer_addr(&l.spec()), "h:1");
        assert_eq!(peer_addr("h:7"), "h:7");
        assert!(ServerLine::parse_entry("server.x=h:1:2").is_none());
        assert!(c.four_letter_allowed("srvr") && !c.four_letter_allowed("mntr"));
        assert_eq!(c.admin_server, Some("0.0.0.0:8080".parse().unwrap()));
        assert_eq!(c.metrics_provider, None);
    }

    #[test]
    fn free_space_keys() {
        let d = Config::parse(Path::new("zoo.cfg"), "dataDir=/d\n").unwrap();
        assert_eq!((d.min_free_bytes, d.min_free_percent), (100 << 20, 0.0));
        let c = Config::parse(
            Path::new("zoo.cfg"),
            "dataDir=/d\nfjord.minFreeBytes=0\nfjord.minFreePercent=5\n",
        )
        .unwrap();
        assert_eq!((c.min_free_bytes, c.min_free_percent), (0, 5.0));
        assert!(Config::parse(Path::new("zoo.cfg"), "dataDir=/d\nfjord.minFreeBytes=x\n").is_err());
    }

    #[test]
    fn admin_server_and_metrics_provider_keys() {
        let c = Config::parse_with_flags(
            Path::new("zoo.cfg"),
            "admin.enableServer=false\n\
             metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n\
             metricsProvider.httpHost=127.0.0.1\nmetricsProvider.httpPort=7071\n",
            "",
        )
        .unwrap();
        assert_eq!(c.admin_server, None);
        assert_eq!(c.metrics_provider, Some("127.0.0.1:7071".parse().unwrap()));
        let c = Config::parse_with_flags(
            Path::new("zoo.cfg"),
            "admin.serverAddress=127.0.0.1\nadmin.serverPort=9990\n",
            "",
        )
        .unwrap();
        assert_eq!(c.admin_server, Some("127.0.0.1:9990".parse().unwrap()));
        let c = Config::parse_with_flags(
            Path::new("zoo.cfg"),
            "",
            "-Dzookeeper.admin.enableServer=false",
        )
        .unwrap();
        assert_eq!(c.admin_server, None);
        let e = Config::parse_with_flags(Path::new("z"), "admin.serverPort=x\n", "").unwrap_err();
        assert!(e.to_string().contains("admin.serverPort"), "{e}");
    }

    #[test]
    fn myid_selects_the_member() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "dataDir={}\nserver.2=127.0.0.1:2889:3889\nserver.1=127.0.0.1:2888:3888\n",
            dir.path().display()
        );
        let mut c = Config::parse(Path::new("zoo.cfg"), &text).unwrap();
        assert_eq!(c.servers[0].id, 1);
        let e = c.read_my_id().unwrap_err().to_string();
        assert!(e.contains("myid"), "{e}");
        std::fs::write(dir.path().join("myid"), "7\n").unwrap();
        let e = c.read_my_id().unwrap_err().to_string();
        assert!(e.contains("server.7"), "{e}");
        std::fs::write(dir.path().join("myid"), "x").unwrap();
        assert!(c.read_my_id().is_err());
        std::fs::write(dir.path().join("myid"), "2\n").unwrap();
        c.read_my_id().unwrap();
        assert_eq!(c.my_id, Some(2));
        let dup = Config::parse(Path::new("z"), "server.1=a:1:2\nserver.1=b:1:2\n").unwrap_err();
        assert!(dup.to_string().contains("server.1"));
    }

    #[test]
    fn standalone_needs_no_myid() {
        let mut c = Config::parse(Path::new("zoo.cfg"), "dataDir=/nonexistent\n").unwrap();
        c.read_my_id().unwrap();
        assert_eq!(c.my_id, None);
        let (hb, min, max) = c.raft_timing();
        assert!(hb < min && min < max, "{hb} {min} {max}");
    }

    #[test]
    fn jvm_flags_fill_what_the_file_leaves_unset() {
        let flags = "-Xmx512m -Dzookeeper.skipACL=yes -Djute.maxbuffer=4096 \
                     -Dzookeeper.maxCnxns=7 -Dsome.other=1 -Dzookeeper.snapCount=5000 \
                     -Dzookeeper.DigestAuthenticationProvider.superDigest=super:abc \
                     -Dreadonlymode.enabled=true -Dzookeeper.maxCnxns=9";
        let c = Config::parse_with_flags(Path::new("z"), "snapCount=2000\n", flags).unwrap();
        assert!(c.skip_acl && c.read_only_enabled);
        assert_eq!(c.jute_max_buffer, 4096);
        assert_eq!(c.max_cnxns, 9, "the later flag wins");
        assert_eq!(c.snap_count, 2000, "the file wins");
        assert_eq!(c.super_digest.as_deref(), Some("super:abc"));
        let c = Config::parse_with_flags(
            Path::new("z"),
            "DigestAuthenticationProvider.superDigest=super:file\n",
            flags,
        )
        .unwrap();
        assert_eq!(c.super_digest.as_deref(), Some("super:file"));
        let c = Config::parse_with_flags(Path::new("z"), "", "").unwrap();
        assert!(!c.skip_acl && c.max_cnxns == 0 && c.super_digest.is_none());
    }

    #[test]
    fn invalid_value_names_key_and_file() {
        let e = Config::parse(Path::new("/etc/zoo.cfg"), "tickTime=abc\n").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains("tickTime") && msg.contains("/etc/zoo.cfg"),
            "{msg}"
        );
    }
}
