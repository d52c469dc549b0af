//! The replicated state: the znode tree and the session registry.
//!
//! Every change goes through a handful of primitives (create, delete, set
//! data, set ACL, create/close session) that both the live write path and log
//! replay call, so a replayed log rebuilds exactly the tree clients saw. Each
//! primitive returns an [`Undo`] so a failing multi can be rolled back, and the
//! watch [`Trigger`]s to fire once the change is durable.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use bytes::Bytes;
use fjord_proto::coord as pb;

use fjord_zk::proto::{perms, Acl, ErrorCode, Id, Stat};

/// `ephemeralOwner` of container nodes (EphemeralType.CONTAINER).
pub const CONTAINER_OWNER: i64 = i64::MIN;
/// High byte marking TTL nodes in `ephemeralOwner` (EphemeralType.TTL).
pub const TTL_MASK: i64 = 0xFF00_0000_0000_0000u64 as i64;
/// Largest TTL (ms) that fits beside the marker.
pub const MAX_TTL: i64 = 0x0000_FFFF_FFFF_FFFF;

/// What kind of node an `ephemeralOwner` value denotes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerKind {
    Persistent,
    Ephemeral(i64),
    Container,
    Ttl(i64),
}

/// Decodes an `ephemeralOwner` value the way EphemeralType.get does.
pub fn owner_kind(owner: i64) -> OwnerKind {
    if owner == 0 {
        OwnerKind::Persistent
    } else if owner == CONTAINER_OWNER {
        OwnerKind::Container
    } else if owner & TTL_MASK == TTL_MASK {
        OwnerKind::Ttl(owner & MAX_TTL)
    } else {
        OwnerKind::Ephemeral(owner)
    }
}

/// One znode.
#[derive(Debug, Clone)]
pub struct Node {
    pub data: Option<Bytes>,
    pub acl: Arc<Vec<Acl>>,
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    /// Number of child creations: the next sequential suffix.
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub pzxid: i64,
    pub children: BTreeSet<Box<str>>,
}

impl Node {
    fn new(data: Option<Bytes>, acl: Arc<Vec<Acl>>) -> Node {
        Node {
            data,
            acl,
            czxid: 0,
            mzxid: 0,
            ctime: 0,
            mtime: 0,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: 0,
            pzxid: 0,
            children: BTreeSet::new(),
        }
    }

    /// The node's Stat as clients see it.
    pub fn stat(&self) -> Stat {
        Stat {
            czxid: self.czxid,
            mzxid: self.mzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            // Stored: child creations; reported: creations + deletions
            // (ZooKeeper's DataNode.copyStat).
            cversion: self
                .cversion
                .wrapping_mul(2)
                .wrapping_sub(self.children.len() as i32),
            aversion: self.aversion,
            // Container and TTL markers are not shown to clients.
            ephemeral_owner: match owner_kind(self.ephemeral_owner) {
                OwnerKind::Ephemeral(s) => s,
                _ => 0,
            },
            data_length: self.data.as_ref().map_or(0, |d| d.len() as i32),
            num_children: self.children.len() as i32,
            pzxid: self.pzxid,
        }
    }
}

/// A session as the replicated state knows it (liveness is `session`'s job).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    pub timeout_ms: i32,
    pub password: Bytes,
}

/// What a change did, for watches: fired only after the change is durable,
/// and only to watchers allowed to READ the node (the ACL it had then).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    Created(String, Arc<Vec<Acl>>),
    Deleted(String, Arc<Vec<Acl>>),
    DataChanged(String, Arc<Vec<Acl>>),
    /// The children of this path changed.
    ChildrenChanged(String, Arc<Vec<Acl>>),
}

impl Trigger {
    /// The ACL a watcher needs READ in to be told.
    pub fn acl(&self) -> &[Acl] {
        match self {
            Trigger::Created(_, a)
            | Trigger::Deleted(_, a)
            | Trigger::DataChanged(_, a)
            | Trigger::ChildrenChanged(_, a) => a,
        }
    }
}

/// How to take one primitive back (failed multi).
#[derive(Debug)]
pub enum Undo {
    Created {
        path: String,
        parent_cversion: i32,
        parent_pzxid: i64,
    },
    Deleted {
        path: String,
        node: Box<Node>,
        parent_cversion: i32,
        parent_pzxid: i64,
    },
    DataSet {
        path: String,
        data: Option<Bytes>,
        version: i32,
        mzxid: i64,
        mtime: i64,
    },
    AclSet {
        path: String,
        acl: Arc<Vec<Acl>>,
        aversion: i32,
    },
    Nothing,
}

/// The parent of an absolute path ("/" for top-level nodes).
pub fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(i) => &path[..i],
    }
}

fn name_of(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or_default()
}

/// Joins a parent path and a child name.
pub fn child_path(parent: &str, name: &str) -> String {
    if parent == "/" {
        format!("/{name}")
    } else {
        format!("{parent}/{name}")
    }
}

/// Every znode by path. The map grows under the state lock, so a resize
/// stalls every client: std's HashMap moved all entries at once (at 229,000
/// znodes `create`'s p999 was 90 ms, with the map pre-sized 8 ms), griddle
/// moves a few per insert after allocating the larger table. Nodes are boxed
/// so an entry is 24 bytes (a move, and the two tables during a resize).
type NodeMap = griddle::HashMap<Box<str>, Box<Node>, std::collections::hash_map::RandomState>;

/// The znode tree plus the session registry: the coordinator's state machine.
pub struct DataTree {
    nodes: NodeMap,
    /// Session id → its ephemeral paths.
    ephemerals: HashMap<i64, BTreeSet<String>>,
    /// Container and TTL nodes, checked by the reaper.
    pub special: BTreeSet<String>,
    pub sessions: HashMap<i64, SessionInfo>,
    acls: Vec<Arc<Vec<Acl>>>,
    /// Zxid of the last applied transaction.
    pub last_zxid: i64,
}

impl Default for DataTree {
    fn default() -> Self {
        Self::new()
    }
}

impl DataTree {
    /// A tree holding what every ZooKeeper has: `/`, `/zookeeper`,
    /// `/zookeeper/quota` and `/zookeeper/config`.
    pub fn new() -> DataTree {
        let mut t = DataTree {
            nodes: NodeMap::default(),
            ephemerals: HashMap::new(),
            special: BTreeSet::new(),
            sessions: HashMap::new(),
            acls: Vec::new(),
            last_zxid: 0,
        };
        let open = t.intern(Acl::open_unsafe());
        let read_only = t.intern(vec![Acl {
            perms: perms::READ,
            id: Id {
                scheme: "world".into(),
                id: "anyone".into(),
            },
        }]);
        let mut root = Node::new(Some(Bytes::new()), open.clone());
        root.children.insert("zookeeper".into());
        let mut zk = Node::new(Some(Bytes::new()), open.clone());
        zk.children.insert("quota".into());
        zk.children.insert("config".into());
        t.nodes.insert("/".into(), Box::new(root));
        t.nodes.insert("/zookeeper".into(), Box::new(zk));
        t.nodes.insert(
            "/zookeeper/quota".into(),
            Box::new(Node::new(Some(Bytes::new()), open)),
        );
        let mut config = Node::new(Some(Bytes::new()), read_only);
        // ZooKeeper sets this ACL with version -1 at startup.
        config.aversion = -1;
        t.nodes.insert("/zookeeper/config".into(), Box::new(config));
        t
    }

    /// Shares identical ACL lists between nodes (most nodes carry the same one).
    pub fn intern(&mut self, acl: Vec<Acl>) -> Arc<Vec<Acl>> {
        if let Some(a) = self.acls.iter().find(|a| ***a == acl) {
            return a.clone();
        }
        let a = Arc::new(acl);
        if self.acls.len() < 256 {
            self.acls.push(a.clone());
        }
        a
    }

    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path).map(|n| &**n)
    }

    /// Number of znodes, for `mntr`/`srvr`.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Sum of path and data lengths (mntr's zk_approximate_data_size).
    pub fn approximate_data_size(&self) -> usize {
        self.nodes
            .iter()
            .map(|(p, n)| p.len() + n.data.as_ref().map_or(0, |d| d.len()))
            .sum()
    }

    /// Total ephemerals, for `mntr`.
    pub fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(|s| s.len()).sum()
    }

    /// The ephemerals a session owns.
    pub fn ephemerals_of(&self, session: i64) -> impl Iterator<Item = &String> {
        self.ephemerals.get(&session).into_iter().flatten()
    }

    /// Number of descendants of `path` (getAllChildrenNumber).
    pub fn descendant_count(&self, path: &str) -> usize {
        let mut n = 0;
        let mut stack = vec![path.to_string()];
        while let Some(p) = stack.pop() {
            if let Some(node) = self.nodes.get(p.as_str()) {
                for c in &node.children {
                    n += 1;
                    stack.push(child_path(&p, c));
                }
            }
        }
        n
    }

    /// Creates a node (its final path: sequential suffixes already resolved).
    /// The arguments are exactly a CreateTxn's fields plus its stamp.
    #[allow(clippy::too_many_arguments)]
    pub fn create(
        &mut self,
        path: &str,
        data: Option<Bytes>,
        acl: Vec<Acl>,
        owner: i64,
        zxid: i64,
        time: i64,
        triggers: &mut Vec<Trigger>,
    ) -> Result<Undo, ErrorCode> {
        if self.nodes.contains_key(path) {
            return Err(ErrorCode::NodeExists);
        }
        let acl = self.intern(acl);
        let parent_path = parent_of(path);
        let parent = self.nodes.get_mut(parent_path).ok_or(ErrorCode::NoNode)?;
        if matches!(owner_kind(parent.ephemeral_owner), OwnerKind::Ephemeral(_)) {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        let undo = Undo::Created {
            path: path.to_string(),
            parent_cversion: parent.cversion,
            parent_pzxid: parent.pzxid,
        };
        parent.children.insert(name_of(path).into());
        parent.cversion = parent.cversion.wrapping_add(1);
        parent.pzxid = zxid;
        let parent_acl = parent.acl.clone();
        let mut node = Node::new(data, acl.clone());
        node.czxid = zxid;
        node.mzxid = zxid;
        node.pzxid = zxid;
        node.ctime = time;
        node.mtime = time;
        node.ephemeral_owner = owner;
        self.remember_owner(path, owner);
        self.nodes.insert(path.into(), Box::new(node));
        triggers.push(Trigger::Created(path.to_string(), acl));
        triggers.push(Trigger::ChildrenChanged(
            parent_path.to_string(),
            parent_acl,
        ));
        Ok(undo)
    }

    /// Deletes a childless node.
    pub fn delete(
        &mut self,
        path: &str,
        zxid: i64,
        triggers: &mut Vec<Trigger>,
    ) -> Result<Undo, ErrorCode> {
        let node = self.nodes.get(path).ok_or(ErrorCode::NoNode)?;
        if path == "/" {
            return Err(ErrorCode::BadArguments);
        }
        if !node.children.is_empty() {
            return Err(ErrorCode::NotEmpty);
        }
        let parent_path = parent_of(path);
        let Some(parent) = self.nodes.get_mut(parent_path) else {
            return Err(ErrorCode::NoNode);
        };
        let undo_parent = (parent.cversion, parent.pzxid);
        parent.children.remove(name_of(path));
        parent.pzxid = parent.pzxid.max(zxid);
        let parent_acl = parent.acl.clone();
        let Some(node) = self.nodes.remove(path) else {
            return Err(ErrorCode::NoNode);
        };
        self.forget_owner(path, node.ephemeral_owner);
        triggers.push(Trigger::Deleted(path.to_string(), node.acl.clone()));
        triggers.push(Trigger::ChildrenChanged(
            parent_path.to_string(),
            parent_acl,
        ));
        Ok(Undo::Deleted {
            path: path.to_string(),
            node,
            parent_cversion: undo_parent.0,
            parent_pzxid: undo_parent.1,
        })
    }

    fn forget_owner(&mut self, path: &str, owner: i64) {
        match owner_kind(owner) {
            OwnerKind::Ephemeral(s) => {
                if let Some(set) = self.ephemerals.get_mut(&s) {
                    set.remove(path);
                    if set.is_empty() {
                        self.ephemerals.remove(&s);
                    }
                }
            }
            OwnerKind::Container | OwnerKind::Ttl(_) => {
                self.special.remove(path);
            }
            OwnerKind::Persistent => {}
        }
    }

    /// Replaces a node's data, bumping its version.
    pub fn set_data(
        &mut self,
        path: &str,
        data: Option<Bytes>,
        zxid: i64,
        time: i64,
        triggers: &mut Vec<Trigger>,
    ) -> Result<Undo, ErrorCode> {
        let node = self.nodes.get_mut(path).ok_or(ErrorCode::NoNode)?;
        let undo = Undo::DataSet {
            path: path.to_string(),
            data: std::mem::replace(&mut node.data, data),
            version: node.version,
            mzxid: node.mzxid,
            mtime: node.mtime,
        };
        node.version = node.version.wrapping_add(1);
        node.mzxid = zxid;
        node.mtime = time;
        triggers.push(Trigger::DataChanged(path.to_string(), node.acl.clone()));
        Ok(undo)
    }

    /// Replaces a node's ACL, bumping its aversion.
    pub fn set_acl(&mut self, path: &str, acl: Vec<Acl>) -> Result<Undo, ErrorCode> {
        let acl = self.intern(acl);
        let node = self.nodes.get_mut(path).ok_or(ErrorCode::NoNode)?;
        let undo = Undo::AclSet {
            path: path.to_string(),
            acl: std::mem::replace(&mut node.acl, acl),
            aversion: node.aversion,
        };
        node.aversion = node.aversion.wrapping_add(1);
        Ok(undo)
    }

    /// Takes back primitives, newest first.
    pub fn undo(&mut self, undos: Vec<Undo>) {
        for u in undos.into_iter().rev() {
            match u {
                Undo::Created {
                    path,
                    parent_cversion,
                    parent_pzxid,
                } => {
                    if let Some(n) = self.nodes.remove(path.as_str()) {
                        self.forget_owner(&path, n.ephemeral_owner);
                    }
                    if let Some(p) = self.nodes.get_mut(parent_of(&path)) {
                        p.children.remove(name_of(&path));
                        p.cversion = parent_cversion;
                        p.pzxid = parent_pzxid;
                    }
                }
                Undo::Deleted {
                    path,
                    node,
                    parent_cversion,
                    parent_pzxid,
                } => {
                    if let Some(p) = self.nodes.get_mut(parent_of(&path)) {
                        p.children.insert(name_of(&path).into());
                        p.cversion = parent_cversion;
                        p.pzxid = parent_pzxid;
                    }
                    self.remember_owner(&path, node.ephemeral_owner);
                    self.nodes.insert(path.into(), node);
                }
                Undo::DataSet {
                    path,
                    data,
                    version,
                    mzxid,
                    mtime,
                } => {
                    if let Some(n) = self.nodes.get_mut(path.as_str()) {
                        n.data = data;
                        n.version = version;
                        n.mzxid = mzxid;
                        n.mtime = mtime;
                    }
                }
                Undo::AclSet {
                    path,
                    acl,
                    aversion,
                } => {
                    if let Some(n) = self.nodes.get_mut(path.as_str()) {
                        n.acl = acl;
                        n.aversion = aversion;
                    }
                }
                Undo::Nothing => {}
            }
        }
    }

    fn remember_owner(&mut self, path: &str, owner: i64) {
        match owner_kind(owner) {
            OwnerKind::Ephemeral(s) => {
                self.ephemerals
                    .entry(s)
                    .or_default()
                    .insert(path.to_string());
            }
            OwnerKind::Container | OwnerKind::Ttl(_) => {
                self.special.insert(path.to_string());
            }
            OwnerKind::Persistent => {}
        }
    }

    /// Ends a session: its ephemerals go, in one transaction.
    pub fn close_session(&mut self, id: i64, zxid: i64, triggers: &mut Vec<Trigger>) {
        let paths: Vec<String> = self.ephemerals_of(id).cloned().collect();
        for p in paths.iter().rev() {
            let _ = self.delete(p, zxid, triggers);
        }
        self.ephemerals.remove(&id);
        self.sessions.remove(&id);
    }

    /// Applies one logged transaction (replay, or a follower applying the leader's).
    pub fn apply(&mut self, txn: &pb::Txn, triggers: &mut Vec<Trigger>) {
        for op in &txn.ops {
            self.apply_op(op, txn.zxid, txn.time_ms, triggers);
        }
        self.last_zxid = self.last_zxid.max(txn.zxid);
    }

    fn apply_op(&mut self, op: &pb::Op, zxid: i64, time: i64, triggers: &mut Vec<Trigger>) {
        use pb::op::Kind;
        let res = match &op.kind {
            Some(Kind::Create(c)) => self
                .create(
                    &c.path,
                    c.data.clone(),
                    acl_from_pb(&c.acl),
                    c.ephemeral_owner,
                    zxid,
                    time,
                    triggers,
                )
                .map(drop),
            Some(Kind::Delete(d)) => self.delete(&d.path, zxid, triggers).map(drop),
            Some(Kind::SetData(s)) => self
                .set_data(&s.path, s.data.clone(), zxid, time, triggers)
                .map(drop),
            Some(Kind::SetAcl(s)) => self.set_acl(&s.path, acl_from_pb(&s.acl)).map(drop),
            Some(Kind::CreateSession(s)) => {
                self.sessions.insert(
                    s.session_id,
                    SessionInfo {
                        timeout_ms: s.timeout_ms,
                        password: s.password.clone(),
                    },
                );
                Ok(())
            }
            Some(Kind::CloseSession(s)) => {
                self.close_session(s.session_id, zxid, triggers);
                Ok(())
            }
            None => Ok(()),
        };
        if let Err(e) = res {
            tracing::warn!(zxid, error = %e, "logged transaction did not apply cleanly");
        }
    }

    /// Every node and session, as snapshot records (root and `/zookeeper` included).
    pub fn snapshot_records(&self) -> impl Iterator<Item = pb::SnapshotRecord> + '_ {
        let nodes = self.nodes.iter().map(|(path, n)| pb::SnapshotRecord {
            kind: Some(pb::snapshot_record::Kind::Node(pb::Node {
                path: path.to_string(),
                data: n.data.clone(),
                acl: acl_to_pb(&n.acl),
                czxid: n.czxid,
                mzxid: n.mzxid,
                ctime: n.ctime,
                mtime: n.mtime,
                version: n.version,
                cversion: n.cversion,
                aversion: n.aversion,
                ephemeral_owner: n.ephemeral_owner,
                pzxid: n.pzxid,
            })),
        });
        let sessions = self.sessions.iter().map(|(id, s)| pb::SnapshotRecord {
            kind: Some(pb::snapshot_record::Kind::Session(pb::Session {
                session_id: *id,
                timeout_ms: s.timeout_ms,
                password: s.password.clone(),
            })),
        });
        nodes.chain(sessions)
    }

    /// Rebuilds a tree from snapshot records.
    pub fn from_snapshot(
        zxid: i64,
        records: impl IntoIterator<Item = pb::SnapshotRecord>,
    ) -> DataTree {
        let mut t = DataTree::new();
        t.nodes.clear();
        for r in records {
            match r.kind {
                Some(pb::snapshot_record::Kind::Node(n)) => {
                    let acl = t.intern(acl_from_pb(&n.acl));
                    let mut node = Node::new(n.data, acl);
                    node.czxid = n.czxid;
                    node.mzxid = n.mzxid;
                    node.ctime = n.ctime;
                    node.mtime = n.mtime;
                    node.version = n.version;
                    node.cversion = n.cversion;
                    node.aversion = n.aversion;
                    node.ephemeral_owner = n.ephemeral_owner;
                    node.pzxid = n.pzxid;
                    t.remember_owner(&n.path, n.ephemeral_owner);
                    t.nodes.insert(n.path.into(), Box::new(node));
                }
                Some(pb::snapshot_record::Kind::Session(s)) => {
                    t.sessions.insert(
                        s.session_id,
                        SessionInfo {
                            timeout_ms: s.timeout_ms,
                            password: s.password,
                        },
                    );
                }
                None => {}
            }
        }
        if !t.nodes.contains_key("/") {
            let open = t.intern(Acl::open_unsafe());
            t.nodes
                .insert("/".into(), Box::new(Node::new(Some(Bytes::new()), open)));
        }
        let paths: Vec<Box<str>> = t.nodes.keys().filter(|p| &***p != "/").cloned().collect();
        for p in paths {
            let name: Box<str> = name_of(&p).into();
            if let Some(parent) = t.nodes.get_mut(parent_of(&p)) {
                parent.children.insert(name);
            }
        }
        t.last_zxid = zxid;
        t
    }
}

/// Wire ACLs → log ACLs.
pub fn acl_to_pb(acl: &[Acl]) -> Vec<pb::Acl> {
    acl.iter()
        .map(|a| pb::Acl {
            perms: a.perms,
            scheme: a.id.scheme.clone(),
            id: a.id.id.clone(),
        })
        .collect()
}

/// Log ACLs → wire ACLs.
pub fn acl_from_pb(acl: &[pb::Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|a| Acl {
            perms: a.perms,
            id: Id {
                scheme: a.scheme.clone(),
                id: a.id.clone(),
            },
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_updates_parent_stat_and_undo_restores_it() {
        let mut t = DataTree::new();
        let mut trig = Vec::new();
        t.create("/a", None, Acl::open_unsafe(), 0, 5, 100, &mut trig)
            .unwrap();
        let u = t
            .create(
                "/a/b",
                Some(Bytes::from_static(b"x")),
                Acl::open_unsafe(),
                0,
                6,
                101,
                &mut trig,
            )
            .unwrap();
        let a = t.get("/a").unwrap().stat();
        assert_eq!((a.cversion, a.pzxid, a.num_children), (1, 6, 1));
        let mut tmp = Vec::new();
        t.create("/a/c", None, Acl::open_unsafe(), 0, 7, 102, &mut tmp)
            .unwrap();
        let d = t.delete("/a/c", 8, &mut tmp).unwrap();
        // 2 creates + 1 delete reported; the next sequential suffix is 2.
        assert_eq!(t.get("/a").unwrap().stat().cversion, 3);
        assert_eq!(t.get("/a").unwrap().cversion, 2);
        t.undo(vec![d]);
        t.delete("/a/c", 9, &mut tmp).unwrap();
        t.undo(vec![u]);
        let a = t.get("/a").unwrap().stat();
        assert_eq!((a.cversion, a.pzxid, a.num_children), (0, 5, 0));
        assert!(t.get("/a/b").is_none());
    }

    #[test]
    fn errors_match_zookeeper() {
        let mut t = DataTree::new();
        let mut trig = Vec::new();
        assert_eq!(
            t.create("/x/y", None, Acl::open_unsafe(), 0, 1, 0, &mut trig)
                .err(),
            Some(ErrorCode::NoNode)
        );
        t.create("/e", None, Acl::open_unsafe(), 77, 2, 0, &mut trig)
            .unwrap();
        assert_eq!(
            t.create("/e/c", None, Acl::open_unsafe(), 0, 3, 0, &mut trig)
                .err(),
            Some(ErrorCode::NoChildrenForEphemerals)
        );
        assert_eq!(
            t.delete("/zookeeper", 4, &mut trig).err(),
            Some(ErrorCode::NotEmpty)
        );
        t.close_session(77, 5, &mut trig);
        assert!(t.get("/e").is_none());
    }

    #[test]
    fn snapshot_round_trip() {
        let mut t = DataTree::new();
        let mut trig = Vec::new();
        t.create(
            "/a",
            Some(Bytes::from_static(b"1")),
            Acl::open_unsafe(),
            0,
            1,
            0,
            &mut trig,
        )
        .unwrap();
        t.create("/a/b", None, Acl::open_unsafe(), 9, 2, 0, &mut trig)
            .unwrap();
        let back = DataTree::from_snapshot(2, t.snapshot_records().collect::<Vec<_>>());
        assert_eq!(back.get("/a").unwrap().stat(), t.get("/a").unwrap().stat());
        assert_eq!(back.node_count(), t.node_count());
        assert_eq!(back.ephemerals_of(9).count(), 1);
    }
}
