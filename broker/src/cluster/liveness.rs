//! Broker liveness as this broker sees it, from its own evidence rather than
//! the coordinator session (which only expires after
//! `zookeeper.session.timeout.ms`, 18 s by default): one probe task per other
//! registered broker sends a tiny ApiVersions request over the Kafka protocol
//! every `broker.failure.detection.ms / 6` and watches the idle connection in
//! between. A broker counts as dead when its port refuses connections (its
//! process died: the kernel closed its sockets, which the open connection
//! shows at once) or when it has not answered for
//! `broker.failure.detection.ms` (paused, hung). The controller plans with dead brokers left out
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

/// A broker's address and the session of its registration.
type Incarnation = (String, i64);

/// The brokers this one currently believes dead, and the probes behind it.
pub struct Liveness {
    me: i32,
    detect: Duration,
    dead: Arc<watch::Sender<BTreeSet<i32>>>,
    /// Per broker: its address and registration's session, and the probe.
    probes: Mutex<HashMap<i32, (Incarnation, JoinHandle<()>)>>,
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

    /// Probe exactly the registered brokers other than this one, given the
    /// session of each registration. A new address or session (a restarted
    /// broker: alive, it just registered) restarts its probe with a clean
    /// verdict; an unregistered broker is forgotten.
    pub fn track(&self, brokers: &BTreeMap<i32, BrokerInfo>, sessions: &BTreeMap<i32, i64>) {
        let key = |id: &i32, b: &BrokerInfo| {
            (
                format!("{}:{}", b.host, b.port),
                sessions.get(id).copied().unwrap_or(0),
            )
        };
        let mut probes = self.probes.lock();
        probes.retain(|id, (k, task)| {
            let keep = brokers.get(id).is_some_and(|b| key(id, b) == *k);
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
            let k = key(id, b);
            let task = tokio::spawn(probe(self.dead.clone(), *id, k.0.clone(), self.detect));
            probes.insert(*id, (k, task));
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

/// What one probe round found.
enum Outcome {
    Answered,
    /// The port refused a connection: nothing listens there any more.
    Refused,
    /// The connection broke (closed, reset): reconnect at once to find out.
    Broken,
    /// No answer within the deadline.
    Silent,
}

/// Probe broker `id` at `addr` until aborted, updating `dead`.
async fn probe(dead: Arc<watch::Sender<BTreeSet<i32>>>, id: i32, addr: String, detect: Duration) {
    let every = detect / 6;
    // A request unanswered this long, after an answer at most `every`
    // before it was sent, means no answer for about `detect`.
    let wait = detect.saturating_sub(every);
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
        let outcome = tokio::time::timeout(wait, exchange(&mut conn, &addr))
            .await
            .unwrap_or(Outcome::Silent);
        match outcome {
            Outcome::Answered => {
                mark(false);
                // Between probes, a connection the peer's kernel closed (its
                // process died) says so at once: look again without waiting.
                let closed = async {
                    match conn.as_ref() {
                        Some(c) => c.closed().await,
                        None => std::future::pending().await,
                    }
                };
                let eof = tokio::select! {
                    _ = tokio::time::sleep(every) => false,
                    _ = closed => true,
                };
                if eof {
                    conn = None;
                }
            }
            Outcome::Broken => conn = None,
            Outcome::Refused => {
                conn = None;
                mark(true);
                tokio::time::sleep(every).await;
            }
            Outcome::Silent => {
                conn = None;
                if sent.elapsed() > wait + Duration::from_secs(1) {
                    // Our own timer fired late: we were paused, not it.
                    continue;
                }
                mark(true);
            }
        }
    }
}

/// Connect if needed (opening runs ApiVersions), else one ApiVersions v0
/// round trip on the open connection.
async fn exchange(conn: &mut Option<Conn>, addr: &str) -> Outcome {
    let Some(c) = conn.as_mut() else {
        return match Conn::open(addr, &probe_config()).await {
            Ok(c) => {
                *conn = Some(c);
                Outcome::Answered
            }
            Err(ClientError::Connect { .. }) => Outcome::Refused,
            Err(_) => Outcome::Broken,
        };
    };
    match c.call(&ApiVersionsRequest::default(), 0).await {
        Ok(_) => Outcome::Answered,
        Err(_) => {
            *conn = None;
            Outcome::Broken
        }
    }
}

/// The probe's client settings: its own client id (visible in the peer's
/// logs), small frames, and no timeout of its own (the caller's bounds it).
fn probe_config() -> ClientConfig {
    let mut cfg = crate::config::inter_broker_client("fjord-liveness".into());
    cfg.max_frame = 1 << 20;
    cfg.request_timeout = Duration::from_secs(3600);
    cfg
}
