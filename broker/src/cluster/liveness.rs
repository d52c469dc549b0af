//! Broker liveness as this broker sees it, from its own evidence rather than
//! the coordinator session (which only expires after
//! `zookeeper.session.timeout.ms`, 18 s by default): one probe task per other
//! registered broker sends a tiny ApiVersions request over the Kafka protocol
//! every `broker.failure.detection.ms / 6`. A broker counts as dead when its
//! port refuses connections (its process died: the kernel closed its
//! sockets) or when it has not answered for `broker.failure.detection.ms`
//! (paused, hung). The controller plans with dead brokers left out
//! (`zk::controller_duties`); the others use it to depose a dead controller.
//!
//! A probe whose own timer fired far too late says this process was paused
//! itself (SIGSTOP, a stalled machine): that is no evidence against the
//! other broker and is ignored.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use fjord_kafka::client::{ClientConfig, ClientError, Conn};
use kafka_protocol::messages::ApiVersionsRequest;
use parking_lot::Mutex;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::metadata::BrokerInfo;

/// The brokers this one currently believes dead, and the probes behind it.
pub struct Liveness {
    me: i32,
    detect: Duration,
    dead: Arc<watch::Sender<BTreeSet<i32>>>,
    probes: Mutex<HashMap<i32, (String, JoinHandle<()>)>>,
}

impl Liveness {
    /// No probes yet; `detect` is broker.failure.detection.ms.
    pub fn new(me: i32, detect: Duration) -> Liveness {
        Liveness {
            me,
            detect,
            dead: Arc::new(watch::Sender::new(BTreeSet::new())),
            probes: Mutex::new(HashMap::new()),
        }
    }

    /// Probe exactly the registered brokers other than this one (a new
    /// address restarts its probe; an unregistered broker is forgotten).
    pub fn track(&self, brokers: &BTreeMap<i32, BrokerInfo>) {
        let mut probes = self.probes.lock();
        probes.retain(|id, (addr, task)| {
            let keep = brokers
                .get(id)
                .is_some_and(|b| format!("{}:{}", b.host, b.port) == *addr);
            if !keep {
                task.abort();
            }
            keep
        });
        self.dead.send_if_modified(|d| {
            let before = d.len();
            d.retain(|id| probes.contains_key(id));
            d.len() != before
        });
        for (id, b) in brokers {
            if *id == self.me || probes.contains_key(id) {
                continue;
            }
            let addr = format!("{}:{}", b.host, b.port);
            let task = tokio::spawn(probe(self.dead.clone(), *id, addr.clone(), self.detect));
            probes.insert(*id, (addr, task));
        }
    }

    /// Brokers believed dead right now.
    pub fn dead(&self) -> BTreeSet<i32> {
        self.dead.borrow().clone()
    }

    /// Changes of the dead set.
    pub fn subscribe(&self) -> watch::Receiver<BTreeSet<i32>> {
        self.dead.subscribe()
    }

    /// Stop every probe (shutdown).
    pub fn stop(&self) {
        for (_, (_, t)) in self.probes.lock().drain() {
            t.abort();
        }
    }
}

impl Drop for Liveness {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Probe broker `id` at `addr` until aborted, updating `dead`.
async fn probe(dead: Arc<watch::Sender<BTreeSet<i32>>>, id: i32, addr: String, detect: Duration) {
    let every = detect / 6;
    // A request unanswered this long, after an answer at most `every`
    // before it was sent, means no answer for about `detect`.
    let wait = detect.saturating_sub(every);
    let mut cfg = ClientConfig::new("");
    cfg.client_id = "fjord-liveness".into();
    cfg.request_timeout = wait;
    cfg.max_frame = 1 << 20;
    let mark = |is_dead: bool| {
        dead.send_if_modified(|d| {
            let changed = if is_dead { d.insert(id) } else { d.remove(&id) };
            if changed {
                if is_dead {
                    tracing::warn!(broker = id, "broker failure detected: no answer to probes");
                } else {
                    tracing::info!(broker = id, "broker answers probes again");
                }
            }
            changed
        });
    };
    let mut conn: Option<Conn> = None;
    loop {
        let sent = Instant::now();
        let had_conn = conn.is_some();
        let res = match conn.as_mut() {
            Some(c) => c.call(&ApiVersionsRequest::default(), 0).await.map(|_| ()),
            None => Conn::open(&addr, &cfg).await.map(|c| conn = Some(c)),
        };
        match res {
            Ok(()) => {
                mark(false);
                tokio::time::sleep(every).await;
            }
            Err(ClientError::Timeout { .. }) => {
                conn = None;
                if sent.elapsed() > wait + Duration::from_secs(1) {
                    // Our own timer fired late: we were paused, not it.
                    continue;
                }
                mark(true);
            }
            Err(_) if had_conn => {
                // Connection closed or reset: reconnect at once; a refusal
                // then is the evidence.
                conn = None;
            }
            Err(e) => {
                conn = None;
                if matches!(e, ClientError::Connect { .. }) {
                    mark(true);
                }
                tokio::time::sleep(every).await;
            }
        }
    }
}
