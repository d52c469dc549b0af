//! Session liveness: deadlines, which connection holds a session, and new
//! session ids. Which sessions exist is replicated state (`tree`); when they
//! expire is this member's (the leader's) judgement.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::watch::ConnId;

struct Live {
    timeout: Duration,
    deadline: Instant,
    conn: Option<ConnId>,
}

/// Deadlines of live sessions.
pub struct SessionTracker {
    live: HashMap<i64, Live>,
    next_id: i64,
}

impl SessionTracker {
    /// Ids start from the clock (like ZooKeeper's `initializeNextSessionId`)
    /// so a restarted member never reuses one; `server_id` fills the top byte.
    pub fn new(server_id: u8) -> Self {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(1);
        let next_id = (((now_ms << 24) as u64) >> 8) as i64 | ((server_id as i64) << 56);
        SessionTracker {
            live: HashMap::new(),
            next_id: next_id.max(1),
        }
    }

    /// A fresh id, above every id of this member's already known. Ids of
    /// other members (another top byte) do not count: stepping past one
    /// would hand out ids in that member's range, which it hands out too —
    /// two sessions with one id, the second overwriting the first's
    /// password, so the first client's next resume is told "expired".
    pub fn next_id(&mut self) -> i64 {
        let mine = self.next_id >> 56;
        if let Some(max) = self.live.keys().filter(|k| *k >> 56 == mine).max() {
            if *max >= self.next_id {
                self.next_id = max + 1;
            }
        }
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    /// Starts tracking a session (created, or recovered after restart).
    pub fn add(&mut self, id: i64, timeout_ms: i32) {
        let timeout = Duration::from_millis(timeout_ms.max(1) as u64);
        self.live.insert(
            id,
            Live {
                timeout,
                deadline: Instant::now() + timeout,
                conn: None,
            },
        );
        if id >= self.next_id && (id >> 56) == (self.next_id >> 56) {
            self.next_id = id + 1;
        }
    }

    pub fn remove(&mut self, id: i64) {
        self.live.remove(&id);
    }

    pub fn contains(&self, id: i64) -> bool {
        self.live.contains_key(&id)
    }

    /// Pushes the deadline out: any traffic from the client counts.
    pub fn touch(&mut self, id: i64) {
        if let Some(l) = self.live.get_mut(&id) {
            l.deadline = Instant::now() + l.timeout;
        }
    }

    /// A new leader's fresh start: every session gets a full timeout, since
    /// the touches the old leader saw are lost with it.
    pub fn touch_all(&mut self) {
        let now = Instant::now();
        for l in self.live.values_mut() {
            l.deadline = now + l.timeout;
        }
    }

    /// Binds a session to a connection; returns the connection that held it.
    pub fn attach(&mut self, id: i64, conn: ConnId) -> Option<ConnId> {
        let l = self.live.get_mut(&id)?;
        l.deadline = Instant::now() + l.timeout;
        l.conn.replace(conn).filter(|c| *c != conn)
    }

    /// A connection went away; its session lives on until its deadline.
    pub fn detach(&mut self, id: i64, conn: ConnId) {
        if let Some(l) = self.live.get_mut(&id) {
            if l.conn == Some(conn) {
                l.conn = None;
                l.deadline = Instant::now() + l.timeout;
            }
        }
    }

    /// The connection currently holding a session.
    pub fn conn_of(&self, id: i64) -> Option<ConnId> {
        self.live.get(&id).and_then(|l| l.conn)
    }

    /// Sessions past their deadline.
    pub fn expired(&self, now: Instant) -> Vec<i64> {
        self.live
            .iter()
            .filter(|(_, l)| l.deadline <= now)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Every tracked session with its deadline (the AdminServer's `dump`).
    pub fn deadlines(&self) -> Vec<(i64, Instant)> {
        self.live.iter().map(|(id, l)| (*id, l.deadline)).collect()
    }

    /// Every tracked session id.
    pub fn ids(&self) -> Vec<i64> {
        self.live.keys().copied().collect()
    }

    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_rise_and_deadlines_expire() {
        let mut s = SessionTracker::new(0);
        let a = s.next_id();
        let b = s.next_id();
        assert!(b > a && a > 0);
        s.add(a, 1);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(s.expired(Instant::now()), vec![a]);
        s.touch(a);
        assert!(s.attach(a, 3).is_none());
        assert_eq!(s.attach(a, 4), Some(3));
    }

    #[test]
    fn ids_stay_in_this_members_range() {
        let mut two = SessionTracker::new(2);
        let mut three = SessionTracker::new(3);
        let theirs = three.next_id();
        two.add(theirs, 1000); // a session member 3 created, replicated here
        let mine = two.next_id();
        assert_eq!(mine >> 56, 2, "{mine:x}");
        assert_ne!(mine, three.next_id());
    }
}
