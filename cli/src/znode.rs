//! `fjord znode`: zkCli.sh's everyday commands over the async client, printing
//! what zkCli 3.8 prints (so muscle memory and scripts carry over), or JSON.

use std::fmt;
use std::io::Write;
use std::time::Duration;

use anyhow::Result;
use base64::Engine;
use bytes::Bytes;
use clap::{Args, Subcommand};
use fjord_zk::client::{CreateMode, SessionState, ZkClient, ZkError, ZkOptions};
use fjord_zk::proto::{event, state, Acl, ErrorCode, Stat};
use serde_json::{json, Value};

use crate::Output;

/// Arguments of `fjord znode`.
#[derive(Debug, Args)]
pub struct ZnodeArgs {
    /// Coordinator to talk to: host:port[,host:port...][/chroot].
    #[arg(long, global = true, default_value = "127.0.0.1:2181")]
    coord: String,

    /// Session timeout in milliseconds (zkCli's default is 30000).
    #[arg(long, global = true, default_value_t = 30000)]
    session_timeout_ms: u64,

    /// A properties file with the ZooKeeper client's TLS keys
    /// (`zookeeper.client.secure=true` or `zookeeper.ssl.client.enable=true`,
    /// `zookeeper.ssl.keyStore.*`, `zookeeper.ssl.trustStore.*`), as
    /// zkCli.sh takes them via CLIENT_JVMFLAGS or zookeeper-shell's -zk-tls-config-file.
    #[arg(long = "zk-tls-config", global = true)]
    zk_tls_config: Option<std::path::PathBuf>,

    #[command(subcommand)]
    cmd: ZnodeCmd,
}

#[derive(Debug, Subcommand)]
enum ZnodeCmd {
    /// List children, sorted: `[a, b]`.
    Ls {
        /// Recursively list every path below, one per line.
        #[arg(short = 'R')]
        recursive: bool,
        /// Also print the node's Stat.
        #[arg(short = 's')]
        stat: bool,
        path: String,
    },
    /// Print the node's data (`null` for null data).
    Get {
        /// Also print the node's Stat.
        #[arg(short = 's')]
        stat: bool,
        path: String,
    },
    /// Print the node's Stat.
    Stat { path: String },
    /// Create a node: `Created /path`.
    Create {
        /// Ephemeral: deleted when this command's session ends.
        #[arg(short = 'e')]
        ephemeral: bool,
        /// Sequential: the server appends a 10-digit counter.
        #[arg(short = 's')]
        sequential: bool,
        /// Container: deleted by the server once its last child goes.
        #[arg(short = 'c')]
        container: bool,
        /// TTL in ms (server needs zookeeper.extendedTypesEnabled).
        #[arg(short = 't')]
        ttl: Option<i64>,
        path: String,
        /// Data; omitted means null data, as in zkCli.
        data: Option<String>,
    },
    /// Replace the node's data.
    Set {
        /// Only if the data version matches.
        #[arg(short = 'v', allow_hyphen_values = true)]
        version: Option<i32>,
        /// Print the new Stat.
        #[arg(short = 's')]
        stat: bool,
        path: String,
        data: String,
    },
    /// Delete a childless node.
    Delete {
        /// Only if the data version matches.
        #[arg(short = 'v', allow_hyphen_values = true)]
        version: Option<i32>,
        path: String,
    },
    /// Delete a node and everything below it.
    Deleteall { path: String },
    /// Print watch events on a node as they come, until killed (a persistent watch).
    Watch {
        /// Also events on every descendant (child-list changes excepted).
        #[arg(long)]
        recursive: bool,
        path: String,
    },
}

/// A failure worded as zkCli words it; `code` names the ZooKeeper error for JSON.
#[derive(Debug)]
pub struct CliError {
    pub message: String,
    pub code: Option<String>,
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CliError {}

/// KeeperException.Code.getCodeMessage, for "KeeperErrorCode = ... for /path".
fn code_message(c: ErrorCode) -> &'static str {
    use ErrorCode::*;
    match c {
        Ok => "ok",
        SystemError => "SystemError",
        RuntimeInconsistency => "RuntimeInconsistency",
        DataInconsistency => "DataInconsistency",
        ConnectionLoss => "ConnectionLoss",
        MarshallingError => "MarshallingError",
        Unimplemented => "Unimplemented",
        OperationTimeout => "OperationTimeout",
        BadArguments => "BadArguments",
        UnknownSession => "UnknownSession",
        NewConfigNoQuorum => "NewConfigNoQuorum",
        ReconfigInProgress => "ReconfigInProgress",
        ApiError => "APIError",
        NoNode => "NoNode",
        NoAuth => "NoAuth",
        BadVersion => "BadVersion",
        NoChildrenForEphemerals => "NoChildrenForEphemerals",
        NodeExists => "NodeExists",
        NotEmpty => "Directory not empty",
        SessionExpired => "Session expired",
        InvalidCallback => "Invalid callback",
        InvalidAcl => "InvalidACL",
        AuthFailed => "AuthFailed",
        SessionMoved => "Session moved",
        NotReadOnly => "Not a read-only call",
        EphemeralOnLocalSession => "Ephemeral node on local session",
        NoWatcher => "No such watcher",
        RequestTimeout => "Request timeout",
        ReconfigDisabled => "Reconfig is disabled",
        SessionClosedRequireSasl => "Session closed because client failed to authenticate",
        QuotaExceeded => "Quota has exceeded",
        Throttled => "Op throttled due to high load",
    }
}

/// ZooKeeperMain.getMessage: zkCli's wording of an error on `path`.
fn zk_error(e: ZkError, path: &str) -> anyhow::Error {
    use ErrorCode::*;
    if let ZkError::InvalidArgument(m) = &e {
        return CliError {
            message: m.clone(),
            code: Some("BadArguments".into()),
        }
        .into();
    }
    let Some(code) = e.code() else {
        return CliError {
            message: e.to_string(),
            code: None,
        }
        .into();
    };
    let message = match code {
        NoNode => format!("Node does not exist: {path}"),
        NoChildrenForEphemerals => format!("Ephemerals cannot have children: {path}"),
        NodeExists => format!("Node already exists: {path}"),
        NotEmpty => format!("Node not empty: {path}"),
        NotReadOnly => format!("Not a read-only call: {path}"),
        InvalidAcl => format!("Acl is not valid : {path}"),
        NoAuth => format!("Insufficient permission : {path}"),
        BadArguments => format!("Arguments are not valid : {path}"),
        BadVersion => format!("version No is not valid : {path}"),
        c => format!("KeeperErrorCode = {} for {path}", code_message(c)),
    };
    CliError {
        message,
        code: Some(format!("{code:?}")),
    }
    .into()
}

fn usage(msg: &str) -> anyhow::Error {
    CliError {
        message: msg.to_string(),
        code: None,
    }
    .into()
}

/// Java's `new Date(ms).toString()`: `Sun Nov 22 04:10:01 UTC 2026`, local time zone.
fn java_date(ms: i64) -> String {
    let secs = ms.div_euclid(1000) as libc::time_t;
    // SAFETY: localtime_r and strftime only write into the buffers we pass.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&secs, &mut tm).is_null() {
            return ms.to_string();
        }
        let mut buf = [0u8; 128];
        let fmt = c"%a %b %d %H:%M:%S %Z %Y";
        let n = libc::strftime(buf.as_mut_ptr().cast(), buf.len(), fmt.as_ptr(), &tm);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

/// zkCli's stat block, line for line.
fn stat_text(st: &Stat) -> String {
    format!(
        "cZxid = 0x{:x}\nctime = {}\nmZxid = 0x{:x}\nmtime = {}\npZxid = 0x{:x}\ncversion = {}\n\
         dataVersion = {}\naclVersion = {}\nephemeralOwner = 0x{:x}\ndataLength = {}\nnumChildren = {}",
        st.czxid,
        java_date(st.ctime),
        st.mzxid,
        java_date(st.mtime),
        st.pzxid,
        st.cversion,
        st.version,
        st.aversion,
        st.ephemeral_owner,
        st.data_length,
        st.num_children
    )
}

/// The stat block as JSON, with zkCli's names and plain numbers.
fn stat_json(st: &Stat) -> Value {
    json!({
        "cZxid": st.czxid,
        "ctime": st.ctime,
        "mZxid": st.mzxid,
        "mtime": st.mtime,
        "pZxid": st.pzxid,
        "cversion": st.cversion,
        "dataVersion": st.version,
        "aclVersion": st.aversion,
        "ephemeralOwner": st.ephemeral_owner,
        "dataLength": st.data_length,
        "numChildren": st.num_children,
    })
}

fn data_json(obj: &mut Value, data: &Option<Bytes>) {
    match data {
        None => obj["data"] = Value::Null,
        Some(d) => match std::str::from_utf8(d) {
            Ok(s) => obj["data"] = Value::String(s.to_string()),
            Err(_) => {
                obj["data"] = Value::Null;
                obj["data_base64"] =
                    Value::String(base64::engine::general_purpose::STANDARD.encode(d));
            }
        },
    }
}

fn event_type_name(t: i32) -> String {
    match t {
        event::NONE => "None".into(),
        event::NODE_CREATED => "NodeCreated".into(),
        event::NODE_DELETED => "NodeDeleted".into(),
        event::NODE_DATA_CHANGED => "NodeDataChanged".into(),
        event::NODE_CHILDREN_CHANGED => "NodeChildrenChanged".into(),
        event::DATA_WATCH_REMOVED => "DataWatchRemoved".into(),
        event::CHILD_WATCH_REMOVED => "ChildWatchRemoved".into(),
        event::PERSISTENT_WATCH_REMOVED => "PersistentWatchRemoved".into(),
        other => other.to_string(),
    }
}

fn keeper_state_name(s: i32) -> String {
    match s {
        state::DISCONNECTED => "Disconnected".into(),
        state::SYNC_CONNECTED => "SyncConnected".into(),
        state::AUTH_FAILED => "AuthFailed".into(),
        state::CONNECTED_READ_ONLY => "ConnectedReadOnly".into(),
        6 => "SaslAuthenticated".into(),
        state::EXPIRED => "Expired".into(),
        state::CLOSED => "Closed".into(),
        other => other.to_string(),
    }
}

/// Runs one `fjord znode` command.
pub async fn run(args: ZnodeArgs, output: Output) -> Result<()> {
    let timeout = Duration::from_millis(args.session_timeout_ms.max(1));
    // Give up on an unreachable coordinator after at most 10 s (zkCli would
    // hang), and at once when every host refused the connection.
    let tls = match &args.zk_tls_config {
        None => None,
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| usage(&format!("--zk-tls-config {}: {e}", p.display())))?;
            let props: Vec<(String, String)> = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect();
            fjord_zk::tls::client_config_from(&props)
                .map_err(|e| usage(&format!("--zk-tls-config {}: {e}", p.display())))?
        }
    };
    let opts = ZkOptions {
        session_timeout: timeout,
        connect_timeout: Some(timeout.min(Duration::from_secs(10))),
        fail_fast: true,
        tls,
        ..ZkOptions::default()
    };
    let zk = ZkClient::connect_with(&args.coord, opts)
        .await
        .map_err(|e| usage(&format!("Unable to connect to {}: {e}", args.coord)))?;
    let res = command(&zk, args.cmd, output).await;
    zk.close().await;
    res
}

fn print(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{s}");
    let _ = out.flush();
}

async fn command(zk: &ZkClient, cmd: ZnodeCmd, output: Output) -> Result<()> {
    let json = output == Output::Json;
    match cmd {
        ZnodeCmd::Ls {
            recursive: true,
            path,
            ..
        } => {
            let paths = subtree(zk, &path).await?;
            if json {
                print(&json!(paths).to_string());
            } else {
                for p in paths {
                    print(&p);
                }
            }
        }
        ZnodeCmd::Ls { stat, path, .. } => {
            let (mut kids, st) = zk
                .get_children2(&path)
                .await
                .map_err(|e| zk_error(e, &path))?;
            kids.sort();
            if json {
                if stat {
                    print(&json!({"children": kids, "stat": stat_json(&st)}).to_string());
                } else {
                    print(&json!(kids).to_string());
                }
            } else {
                print(&format!("[{}]", kids.join(", ")));
                if stat {
                    print(&stat_text(&st));
                }
            }
        }
        ZnodeCmd::Get { stat, path } => {
            let (data, st) = zk
                .get_data_opt(&path)
                .await
                .map_err(|e| zk_error(e, &path))?;
            if json {
                let mut obj = json!({"path": path});
                data_json(&mut obj, &data);
                obj["stat"] = stat_json(&st);
                print(&obj.to_string());
            } else {
                match &data {
                    None => print("null"),
                    Some(d) => print(&String::from_utf8_lossy(d)),
                }
                if stat {
                    print(&stat_text(&st));
                }
            }
        }
        ZnodeCmd::Stat { path } => {
            let st = zk
                .exists(&path)
                .await
                .map_err(|e| zk_error(e, &path))?
                .ok_or_else(|| zk_error(ZkError::Code(ErrorCode::NoNode), &path))?;
            if json {
                print(&json!({"path": path, "stat": stat_json(&st)}).to_string());
            } else {
                print(&stat_text(&st));
            }
        }
        ZnodeCmd::Create {
            ephemeral,
            sequential,
            container,
            ttl,
            path,
            data,
        } => {
            let mode = match (ephemeral, sequential, container, ttl) {
                (_, _, true, _) if ephemeral || sequential || ttl.is_some() => {
                    return Err(usage("-c cannot be combined with -s or -e"))
                }
                (true, _, _, Some(_)) => {
                    return Err(usage("TTLs cannot be used with Ephemeral znodes"))
                }
                (_, _, _, Some(t)) if t <= 0 => return Err(usage("ttl must be positive")),
                (false, false, true, None) => CreateMode::Container,
                (false, false, false, Some(t)) => CreateMode::PersistentWithTtl(t),
                (false, true, false, Some(t)) => CreateMode::PersistentSequentialWithTtl(t),
                (true, true, _, _) => CreateMode::EphemeralSequential,
                (true, false, _, _) => CreateMode::Ephemeral,
                (false, true, _, _) => CreateMode::PersistentSequential,
                (false, false, _, _) => CreateMode::Persistent,
            };
            let (created, st) = zk
                .create2_opt(
                    &path,
                    data.as_deref().map(str::as_bytes),
                    &Acl::open_unsafe(),
                    mode,
                )
                .await
                .map_err(|e| zk_error(e, &path))?;
            if json {
                print(&json!({"created": created, "stat": stat_json(&st)}).to_string());
            } else {
                print(&format!("Created {created}"));
            }
        }
        ZnodeCmd::Set {
            version,
            stat,
            path,
            data,
        } => {
            let st = zk
                .set_data(&path, data.as_bytes(), version.unwrap_or(-1))
                .await
                .map_err(|e| zk_error(e, &path))?;
            if json {
                print(&json!({"path": path, "stat": stat_json(&st)}).to_string());
            } else if stat {
                print(&stat_text(&st));
            }
        }
        ZnodeCmd::Delete { version, path } => {
            zk.delete(&path, version.unwrap_or(-1))
                .await
                .map_err(|e| zk_error(e, &path))?;
            if json {
                print(&json!({"deleted": [path]}).to_string());
            }
        }
        ZnodeCmd::Deleteall { path } => {
            let deleted = delete_all(zk, &path).await?;
            if json {
                print(&json!({ "deleted": deleted }).to_string());
            }
        }
        ZnodeCmd::Watch { recursive, path } => {
            // Fail like zkCli for a bad path; a missing node is fine (NodeCreated will come).
            let mut rx = zk
                .add_watch(&path, recursive)
                .await
                .map_err(|e| zk_error(e, &path))?;
            let mut st = zk.state();
            loop {
                tokio::select! {
                    ev = rx.recv() => {
                        let Some(ev) = ev else { break };
                        let ty = event_type_name(ev.event_type);
                        let ks = keeper_state_name(ev.keeper_state);
                        let p = if ev.path.is_empty() { None } else { Some(ev.path.clone()) };
                        if json {
                            print(&json!({"state": ks, "type": ty, "path": p}).to_string());
                        } else {
                            print(&format!("WatchedEvent state:{ks} type:{ty} path:{}",
                                p.as_deref().unwrap_or("null")));
                        }
                        if ev.keeper_state == state::EXPIRED || ev.keeper_state == state::CLOSED {
                            break;
                        }
                    }
                    _ = st.changed() => {
                        let s = *st.borrow_and_update();
                        if s == SessionState::Expired || s == SessionState::Closed {
                            // The watch channel carries the final event; let it drain.
                            continue;
                        }
                    }
                    _ = tokio::signal::ctrl_c() => return Ok(()),
                }
            }
            return Err(zk_error(ZkError::SessionExpired, &path));
        }
    }
    Ok(())
}

/// `path` and every node below it, breadth first with each node's children
/// sorted: the order zkCli's `ls -R` (ZKUtil.listSubTreeBFS) prints.
async fn subtree(zk: &ZkClient, path: &str) -> Result<Vec<String>> {
    // Check the root first so a missing node reads as zkCli's NoNode message.
    zk.exists(path)
        .await
        .map_err(|e| zk_error(e, path))?
        .ok_or_else(|| zk_error(ZkError::Code(ErrorCode::NoNode), path))?;
    let mut out = vec![path.to_string()];
    let mut i = 0;
    while i < out.len() {
        let p = out[i].clone();
        i += 1;
        let mut kids = match zk.get_children(&p).await {
            Ok(k) => k,
            Err(ZkError::Code(ErrorCode::NoNode)) => continue, // raced with a delete
            Err(e) => return Err(zk_error(e, &p)),
        };
        kids.sort();
        out.extend(kids.iter().map(|k| child_path(&p, k)));
    }
    Ok(out)
}

fn child_path(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// ZKUtil.deleteRecursive: the subtree, deepest first. Nodes that vanish under
/// us are fine; anything else stops with zkCli's message.
async fn delete_all(zk: &ZkClient, path: &str) -> Result<Vec<String>> {
    let mut nodes = subtree(zk, path).await?;
    // Children before parents: sort by depth, deepest first.
    nodes.sort_by_key(|p| std::cmp::Reverse(p.matches('/').count()));
    let mut deleted = Vec::new();
    for p in nodes {
        if p == "/" || p == "/zookeeper" || p.starts_with("/zookeeper/") {
            continue;
        }
        match zk.delete(&p, -1).await {
            Ok(()) => deleted.push(p),
            Err(ZkError::Code(ErrorCode::NoNode)) => {}
            Err(e) => return Err(zk_error(e, &p)),
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_block_matches_zkcli() {
        let st = Stat {
            czxid: 2,
            mzxid: 0x1a,
            ctime: 0,
            mtime: 0,
            version: 3,
            cversion: 1,
            aversion: 0,
            ephemeral_owner: 0x100_0000_0abc,
            data_length: 5,
            num_children: 1,
            pzxid: -1,
        };
        let text = stat_text(&st);
        let keys: Vec<&str> = text
            .lines()
            .map(|l| l.split(" = ").next().unwrap_or(""))
            .collect();
        assert_eq!(
            keys,
            [
                "cZxid",
                "ctime",
                "mZxid",
                "mtime",
                "pZxid",
                "cversion",
                "dataVersion",
                "aclVersion",
                "ephemeralOwner",
                "dataLength",
                "numChildren"
            ]
        );
        assert!(text.contains("mZxid = 0x1a\n"));
        assert!(text.contains("pZxid = 0xffffffffffffffff\n"));
        assert!(text.contains("ephemeralOwner = 0x10000000abc\n"));
    }

    #[test]
    fn errors_are_worded_like_zkcli() {
        let m = |e, p| zk_error(e, p).to_string();
        assert_eq!(
            m(ZkError::Code(ErrorCode::NoNode), "/x"),
            "Node does not exist: /x"
        );
        assert_eq!(
            m(ZkError::Code(ErrorCode::BadVersion), "/x"),
            "version No is not valid : /x"
        );
        assert_eq!(
            m(ZkError::Code(ErrorCode::Unimplemented), "/t"),
            "KeeperErrorCode = Unimplemented for /t"
        );
        assert_eq!(
            m(ZkError::ConnectionLoss, "/a"),
            "KeeperErrorCode = ConnectionLoss for /a"
        );
    }

    #[test]
    fn child_paths() {
        assert_eq!(child_path("/", "a"), "/a");
        assert_eq!(child_path("/a", "b"), "/a/b");
    }
}
