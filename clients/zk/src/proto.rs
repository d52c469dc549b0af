//! ZooKeeper's wire records (zookeeper.jute), op codes, error codes and event
//! types, shared by the server and the client so both speak exactly one dialect.

use bytes::{BufMut, Bytes, BytesMut};

use crate::jute::{JuteError, Reader, Record, Writer};
use crate::jute_record;

/// Request op codes (ZooDefs.OpCode).
pub mod op {
    pub const NOTIFICATION: i32 = 0;
    pub const CREATE: i32 = 1;
    pub const DELETE: i32 = 2;
    pub const EXISTS: i32 = 3;
    pub const GET_DATA: i32 = 4;
    pub const SET_DATA: i32 = 5;
    pub const GET_ACL: i32 = 6;
    pub const SET_ACL: i32 = 7;
    pub const GET_CHILDREN: i32 = 8;
    pub const SYNC: i32 = 9;
    pub const PING: i32 = 11;
    pub const GET_CHILDREN2: i32 = 12;
    pub const CHECK: i32 = 13;
    pub const MULTI: i32 = 14;
    pub const CREATE2: i32 = 15;
    pub const RECONFIG: i32 = 16;
    pub const CHECK_WATCHES: i32 = 17;
    pub const REMOVE_WATCHES: i32 = 18;
    pub const CREATE_CONTAINER: i32 = 19;
    pub const DELETE_CONTAINER: i32 = 20;
    pub const CREATE_TTL: i32 = 21;
    pub const MULTI_READ: i32 = 22;
    pub const AUTH: i32 = 100;
    pub const SET_WATCHES: i32 = 101;
    pub const SASL: i32 = 102;
    pub const GET_EPHEMERALS: i32 = 103;
    pub const GET_ALL_CHILDREN_NUMBER: i32 = 104;
    pub const SET_WATCHES2: i32 = 105;
    pub const ADD_WATCH: i32 = 106;
    pub const WHO_AM_I: i32 = 107;
    pub const CREATE_SESSION: i32 = -10;
    pub const CLOSE_SESSION: i32 = -11;
    pub const ERROR: i32 = -1;
}

/// Special xids (ClientCnxn).
pub mod xid {
    pub const NOTIFICATION: i32 = -1;
    pub const PING: i32 = -2;
    pub const AUTH: i32 = -4;
    pub const SET_WATCHES: i32 = -8;
}

/// Declares [`ErrorCode`] and its conversion from the wire from one list.
macro_rules! error_codes {
    ($($name:ident = $code:literal,)*) => {
        /// KeeperException codes as they travel in `ReplyHeader.err`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(i32)]
        pub enum ErrorCode {
            $($name = $code,)*
        }

        impl ErrorCode {
            /// Maps a wire code back; codes we do not know become `SystemError`.
            pub fn from_i32(code: i32) -> ErrorCode {
                match code {
                    $($code => ErrorCode::$name,)*
                    _ => ErrorCode::SystemError,
                }
            }
        }
    };
}

error_codes! {
    Ok = 0,
    SystemError = -1,
    RuntimeInconsistency = -2,
    DataInconsistency = -3,
    ConnectionLoss = -4,
    MarshallingError = -5,
    Unimplemented = -6,
    OperationTimeout = -7,
    BadArguments = -8,
    UnknownSession = -12,
    NewConfigNoQuorum = -13,
    ReconfigInProgress = -14,
    ApiError = -100,
    NoNode = -101,
    NoAuth = -102,
    BadVersion = -103,
    NoChildrenForEphemerals = -108,
    NodeExists = -110,
    NotEmpty = -111,
    SessionExpired = -112,
    InvalidCallback = -113,
    InvalidAcl = -114,
    AuthFailed = -115,
    SessionMoved = -118,
    NotReadOnly = -119,
    EphemeralOnLocalSession = -120,
    NoWatcher = -121,
    RequestTimeout = -122,
    ReconfigDisabled = -123,
    SessionClosedRequireSasl = -124,
    QuotaExceeded = -125,
    Throttled = -127,
}

impl ErrorCode {
    pub fn code(self) -> i32 {
        self as i32
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} ({})", self, self.code())
    }
}

/// Watcher.Event.EventType.
pub mod event {
    pub const NONE: i32 = -1;
    pub const NODE_CREATED: i32 = 1;
    pub const NODE_DELETED: i32 = 2;
    pub const NODE_DATA_CHANGED: i32 = 3;
    pub const NODE_CHILDREN_CHANGED: i32 = 4;
    pub const DATA_WATCH_REMOVED: i32 = 5;
    pub const CHILD_WATCH_REMOVED: i32 = 6;
    pub const PERSISTENT_WATCH_REMOVED: i32 = 7;
}

/// Watcher.Event.KeeperState.
pub mod state {
    pub const DISCONNECTED: i32 = 0;
    pub const SYNC_CONNECTED: i32 = 3;
    pub const AUTH_FAILED: i32 = 4;
    pub const CONNECTED_READ_ONLY: i32 = 5;
    pub const EXPIRED: i32 = -112;
    pub const CLOSED: i32 = 7;
}

/// CreateMode flags.
pub mod create_mode {
    pub const PERSISTENT: i32 = 0;
    pub const EPHEMERAL: i32 = 1;
    pub const PERSISTENT_SEQUENTIAL: i32 = 2;
    pub const EPHEMERAL_SEQUENTIAL: i32 = 3;
    pub const CONTAINER: i32 = 4;
    pub const PERSISTENT_WITH_TTL: i32 = 5;
    pub const PERSISTENT_SEQUENTIAL_WITH_TTL: i32 = 6;
}

/// ZooDefs.Perms bits.
pub mod perms {
    pub const READ: i32 = 1;
    pub const WRITE: i32 = 2;
    pub const CREATE: i32 = 4;
    pub const DELETE: i32 = 8;
    pub const ADMIN: i32 = 16;
    pub const ALL: i32 = 31;
}

/// Watcher types of checkWatches/removeWatches (WatcherType).
pub mod watcher_type {
    pub const CHILDREN: i32 = 1;
    pub const DATA: i32 = 2;
    pub const ANY: i32 = 3;
    pub const PERSISTENT: i32 = 4;
    pub const PERSISTENT_RECURSIVE: i32 = 5;
}

/// AddWatchMode.
pub mod add_watch_mode {
    pub const PERSISTENT: i32 = 0;
    pub const PERSISTENT_RECURSIVE: i32 = 1;
}

jute_record! {
    /// An identity (scheme:id), the subject of an ACL entry or of an auth.
    pub struct Id { pub scheme: String, pub id: String }
}

jute_record! {
    /// One ACL entry: what `id` may do.
    pub struct Acl { pub perms: i32, pub id: Id }
}

impl Acl {
    /// Kafka's `zookeeper.set.acl` default (ZkData.defaultAcls): every
    /// permission for the creator's authenticated ids (`auth`), read for
    /// everyone — except under the sensitive roots holding credentials
    /// (`/config/users`, `/config/brokers`, `/delegation_token`).
    pub fn secure_for(path: &str) -> Vec<Acl> {
        let mut acl = vec![Acl {
            perms: perms::ALL,
            id: Id {
                scheme: "auth".into(),
                id: String::new(),
            },
        }];
        let sensitive = ["/config/users", "/config/brokers", "/delegation_token"]
            .iter()
            .any(|r| path == *r || path.starts_with(&format!("{r}/")));
        if !sensitive {
            acl.push(Acl {
                perms: perms::READ,
                id: Id {
                    scheme: "world".into(),
                    id: "anyone".into(),
                },
            });
        }
        acl
    }

    /// world:anyone with every permission (ZooDefs.Ids.OPEN_ACL_UNSAFE).
    pub fn open_unsafe() -> Vec<Acl> {
        vec![Acl {
            perms: perms::ALL,
            id: Id {
                scheme: "world".into(),
                id: "anyone".into(),
            },
        }]
    }
}

jute_record! {
    /// A node's metadata, exactly as ZooKeeper reports it.
    #[derive(Copy)]
    pub struct Stat {
        pub czxid: i64,
        pub mzxid: i64,
        pub ctime: i64,
        pub mtime: i64,
        pub version: i32,
        pub cversion: i32,
        pub aversion: i32,
        pub ephemeral_owner: i64,
        pub data_length: i32,
        pub num_children: i32,
        pub pzxid: i64,
    }
}

/// The first frame of a connection. `read_only` is absent in old clients.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectRequest {
    pub protocol_version: i32,
    pub last_zxid_seen: i64,
    pub timeout: i32,
    pub session_id: i64,
    pub passwd: Bytes,
    pub read_only: bool,
}

impl Record for ConnectRequest {
    fn read(r: &mut Reader) -> Result<Self, JuteError> {
        Ok(ConnectRequest {
            protocol_version: r.i32()?,
            last_zxid_seen: r.i64()?,
            timeout: r.i32()?,
            session_id: r.i64()?,
            passwd: r.buffer()?.unwrap_or_default(),
            read_only: if r.remaining() > 0 { r.bool()? } else { false },
        })
    }
    fn write(&self, w: &mut BytesMut) {
        w.put_i32(self.protocol_version);
        w.put_i64(self.last_zxid_seen);
        w.put_i32(self.timeout);
        w.put_i64(self.session_id);
        w.put_buffer(Some(&self.passwd));
        w.put_bool_j(self.read_only);
    }
}

/// The server's answer to ConnectRequest; timeout 0 means "session expired".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectResponse {
    pub protocol_version: i32,
    pub timeout: i32,
    pub session_id: i64,
    pub passwd: Bytes,
    pub read_only: bool,
}

impl Record for ConnectResponse {
    fn read(r: &mut Reader) -> Result<Self, JuteError> {
        Ok(ConnectResponse {
            protocol_version: r.i32()?,
            timeout: r.i32()?,
            session_id: r.i64()?,
            passwd: r.buffer()?.unwrap_or_default(),
            read_only: if r.remaining() > 0 { r.bool()? } else { false },
        })
    }
    fn write(&self, w: &mut BytesMut) {
        w.put_i32(self.protocol_version);
        w.put_i32(self.timeout);
        w.put_i64(self.session_id);
        w.put_buffer(Some(&self.passwd));
        w.put_bool_j(self.read_only);
    }
}

jute_record! {
    /// Precedes every request body.
    pub struct RequestHeader { pub xid: i32, pub op: i32 }
}

jute_record! {
    /// Precedes every response body and watch event.
    pub struct ReplyHeader { pub xid: i32, pub zxid: i64, pub err: i32 }
}

jute_record! {
    /// Precedes each op inside multi requests and responses.
    pub struct MultiHeader { pub op: i32, pub done: bool, pub err: i32 }
}

jute_record! { pub struct AuthPacket { pub kind: i32, pub scheme: String, pub auth: Option<Bytes> } }
jute_record! { pub struct PathRequest { pub path: String } }
jute_record! { pub struct PathWatchRequest { pub path: String, pub watch: bool } }
jute_record! { pub struct CreateRequest { pub path: String, pub data: Option<Bytes>, pub acl: Vec<Acl>, pub flags: i32 } }
jute_record! { pub struct CreateTtlRequest { pub path: String, pub data: Option<Bytes>, pub acl: Vec<Acl>, pub flags: i32, pub ttl: i64 } }
jute_record! { pub struct DeleteRequest { pub path: String, pub version: i32 } }
jute_record! { pub struct SetDataRequest { pub path: String, pub data: Option<Bytes>, pub version: i32 } }
jute_record! { pub struct SetAclRequest { pub path: String, pub acl: Vec<Acl>, pub version: i32 } }
jute_record! { pub struct CheckVersionRequest { pub path: String, pub version: i32 } }
jute_record! { pub struct WatchesRequest { pub path: String, pub kind: i32 } }
jute_record! { pub struct AddWatchRequest { pub path: String, pub mode: i32 } }
jute_record! {
    /// Watches a reconnecting client re-registers, with the last zxid it saw.
    pub struct SetWatches {
        pub relative_zxid: i64,
        pub data: Vec<String>,
        pub exist: Vec<String>,
        pub child: Vec<String>,
    }
}
jute_record! {
    /// SetWatches plus persistent watches (3.6+ clients).
    pub struct SetWatches2 {
        pub relative_zxid: i64,
        pub data: Vec<String>,
        pub exist: Vec<String>,
        pub child: Vec<String>,
        pub persistent: Vec<String>,
        pub persistent_recursive: Vec<String>,
    }
}

jute_record! { pub struct WatcherEvent { pub kind: i32, pub state: i32, pub path: String } }
jute_record! { pub struct StatResponse { pub stat: Stat } }
jute_record! { pub struct CreateResponse { pub path: String } }
jute_record! { pub struct Create2Response { pub path: String, pub stat: Stat } }
jute_record! { pub struct GetDataResponse { pub data: Option<Bytes>, pub stat: Stat } }
jute_record! { pub struct GetChildrenResponse { pub children: Vec<String> } }
jute_record! { pub struct GetChildren2Response { pub children: Vec<String>, pub stat: Stat } }
jute_record! { pub struct GetAclResponse { pub acl: Vec<Acl>, pub stat: Stat } }
jute_record! { pub struct GetAllChildrenNumberResponse { pub total: i32 } }
jute_record! { pub struct StringsResponse { pub items: Vec<String> } }
jute_record! { pub struct ErrorResponse { pub err: i32 } }
jute_record! {
    /// ZooKeeper 3.5+ dynamic reconfiguration (op 16); null strings read as empty.
    pub struct ReconfigRequest {
        pub joining_servers: String,
        pub leaving_servers: String,
        pub new_members: String,
        pub cur_config_id: i64,
    }
}
jute_record! { pub struct ClientInfo { pub auth_scheme: String, pub user: String } }
jute_record! { pub struct WhoAmIResponse { pub client_info: Vec<ClientInfo> } }

/// One operation inside a multi (write) or multiRead request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    /// `op` is CREATE, CREATE2, CREATE_CONTAINER or CREATE_TTL (ttl 0 unless TTL).
    Create {
        op: i32,
        req: CreateTtlRequest,
    },
    Delete(DeleteRequest),
    SetData(SetDataRequest),
    Check(CheckVersionRequest),
    GetChildren(PathRequest),
    GetData(PathRequest),
}

impl MultiOp {
    /// The op code this entry travels with.
    pub fn op_code(&self) -> i32 {
        match self {
            MultiOp::Create { op, .. } => *op,
            MultiOp::Delete(_) => op::DELETE,
            MultiOp::SetData(_) => op::SET_DATA,
            MultiOp::Check(_) => op::CHECK,
            MultiOp::GetChildren(_) => op::GET_CHILDREN,
            MultiOp::GetData(_) => op::GET_DATA,
        }
    }

    /// The path the op touches.
    pub fn path(&self) -> &str {
        match self {
            MultiOp::Create { req, .. } => &req.path,
            MultiOp::Delete(r) => &r.path,
            MultiOp::SetData(r) => &r.path,
            MultiOp::Check(r) => &r.path,
            MultiOp::GetChildren(r) | MultiOp::GetData(r) => &r.path,
        }
    }
}

/// Reads the body of a multi/multiRead request: headers and ops until `done`.
/// An op type that cannot appear in a multi is a marshalling error.
pub fn read_multi(r: &mut Reader) -> Result<Vec<MultiOp>, MultiDecodeError> {
    let mut ops = Vec::new();
    loop {
        let h = MultiHeader::read(r)?;
        if h.done {
            return Ok(ops);
        }
        let op = match h.op {
            op::CREATE | op::CREATE2 | op::CREATE_CONTAINER => {
                let c = CreateRequest::read(r)?;
                MultiOp::Create {
                    op: h.op,
                    req: CreateTtlRequest {
                        path: c.path,
                        data: c.data,
                        acl: c.acl,
                        flags: c.flags,
                        ttl: 0,
                    },
                }
            }
            op::CREATE_TTL => MultiOp::Create {
                op: h.op,
                req: CreateTtlRequest::read(r)?,
            },
            op::DELETE => MultiOp::Delete(DeleteRequest::read(r)?),
            op::SET_DATA => MultiOp::SetData(SetDataRequest::read(r)?),
            op::CHECK => MultiOp::Check(CheckVersionRequest::read(r)?),
            // On the wire these are GetChildrenRequest/GetDataRequest: path + watch flag.
            op::GET_CHILDREN => MultiOp::GetChildren(PathRequest {
                path: PathWatchRequest::read(r)?.path,
            }),
            op::GET_DATA => MultiOp::GetData(PathRequest {
                path: PathWatchRequest::read(r)?.path,
            }),
            other => return Err(MultiDecodeError::BadOp(other)),
        };
        ops.push(op);
    }
}

/// Writes a multi request body (client side).
pub fn write_multi(ops: &[MultiOp], w: &mut BytesMut) {
    for o in ops {
        MultiHeader {
            op: o.op_code(),
            done: false,
            err: -1,
        }
        .write(w);
        match o {
            MultiOp::Create { op, req } if *op == op::CREATE_TTL => req.write(w),
            MultiOp::Create { req, .. } => CreateRequest {
                path: req.path.clone(),
                data: req.data.clone(),
                acl: req.acl.clone(),
                flags: req.flags,
            }
            .write(w),
            MultiOp::Delete(r) => r.write(w),
            MultiOp::SetData(r) => r.write(w),
            MultiOp::Check(r) => r.write(w),
            MultiOp::GetChildren(r) | MultiOp::GetData(r) => PathWatchRequest {
                path: r.path.clone(),
                watch: false,
            }
            .write(w),
        }
    }
    MultiHeader {
        op: -1,
        done: true,
        err: -1,
    }
    .write(w);
}

/// Why a multi body was refused.
#[derive(Debug, thiserror::Error)]
pub enum MultiDecodeError {
    #[error(transparent)]
    Jute(#[from] JuteError),
    #[error("op {0} cannot appear inside a multi")]
    BadOp(i32),
}

/// One result of a multi or multiRead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiResult {
    Create { path: String, stat: Option<Stat> },
    Delete,
    SetData(Stat),
    Check,
    GetChildren(Vec<String>),
    GetData(Option<Bytes>, Stat),
    Error(ErrorCode),
}

/// Writes a multi response body (server side).
pub fn write_multi_results(results: &[MultiResult], w: &mut BytesMut) {
    for res in results {
        let (op_code, err) = match res {
            MultiResult::Create { stat: None, .. } => (op::CREATE, 0),
            MultiResult::Create { stat: Some(_), .. } => (op::CREATE2, 0),
            MultiResult::Delete => (op::DELETE, 0),
            MultiResult::SetData(_) => (op::SET_DATA, 0),
            MultiResult::Check => (op::CHECK, 0),
            MultiResult::GetChildren(_) => (op::GET_CHILDREN, 0),
            MultiResult::GetData(..) => (op::GET_DATA, 0),
            MultiResult::Error(e) => (op::ERROR, e.code()),
        };
        MultiHeader {
            op: op_code,
            done: false,
            err,
        }
        .write(w);
        match res {
            MultiResult::Create { path, stat: None } => w.put_string(path),
            MultiResult::Create {
                path,
                stat: Some(s),
            } => {
                w.put_string(path);
                s.write(w);
            }
            MultiResult::SetData(s) => s.write(w),
            MultiResult::GetChildren(c) => w.put_strings(c),
            MultiResult::GetData(d, s) => {
                w.put_buffer(d.as_deref());
                s.write(w);
            }
            MultiResult::Error(e) => w.put_i32(e.code()),
            MultiResult::Delete | MultiResult::Check => {}
        }
    }
    MultiHeader {
        op: -1,
        done: true,
        err: -1,
    }
    .write(w);
}

/// Reads a multi response body (client side).
pub fn read_multi_results(r: &mut Reader) -> Result<Vec<MultiResult>, MultiDecodeError> {
    let mut out = Vec::new();
    loop {
        let h = MultiHeader::read(r)?;
        if h.done {
            return Ok(out);
        }
        out.push(match h.op {
            op::CREATE => MultiResult::Create {
                path: r.string()?,
                stat: None,
            },
            op::CREATE2 | op::CREATE_TTL | op::CREATE_CONTAINER => MultiResult::Create {
                path: r.string()?,
                stat: Some(Stat::read(r)?),
            },
            op::DELETE => MultiResult::Delete,
            op::SET_DATA => MultiResult::SetData(Stat::read(r)?),
            op::CHECK => MultiResult::Check,
            op::GET_CHILDREN => MultiResult::GetChildren(r.vec(Reader::string)?),
            op::GET_DATA => MultiResult::GetData(r.buffer()?, Stat::read(r)?),
            op::ERROR => MultiResult::Error(ErrorCode::from_i32(r.i32()?)),
            other => return Err(MultiDecodeError::BadOp(other)),
        });
    }
}

/// Encodes one frame (4-byte length, then `body`'s bytes) into `out`.
pub fn frame(out: &mut BytesMut, body: impl FnOnce(&mut BytesMut)) {
    let start = out.len();
    out.put_i32(0);
    body(out);
    let len = (out.len() - start - 4) as i32;
    out[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multi_request_round_trips() {
        let ops = vec![
            MultiOp::Create {
                op: op::CREATE,
                req: CreateTtlRequest {
                    path: "/a".into(),
                    data: Some(Bytes::from_static(b"x")),
                    acl: Acl::open_unsafe(),
                    flags: 0,
                    ttl: 0,
                },
            },
            MultiOp::Check(CheckVersionRequest {
                path: "/a".into(),
                version: 3,
            }),
            MultiOp::Delete(DeleteRequest {
                path: "/b".into(),
                version: -1,
            }),
        ];
        let mut w = BytesMut::new();
        write_multi(&ops, &mut w);
        let back = read_multi(&mut Reader::new(w.freeze())).unwrap();
        assert_eq!(back, ops);
    }

    #[test]
    fn multi_results_round_trip() {
        let res = vec![
            MultiResult::Create {
                path: "/a0000000001".into(),
                stat: None,
            },
            MultiResult::Error(ErrorCode::NoNode),
            MultiResult::Error(ErrorCode::RuntimeInconsistency),
        ];
        let mut w = BytesMut::new();
        write_multi_results(&res, &mut w);
        assert_eq!(
            read_multi_results(&mut Reader::new(w.freeze())).unwrap(),
            res
        );
    }

    #[test]
    fn connect_request_without_read_only_byte() {
        let mut w = BytesMut::new();
        w.put_i32(0);
        w.put_i64(0);
        w.put_i32(30000);
        w.put_i64(0);
        w.put_buffer(Some(&[0u8; 16]));
        let c = ConnectRequest::read(&mut Reader::new(w.freeze())).unwrap();
        assert_eq!(c.timeout, 30000);
        assert!(!c.read_only);
    }
}
