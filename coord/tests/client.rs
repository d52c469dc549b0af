//! The async ZooKeeper client against a real server: Apache ZooKeeper 3.8 or
//! fjord-coord. With `ZK_TEST_CONNECT=127.0.0.1:PORT` the tests use that
//! server; without it each test starts its own fjord-coord. Each test works
//! under its own root znode so tests can share one server.
//!
//! Some tests put a TCP proxy between client and server to cut connections and
//! check reconnection, session resumption, SetWatches and expiry.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fjord_zk::client::{CreateMode, SessionState, WatchedEvent, ZkClient, ZkError};
use fjord_zk::proto::{event, state, Acl, ErrorCode, MultiOp, MultiResult};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

const T: Duration = Duration::from_secs(10);

/// The server under test: `ZK_TEST_CONNECT` (Apache ZooKeeper or a running
/// fjord-coord), else a fjord-coord started for this test on a free port and
/// killed by PID when the test ends.
struct Server {
    addr: String,
    child: Option<std::process::Child>,
    _dir: Option<tempfile::TempDir>,
}

impl std::ops::Deref for Server {
    type Target = str;
    fn deref(&self) -> &str {
        &self.addr
    }
}

impl std::fmt::Display for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn server() -> Option<Server> {
    if let Ok(s) = std::env::var("ZK_TEST_CONNECT") {
        if !s.is_empty() {
            return Some(Server {
                addr: s,
                child: None,
                _dir: None,
            });
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let cfg = dir.path().join("zoo.cfg");
    std::fs::write(
        &cfg,
        format!(
            "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n4lw.commands.whitelist=ruok\n",
            dir.path().join("data").display()
        ),
    )
    .expect("config");
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_fjord-coord"))
        .arg(&cfg)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start fjord-coord");
    let server = Server {
        addr: format!("127.0.0.1:{port}"),
        child: Some(child),
        _dir: Some(dir),
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(&server.addr).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "fjord-coord did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(server)
}

static SEQ: AtomicU32 = AtomicU32::new(0);

/// A fresh root znode for one test.
async fn root(zk: &ZkClient, name: &str) -> String {
    let p = format!(
        "/fjord-client-{}-{}-{}",
        name,
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    );
    zk.create(&p, b"", &Acl::open_unsafe(), CreateMode::Persistent)
        .await
        .unwrap();
    p
}

/// A client of `s` and a fresh root made by it for the test `name`.
async fn rooted(s: &Server, name: &str) -> (ZkClient, String) {
    let zk = ZkClient::connect(s, T).await.unwrap();
    let r = root(&zk, name).await;
    (zk, r)
}

async fn rm_rf(zk: &ZkClient, p: &str) {
    if let Ok(children) = zk.get_children(p).await {
        for c in children {
            Box::pin(rm_rf(zk, &format!("{p}/{c}"))).await;
        }
    }
    let _ = zk.delete(p, -1).await;
}

async fn within<F: std::future::Future>(f: F) -> F::Output {
    tokio::time::timeout(T, f).await.expect("timed out")
}

fn open() -> Vec<Acl> {
    Acl::open_unsafe()
}

/// Creates `path` with no data and the open ACL.
async fn create_empty(zk: &ZkClient, path: &str, mode: CreateMode) {
    zk.create(path, b"", &open(), mode).await.unwrap();
}

/// Removes a test's root and ends the client's session.
async fn cleanup(zk: &ZkClient, root: &str) {
    rm_rf(zk, root).await;
    zk.close().await;
}

/// Asserts a node event's type and path.
fn assert_event(ev: &WatchedEvent, event_type: i32, path: &str) {
    assert_eq!((ev.event_type, ev.path.as_str()), (event_type, path));
}

#[tokio::test]
async fn crud_and_errors() {
    let Some(s) = server() else { return };
    let zk = ZkClient::connect(&s, T).await.unwrap();
    assert!(zk.session_id() != 0);
    let r = root(&zk, "crud").await;
    let a = format!("{r}/a");

    let (p, st) = zk
        .create2(&a, b"hello", &open(), CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(p, a);
    assert_eq!((st.version, st.data_length, st.num_children), (0, 5, 0));
    assert_eq!(st.czxid, st.mzxid);

    let e = zk
        .create(&a, b"x", &open(), CreateMode::Persistent)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NodeExists));

    let (d, st2) = zk.get_data(&a).await.unwrap();
    assert_eq!((&d[..], st2), (&b"hello"[..], st));

    let st3 = zk.set_data(&a, b"world", 0).await.unwrap();
    assert_eq!(st3.version, 1);
    let e = zk.set_data(&a, b"x", 0).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::BadVersion));

    create_empty(&zk, &format!("{a}/c1"), CreateMode::Persistent).await;
    let e = zk.delete(&a, -1).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NotEmpty));
    let (kids, pst) = zk.get_children2(&a).await.unwrap();
    assert_eq!(kids, vec!["c1".to_string()]);
    assert_eq!(pst.num_children, 1);
    assert_eq!(pst.cversion, 1);

    assert!(zk.exists(&format!("{r}/nope")).await.unwrap().is_none());
    let e = zk.get_data(&format!("{r}/nope")).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NoNode));
    let e = zk
        .create(&format!("{r}/x/y"), b"", &open(), CreateMode::Persistent)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NoNode));
    assert!(matches!(
        zk.get_data("no-slash").await,
        Err(ZkError::InvalidArgument(_))
    ));

    // Null data stays null; empty stays empty.
    let n = format!("{r}/null");
    zk.create2_opt(&n, None, &open(), CreateMode::Persistent)
        .await
        .unwrap();
    assert_eq!(zk.get_data_opt(&n).await.unwrap().0, None);
    assert_eq!(zk.get_data(&n).await.unwrap().0.len(), 0);

    let (acl, _) = zk.get_acl(&a).await.unwrap();
    assert_eq!(acl, open());
    let st = zk.set_acl(&a, &open(), 0).await.unwrap();
    assert_eq!(st.aversion, 1);
    zk.sync(&a).await.unwrap();

    // Pipelining: many requests in flight at once, each matched to its reply.
    let mut futs = Vec::new();
    for i in 0..200 {
        let zk = zk.clone();
        let p = format!("{r}/p{i}");
        futs.push(tokio::spawn(async move {
            zk.create(
                &p,
                format!("{i}").as_bytes(),
                &open(),
                CreateMode::Persistent,
            )
            .await
            .unwrap();
            let (d, _) = zk.get_data(&p).await.unwrap();
            assert_eq!(d, format!("{i}").as_bytes());
        }));
    }
    for f in futs {
        within(f).await.unwrap();
    }
    cleanup(&zk, &r).await;
    assert_eq!(*zk.state().borrow(), SessionState::Closed);
    assert!(matches!(zk.exists("/").await, Err(ZkError::Closed)));
}

#[tokio::test]
async fn sequential_ephemeral_and_close() {
    let Some(s) = server() else { return };
    let (zk, r) = rooted(&s, "seq").await;
    let other = ZkClient::connect(&s, T).await.unwrap();

    let seq = format!("{r}/s-");
    let p1 = zk
        .create(&seq, b"", &open(), CreateMode::PersistentSequential)
        .await
        .unwrap();
    let p2 = zk
        .create(&seq, b"", &open(), CreateMode::EphemeralSequential)
        .await
        .unwrap();
    assert_eq!(p1, format!("{r}/s-0000000000"));
    assert_eq!(p2, format!("{r}/s-0000000001"));
    let e = format!("{r}/eph");
    create_empty(&zk, &e, CreateMode::Ephemeral).await;
    let st = other.exists(&e).await.unwrap().unwrap();
    assert_eq!(st.ephemeral_owner, zk.session_id());
    let err = zk
        .create(&format!("{e}/child"), b"", &open(), CreateMode::Persistent)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::NoChildrenForEphemerals));

    let (_, w) = other.exists_w(&e).await.unwrap();
    zk.close().await;
    let ev = within(w).await.unwrap();
    assert_event(&ev, event::NODE_DELETED, &e);
    assert!(other.exists(&e).await.unwrap().is_none());
    assert!(other.exists(&p2).await.unwrap().is_none());
    cleanup(&other, &r).await;
}

#[tokio::test]
async fn one_shot_and_persistent_watches() {
    let Some(s) = server() else { return };
    let (zk, r) = rooted(&s, "watch").await;
    let w2 = ZkClient::connect(&s, T).await.unwrap();
    let a = format!("{r}/a");

    // exists on a missing node fires on creation, once.
    let (st, ex) = zk.exists_w(&a).await.unwrap();
    assert!(st.is_none());
    let mut rec = zk.add_watch(&r, true).await.unwrap();
    // One watch mode per (session, path) on the server: the plain persistent
    // watch goes through the second session.
    let mut pers = w2.add_watch(&r, false).await.unwrap();
    w2.create(&a, b"1", &open(), CreateMode::Persistent)
        .await
        .unwrap();
    let ev = within(ex).await.unwrap();
    assert_eq!(
        (ev.event_type, ev.keeper_state),
        (event::NODE_CREATED, state::SYNC_CONNECTED)
    );
    assert_eq!(ev.path, a);

    let (_, _, dw) = zk.get_data_w(&a).await.unwrap();
    let (_, cw) = zk.get_children_w(&r).await.unwrap();
    w2.set_data(&a, b"2", -1).await.unwrap();
    w2.set_data(&a, b"3", -1).await.unwrap();
    let ev = within(dw).await.unwrap();
    assert_event(&ev, event::NODE_DATA_CHANGED, &a);
    create_empty(&w2, &format!("{r}/b"), CreateMode::Persistent).await;
    let ev = within(cw).await.unwrap();
    assert_event(&ev, event::NODE_CHILDREN_CHANGED, &r);

    // The recursive watch saw: created /a, two data changes, created /b.
    let mut got = Vec::new();
    for _ in 0..4 {
        let ev = within(rec.recv()).await.unwrap();
        got.push((ev.event_type, ev.path));
    }
    assert_eq!(
        got,
        vec![
            (event::NODE_CREATED, a.clone()),
            (event::NODE_DATA_CHANGED, a.clone()),
            (event::NODE_DATA_CHANGED, a.clone()),
            (event::NODE_CREATED, format!("{r}/b")),
        ]
    );
    // The plain persistent watch on the root saw two child changes.
    for _ in 0..2 {
        let ev = within(pers.recv()).await.unwrap();
        assert_event(&ev, event::NODE_CHILDREN_CHANGED, &r);
    }
    cleanup(&zk, &r).await;
    w2.close().await;
}

#[tokio::test]
async fn multi_results() {
    let Some(s) = server() else { return };
    let (zk, r) = rooted(&s, "multi").await;
    let a = format!("{r}/a");
    let res = zk
        .multi(vec![
            MultiOp::create(&a, b"x", &open(), CreateMode::Persistent),
            MultiOp::set_data(&a, b"y", 0),
            MultiOp::check(&a, 1),
            MultiOp::create(
                &format!("{r}/s-"),
                b"",
                &open(),
                CreateMode::PersistentSequential,
            ),
        ])
        .await
        .unwrap();
    assert_eq!(res.len(), 4);
    assert!(matches!(&res[0], MultiResult::Create { path, .. } if *path == a));
    assert!(matches!(&res[1], MultiResult::SetData(st) if st.version == 1));
    assert_eq!(res[2], MultiResult::Check);
    assert!(
        matches!(&res[3], MultiResult::Create { path, .. } if path.starts_with(&format!("{r}/s-")))
    );

    let res = zk
        .multi(vec![
            MultiOp::create(&format!("{r}/b"), b"", &open(), CreateMode::Persistent),
            MultiOp::delete(&format!("{r}/nope"), -1),
            MultiOp::set_data(&a, b"z", -1),
        ])
        .await
        .unwrap();
    assert_eq!(
        res,
        vec![
            MultiResult::Error(ErrorCode::Ok),
            MultiResult::Error(ErrorCode::NoNode),
            MultiResult::Error(ErrorCode::RuntimeInconsistency),
        ]
    );
    assert!(zk.exists(&format!("{r}/b")).await.unwrap().is_none());
    assert_eq!(zk.get_data(&a).await.unwrap().0, &b"y"[..]);

    let res = zk
        .multi(vec![
            MultiOp::GetData(fjord_zk::proto::PathRequest { path: a.clone() }),
            MultiOp::GetChildren(fjord_zk::proto::PathRequest { path: r.clone() }),
        ])
        .await
        .unwrap();
    assert_eq!(res.len(), 2, "{res:?}");
    assert!(matches!(&res[0], MultiResult::GetData(Some(d), _) if d[..] == b"y"[..]));
    assert!(matches!(&res[1], MultiResult::GetChildren(c) if c.len() == 2));
    cleanup(&zk, &r).await;
}

#[tokio::test]
async fn chroot_paths_are_stripped() {
    let Some(s) = server() else { return };
    let (zk, r) = rooted(&s, "chroot").await;
    let cz = ZkClient::connect(&format!("{s}{r}"), T).await.unwrap();
    let p = cz
        .create("/x-", b"v", &open(), CreateMode::EphemeralSequential)
        .await
        .unwrap();
    assert_eq!(p, "/x-0000000000");
    assert_eq!(cz.get_children("/").await.unwrap(), vec!["x-0000000000"]);
    assert!(zk
        .exists(&format!("{r}/x-0000000000"))
        .await
        .unwrap()
        .is_some());
    let (_, w) = cz.exists_w("/y").await.unwrap();
    let mut pw = cz.add_watch("/", true).await.unwrap();
    create_empty(&zk, &format!("{r}/y"), CreateMode::Persistent).await;
    assert_eq!(within(w).await.unwrap().path, "/y");
    assert_eq!(within(pw.recv()).await.unwrap().path, "/y");
    let res = cz
        .multi(vec![MultiOp::create(
            "/m",
            b"",
            &open(),
            CreateMode::Persistent,
        )])
        .await
        .unwrap();
    assert!(matches!(&res[0], MultiResult::Create { path, .. } if path == "/m"));
    cz.close().await;
    cleanup(&zk, &r).await;
}

#[tokio::test]
async fn unreachable_server_times_out() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let e = ZkClient::connect(&addr.to_string(), Duration::from_millis(1500))
        .await
        .unwrap_err();
    assert!(matches!(e, ZkError::Timeout), "{e:?}");
}

/// A TCP proxy whose connections can be cut and which can refuse new ones.
struct Proxy {
    addr: String,
    cut: Arc<Notify>,
    blocked: Arc<AtomicBool>,
}

async fn proxy(target: &str) -> Proxy {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let cut = Arc::new(Notify::new());
    let blocked = Arc::new(AtomicBool::new(false));
    let (c2, b2, target) = (cut.clone(), blocked.clone(), target.to_string());
    tokio::spawn(async move {
        while let Ok((mut inb, _)) = l.accept().await {
            if b2.load(Ordering::SeqCst) {
                continue; // dropped: the client sees EOF
            }
            let Ok(mut outb) = TcpStream::connect(&target).await else {
                continue;
            };
            let cut = c2.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = tokio::io::copy_bidirectional(&mut inb, &mut outb) => {}
                    _ = cut.notified() => {}
                }
            });
        }
    });
    Proxy { addr, cut, blocked }
}

/// A direct client with a fresh root znode `name`, and a proxy to the
/// server for the client under test.
async fn proxied(s: &Server, name: &str) -> (ZkClient, String, Proxy) {
    let (direct, r) = rooted(s, name).await;
    let px = proxy(s).await;
    (direct, r, px)
}

async fn wait_state(zk: &ZkClient, want: SessionState) {
    let mut st = zk.state();
    within(st.wait_for(|s| *s == want)).await.unwrap();
}

#[tokio::test]
async fn reconnect_resumes_session_and_rearms_watches() {
    let Some(s) = server() else { return };
    let (direct, r, px) = proxied(&s, "reconnect").await;
    let zk = ZkClient::connect(&px.addr, T).await.unwrap();
    let sid = zk.session_id();
    let e = format!("{r}/eph");
    create_empty(&zk, &e, CreateMode::Ephemeral).await;
    let (_, dw) = zk.exists_w(&e).await.unwrap();
    let mut rec = zk.add_watch(&r, true).await.unwrap();

    px.cut.notify_waiters();
    wait_state(&zk, SessionState::Disconnected).await;
    // Changes while we are away are delivered after SetWatches2.
    direct.set_data(&e, b"changed", -1).await.unwrap();
    wait_state(&zk, SessionState::Connected).await;
    assert_eq!(zk.session_id(), sid, "session resumed");
    let ev = within(dw).await.unwrap();
    assert_event(&ev, event::NODE_DATA_CHANGED, &e);
    let mut kinds = Vec::new();
    while kinds.len() < 3 {
        let ev = within(rec.recv()).await.unwrap();
        kinds.push((ev.event_type, ev.keeper_state));
    }
    assert_eq!(
        kinds,
        vec![
            (event::NONE, state::DISCONNECTED),
            (event::NONE, state::SYNC_CONNECTED),
            (event::NODE_DATA_CHANGED, state::SYNC_CONNECTED),
        ]
    );
    assert!(
        direct.exists(&e).await.unwrap().is_some(),
        "ephemeral survived"
    );
    zk.close().await;
    cleanup(&direct, &r).await;
}

#[tokio::test]
async fn expiry_is_reported() {
    let Some(s) = server() else { return };
    let (direct, r, px) = proxied(&s, "expiry").await;
    // The server clamps to at least 2 ticks (4 s with tickTime 2000).
    let zk = ZkClient::connect(&px.addr, Duration::from_millis(4000))
        .await
        .unwrap();
    let e = format!("{r}/eph");
    create_empty(&zk, &e, CreateMode::Ephemeral).await;
    let (_, _, dw) = zk.get_data_w(&e).await.unwrap();
    let (_, gone) = direct.exists_w(&e).await.unwrap();

    px.blocked.store(true, Ordering::SeqCst);
    px.cut.notify_waiters();
    // The server expires the session and deletes its ephemeral.
    let ev = tokio::time::timeout(Duration::from_secs(30), gone)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ev.event_type, event::NODE_DELETED);
    px.blocked.store(false, Ordering::SeqCst);
    wait_state(&zk, SessionState::Expired).await;
    let ev = within(dw).await.unwrap();
    assert_eq!(
        (ev.event_type, ev.keeper_state),
        (event::NONE, state::EXPIRED)
    );
    assert!(matches!(zk.exists("/").await, Err(ZkError::SessionExpired)));
    cleanup(&direct, &r).await;
}

fn digest(user: &str, pass: &str) -> String {
    use base64::Engine;
    use sha1::Digest;
    let h = sha1::Sha1::digest(format!("{user}:{pass}").as_bytes());
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(h)
    )
}

#[tokio::test]
async fn digest_auth_survives_reconnect() {
    let Some(s) = server() else { return };
    let (direct, r, px) = proxied(&s, "auth").await;
    let zk = ZkClient::connect(&px.addr, T).await.unwrap();
    zk.add_auth("digest", b"u:p").await.unwrap();
    let secret = format!("{r}/secret");
    let acl = vec![Acl {
        perms: fjord_zk::proto::perms::ALL,
        id: fjord_zk::proto::Id {
            scheme: "digest".into(),
            id: digest("u", "p"),
        },
    }];
    zk.create(&secret, b"s", &acl, CreateMode::Persistent)
        .await
        .unwrap();
    let e = direct.get_data(&secret).await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::NoAuth));
    assert_eq!(zk.get_acl(&secret).await.unwrap().0, acl);

    px.cut.notify_waiters();
    wait_state(&zk, SessionState::Disconnected).await;
    wait_state(&zk, SessionState::Connected).await;
    assert_eq!(zk.get_data(&secret).await.unwrap().0, &b"s"[..]);

    direct.add_auth("digest", b"u:p").await.unwrap();
    assert_eq!(direct.get_data(&secret).await.unwrap().0, &b"s"[..]);
    zk.close().await;
    cleanup(&direct, &r).await;
}

#[tokio::test]
async fn pings_keep_an_idle_session_and_drop_closes_it() {
    let Some(s) = server() else { return };
    let (direct, r) = rooted(&s, "idle").await;
    let zk = ZkClient::connect(&s, Duration::from_millis(4000))
        .await
        .unwrap();
    let e = format!("{r}/eph");
    create_empty(&zk, &e, CreateMode::Ephemeral).await;
    tokio::time::sleep(Duration::from_millis(6000)).await;
    assert_eq!(*zk.state().borrow(), SessionState::Connected);
    assert!(zk.exists(&e).await.unwrap().is_some());

    // Dropping the last handle closes the session at once (no expiry wait).
    let (_, gone) = direct.exists_w(&e).await.unwrap();
    let t0 = std::time::Instant::now();
    drop(zk);
    let ev = within(gone).await.unwrap();
    assert_eq!(ev.event_type, event::NODE_DELETED);
    assert!(t0.elapsed() < Duration::from_millis(3000));
    cleanup(&direct, &r).await;
}

#[tokio::test]
async fn refused_auth_is_an_error_and_the_session_goes_on() {
    let Some(s) = server() else { return };
    let zk = ZkClient::connect(&s, T).await.unwrap();
    let sid = zk.session_id();
    let e = zk.add_auth("no-such-scheme", b"x").await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::AuthFailed), "{e:?}");
    // ZooKeeper hangs up after refusing; the client resumes the same session.
    // A request racing the hang-up may see ConnectionLoss; the next one must work.
    let st = match within(zk.exists("/")).await {
        Err(ZkError::ConnectionLoss) => within(zk.exists("/")).await,
        other => other,
    };
    assert!(st.unwrap().is_some());
    assert_eq!(zk.session_id(), sid);
    zk.close().await;
}
