//! Feeds arbitrary bytes to fjord-coord as a ConnectRequest and as a request
//! frame through the real handler and state (tree, watches, sessions, log):
//! whatever arrives, nothing may panic.
#![no_main]

use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use fjord_coord::acl::Identity;
use fjord_coord::config::Config;
use fjord_coord::core::{Core, Out, Outbox};
use fjord_coord::handler::{self, ConnCtx};
use fjord_coord::txnlog::TxnLog;
use fjord_zk::jute::{Reader, Record};
use fjord_zk::proto::ConnectRequest;
use libfuzzer_sys::fuzz_target;
use tokio::sync::mpsc;

struct State {
    core: Core,
    ctx: ConnCtx,
    rx: mpsc::UnboundedReceiver<Out>,
    _dir: tempfile::TempDir,
}

fn state() -> &'static Mutex<State> {
    static S: OnceLock<Mutex<State>> = OnceLock::new();
    S.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = format!("dataDir={}\nsnapCount=1000000000\n", dir.path().display());
        let cfg = Config::parse(std::path::Path::new("fuzz.cfg"), &text).expect("config");
        let (log, rec) = TxnLog::open(&cfg.data_dir, &cfg.data_log_dir, 3).expect("log");
        let mut core = Core::new(Arc::new(cfg), rec.tree, log);
        let (tx, rx) = Outbox::new();
        let mut ctx = ConnCtx {
            id: 1,
            session: 0,
            identity: Identity::new("127.0.0.1"),
            tx,
            arrived: None,
            sasl: None,
        };
        let hello = ConnectRequest {
            timeout: 30_000,
            ..Default::default()
        };
        handler::connect(&mut core, &mut ctx, &hello);
        Mutex::new(State {
            core,
            ctx,
            rx,
            _dir: dir,
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let frame = Bytes::copy_from_slice(data);
    let _ = ConnectRequest::read(&mut Reader::new(frame.clone()));
    let mut guard = match state().lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    };
    let s = &mut *guard;
    let _ = handler::handle(&mut s.core, &mut s.ctx, frame);
    while s.rx.try_recv().is_ok() {}
});
