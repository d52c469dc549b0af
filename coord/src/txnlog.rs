//! Durability: the transaction log (append, group-committed fsync) and
//! snapshots (so restart time does not grow with history).
//!
//! Appends only copy encoded bytes into a pending buffer; one writer thread
//! writes whatever has accumulated and fsyncs once for all of it, then
//! publishes the highest durable zxid. Nobody waits on a timer: while one
//! fsync runs, the next batch fills. Replies wait for the durable zxid.
//! Files are zero-filled ahead of the records ([`PREALLOC`]), so those
//! fsyncs need no filesystem journal commit.
//!
//! Files: `<dataLogDir>/fjord-log/log.<first zxid, hex>` and
//! `<dataDir>/fjord-snap/snapshot.<zxid, hex>`, both record files
//! ([`crate::recfile`]): a torn tail after kill -9 ends a file.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use fjord_proto::coord as pb;
use parking_lot::{Condvar, Mutex};
use prost::Message;
use tokio::sync::watch;

use crate::recfile::{self, Queue};
use crate::tree::DataTree;

/// Storage failures at startup (later ones are retried and logged).
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    /// A record in the middle of a file fails its CRC: starting would
    /// serve a tree missing it (and everything after), so the member stops.
    #[error("{path}: corrupt record at byte offset {offset} (valid records follow it; not a torn tail): refusing to start")]
    Corrupt { path: PathBuf, offset: usize },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

const SNAP_MAGIC: &[u8; 8] = b"FJSNAP1\n";

enum Item {
    Bytes(Vec<u8>, i64),
    /// Close the current file; the next record starts `log.<zxid>`.
    Roll(i64),
}

struct Shared {
    pending: Queue<Item>,
    durable: watch::Sender<i64>,
    /// The free-space guard, told what the writer writes (`diskguard`).
    guard: std::sync::OnceLock<Arc<crate::diskguard::DiskGuard>>,
}

/// Handle to the log writer; cheap to clone.
#[derive(Clone)]
pub struct TxnLog {
    shared: Arc<Shared>,
    snap_dir: PathBuf,
    log_dir: PathBuf,
    retain: usize,
    snapshotting: Arc<AtomicBool>,
}

/// What recovery found on disk.
pub struct Recovered {
    pub tree: DataTree,
    pub txns_replayed: u64,
}

fn list(dir: &Path, prefix: &str) -> Result<Vec<(i64, PathBuf)>, StorageError> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).map_err(io_err(dir))? {
        let e = e.map_err(io_err(dir))?;
        let name = e.file_name();
        let Some(hex) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
            continue;
        };
        if let Ok(z) = i64::from_str_radix(hex, 16) {
            out.push((z, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

fn fsync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

impl TxnLog {
    /// Recovers the newest valid snapshot plus every logged transaction after
    /// it, then starts the writer on a fresh log file.
    pub fn open(
        data_dir: &Path,
        data_log_dir: &Path,
        retain: usize,
    ) -> Result<(TxnLog, Recovered), StorageError> {
        let snap_dir = data_dir.join("fjord-snap");
        let log_dir = data_log_dir.join("fjord-log");
        fs::create_dir_all(&snap_dir).map_err(io_err(&snap_dir))?;
        fs::create_dir_all(&log_dir).map_err(io_err(&log_dir))?;

        // Leftovers of snapshots a crash interrupted.
        for e in fs::read_dir(&snap_dir)
            .map_err(io_err(&snap_dir))?
            .flatten()
        {
            if e.path().extension().is_some_and(|x| x == "tmp") {
                let _ = fs::remove_file(e.path());
            }
        }
        let mut tree = None;
        for (zxid, path) in list(&snap_dir, "snapshot.")?.into_iter().rev() {
            match load_snapshot(&path, zxid) {
                Ok(t) => {
                    tracing::info!(path = %path.display(), zxid, nodes = t.node_count(), "loaded snapshot");
                    tree = Some(t);
                    break;
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "skipping unreadable snapshot")
                }
            }
        }
        let mut tree = tree.unwrap_or_default();
        let mut replayed = 0u64;
        let mut triggers = Vec::new();
        for (_, path) in list(&log_dir, "log.")? {
            let bytes = fs::read(&path).map_err(io_err(&path))?;
            let mut recs = recfile::records(&bytes);
            for payload in recs.by_ref() {
                let Ok(txn) = pb::Txn::decode(payload) else {
                    tracing::warn!(path = %path.display(), "undecodable log record; ignoring the rest of the file");
                    break;
                };
                if txn.zxid <= tree.last_zxid {
                    continue;
                }
                tree.apply(&txn, &mut triggers);
                triggers.clear();
                replayed += 1;
            }
            if let Some(offset) = recfile::damaged_at(&bytes, recs.offset()) {
                return Err(StorageError::Corrupt { path, offset });
            }
        }
        let start = tree.last_zxid + 1;
        let file = new_log_file(&log_dir, start)?;
        let (durable, _) = watch::channel(tree.last_zxid);
        let shared = Arc::new(Shared {
            pending: Queue::default(),
            durable,
            guard: std::sync::OnceLock::new(),
        });
        let writer = shared.clone();
        let dir = log_dir.clone();
        std::thread::Builder::new()
            .name("txnlog-writer".into())
            .spawn(move || writer_loop(writer, dir, file))
            .map_err(io_err(&log_dir))?;
        Ok((
            TxnLog {
                shared,
                snap_dir,
                log_dir,
                retain,
                snapshotting: Arc::new(AtomicBool::new(false)),
            },
            Recovered {
                tree,
                txns_replayed: replayed,
            },
        ))
    }

    /// Queues a transaction; it is durable once [`TxnLog::durable`] reaches its zxid.
    pub fn append(&self, txn: &pb::Txn) {
        let payload = txn.encode_to_vec();
        self.shared.pending.update(|p| match p.last_mut() {
            Some(Item::Bytes(buf, last)) => {
                recfile::put(buf, &payload);
                *last = txn.zxid;
            }
            _ => {
                let mut buf = Vec::with_capacity(payload.len() + 8);
                recfile::put(&mut buf, &payload);
                p.push(Item::Bytes(buf, txn.zxid));
            }
        });
    }

    /// Let the free-space guard see what the writer writes (set once).
    pub fn set_guard(&self, guard: Arc<crate::diskguard::DiskGuard>) {
        let _ = self.shared.guard.set(guard);
    }

    /// The free-space guard, if one is set.
    pub fn guard(&self) -> Option<&Arc<crate::diskguard::DiskGuard>> {
        self.shared.guard.get()
    }

    /// The highest zxid known to be on disk.
    pub fn durable(&self) -> watch::Receiver<i64> {
        self.shared.durable.subscribe()
    }

    /// Snapshots `tree` (call with the state lock held, so the image is
    /// consistent at `tree.last_zxid`) and rolls the log so old files can be
    /// purged. The image is written by a forked child: the fork copies page
    /// tables, not the tree, so the lock is held for milliseconds instead of
    /// the seconds a million-node encode takes. One snapshot at a time.
    pub fn snapshot(&self, tree: &DataTree) {
        if self.snapshotting.swap(true, Ordering::AcqRel) {
            return;
        }
        let zxid = tree.last_zxid;
        self.shared.pending.push(Item::Roll(zxid + 1));
        let path = self.snap_dir.join(format!("snapshot.{zxid:016x}"));
        let tmp = path.with_extension("tmp");
        let started = std::time::Instant::now();
        // SAFETY: the child runs only `write_image` on memory this thread
        // owns or has locked (the tree, under the caller's lock): it allocates
        // (glibc's malloc is fork-safe), writes one file, and leaves with
        // `_exit`, running no destructors, atexit hooks, or other threads' code.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: asks the kernel to kill this child if the parent dies,
            // so no orphan writes a snapshot beside a restarted server.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
            let code = match write_image(tree, &tmp, &path) {
                Ok(()) => 0,
                Err(_) => 1,
            };
            // SAFETY: ends the child without touching the parent's state.
            unsafe { libc::_exit(code) };
        }
        tracing::info!(
            zxid,
            nodes = tree.node_count(),
            fork_ms = started.elapsed().as_millis() as u64,
            "snapshot started"
        );
        let me = self.clone();
        let spawned = std::thread::Builder::new()
            .name("snapshot".into())
            .spawn(move || {
                let ok = if pid > 0 {
                    let mut status = 0;
                    // SAFETY: waits for the child we just forked.
                    unsafe { libc::waitpid(pid, &mut status, 0) };
                    libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
                } else {
                    false
                };
                if ok {
                    fsync_dir(&me.snap_dir);
                    tracing::info!(path = %path.display(), secs = started.elapsed().as_secs_f64(), "snapshot written");
                    if let Err(e) = me.purge() {
                        tracing::warn!(error = %e, "purging old snapshots failed");
                    }
                } else {
                    let _ = fs::remove_file(&tmp);
                    tracing::error!(zxid, pid, "snapshot failed; the log still holds everything");
                }
                me.snapshotting.store(false, Ordering::Release);
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "could not start the snapshot waiter");
            self.snapshotting.store(false, Ordering::Release);
        }
    }

    /// Keeps the newest `retain` snapshots and the logs they still need.
    fn purge(&self) -> Result<(), StorageError> {
        let snaps = list(&self.snap_dir, "snapshot.")?;
        if snaps.len() <= self.retain {
            return Ok(());
        }
        let keep_from = snaps[snaps.len() - self.retain].0;
        for (_, p) in &snaps[..snaps.len() - self.retain] {
            let _ = fs::remove_file(p);
        }
        let logs = list(&self.log_dir, "log.")?;
        for w in logs.windows(2) {
            // Every txn in w[0] is below w[1]'s first zxid.
            if w[1].0 <= keep_from + 1 {
                let _ = fs::remove_file(&w[0].1);
            }
        }
        Ok(())
    }
}

/// Writes the snapshot file (temp name, fsync, rename): runs in the forked child.
fn write_image(tree: &DataTree, tmp: &Path, path: &Path) -> io::Result<()> {
    let mut out = io::BufWriter::with_capacity(1 << 20, File::create(tmp)?);
    out.write_all(SNAP_MAGIC)?;
    let header = pb::SnapshotHeader {
        zxid: tree.last_zxid,
        node_count: tree.node_count() as u64,
        session_count: tree.sessions.len() as u64,
    };
    let mut buf = Vec::with_capacity(4096);
    recfile::put_message(&mut buf, &header);
    let mut scratch = Vec::new();
    for r in tree.snapshot_records() {
        scratch.clear();
        if r.encode(&mut scratch).is_ok() {
            recfile::put(&mut buf, &scratch);
        }
        if buf.len() >= 1 << 20 {
            out.write_all(&buf)?;
            buf.clear();
        }
    }
    out.write_all(&buf)?;
    let f = out.into_inner().map_err(|e| e.into_error())?;
    f.sync_all()?;
    fs::rename(tmp, path)
}

/// Log files are zero-filled this far ahead of their records: an
/// fdatasync after a write that grows the file must also commit the new size
/// (a filesystem journal commit), after a write inside it only the data
/// (ext4 here: p50 0.13 → 0.09 ms for a small record), and every write waits
/// for that sync. A zero length ends the records ([`recfile`]), so the unused
/// tail reads as the end of the log. ZooKeeper preallocates its logs likewise.
/// Each step stalls the writer (here ~1 ms to write 1 MiB of zeros, ~3 ms for
/// the sync that flushes them, once per ~3000 small records): a bigger step
/// stalls longer (8 MiB: ~40 ms).
const PREALLOC: u64 = 1 << 20;

/// The log file being written: records go at `pos`, zeros reach `alloc`.
struct LogFile {
    file: Arc<File>,
    pos: u64,
    alloc: u64,
    /// Zero-filling failed once (a nearly full disk): records then simply
    /// extend the file, as without preallocation.
    no_prealloc: bool,
}

impl LogFile {
    /// Writes `buf` after the last record, zero-filling ahead first.
    fn write(&mut self, buf: &[u8], dir: &Path, guard: Option<&crate::diskguard::DiskGuard>) {
        let end = self.pos + buf.len() as u64;
        if end > self.alloc && !self.no_prealloc {
            self.zero_fill(end.div_ceil(PREALLOC) * PREALLOC, dir, guard);
        }
        if let Err(e) = self.file.write_all_at(buf, self.pos) {
            write_failed(dir, &e);
        }
        self.pos = end;
        self.alloc = self.alloc.max(end);
    }

    fn zero_fill(&mut self, to: u64, dir: &Path, guard: Option<&crate::diskguard::DiskGuard>) {
        const CHUNK: usize = 1 << 20;
        let zeros = vec![0u8; CHUNK];
        while self.alloc < to {
            let n = CHUNK.min((to - self.alloc) as usize);
            if let Err(e) = self.file.write_all_at(&zeros[..n], self.alloc) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot preallocate the transaction log; appending without");
                self.no_prealloc = true;
                return;
            }
            if let Some(g) = guard {
                g.wrote(n as u64);
            }
            self.alloc += n as u64;
        }
    }
}

/// Starts `log.<start>`. A file of that name already there holds no valid
/// record (recovery would have replayed it past `start`), only zeros or a
/// torn record of a previous run, so it starts over.
fn new_log_file(dir: &Path, start: i64) -> Result<LogFile, StorageError> {
    let path = dir.join(format!("log.{start:016x}"));
    let f = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&path)
        .map_err(io_err(&path))?;
    fsync_dir(dir);
    Ok(LogFile {
        file: Arc::new(f),
        pos: 0,
        alloc: 0,
        no_prealloc: false,
    })
}

/// Fsync work handed from the writer to the syncers: the newest request
/// replaces older ones, since one fdatasync covers everything written before it.
#[derive(Default)]
struct SyncSlot {
    want: Mutex<Option<(Arc<File>, i64)>>,
    wake: Condvar,
}

/// Concurrent fdatasyncs overlap on this kind of disk (measured: 4 threads
/// reach ~4x the syncs/s of one at lower latency), so the writer never waits
/// for a sync: it keeps appending while up to SYNCERS syncs are in flight.
const SYNCERS: usize = 3;

fn writer_loop(shared: Arc<Shared>, dir: PathBuf, mut log: LogFile) {
    let slot = Arc::new(SyncSlot::default());
    for i in 0..SYNCERS {
        let (slot, shared, dir) = (slot.clone(), shared.clone(), dir.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("txnlog-sync-{i}"))
            .spawn(move || syncer_loop(&slot, &shared, &dir));
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a log syncer thread");
        }
    }
    loop {
        let items = shared.pending.take_all();
        let mut written = None;
        for item in items {
            match item {
                Item::Bytes(buf, last) => {
                    let guard = shared.guard.get().map(|g| &**g);
                    log.write(&buf, &dir, guard);
                    if let Some(g) = guard {
                        g.wrote(buf.len() as u64);
                    }
                    written = Some(last);
                }
                Item::Roll(next) => {
                    // The old file is synced here, in line, so that a sync of
                    // the new file can never claim zxids still unsynced in it.
                    // Without its zero tail (only disk space: zeros end the records anyway).
                    let _ = log.file.set_len(log.pos);
                    sync_or_exit(&log.file, &dir);
                    if let Some(z) = written.take() {
                        shared.durable.send_modify(|d| *d = (*d).max(z));
                    }
                    loop {
                        match new_log_file(&dir, next) {
                            Ok(f) => {
                                log = f;
                                break;
                            }
                            Err(e) => {
                                tracing::error!(error = %e, "cannot open a new log file; retrying");
                                std::thread::sleep(Duration::from_secs(1));
                            }
                        }
                    }
                }
            }
        }
        if let Some(z) = written {
            *slot.want.lock() = Some((log.file.clone(), z));
            slot.wake.notify_one();
        }
    }
}

fn syncer_loop(slot: &SyncSlot, shared: &Shared, dir: &Path) {
    loop {
        let (file, zxid) = {
            let mut w = slot.want.lock();
            loop {
                if let Some(job) = w.take() {
                    break job;
                }
                slot.wake.wait(&mut w);
            }
        };
        sync_or_exit(&file, dir);
        // Every sync covers all bytes written before it started, so the
        // durable mark only moves forward, whatever order syncs finish in.
        shared.durable.send_modify(|d| *d = (*d).max(zxid));
    }
}

/// A failed write (ENOSPC, EIO) stops the member, as a failed fsync does
/// and as ZooKeeper does: the tree already holds the transactions being
/// written (it is applied before the log), so answering the writers with an
/// error would leave others reading changes that are not on disk, and a
/// stalled writer would hold up every later request and ping. Nothing
/// unwritten was acknowledged; a restart (the service manager's
/// `Restart=on-failure`) recovers from what is on disk, the torn tail cut.
/// The free-space guard (`diskguard`) refuses writes before a full disk
/// gets here.
fn write_failed(dir: &Path, e: &io::Error) -> ! {
    tracing::error!(dir = %dir.display(), error = %e, "transaction log write failed; stopping (restart recovers from the log)");
    eprintln!(
        "fjord-coord: write to the transaction log in {} failed: {e}",
        dir.display()
    );
    std::process::exit(1);
}

/// A failed fsync cannot be retried safely (Linux may drop the dirty pages
/// and report success next time), so the member stops: nothing unsynced was
/// acknowledged, and restart recovers from what is really on disk.
fn sync_or_exit(file: &File, dir: &Path) {
    let started = std::time::Instant::now();
    let synced = file.sync_data();
    crate::timings::TIMINGS.fsync(started.elapsed().as_secs_f64() * 1000.0);
    if let Err(e) = synced {
        tracing::error!(dir = %dir.display(), error = %e, "transaction log fsync failed; stopping");
        eprintln!(
            "fjord-coord: fsync of the transaction log in {} failed: {e}",
            dir.display()
        );
        std::process::exit(1);
    }
}

fn load_snapshot(path: &Path, zxid: i64) -> Result<DataTree, String> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(|e| e.to_string())?;
    let body = bytes
        .strip_prefix(SNAP_MAGIC)
        .ok_or_else(|| "not a fjord snapshot".to_string())?;
    let mut recs = recfile::records(body);
    let header = recs
        .next()
        .and_then(|h| pb::SnapshotHeader::decode(h).ok())
        .ok_or("missing header")?;
    if header.zxid != zxid {
        return Err(format!("header zxid {} != file name", header.zxid));
    }
    let mut records = Vec::with_capacity(header.node_count as usize);
    for r in recs {
        records.push(pb::SnapshotRecord::decode(r).map_err(|e| e.to_string())?);
    }
    if records.len() as u64 != header.node_count + header.session_count {
        return Err(format!(
            "truncated: {} of {} records",
            records.len(),
            header.node_count + header.session_count
        ));
    }
    Ok(DataTree::from_snapshot(zxid, records))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::acl_to_pb;
    use fjord_zk::proto::Acl;

    fn create_txn(zxid: i64, path: &str) -> pb::Txn {
        pb::Txn {
            zxid,
            time_ms: 1,
            session_id: 0,
            ops: vec![pb::Op {
                kind: Some(pb::op::Kind::Create(pb::Create {
                    path: path.into(),
                    data: Some(bytes::Bytes::from_static(b"v")),
                    acl: acl_to_pb(&Acl::open_unsafe()),
                    ephemeral_owner: 0,
                })),
            }],
        }
    }

    #[test]
    fn log_and_snapshot_recover() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (log, rec) = TxnLog::open(dir.path(), dir.path(), 3).unwrap();
            let mut tree = rec.tree;
            let mut trig = Vec::new();
            for i in 1..=5 {
                let t = create_txn(i, &format!("/n{i}"));
                tree.apply(&t, &mut trig);
                log.append(&t);
            }
            log.snapshot(&tree);
            let t = create_txn(6, "/n6");
            tree.apply(&t, &mut trig);
            log.append(&t);
            let mut d = log.durable();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(d.wait_for(|z| *z >= 6)).unwrap();
            std::thread::sleep(Duration::from_millis(200));
        }
        // Garbage after the last record (a torn write) is ignored.
        let logs = list(&dir.path().join("fjord-log"), "log.").unwrap();
        let mut f = OpenOptions::new()
            .append(true)
            .open(&logs.last().unwrap().1)
            .unwrap();
        f.write_all(&[0, 0, 0, 9, 1, 2]).unwrap();
        let (_log, rec) = TxnLog::open(dir.path(), dir.path(), 3).unwrap();
        assert_eq!(rec.tree.last_zxid, 6);
        for i in 1..=6 {
            assert!(rec.tree.get(&format!("/n{i}")).is_some(), "/n{i}");
        }
    }

    /// Zeros ahead of the records (preallocation) read as the end of the
    /// log, a torn record in front of them as a torn tail; a file started
    /// again under the same name (nothing written in between) starts over.
    #[test]
    fn preallocated_tail_ends_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let append = |zxids: std::ops::RangeInclusive<i64>| {
            let (log, rec) = TxnLog::open(dir.path(), dir.path(), 3).unwrap();
            let last = *zxids.end();
            for i in zxids {
                log.append(&create_txn(i, &format!("/n{i}")));
            }
            rt.block_on(log.durable().wait_for(|z| *z >= last)).unwrap();
            rec.tree.last_zxid
        };
        assert_eq!(append(1..=3), 0);
        let log_dir = dir.path().join("fjord-log");
        let path = list(&log_dir, "log.").unwrap()[0].1.clone();
        let bytes = fs::read(&path).unwrap();
        assert_eq!(bytes.len() as u64, PREALLOC);
        let end: usize = recfile::records(&bytes).map(|r| r.len() + 8).sum();
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&[0, 0, 0, 50, 1, 2, 3, 4, 5], end as u64)
            .unwrap();
        assert_eq!(append(4..=4), 3);
        // Opened and left empty twice: the second open reuses log.5's name.
        assert_eq!(
            TxnLog::open(dir.path(), dir.path(), 3)
                .unwrap()
                .1
                .tree
                .last_zxid,
            4
        );
        assert_eq!(append(5..=5), 4);
        let (_log, rec) = TxnLog::open(dir.path(), dir.path(), 3).unwrap();
        assert_eq!(rec.tree.last_zxid, 5);
        for i in 1..=5 {
            assert!(rec.tree.get(&format!("/n{i}")).is_some(), "/n{i}");
        }
    }
}
