//! The member's state behind one lock: tree, watches, session deadlines,
//! connections, and the log handle. Holding everything under one short lock
//! (never across an `.await`) gives one total order of changes, which is what
//! ZooKeeper promises clients; replies and notifications are queued on each
//! connection in that order and leave once the log has made them durable.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use fjord_proto::coord as pb;
use tokio::sync::mpsc;

use crate::acl::Identity;
use crate::config::Config;
use crate::session::SessionTracker;
use crate::tree::{owner_kind, DataTree, OwnerKind, Trigger, Undo};
use crate::txnlog::TxnLog;
use crate::watch::{ConnId, WatchManager};
use fjord_zk::jute::Record;
use fjord_zk::proto::{frame, perms, state, xid, ReplyHeader, WatcherEvent};

/// When a request arrived and whether it changes state: its reply's time
/// goes into `readlatency` or `updatelatency` (see `timings`).
#[derive(Debug, Clone, Copy)]
pub struct Arrival {
    pub at: Instant,
    pub update: bool,
}

/// What a connection's writer sends, in order. `tag` is the zxid that must be
/// durable before the bytes may leave (a reply never reveals unsynced state).
#[derive(Debug)]
pub enum Out {
    /// (tag, bytes, when the request it answers arrived: for latency stats)
    Frame(i64, Bytes, Option<Arrival>),
    /// Close after everything queued before it (and `tag`) has gone out.
    Close(i64),
}

/// Bytes queued for a client past which its connection stops reading
/// requests until the writer catches up (a client that pipelines without
/// reading cannot grow the queue without bound).
pub const SOFT_QUEUE_BYTES: usize = 4 << 20;
/// Bytes queued past which a client that does not read its notifications is
/// disconnected (it resumes its session and re-registers watches on reconnect).
pub const HARD_QUEUE_BYTES: usize = 64 << 20;

/// A connection's outgoing queue, with a count of the bytes in it.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::UnboundedSender<Out>,
    queued: Arc<AtomicUsize>,
    drained: Arc<tokio::sync::Notify>,
}

impl Outbox {
    /// A queue and the receiving end its writer task drains.
    pub fn new() -> (Outbox, mpsc::UnboundedReceiver<Out>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Outbox {
                tx,
                queued: Arc::new(AtomicUsize::new(0)),
                drained: Arc::new(tokio::sync::Notify::new()),
            },
            rx,
        )
    }

    /// Queues a frame; `tag` is the zxid that must be durable first.
    pub fn frame(&self, tag: i64, bytes: Bytes, arrived: Option<Arrival>) {
        self.queued.fetch_add(bytes.len(), Ordering::Relaxed);
        let _ = self.tx.send(Out::Frame(tag, bytes, arrived));
    }

    /// Queues a close after everything queued so far.
    pub fn close(&self, tag: i64) {
        let _ = self.tx.send(Out::Close(tag));
    }

    /// Bytes queued and not yet written.
    pub fn queued(&self) -> usize {
        self.queued.load(Ordering::Relaxed)
    }

    /// The writer reports bytes it has written.
    pub fn written(&self, n: usize) {
        self.queued.fetch_sub(n, Ordering::Relaxed);
        self.drained.notify_one();
    }

    /// Waits until the queue is below [`SOFT_QUEUE_BYTES`].
    pub async fn wait_room(&self) {
        while self.queued() > SOFT_QUEUE_BYTES {
            self.drained.notified().await;
        }
    }
}

/// A live client connection as the rest of the member sees it.
pub struct ConnHandle {
    pub tx: Outbox,
    pub addr: SocketAddr,
    pub session: i64,
    /// This connection's counters (the writer task updates them too).
    pub stats: Arc<Stats>,
    pub established_ms: i64,
    pub timeout_ms: i32,
    /// Last op as `cons` abbreviates it (CREA, GETD, ...), its xid and zxid.
    pub last_op: &'static str,
    pub last_cxid: i32,
    pub last_zxid: i64,
    /// Who the client is (kept in step with `addauth`), for watch ACL checks.
    pub identity: Identity,
    /// Ensemble mode: counts this connection's replicated commands as they
    /// are applied here, so its reads wait for its own earlier writes.
    pub applied: Option<tokio::sync::watch::Sender<u64>>,
    /// Ensemble mode: reads waiting for this connection's earlier writes:
    /// (how many of its commands must be applied first, frame, arrival).
    pub deferred: std::collections::VecDeque<(u64, Bytes, Option<Arrival>)>,
    /// Ensemble mode: when each of this connection's proposed writes
    /// arrived, oldest first (they apply in that order), so their replies
    /// count in `updatelatency`.
    pub writes_in_flight: std::collections::VecDeque<Instant>,
}

/// Counters for the four-letter words.
pub struct Stats {
    pub packets_received: AtomicU64,
    pub packets_sent: AtomicU64,
    latency_min_us: AtomicU64,
    latency_max_us: AtomicU64,
    latency_total_us: AtomicU64,
    latency_count: AtomicU64,
    last_latency_us: AtomicU64,
    last_response_ms: AtomicU64,
    /// Reply sizes in bytes (last, min, max; -1 before the first), as
    /// ZooKeeper's `client_response_stats`.
    response_size: [AtomicI64; 3],
}

impl Stats {
    /// Last reply's latency (ms) and wall-clock time (ms), for `cons`.
    pub fn last_response(&self) -> (f64, u64) {
        (
            self.last_latency_us.load(Ordering::Relaxed) as f64 / 1000.0,
            self.last_response_ms.load(Ordering::Relaxed),
        )
    }

    /// Records one request's time from arrival to its reply leaving.
    pub fn record_latency(&self, us: u64) {
        self.latency_min_us.fetch_min(us, Ordering::Relaxed);
        self.latency_max_us.fetch_max(us, Ordering::Relaxed);
        self.latency_total_us.fetch_add(us, Ordering::Relaxed);
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.last_latency_us.store(us, Ordering::Relaxed);
        self.last_response_ms
            .store(now_ms().max(0) as u64, Ordering::Relaxed);
    }

    /// Records the size of one reply sent.
    pub fn record_response_size(&self, n: usize) {
        let n = n as i64;
        let [last, min, max] = &self.response_size;
        last.store(n, Ordering::Relaxed);
        let _ = min.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |m| {
            (m < 0 || n < m).then_some(n)
        });
        max.fetch_max(n, Ordering::Relaxed);
    }

    /// Reply sizes: (last, min, max), -1 before the first reply.
    pub fn response_sizes(&self) -> (i64, i64, i64) {
        let [last, min, max] = &self.response_size;
        (
            last.load(Ordering::Relaxed),
            min.load(Ordering::Relaxed),
            max.load(Ordering::Relaxed),
        )
    }

    /// (min, avg, max) in milliseconds, as `srvr` and `mntr` report them.
    pub fn latency_ms(&self) -> (f64, f64, f64) {
        let n = self.latency_count.load(Ordering::Relaxed);
        if n == 0 {
            return (0.0, 0.0, 0.0);
        }
        let ms = |us: u64| us as f64 / 1000.0;
        (
            ms(self.latency_min_us.load(Ordering::Relaxed)),
            ms(self.latency_total_us.load(Ordering::Relaxed)) / n as f64,
            ms(self.latency_max_us.load(Ordering::Relaxed)),
        )
    }
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            packets_received: AtomicU64::new(0),
            packets_sent: AtomicU64::new(0),
            latency_min_us: AtomicU64::new(u64::MAX),
            latency_max_us: AtomicU64::new(0),
            latency_total_us: AtomicU64::new(0),
            latency_count: AtomicU64::new(0),
            last_latency_us: AtomicU64::new(0),
            last_response_ms: AtomicU64::new(0),
            response_size: [AtomicI64::new(-1), AtomicI64::new(-1), AtomicI64::new(-1)],
        }
    }
}

/// A write being assembled: ops applied to the tree as they are checked, so
/// later ops of a multi see earlier ones; `undos` take them back on failure.
pub struct Pending {
    pub zxid: i64,
    pub time: i64,
    pub ops: Vec<pb::Op>,
    pub triggers: Vec<Trigger>,
    pub undos: Vec<Undo>,
}

/// Wall-clock milliseconds, stamped into transactions by the sequencer.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Everything a member knows, guarded by one mutex in [`crate::server`].
pub struct Core {
    cfg: Arc<Config>,
    tree: DataTree,
    watches: WatchManager,
    sessions: SessionTracker,
    conns: HashMap<ConnId, ConnHandle>,
    stats: Arc<Stats>,
    started: Instant,
    /// The standalone log; `None` in ensemble mode, where Raft persists
    /// entries before they reach the tree.
    log: Option<TxnLog>,
    /// Ensemble mode: the highest applied (hence quorum-durable) zxid.
    applied: Option<tokio::sync::watch::Receiver<i64>>,
    since_snapshot: u64,
    /// Ensemble mode: the leader-stamped time of the entry being applied,
    /// so every member computes the same ctime/mtime.
    clock: Option<i64>,
    /// Ensemble mode: this member's Raft role.
    role: Option<&'static str>,
    /// Ensemble mode: cut off from the quorum and serving read-only
    /// clients (`readonlymode.enabled`); `srvr` says `Mode: read-only`.
    read_only: bool,
}

impl Core {
    /// Wraps recovered state; every recovered session gets a full timeout
    /// from now (a restart must not expire healthy sessions).
    pub fn new(cfg: Arc<Config>, tree: DataTree, log: TxnLog) -> Core {
        let mut sessions = SessionTracker::new(0);
        for (id, s) in &tree.sessions {
            sessions.add(*id, s.timeout_ms);
        }
        Core {
            cfg,
            tree,
            watches: WatchManager::default(),
            sessions,
            conns: HashMap::new(),
            stats: Arc::new(Stats::default()),
            started: Instant::now(),
            log: Some(log),
            applied: None,
            since_snapshot: 0,
            clock: None,
            role: None,
            read_only: false,
        }
    }

    /// A member of an ensemble: the tree is built by applying Raft entries
    /// (see `raft::sm`); replies wait for `applied` instead of a local fsync.
    /// Session ids carry `member_id` in their top byte, as ZooKeeper's do,
    /// so members never hand out the same id.
    pub fn replicated(
        cfg: Arc<Config>,
        member_id: u8,
        applied: tokio::sync::watch::Receiver<i64>,
    ) -> Core {
        Core {
            cfg,
            tree: DataTree::new(),
            watches: WatchManager::default(),
            sessions: SessionTracker::new(member_id),
            conns: HashMap::new(),
            stats: Arc::new(Stats::default()),
            started: Instant::now(),
            log: None,
            applied: Some(applied),
            since_snapshot: 0,
            clock: None,
            role: Some("follower"),
            read_only: false,
        }
    }

    /// The configuration this member runs with.
    pub fn cfg(&self) -> &Arc<Config> {
        &self.cfg
    }

    /// The znode tree and the session registry.
    pub fn tree(&self) -> &DataTree {
        &self.tree
    }

    /// The tree, to change it (handlers, replay, Raft apply).
    pub fn tree_mut(&mut self) -> &mut DataTree {
        &mut self.tree
    }

    /// The zxid of the last change applied to the tree.
    pub fn last_zxid(&self) -> i64 {
        self.tree.last_zxid
    }

    /// The watches clients have set.
    pub fn watches(&self) -> &WatchManager {
        &self.watches
    }

    /// The watches, to set or remove one.
    pub fn watches_mut(&mut self) -> &mut WatchManager {
        &mut self.watches
    }

    /// Session deadlines and which connection carries each session.
    pub fn sessions(&self) -> &SessionTracker {
        &self.sessions
    }

    /// Session deadlines, to add, touch, attach or remove a session.
    pub fn sessions_mut(&mut self) -> &mut SessionTracker {
        &mut self.sessions
    }

    /// The live client connections, by id.
    pub fn conns(&self) -> &HashMap<ConnId, ConnHandle> {
        &self.conns
    }

    /// The live client connections, to register, update or forget one.
    pub fn conns_mut(&mut self) -> &mut HashMap<ConnId, ConnHandle> {
        &mut self.conns
    }

    /// The member's counters (connections keep their own too).
    pub fn stats(&self) -> &Arc<Stats> {
        &self.stats
    }

    /// Counts one packet received by the member.
    pub fn count_received(&self) {
        self.stats.packets_received.fetch_add(1, Ordering::Relaxed);
    }

    /// How long this member has been up.
    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// Ensemble mode: stamps changes with the time of the entry being
    /// applied (`None`: the wall clock).
    pub fn set_clock(&mut self, clock: Option<i64>) {
        self.clock = clock;
    }

    /// Ensemble mode: this member's Raft role (`None` standalone).
    pub fn role(&self) -> Option<&'static str> {
        self.role
    }

    /// Ensemble mode: records the Raft role `srvr` and `mntr` report.
    pub fn set_role(&mut self, role: &'static str) {
        self.role = Some(role);
    }

    /// Whether this member serves read-only clients (cut off from the quorum).
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// Ensemble mode: enters or leaves read-only service.
    pub fn set_read_only(&mut self, read_only: bool) {
        self.read_only = read_only;
    }

    /// Whether this member is part of a Raft ensemble.
    pub fn is_replicated(&self) -> bool {
        self.log.is_none()
    }

    /// Replaces the tree (a Raft snapshot was installed or loaded); every
    /// session in it gets a full timeout from now.
    pub fn replace_tree(&mut self, tree: DataTree) {
        for id in self.sessions.ids() {
            if !tree.sessions.contains_key(&id) {
                self.sessions.remove(id);
            }
        }
        for (id, s) in &tree.sessions {
            if !self.sessions.contains(*id) {
                self.sessions.add(*id, s.timeout_ms);
            }
        }
        self.tree = tree;
    }

    /// Starts a write at the next zxid.
    pub fn begin(&self) -> Pending {
        Pending {
            zxid: self.tree.last_zxid + 1,
            time: self.clock.unwrap_or_else(now_ms),
            ops: Vec::new(),
            triggers: Vec::new(),
            undos: Vec::new(),
        }
    }

    /// Takes back a failed write.
    pub fn abort(&mut self, p: Pending) {
        self.tree.undo(p.undos);
    }

    /// Makes a write official: logs it (durable later), fires its watches
    /// (queued behind the durability tag), and snapshots every `snapCount`.
    /// Returns the zxid replies should carry.
    pub fn commit(&mut self, session: i64, p: Pending) -> i64 {
        if p.ops.is_empty() {
            return self.tree.last_zxid;
        }
        let zxid = p.zxid;
        self.tree.last_zxid = zxid;
        self.notify(&p.triggers, zxid);
        let Some(log) = &self.log else {
            // Ensemble: the Raft log already holds this entry.
            return zxid;
        };
        log.append(&pb::Txn {
            zxid,
            time_ms: p.time,
            session_id: session,
            ops: p.ops,
        });
        self.since_snapshot += 1;
        if self.since_snapshot >= self.cfg.snap_count {
            self.since_snapshot = 0;
            log.snapshot(&self.tree);
        }
        zxid
    }

    fn notify(&mut self, triggers: &[Trigger], zxid: i64) {
        if triggers.is_empty() {
            return;
        }
        for (conn, kind, path, i) in self.watches.fire(triggers) {
            let Some(c) = self.conns.get(&conn) else {
                continue;
            };
            if c.tx.queued() > HARD_QUEUE_BYTES {
                tracing::warn!(addr = %c.addr, "client is not reading its notifications; disconnecting it");
                c.tx.close(zxid);
                continue;
            }
            // ZooKeeper 3.8 tells a watcher only what it may read.
            if !c.identity.allowed(triggers[i].acl(), perms::READ) {
                continue;
            }
            {
                let mut b = BytesMut::with_capacity(32 + path.len());
                frame(&mut b, |w| {
                    ReplyHeader {
                        xid: xid::NOTIFICATION,
                        zxid,
                        err: 0,
                    }
                    .write(w);
                    WatcherEvent {
                        kind,
                        state: state::SYNC_CONNECTED,
                        path,
                    }
                    .write(w);
                });
                c.tx.frame(zxid, b.freeze(), None);
            }
        }
    }

    /// Logs the end of a session and deletes its ephemerals in one
    /// transaction, then closes the connection holding the session unless it
    /// is `except` (the one asking, which answers first; 0 for none).
    pub fn close_session(&mut self, id: i64, except: ConnId) -> i64 {
        let holder = self.sessions.conn_of(id);
        let mut p = self.begin();
        self.tree.close_session(id, p.zxid, &mut p.triggers);
        p.ops.push(pb::Op {
            kind: Some(pb::op::Kind::CloseSession(pb::CloseSession {
                session_id: id,
            })),
        });
        self.sessions.remove(id);
        let zxid = self.commit(id, p);
        // Whatever ended the session (its own closeSession, one sent on an
        // earlier connection, expiry), the connection holding it ends too,
        // as ZooKeeper's; `except` answers first and closes itself.
        if let Some(c) = holder.filter(|c| *c != except) {
            if let Some(c) = self.conns.get(&c) {
                c.tx.close(zxid);
            }
        }
        zxid
    }

    /// Expires sessions past their deadline; their connections are closed.
    pub fn expire_sessions(&mut self) {
        for id in self.sessions.expired(Instant::now()) {
            tracing::info!(session = format!("0x{id:x}"), "session expired");
            self.close_session(id, 0);
        }
    }

    /// Ensemble leader: sessions past their deadline, to be expired through
    /// Raft. Their deadlines are pushed out so one expiry is proposed at a
    /// time (if it fails to commit, it is proposed again a timeout later).
    pub fn take_expired(&mut self) -> Vec<i64> {
        let ids = self.sessions.expired(Instant::now());
        for id in &ids {
            self.sessions.touch(*id);
        }
        ids
    }

    /// Whether `path` is an empty container that once had children, or a TTL
    /// node unchanged for longer than its TTL at time `now`.
    pub fn reapable(&self, path: &str, now: i64) -> bool {
        self.tree.get(path).is_some_and(|n| {
            n.children.is_empty()
                && match owner_kind(n.ephemeral_owner) {
                    OwnerKind::Container => n.cversion > 0,
                    OwnerKind::Ttl(ttl) => now - n.mtime > ttl,
                    _ => false,
                }
        })
    }

    /// Deletes `path` if it is still reapable at `now` (ensemble: applied
    /// from a leader's Reap entry; the check is repeated so every member
    /// decides the same).
    pub fn reap(&mut self, path: &str, now: i64) {
        if !self.reapable(path, now) {
            return;
        }
        let mut p = self.begin();
        match self.tree.delete(path, p.zxid, &mut p.triggers) {
            Ok(u) => {
                p.undos.push(u);
                p.ops.push(pb::Op {
                    kind: Some(pb::op::Kind::Delete(pb::Delete {
                        path: path.to_string(),
                    })),
                });
                self.commit(0, p);
            }
            Err(_) => self.abort(p),
        }
    }

    /// Container/TTL nodes due for deletion now.
    pub fn reap_candidates(&self) -> Vec<String> {
        self.reapable_paths(now_ms())
    }

    fn reapable_paths(&self, now: i64) -> Vec<String> {
        self.tree
            .special
            .iter()
            .filter(|p| self.reapable(p, now))
            .cloned()
            .collect()
    }

    /// Deletes empty containers that once had children and TTL nodes whose
    /// TTL has passed without a change (ZooKeeper's ContainerManager).
    pub fn reap_special(&mut self) {
        let now = now_ms();
        for path in self.reapable_paths(now) {
            self.reap(&path, now);
        }
    }

    /// The free-space guard over this member's data dirs, if on (standalone).
    pub fn disk_guard(&self) -> Option<&Arc<crate::diskguard::DiskGuard>> {
        self.log.as_ref().and_then(|l| l.guard())
    }

    /// The highest zxid a reply may reveal: on disk (standalone) or
    /// applied after a quorum persisted it (ensemble).
    pub fn durable(&self) -> tokio::sync::watch::Receiver<i64> {
        match (&self.log, &self.applied) {
            (Some(log), _) => log.durable(),
            (None, Some(a)) => a.clone(),
            (None, None) => tokio::sync::watch::channel(i64::MAX).1,
        }
    }
}
