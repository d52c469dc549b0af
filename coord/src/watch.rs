//! Watches: one-shot data/exists/child watches and persistent and
//! persistent-recursive ones (addWatch), held per connection as ZooKeeper does.
//!
//! Indexed by path, so firing costs the number of watchers on the path (plus
//! one lookup per ancestor when recursive watches exist), never a scan.

use std::collections::{HashMap, HashSet};

use crate::tree::{parent_of, Trigger};
use fjord_zk::proto::{event, watcher_type};

/// A client connection, as watches and sessions refer to it.
pub type ConnId = u64;

const STANDARD: u8 = 1;
const PERSISTENT: u8 = 2;
const RECURSIVE: u8 = 4;

#[derive(Default)]
struct Table {
    by_path: HashMap<String, HashMap<ConnId, u8>>,
}

impl Table {
    fn add(&mut self, path: &str, conn: ConnId, bit: u8) -> bool {
        let e = self.by_path.entry(path.to_string()).or_default();
        let bits = e.entry(conn).or_insert(0);
        let new = *bits & bit == 0;
        *bits |= bit;
        new
    }

    /// Clears `bit`; true if it was set.
    fn clear(&mut self, path: &str, conn: ConnId, bit: u8) -> bool {
        let Some(e) = self.by_path.get_mut(path) else {
            return false;
        };
        let Some(bits) = e.get_mut(&conn) else {
            return false;
        };
        let had = *bits & bit != 0;
        *bits &= !bit;
        if *bits == 0 {
            e.remove(&conn);
            if e.is_empty() {
                self.by_path.remove(path);
            }
        }
        had
    }

    fn has(&self, path: &str, conn: ConnId, mask: u8) -> bool {
        self.by_path
            .get(path)
            .and_then(|e| e.get(&conn))
            .is_some_and(|b| b & mask != 0)
    }

    /// Conns watching `path` itself; their one-shot bits are consumed.
    fn fire_exact(&mut self, path: &str, out: &mut Vec<ConnId>) {
        let Some(e) = self.by_path.get_mut(path) else {
            return;
        };
        e.retain(|conn, bits| {
            out.push(*conn);
            *bits &= !STANDARD;
            *bits != 0
        });
        if e.is_empty() {
            self.by_path.remove(path);
        }
    }

    /// Conns with a recursive watch on a strict ancestor of `path`.
    fn fire_ancestors(&self, path: &str, out: &mut Vec<ConnId>) {
        let mut p = path;
        while p != "/" {
            p = parent_of(p);
            if let Some(e) = self.by_path.get(p) {
                out.extend(
                    e.iter()
                        .filter(|(_, b)| *b & RECURSIVE != 0)
                        .map(|(c, _)| *c),
                );
            }
        }
    }
}

/// One notification to deliver: (connection, event type, path, index of the trigger).
pub type Fired = (ConnId, i32, String, usize);

/// All watches of this member.
#[derive(Default)]
pub struct WatchManager {
    data: Table,
    child: Table,
    by_conn: HashMap<ConnId, HashSet<(bool, String)>>,
    recursive: usize,
}

impl WatchManager {
    fn note(&mut self, conn: ConnId, child: bool, path: &str) {
        self.by_conn
            .entry(conn)
            .or_default()
            .insert((child, path.to_string()));
    }

    /// getData/exists watch.
    pub fn add_data(&mut self, path: &str, conn: ConnId) {
        self.data.add(path, conn, STANDARD);
        self.note(conn, false, path);
    }

    /// getChildren watch.
    pub fn add_child(&mut self, path: &str, conn: ConnId) {
        self.child.add(path, conn, STANDARD);
        self.note(conn, true, path);
    }

    /// addWatch: persistent watches see data and child events of `path`;
    /// recursive ones see data events of the whole subtree, no child events.
    pub fn add_persistent(&mut self, path: &str, conn: ConnId, recursive: bool) {
        if recursive {
            if self.data.add(path, conn, RECURSIVE) {
                self.recursive += 1;
            }
        } else {
            self.data.add(path, conn, PERSISTENT);
            self.child.add(path, conn, PERSISTENT);
            self.note(conn, true, path);
        }
        self.note(conn, false, path);
    }

    /// Forgets every watch of a closed connection.
    pub fn remove_conn(&mut self, conn: ConnId) {
        let Some(set) = self.by_conn.remove(&conn) else {
            return;
        };
        for (child, path) in set {
            let table = if child {
                &mut self.child
            } else {
                &mut self.data
            };
            if !child && table.has(&path, conn, RECURSIVE) {
                self.recursive = self.recursive.saturating_sub(1);
            }
            table.clear(&path, conn, STANDARD | PERSISTENT | RECURSIVE);
        }
    }

    /// Which bits a checkWatches/removeWatches type covers: (data, child).
    /// DATA and CHILDREN cover every mode in their table, as ZooKeeper's
    /// `removeWatcher(path, watcher)` does.
    fn masks(kind: i32) -> Option<(u8, u8)> {
        const ALL: u8 = STANDARD | PERSISTENT | RECURSIVE;
        Some(match kind {
            watcher_type::CHILDREN => (0, ALL),
            watcher_type::DATA => (ALL, 0),
            watcher_type::ANY => (ALL, ALL),
            watcher_type::PERSISTENT => (PERSISTENT, PERSISTENT),
            watcher_type::PERSISTENT_RECURSIVE => (RECURSIVE, 0),
            _ => return None,
        })
    }

    /// checkWatches: does `conn` hold a watch of `kind` on `path`?
    pub fn check(&self, path: &str, conn: ConnId, kind: i32) -> bool {
        let Some((d, c)) = Self::masks(kind) else {
            return false;
        };
        self.data.has(path, conn, d) || self.child.has(path, conn, c)
    }

    /// removeWatches: drops them; false if there was none.
    pub fn remove(&mut self, path: &str, conn: ConnId, kind: i32) -> bool {
        let Some((d, c)) = Self::masks(kind) else {
            return false;
        };
        if d & RECURSIVE != 0 && self.data.has(path, conn, RECURSIVE) {
            self.recursive = self.recursive.saturating_sub(1);
        }
        let a = self.data.clear(path, conn, d);
        let b = self.child.clear(path, conn, c);
        a || b
    }

    /// Turns a transaction's triggers into notifications, one per connection
    /// per trigger, consuming one-shot watches.
    pub fn fire(&mut self, triggers: &[Trigger]) -> Vec<Fired> {
        let mut out = Vec::new();
        let mut conns = Vec::new();
        for (i, t) in triggers.iter().enumerate() {
            conns.clear();
            let (path, kind) = match t {
                Trigger::Created(p, _) => {
                    self.data.fire_exact(p, &mut conns);
                    (p, event::NODE_CREATED)
                }
                Trigger::DataChanged(p, _) => {
                    self.data.fire_exact(p, &mut conns);
                    (p, event::NODE_DATA_CHANGED)
                }
                Trigger::Deleted(p, _) => {
                    self.data.fire_exact(p, &mut conns);
                    self.child.fire_exact(p, &mut conns);
                    (p, event::NODE_DELETED)
                }
                Trigger::ChildrenChanged(p, _) => {
                    self.child.fire_exact(p, &mut conns);
                    (p, event::NODE_CHILDREN_CHANGED)
                }
            };
            if self.recursive > 0 && !matches!(t, Trigger::ChildrenChanged(..)) {
                self.data.fire_ancestors(path, &mut conns);
            }
            conns.sort_unstable();
            conns.dedup();
            out.extend(conns.iter().map(|c| (*c, kind, path.clone(), i)));
        }
        out
    }

    /// Total watches and distinct watched paths, for `wchs`/`mntr`.
    pub fn counts(&self) -> (usize, usize) {
        let n = |t: &Table| t.by_path.values().map(|e| e.len()).sum::<usize>();
        (
            n(&self.data) + n(&self.child),
            self.data.by_path.len() + self.child.by_path.len(),
        )
    }

    /// Connections holding at least one watch.
    pub fn watching_conns(&self) -> usize {
        self.by_conn.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_zk::proto::Acl;
    use std::sync::Arc;

    fn open() -> Arc<Vec<Acl>> {
        Arc::new(Acl::open_unsafe())
    }

    #[test]
    fn one_shot_fires_once_persistent_stays() {
        let mut w = WatchManager::default();
        w.add_data("/a", 1);
        w.add_persistent("/a", 2, false);
        let t = [Trigger::DataChanged("/a".into(), open())];
        assert_eq!(w.fire(&t).len(), 2);
        assert_eq!(
            w.fire(&t),
            vec![(2, event::NODE_DATA_CHANGED, "/a".to_string(), 0)]
        );
    }

    #[test]
    fn recursive_sees_subtree_but_no_child_events() {
        let mut w = WatchManager::default();
        w.add_persistent("/a", 7, true);
        let f = w.fire(&[
            Trigger::Created("/a/b/c".into(), open()),
            Trigger::ChildrenChanged("/a/b".into(), open()),
        ]);
        assert_eq!(f, vec![(7, event::NODE_CREATED, "/a/b/c".to_string(), 0)]);
        w.remove_conn(7);
        assert!(w
            .fire(&[Trigger::Created("/a/x".into(), open())])
            .is_empty());
    }

    #[test]
    fn delete_fires_data_and_child_watcher_once() {
        let mut w = WatchManager::default();
        w.add_data("/a", 1);
        w.add_child("/a", 1);
        assert_eq!(w.fire(&[Trigger::Deleted("/a".into(), open())]).len(), 1);
        assert!(!w.check("/a", 1, watcher_type::ANY));
    }
}
