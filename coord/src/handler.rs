//! Request handling: one decoded request → checks (path, ACL, version) →
//! tree change or read → reply queued on the connection. Checks follow
//! ZooKeeper's PrepRequestProcessor order so error codes match it.

use bytes::{BufMut, Bytes, BytesMut};
use fjord_proto::coord as pb;

use crate::acl::Identity;
use crate::core::{Core, Outbox, Pending};
use crate::tree::{acl_to_pb, parent_of, Node, CONTAINER_OWNER, MAX_TTL, TTL_MASK};
use crate::watch::ConnId;
use fjord_zk::jute::{JuteError, Reader, Record, Writer};
use fjord_zk::proto::*;

/// One connection's own state, owned by its reader task.
pub struct ConnCtx {
    pub id: ConnId,
    pub session: i64,
    pub identity: Identity,
    pub tx: Outbox,
    /// When the request being handled arrived (latency stats).
    pub arrived: Option<crate::core::Arrival>,
    /// This connection's SASL DIGEST-MD5 exchange, once begun (sasl.rs).
    pub sasl: Option<Box<crate::sasl::DigestServer>>,
}

/// Whether the connection goes on after a request.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Close,
}

impl ConnCtx {
    pub(crate) fn send(
        &self,
        tag: i64,
        xid: i32,
        zxid: i64,
        err: ErrorCode,
        body: impl FnOnce(&mut BytesMut),
    ) {
        let mut b = BytesMut::with_capacity(64);
        frame(&mut b, |w| {
            ReplyHeader {
                xid,
                zxid,
                err: err.code(),
            }
            .write(w);
            if err == ErrorCode::Ok {
                body(w);
            }
        });
        self.tx.frame(tag, b.freeze(), self.arrived);
    }
}

/// PathUtils.validatePath.
pub fn validate_path(path: &str) -> Result<(), ErrorCode> {
    let bad = Err(ErrorCode::BadArguments);
    if !path.starts_with('/') {
        return bad;
    }
    if path.len() == 1 {
        return Ok(());
    }
    if path.ends_with('/') {
        return bad;
    }
    for seg in path[1..].split('/') {
        if seg.is_empty() || seg == "." || seg == ".." {
            return bad;
        }
    }
    if path.chars().any(|c| {
        matches!(c, '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' | '\u{f000}'..='\u{f8ff}' | '\u{fff0}'..='\u{ffff}')
    }) {
        return bad;
    }
    Ok(())
}

fn check_version(expected: i32, actual: i32) -> Result<(), ErrorCode> {
    if expected != -1 && expected != actual {
        return Err(ErrorCode::BadVersion);
    }
    Ok(())
}

fn op(kind: pb::op::Kind) -> pb::Op {
    pb::Op { kind: Some(kind) }
}

/// Copies data out of the frame so a stored value does not pin a whole frame.
fn own(data: Option<Bytes>) -> Option<Bytes> {
    data.map(|d| Bytes::copy_from_slice(&d))
}

/// The node at `path` if `conn` may do `perm` to it (NoNode, else NoAuth).
fn allowed<'a>(
    core: &'a Core,
    conn: &ConnCtx,
    path: &str,
    perm: i32,
) -> Result<&'a Node, ErrorCode> {
    let node = core.tree().get(path).ok_or(ErrorCode::NoNode)?;
    if conn.identity.allowed(&node.acl, perm) {
        Ok(node)
    } else {
        Err(ErrorCode::NoAuth)
    }
}

fn create(
    core: &mut Core,
    conn: &ConnCtx,
    p: &mut Pending,
    code: i32,
    req: CreateTtlRequest,
) -> Result<(String, Stat), ErrorCode> {
    use create_mode::*;
    let (ephemeral, sequential, container, ttl) = match req.flags {
        PERSISTENT => (false, false, false, false),
        EPHEMERAL => (true, false, false, false),
        PERSISTENT_SEQUENTIAL => (false, true, false, false),
        EPHEMERAL_SEQUENTIAL => (true, true, false, false),
        CONTAINER => (false, false, true, false),
        PERSISTENT_WITH_TTL => (false, false, false, true),
        PERSISTENT_SEQUENTIAL_WITH_TTL => (false, true, false, true),
        _ => return Err(ErrorCode::BadArguments),
    };
    let ttl_ok = if ttl {
        code == op::CREATE_TTL && req.ttl > 0 && req.ttl <= MAX_TTL
    } else {
        code != op::CREATE_TTL
    };
    if !ttl_ok || (code == op::CREATE_CONTAINER && !container) {
        return Err(ErrorCode::BadArguments);
    }
    if !req.path.contains('/') || req.path.contains('\0') {
        return Err(ErrorCode::BadArguments);
    }
    let acl = conn.identity.fixup(&req.acl)?;
    // ZooKeeper looks the parent up before validating the whole path, so
    // "/a//b" is NoNode (no parent "/a/"), not BadArguments.
    let parent_path = parent_of(&req.path).to_string();
    let parent = allowed(core, conn, &parent_path, perms::CREATE)?;
    let path = if sequential {
        format!("{}{:010}", req.path, parent.cversion)
    } else {
        req.path
    };
    validate_path(&path)?;
    let owner = if ephemeral {
        conn.session
    } else if container {
        CONTAINER_OWNER
    } else if ttl {
        TTL_MASK | req.ttl
    } else {
        0
    };
    let data = own(req.data);
    let undo = core.tree_mut().create(
        &path,
        data.clone(),
        acl.clone(),
        owner,
        p.zxid,
        p.time,
        &mut p.triggers,
    )?;
    p.undos.push(undo);
    p.ops.push(op(pb::op::Kind::Create(pb::Create {
        path: path.clone(),
        data,
        acl: acl_to_pb(&acl),
        ephemeral_owner: owner,
    })));
    let stat = core.tree().get(&path).map(|n| n.stat()).unwrap_or_default();
    Ok((path, stat))
}

/// Nodes every ZooKeeper has and nobody may delete (isSpecialPath).
const SPECIAL: &[&str] = &["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"];

fn delete(
    core: &mut Core,
    conn: &ConnCtx,
    p: &mut Pending,
    req: DeleteRequest,
) -> Result<(), ErrorCode> {
    if !req.path.contains('/') || req.path.contains('\0') || SPECIAL.contains(&req.path.as_str()) {
        return Err(ErrorCode::BadArguments);
    }
    allowed(core, conn, parent_of(&req.path), perms::DELETE)?;
    let node = core.tree().get(&req.path).ok_or(ErrorCode::NoNode)?;
    check_version(req.version, node.version)?;
    let undo = core.tree_mut().delete(&req.path, p.zxid, &mut p.triggers)?;
    p.undos.push(undo);
    p.ops
        .push(op(pb::op::Kind::Delete(pb::Delete { path: req.path })));
    Ok(())
}

fn set_data(
    core: &mut Core,
    conn: &ConnCtx,
    p: &mut Pending,
    req: SetDataRequest,
) -> Result<Stat, ErrorCode> {
    validate_path(&req.path)?;
    let node = allowed(core, conn, &req.path, perms::WRITE)?;
    check_version(req.version, node.version)?;
    let data = own(req.data);
    let undo =
        core.tree_mut()
            .set_data(&req.path, data.clone(), p.zxid, p.time, &mut p.triggers)?;
    p.undos.push(undo);
    let stat = core
        .tree()
        .get(&req.path)
        .map(|n| n.stat())
        .unwrap_or_default();
    p.ops.push(op(pb::op::Kind::SetData(pb::SetData {
        path: req.path,
        data,
    })));
    Ok(stat)
}

fn set_acl(
    core: &mut Core,
    conn: &ConnCtx,
    p: &mut Pending,
    req: SetAclRequest,
) -> Result<Stat, ErrorCode> {
    validate_path(&req.path)?;
    let acl = conn.identity.fixup(&req.acl)?;
    let node = allowed(core, conn, &req.path, perms::ADMIN)?;
    check_version(req.version, node.aversion)?;
    let undo = core.tree_mut().set_acl(&req.path, acl.clone())?;
    p.undos.push(undo);
    p.ops.push(op(pb::op::Kind::SetAcl(pb::SetAcl {
        path: req.path.clone(),
        acl: acl_to_pb(&acl),
    })));
    Ok(core
        .tree()
        .get(&req.path)
        .map(|n| n.stat())
        .unwrap_or_default())
}

fn check(core: &Core, conn: &ConnCtx, req: &CheckVersionRequest) -> Result<(), ErrorCode> {
    validate_path(&req.path)?;
    let node = allowed(core, conn, &req.path, perms::READ)?;
    check_version(req.version, node.version)
}

fn get_data(core: &Core, conn: &ConnCtx, path: &str) -> Result<(Option<Bytes>, Stat), ErrorCode> {
    let n = allowed(core, conn, path, perms::READ)?;
    Ok((n.data.clone(), n.stat()))
}

fn get_children(core: &Core, conn: &ConnCtx, path: &str) -> Result<(Vec<String>, Stat), ErrorCode> {
    let n = allowed(core, conn, path, perms::READ)?;
    Ok((n.children.iter().map(|c| c.to_string()).collect(), n.stat()))
}

/// getACL needs READ or ADMIN; without ADMIN, digest hashes are masked
/// (`user:x`), as ZooKeeper 3.5.5+ does.
fn get_acl(core: &Core, conn: &ConnCtx, path: &str) -> Result<(Vec<Acl>, Stat), ErrorCode> {
    let n = allowed(core, conn, path, perms::READ | perms::ADMIN)?;
    let mut acl = n.acl.to_vec();
    if !conn.identity.allowed(&n.acl, perms::ADMIN) {
        for a in acl.iter_mut().filter(|a| a.id.scheme == "digest") {
            let user = a.id.id.split(':').next().unwrap_or_default();
            a.id.id = format!("{user}:x");
        }
    }
    Ok((acl, n.stat()))
}

/// Runs one write (single op or multi) to completion: commit on success, undo
/// on failure. Returns the reply's tag/zxid.
fn write<T>(
    core: &mut Core,
    conn: &ConnCtx,
    f: impl FnOnce(&mut Core, &mut Pending) -> Result<T, ErrorCode>,
) -> (i64, Result<T, ErrorCode>) {
    let mut p = core.begin();
    match f(core, &mut p) {
        Ok(v) => (core.commit(conn.session, p), Ok(v)),
        Err(e) => {
            core.abort(p);
            (core.last_zxid(), Err(e))
        }
    }
}

fn reply_result<T>(
    conn: &ConnCtx,
    tag: i64,
    xid: i32,
    res: Result<T, ErrorCode>,
    body: impl FnOnce(&mut BytesMut, T),
) {
    match res {
        Ok(v) => conn.send(tag, xid, tag, ErrorCode::Ok, |w| body(w, v)),
        Err(e) => conn.send(tag, xid, tag, e, |_| {}),
    }
}

fn multi(core: &mut Core, conn: &ConnCtx, ops: Vec<MultiOp>) -> (i64, Vec<MultiResult>) {
    let mut p = core.begin();
    let total = ops.len();
    let mut results = Vec::with_capacity(total);
    let mut failed = None;
    for (i, o) in ops.into_iter().enumerate() {
        let r = match o {
            MultiOp::Create { op: code, req } => {
                create(core, conn, &mut p, code, req).map(|(path, stat)| {
                    // Inside a multi, ZooKeeper answers create2 like create.
                    MultiResult::Create {
                        path,
                        stat: (code == op::CREATE_CONTAINER || code == op::CREATE_TTL)
                            .then_some(stat),
                    }
                })
            }
            MultiOp::Delete(r) => delete(core, conn, &mut p, r).map(|_| MultiResult::Delete),
            MultiOp::SetData(r) => set_data(core, conn, &mut p, r).map(MultiResult::SetData),
            MultiOp::Check(r) => check(core, conn, &r).map(|_| MultiResult::Check),
            MultiOp::GetChildren(_) | MultiOp::GetData(_) => Err(ErrorCode::BadArguments),
        };
        match r {
            Ok(res) => results.push(res),
            Err(e) => {
                failed = Some((i, e));
                break;
            }
        }
    }
    match failed {
        None => (core.commit(conn.session, p), results),
        Some((i, e)) => {
            core.abort(p);
            let out = (0..total)
                .map(|j| {
                    MultiResult::Error(match j.cmp(&i) {
                        std::cmp::Ordering::Less => ErrorCode::Ok,
                        std::cmp::Ordering::Equal => e,
                        std::cmp::Ordering::Greater => ErrorCode::RuntimeInconsistency,
                    })
                })
                .collect();
            (core.last_zxid(), out)
        }
    }
}

fn set_watches(core: &mut Core, conn: &ConnCtx, rel: i64, sw: &SetWatches2) {
    let tag = core.last_zxid();
    let mut events = Vec::new();
    // A watch whose event the client missed while away gets that event
    // now (and is spent); the others are armed again.
    #[derive(PartialEq)]
    enum Kind {
        Data,
        Exist,
        Child,
    }
    for (paths, kind) in [
        (&sw.data, Kind::Data),
        (&sw.exist, Kind::Exist),
        (&sw.child, Kind::Child),
    ] {
        for path in paths {
            let missed = match (&kind, core.tree().get(path)) {
                (Kind::Exist, node) => node.map(|_| event::NODE_CREATED),
                (_, None) => Some(event::NODE_DELETED),
                (Kind::Data, Some(n)) => (n.mzxid > rel).then_some(event::NODE_DATA_CHANGED),
                (Kind::Child, Some(n)) => (n.pzxid > rel).then_some(event::NODE_CHILDREN_CHANGED),
            };
            match missed {
                Some(ev) => events.push((ev, path)),
                None if kind == Kind::Child => core.watches_mut().add_child(path, conn.id),
                None => core.watches_mut().add_data(path, conn.id),
            }
        }
    }
    for path in &sw.persistent {
        core.watches_mut().add_persistent(path, conn.id, false);
    }
    for path in &sw.persistent_recursive {
        core.watches_mut().add_persistent(path, conn.id, true);
    }
    for (kind, path) in events {
        conn.send(tag, xid::NOTIFICATION, tag, ErrorCode::Ok, |w| {
            WatcherEvent {
                kind,
                state: state::SYNC_CONNECTED,
                path: path.clone(),
            }
            .write(w)
        });
    }
}

/// Handles one request frame (after the handshake). Decoding errors close
/// the connection, as ZooKeeper does for a request it cannot parse.
pub fn handle(core: &mut Core, conn: &mut ConnCtx, frame_body: Bytes) -> Result<Flow, JuteError> {
    let mut r = Reader::new(frame_body);
    let h = RequestHeader::read(&mut r)?;
    core.sessions_mut().touch(conn.session);
    let last = core.last_zxid();
    let xid = h.xid;
    if core.cfg().security.require_sasl
        && !conn.identity.has_scheme("sasl")
        && !conn.identity.is_super
        && !matches!(h.op, op::SASL | op::AUTH | op::PING | op::CLOSE_SESSION)
    {
        // requireClientAuthScheme=sasl: ZooKeeper 3.7's enforce-auth.
        conn.send(last, xid, last, ErrorCode::SessionClosedRequireSasl, |_| {});
        conn.tx.close(last);
        return Ok(Flow::Close);
    }
    let flow = dispatch(core, conn, &h, &mut r, last)?;
    let last_zxid = core.last_zxid();
    if let Some(c) = core.conns_mut().get_mut(&conn.id) {
        c.last_op = op_name(h.op);
        c.last_cxid = xid;
        c.last_zxid = last_zxid;
    }
    Ok(flow)
}

/// The four-letter abbreviation `cons` shows for an op (ZooKeeper's lastOp).
fn op_name(code: i32) -> &'static str {
    match code {
        op::CREATE | op::CREATE2 | op::CREATE_CONTAINER | op::CREATE_TTL => "CREA",
        op::DELETE => "DELE",
        op::EXISTS => "EXIS",
        op::GET_DATA => "GETD",
        op::SET_DATA => "SETD",
        op::GET_ACL => "GETA",
        op::SET_ACL => "SETA",
        op::GET_CHILDREN | op::GET_CHILDREN2 => "GETC",
        op::SYNC => "SYNC",
        op::PING => "PING",
        op::CHECK => "CHEC",
        op::MULTI => "MULT",
        op::MULTI_READ => "MLTR",
        op::CHECK_WATCHES => "CHKW",
        op::REMOVE_WATCHES => "REMW",
        op::SET_WATCHES => "SETW",
        op::SET_WATCHES2 => "STW2",
        op::ADD_WATCH => "ADDW",
        op::GET_EPHEMERALS => "GETE",
        op::GET_ALL_CHILDREN_NUMBER => "GETACN",
        op::WHO_AM_I => "HOMI",
        op::AUTH => "AUTH",
        op::CLOSE_SESSION => "CLOS",
        _ => "NA",
    }
}

fn dispatch(
    core: &mut Core,
    conn: &mut ConnCtx,
    h: &RequestHeader,
    r: &mut Reader,
    last: i64,
) -> Result<Flow, JuteError> {
    let xid = h.xid;
    match h.op {
        op::PING => conn.send(last, xid::PING, last, ErrorCode::Ok, |_| {}),
        op::CREATE | op::CREATE2 | op::CREATE_CONTAINER | op::CREATE_TTL => {
            let req = if h.op == op::CREATE_TTL {
                CreateTtlRequest::read(r)?
            } else {
                let c = CreateRequest::read(r)?;
                CreateTtlRequest {
                    path: c.path,
                    data: c.data,
                    acl: c.acl,
                    flags: c.flags,
                    ttl: -1,
                }
            };
            let code = h.op;
            let (tag, res) = write(core, conn, |core, p| create(core, conn, p, code, req));
            reply_result(conn, tag, xid, res, |w, (path, stat)| {
                w.put_string(&path);
                if code != op::CREATE {
                    stat.write(w);
                }
            });
        }
        op::DELETE => {
            let req = DeleteRequest::read(r)?;
            let (tag, res) = write(core, conn, |core, p| delete(core, conn, p, req));
            reply_result(conn, tag, xid, res, |_, _| {});
        }
        op::SET_DATA => {
            let req = SetDataRequest::read(r)?;
            let (tag, res) = write(core, conn, |core, p| set_data(core, conn, p, req));
            reply_result(conn, tag, xid, res, |w, s| s.write(w));
        }
        op::SET_ACL => {
            let req = SetAclRequest::read(r)?;
            let (tag, res) = write(core, conn, |core, p| set_acl(core, conn, p, req));
            reply_result(conn, tag, xid, res, |w, s| s.write(w));
        }
        op::CHECK => {
            let req = CheckVersionRequest::read(r)?;
            reply_result(conn, last, xid, check(core, conn, &req), |_, _| {});
        }
        op::MULTI => {
            let ops = match read_multi(r) {
                Ok(o) => o,
                Err(_) => return Ok(Flow::Close),
            };
            let (tag, results) = multi(core, conn, ops);
            conn.send(tag, xid, tag, ErrorCode::Ok, |w| {
                write_multi_results(&results, w)
            });
        }
        op::MULTI_READ => {
            let ops = match read_multi(r) {
                Ok(o) => o,
                Err(_) => return Ok(Flow::Close),
            };
            let results: Vec<MultiResult> = ops
                .iter()
                .map(|o| match o {
                    MultiOp::GetData(p) => get_data(core, conn, &p.path)
                        .map_or_else(MultiResult::Error, |(d, s)| MultiResult::GetData(d, s)),
                    MultiOp::GetChildren(p) => get_children(core, conn, &p.path)
                        .map_or_else(MultiResult::Error, |(c, _)| MultiResult::GetChildren(c)),
                    _ => MultiResult::Error(ErrorCode::BadArguments),
                })
                .collect();
            conn.send(last, xid, last, ErrorCode::Ok, |w| {
                write_multi_results(&results, w)
            });
        }
        op::EXISTS => {
            let req = PathWatchRequest::read(r)?;
            if req.watch {
                core.watches_mut().add_data(&req.path, conn.id);
            }
            let res = core
                .tree()
                .get(&req.path)
                .map(|n| n.stat())
                .ok_or(ErrorCode::NoNode);
            reply_result(conn, last, xid, res, |w, s| s.write(w));
        }
        op::GET_DATA => {
            let req = PathWatchRequest::read(r)?;
            let res = get_data(core, conn, &req.path);
            if res.is_ok() && req.watch {
                core.watches_mut().add_data(&req.path, conn.id);
            }
            reply_result(conn, last, xid, res, |w, (d, s)| {
                w.put_buffer(d.as_deref());
                s.write(w);
            });
        }
        op::GET_CHILDREN | op::GET_CHILDREN2 => {
            let req = PathWatchRequest::read(r)?;
            let res = get_children(core, conn, &req.path);
            if res.is_ok() && req.watch {
                core.watches_mut().add_child(&req.path, conn.id);
            }
            let two = h.op == op::GET_CHILDREN2;
            reply_result(conn, last, xid, res, |w, (c, s)| {
                w.put_strings(&c);
                if two {
                    s.write(w);
                }
            });
        }
        op::GET_ACL => {
            let req = PathRequest::read(r)?;
            let res = get_acl(core, conn, &req.path);
            reply_result(conn, last, xid, res, |w, (acl, s)| {
                acl.write(w);
                s.write(w);
            });
        }
        op::SYNC => {
            let req = PathRequest::read(r)?;
            let res = validate_path(&req.path).map(|_| req.path);
            reply_result(conn, last, xid, res, |w, p| w.put_string(&p));
        }
        op::GET_EPHEMERALS => {
            let req = PathRequest::read(r)?;
            let mut list: Vec<String> = core
                .tree()
                .ephemerals_of(conn.session)
                .filter(|p| p.starts_with(&req.path))
                .cloned()
                .collect();
            list.sort();
            conn.send(last, xid, last, ErrorCode::Ok, |w| w.put_strings(&list));
        }
        op::GET_ALL_CHILDREN_NUMBER => {
            let req = PathRequest::read(r)?;
            let res = allowed(core, conn, &req.path, perms::READ)
                .map(|_| core.tree().descendant_count(&req.path) as i32);
            reply_result(conn, last, xid, res, |w, n| w.put_i32(n));
        }
        op::CHECK_WATCHES | op::REMOVE_WATCHES => {
            let req = WatchesRequest::read(r)?;
            let found = if h.op == op::CHECK_WATCHES {
                core.watches_mut().check(&req.path, conn.id, req.kind)
            } else {
                core.watches_mut().remove(&req.path, conn.id, req.kind)
            };
            let res = if found {
                Ok(())
            } else {
                Err(ErrorCode::NoWatcher)
            };
            reply_result(conn, last, xid, res, |_, _| {});
        }
        op::ADD_WATCH => {
            let req = AddWatchRequest::read(r)?;
            let res = validate_path(&req.path).and(match req.mode {
                add_watch_mode::PERSISTENT => Ok(false),
                add_watch_mode::PERSISTENT_RECURSIVE => Ok(true),
                _ => Err(ErrorCode::MarshallingError),
            });
            if let Ok(recursive) = res {
                core.watches_mut()
                    .add_persistent(&req.path, conn.id, recursive);
            }
            reply_result(conn, last, xid, res, |w, _| w.put_i32(0));
        }
        op::SET_WATCHES => {
            let sw = SetWatches::read(r)?;
            let sw2 = SetWatches2 {
                relative_zxid: sw.relative_zxid,
                data: sw.data,
                exist: sw.exist,
                child: sw.child,
                ..Default::default()
            };
            set_watches(core, conn, sw2.relative_zxid, &sw2);
            conn.send(last, xid::SET_WATCHES, last, ErrorCode::Ok, |_| {});
        }
        op::SET_WATCHES2 => {
            let sw = SetWatches2::read(r)?;
            set_watches(core, conn, sw.relative_zxid, &sw);
            conn.send(last, xid::SET_WATCHES, last, ErrorCode::Ok, |_| {});
        }
        op::AUTH => {
            let a = AuthPacket::read(r)?;
            let auth = a.auth.unwrap_or_default();
            let sup = core.cfg().super_digest.as_deref();
            match conn.identity.add_auth(&a.scheme, &auth, sup) {
                Ok(()) => {
                    if let Some(h) = core.conns_mut().get_mut(&conn.id) {
                        h.identity = conn.identity.clone();
                    }
                    conn.send(last, xid::AUTH, last, ErrorCode::Ok, |_| {})
                }
                Err(e) => {
                    conn.send(last, xid::AUTH, last, e, |_| {});
                    return Ok(Flow::Close);
                }
            }
        }
        op::SASL => return sasl(core, conn, xid, r),
        op::WHO_AM_I => {
            let infos: Vec<ClientInfo> = conn
                .identity
                .ids
                .iter()
                .map(|i| ClientInfo {
                    auth_scheme: i.scheme.clone(),
                    user: i.id.split(':').next().unwrap_or_default().to_string(),
                })
                .collect();
            conn.send(last, xid, last, ErrorCode::Ok, |w| infos.write(w));
        }
        op::CLOSE_SESSION => {
            let zxid = core.close_session(conn.session, conn.id);
            conn.send(zxid, xid, zxid, ErrorCode::Ok, |_| {});
            conn.tx.close(zxid);
            return Ok(Flow::Close);
        }
        op::RECONFIG => conn.send(last, xid, last, ErrorCode::ReconfigDisabled, |_| {}),
        _ => {
            // ZooKeeper answers an op it does not know with UNIMPLEMENTED and hangs up.
            conn.send(last, xid, last, ErrorCode::Unimplemented, |_| {});
            return Ok(Flow::Close);
        }
    }
    Ok(Flow::Continue)
}

/// One OpCode.sasl packet (GetSASLRequest → SetSASLResponse), answered
/// as ZooKeeper's processSasl: the reply carries the request's xid and
/// zxid 0; a failure is AuthFailed and the connection is closed (no
/// `allowSaslFailedClients`). Without the SASL provider every sasl packet
/// fails the same way.
fn sasl(core: &mut Core, conn: &mut ConnCtx, xid: i32, r: &mut Reader) -> Result<Flow, JuteError> {
    // A slice of the frame (bounded by jute.maxbuffer); step() refuses a
    // token over RFC 2831's 4096 bytes before parsing it.
    let token = r.buffer()?.unwrap_or_default();
    let users = core.cfg().security.sasl.clone();
    let sup = core.cfg().security.sasl_super_user.clone();
    let outcome = match users {
        None => Err(crate::sasl::SaslError::Unsupported(
            "SASL is not enabled (authProvider.sasl)".into(),
        )),
        Some(users) => conn
            .sasl
            .get_or_insert_with(Default::default)
            .step(&token, &users),
    };
    let last = core.last_zxid();
    let reply = |conn: &ConnCtx, err: ErrorCode, token: &[u8]| {
        conn.send(last, xid, 0, err, |w| w.put_buffer(Some(token)));
    };
    match outcome {
        Ok(crate::sasl::Step::Continue(t)) => reply(conn, ErrorCode::Ok, &t),
        Ok(crate::sasl::Step::Done { token, user }) => {
            let is_super = sup.as_deref() == Some(user.as_str());
            conn.identity.add_id("sasl", &user, is_super);
            if let Some(h) = core.conns_mut().get_mut(&conn.id) {
                h.identity = conn.identity.clone();
            }
            tracing::info!(
                session = format!("0x{:x}", conn.session),
                user,
                "SASL DIGEST-MD5 authenticated"
            );
            reply(conn, ErrorCode::Ok, &token);
        }
        Err(e) => {
            let peer = core
                .conns_mut()
                .get(&conn.id)
                .map(|h| h.addr.to_string())
                .unwrap_or_default();
            tracing::warn!(%peer, error = %e, "client failed to SASL authenticate; closing");
            conn.send(last, xid, 0, ErrorCode::AuthFailed, |_| {});
            conn.tx.close(last);
            return Ok(Flow::Close);
        }
    }
    Ok(Flow::Continue)
}

/// The handshake: new session, resumed session, or "expired" (timeout 0).
/// Returns the frame to send, its durability tag, and whether to go on.
pub fn connect(
    core: &mut Core,
    conn: &mut ConnCtx,
    req: &ConnectRequest,
) -> Option<(Bytes, i64, bool)> {
    if req.last_zxid_seen > core.last_zxid() {
        tracing::info!(
            client_zxid = req.last_zxid_seen,
            our_zxid = core.last_zxid(),
            "refusing a client that has seen a newer zxid"
        );
        return None;
    }
    let timeout = req.timeout.clamp(
        core.cfg().min_session_timeout_ms,
        core.cfg().max_session_timeout_ms,
    );
    let (resp, tag, ok) = if req.session_id == 0 {
        let id = core.sessions_mut().next_id();
        let password: [u8; 16] = rand::random();
        let password = Bytes::copy_from_slice(&password);
        let mut p = core.begin();
        core.tree_mut().sessions.insert(
            id,
            crate::tree::SessionInfo {
                timeout_ms: timeout,
                password: password.clone(),
            },
        );
        p.ops.push(op(pb::op::Kind::CreateSession(pb::Session {
            session_id: id,
            timeout_ms: timeout,
            password: password.clone(),
        })));
        core.sessions_mut().add(id, timeout);
        let tag = core.commit(id, p);
        (
            ConnectResponse {
                protocol_version: 0,
                timeout,
                session_id: id,
                passwd: password,
                read_only: false,
            },
            tag,
            true,
        )
    } else {
        let known = core
            .tree()
            .sessions
            .get(&req.session_id)
            .filter(|s| s.password == req.passwd && core.sessions().contains(req.session_id))
            .cloned();
        match known {
            Some(s) => (
                ConnectResponse {
                    protocol_version: 0,
                    timeout: s.timeout_ms,
                    session_id: req.session_id,
                    passwd: s.password,
                    read_only: false,
                },
                core.last_zxid(),
                true,
            ),
            None => {
                tracing::info!(
                    session = format!("0x{:x}", req.session_id),
                    in_tree = core.tree().sessions.contains_key(&req.session_id),
                    live = core.sessions().contains(req.session_id),
                    "a client resumes an unknown session (or with a wrong password): told it expired"
                );
                (
                    ConnectResponse {
                        protocol_version: 0,
                        timeout: 0,
                        session_id: 0,
                        passwd: Bytes::from_static(&[0; 16]),
                        read_only: false,
                    },
                    core.last_zxid(),
                    false,
                )
            }
        }
    };
    if ok {
        conn.session = resp.session_id;
        if let Some(old) = core.sessions_mut().attach(resp.session_id, conn.id) {
            if let Some(c) = core.conns().get(&old) {
                c.tx.close(tag);
            }
        }
    }
    let mut b = BytesMut::with_capacity(64);
    frame(&mut b, |w| resp.write(w));
    Some((b.freeze(), tag, ok))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::child_path;

    #[test]
    fn paths_validate_like_zookeeper() {
        for ok in ["/", "/a", "/a/b", "/a.b", "/zookeeper"] {
            assert_eq!(validate_path(ok), Ok(()), "{ok}");
        }
        for bad in ["", "a", "/a/", "//a", "/a//b", "/a/./b", "/..", "/a\u{0}"] {
            assert_eq!(validate_path(bad), Err(ErrorCode::BadArguments), "{bad:?}");
        }
    }

    #[test]
    fn child_path_joins() {
        assert_eq!(child_path("/", "a"), "/a");
        assert_eq!(child_path("/a", "b"), "/a/b");
    }
}
