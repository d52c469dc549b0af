//! The Raft log on disk: one append-only file of `LogRecord`s (entries,
//! truncations, purges, votes, the commit point), a record file
//! ([`crate::recfile`]) like the standalone txnlog, with the live entries
//! mirrored in memory for replication reads.
//!
//! Why a file and not RocksDB: the log is written sequentially and read
//! mostly from memory, so a single fdatasync'ed file is the cheapest durable
//! store; one writer thread group-commits everything that queued while the
//! previous fsync ran and only then reports the entries flushed to openraft
//! (which acknowledges them to the leader / counts them toward the quorum).
//! A torn tail after kill -9 is cut off at open. The file is rewritten with
//! only the live records once purged ones dominate it.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fjord_proto::raft as pb;
use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{Entry, LogId, OptionalSend, StorageIOError, Vote};
use parking_lot::Mutex;
use prost::Message;

use super::types::{
    entry_from_pb, entry_to_pb, log_id_from_pb, log_id_to_pb, opt_log_id_to_pb, vote_from_pb,
    vote_to_pb, NodeId, StorageError, TypeConfig,
};
use crate::recfile::{self, Queue};

/// Log file size past which a purge may trigger a rewrite.
const REWRITE_MIN_BYTES: u64 = 16 << 20;

enum Done {
    Flushed(LogFlushed<TypeConfig>),
    Notify(tokio::sync::oneshot::Sender<io::Result<()>>),
}

enum Job {
    /// Append these bytes; `sync` = fsync before reporting.
    Append {
        bytes: Vec<u8>,
        sync: bool,
        done: Option<Done>,
    },
    /// Replace the file with these bytes (compaction).
    Rewrite(Vec<u8>),
}

#[derive(Default)]
struct Inner {
    entries: BTreeMap<u64, pb::Entry>,
    vote: Option<pb::Vote>,
    committed: Option<pb::LogId>,
    purged: Option<pb::LogId>,
    /// Bytes in the file, and records there that no longer matter.
    file_bytes: u64,
    dead_records: u64,
}

/// openraft's log storage (and, cloned, its log reader).
#[derive(Clone)]
pub struct LogStore {
    inner: Arc<Mutex<Inner>>,
    writer: Arc<Queue<Job>>,
}

fn frame(buf: &mut Vec<u8>, kind: pb::log_record::Kind) {
    recfile::put_message(buf, &pb::LogRecord { kind: Some(kind) });
}

fn io_to_storage(e: io::Error) -> StorageError {
    StorageError::IO {
        source: StorageIOError::write_logs(&e),
    }
}

impl LogStore {
    /// Replays `dir/raft.log` (cutting a torn tail) and starts the writer.
    pub fn open(dir: &Path) -> io::Result<LogStore> {
        fs::create_dir_all(dir)?;
        let path = dir.join("raft.log");
        let mut bytes = Vec::new();
        if let Ok(mut f) = File::open(&path) {
            f.read_to_end(&mut bytes)?;
        }
        let mut inner = Inner::default();
        let mut records = recfile::records(&bytes);
        let mut pos = 0usize;
        while let Some(payload) = records.next() {
            let Ok(rec) = pb::LogRecord::decode(payload) else {
                break;
            };
            inner.replay(rec);
            pos = records.offset();
        }
        if let Some(offset) = recfile::damaged_at(&bytes, pos) {
            // Damage in the middle, not a torn tail: cutting there would drop
            // entries this member may have acknowledged to the leader.
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: corrupt record at byte offset {offset} (valid records follow it; not a torn tail): refusing to start",
                    path.display()
                ),
            ));
        }
        if pos < bytes.len() {
            tracing::warn!(path = %path.display(), valid = pos, len = bytes.len(), "cutting a torn tail off the raft log");
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        file.set_len(pos as u64)?;
        file.sync_all()?;
        inner.file_bytes = pos as u64;
        tracing::info!(
            entries = inner.entries.len(),
            first = inner.entries.keys().next().copied().unwrap_or(0),
            last = inner.entries.keys().next_back().copied().unwrap_or(0),
            "raft log recovered"
        );
        let writer = Arc::new(Queue::default());
        {
            let writer = writer.clone();
            let dir = dir.to_path_buf();
            std::thread::Builder::new()
                .name("raft-log".into())
                .spawn(move || writer_loop(writer, dir, file))?;
        }
        Ok(LogStore {
            inner: Arc::new(Mutex::new(inner)),
            writer,
        })
    }

    fn push(&self, job: Job) {
        self.writer.push(job);
    }

    /// The id of the last entry held (appended, possibly not yet flushed):
    /// what a pre-vote compares against a candidate's log.
    pub fn last_log_id(&self) -> Option<LogId<NodeId>> {
        self.inner.lock().last_log_id().as_ref().map(log_id_from_pb)
    }

    /// Queues one record behind everything queued before it, counting its
    /// bytes in the file; `done` hears when it is written (and, if `sync`,
    /// on disk).
    fn write_record(
        &self,
        inner: &mut Inner,
        kind: pb::log_record::Kind,
        sync: bool,
        done: Option<Done>,
    ) {
        let mut bytes = Vec::new();
        frame(&mut bytes, kind);
        inner.file_bytes += bytes.len() as u64;
        self.push(Job::Append { bytes, sync, done });
    }

    /// `write_record` with an fsync, and a receiver for its outcome.
    fn write_record_synced(
        &self,
        inner: &mut Inner,
        kind: pb::log_record::Kind,
    ) -> tokio::sync::oneshot::Receiver<io::Result<()>> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.write_record(inner, kind, true, Some(Done::Notify(tx)));
        rx
    }
}

impl Inner {
    fn replay(&mut self, rec: pb::LogRecord) {
        use pb::log_record::Kind;
        match rec.kind {
            Some(Kind::Entry(e)) => {
                let idx = e.log_id.as_ref().map_or(0, |l| l.index);
                self.entries.insert(idx, e);
            }
            Some(Kind::TruncateFrom(i)) => {
                self.dead_records += self.entries.split_off(&i).len() as u64;
            }
            Some(Kind::Purged(l)) => {
                let keep = self.entries.split_off(&(l.index + 1));
                self.dead_records += self.entries.len() as u64;
                self.entries = keep;
                self.purged = Some(l);
            }
            Some(Kind::Vote(v)) => self.vote = Some(v),
            Some(Kind::Committed(c)) => self.committed = Some(c),
            None => {}
        }
    }

    fn last_log_id(&self) -> Option<pb::LogId> {
        self.entries
            .values()
            .next_back()
            .and_then(|e| e.log_id)
            .or(self.purged)
    }

    /// Every live record, for a compacted file.
    fn image(&self) -> Vec<u8> {
        use pb::log_record::Kind;
        let mut buf = Vec::new();
        for kind in [
            self.vote.map(Kind::Vote),
            self.purged.map(Kind::Purged),
            self.committed.map(Kind::Committed),
        ]
        .into_iter()
        .flatten()
        {
            frame(&mut buf, kind);
        }
        for e in self.entries.values() {
            frame(&mut buf, Kind::Entry(e.clone()));
        }
        buf
    }
}

fn writer_loop(w: Arc<Queue<Job>>, dir: PathBuf, mut file: File) {
    loop {
        let jobs = w.take_all();
        let mut result: io::Result<()> = Ok(());
        let mut sync = false;
        let mut dones = Vec::new();
        for job in jobs {
            match job {
                Job::Append {
                    bytes,
                    sync: s,
                    done,
                } => {
                    sync |= s;
                    if result.is_ok() {
                        result = file.write_all(&bytes);
                    }
                    dones.extend(done);
                }
                Job::Rewrite(bytes) => {
                    if result.is_ok() {
                        result = rewrite(&dir, &bytes).map(|f| file = f);
                    }
                }
            }
        }
        if sync && result.is_ok() {
            let started = std::time::Instant::now();
            result = file.sync_data();
            crate::timings::TIMINGS.fsync(started.elapsed().as_secs_f64() * 1000.0);
        }
        if let Err(e) = &result {
            tracing::error!(error = %e, "raft log write failed");
        }
        for d in dones {
            let r = match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(io::Error::new(e.kind(), e.to_string())),
            };
            match d {
                Done::Flushed(cb) => cb.log_io_completed(r),
                Done::Notify(tx) => {
                    let _ = tx.send(r);
                }
            }
        }
    }
}

/// Writes a compacted log beside the old one and renames it over it.
fn rewrite(dir: &Path, bytes: &[u8]) -> io::Result<File> {
    let tmp = dir.join("raft.log.tmp");
    let path = dir.join("raft.log");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, &path)?;
    if let Ok(d) = File::open(dir) {
        d.sync_all()?;
    }
    OpenOptions::new().append(true).open(&path)
}

fn range_start(r: &impl RangeBounds<u64>) -> Bound<u64> {
    r.start_bound().cloned()
}

fn range_end(r: &impl RangeBounds<u64>) -> Bound<u64> {
    r.end_bound().cloned()
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError> {
        let inner = self.inner.lock();
        Ok(inner
            .entries
            .range((range_start(&range), range_end(&range)))
            .map(|(_, e)| entry_from_pb(e))
            .collect())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let inner = self.inner.lock();
        Ok(LogState {
            last_purged_log_id: inner.purged.as_ref().map(log_id_from_pb),
            last_log_id: inner.last_log_id().as_ref().map(log_id_from_pb),
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        let v = vote_to_pb(vote);
        let rx = {
            let mut inner = self.inner.lock();
            inner.vote = Some(v);
            inner.dead_records += 1;
            self.write_record_synced(&mut inner, pb::log_record::Kind::Vote(v))
        };
        match rx.await {
            Ok(r) => r.map_err(|e| StorageError::IO {
                source: StorageIOError::write_vote(&e),
            }),
            Err(_) => Err(io_to_storage(io::Error::other("raft log writer stopped"))),
        }
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        let inner = self.inner.lock();
        Ok(inner.vote.as_ref().map(|v| vote_from_pb(&Some(*v))))
    }

    /// Written without its own fsync: it rides along with the next append;
    /// losing it only means re-applying from the snapshot after a restart.
    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError> {
        let Some(c) = opt_log_id_to_pb(&committed) else {
            return Ok(());
        };
        let mut inner = self.inner.lock();
        inner.committed = Some(c);
        inner.dead_records += 1;
        self.write_record(&mut inner, pb::log_record::Kind::Committed(c), false, None);
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError> {
        let inner = self.inner.lock();
        Ok(inner.committed.as_ref().map(log_id_from_pb))
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut inner = self.inner.lock();
        let mut bytes = Vec::new();
        for e in entries {
            let pe = entry_to_pb(&e);
            frame(&mut bytes, pb::log_record::Kind::Entry(pe.clone()));
            inner.entries.insert(e.log_id.index, pe);
        }
        inner.file_bytes += bytes.len() as u64;
        self.push(Job::Append {
            bytes,
            sync: true,
            done: Some(Done::Flushed(callback)),
        });
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        tracing::info!(
            from = log_id.index,
            "truncating the raft log (a new leader overwrote it)"
        );
        let rx = {
            let mut inner = self.inner.lock();
            let gone = inner.entries.split_off(&log_id.index);
            inner.dead_records += gone.len() as u64 + 1;
            let truncate = pb::log_record::Kind::TruncateFrom(log_id.index);
            self.write_record_synced(&mut inner, truncate)
        };
        match rx.await {
            Ok(r) => r.map_err(io_to_storage),
            Err(_) => Err(io_to_storage(io::Error::other("raft log writer stopped"))),
        }
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        let mut inner = self.inner.lock();
        let keep = inner.entries.split_off(&(log_id.index + 1));
        inner.dead_records += inner.entries.len() as u64 + 1;
        inner.entries = keep;
        inner.purged = Some(log_id_to_pb(&log_id));
        let purged = pb::log_record::Kind::Purged(log_id_to_pb(&log_id));
        self.write_record(&mut inner, purged, false, None);
        if inner.file_bytes > REWRITE_MIN_BYTES
            && inner.dead_records > 2 * inner.entries.len() as u64
        {
            let image = inner.image();
            tracing::info!(
                old = inner.file_bytes,
                new = image.len(),
                "compacting the raft log"
            );
            inner.file_bytes = image.len() as u64;
            inner.dead_records = 0;
            self.push(Job::Rewrite(image));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openraft::{EntryPayload, LeaderId};

    fn entry(term: u64, index: u64) -> Entry<TypeConfig> {
        Entry {
            log_id: LogId::new(LeaderId::new(term, 1), index),
            payload: EntryPayload::Normal(pb::CommandBatch {
                commands: vec![pb::Command {
                    origin: 1,
                    conn: index,
                    ..Default::default()
                }],
            }),
        }
    }

    #[tokio::test]
    async fn survives_reopen_truncate_purge_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = LogStore::open(dir.path()).unwrap();
            s.save_vote(&Vote::new(3, 2)).await.unwrap();
            let (tx, rx) = tokio::sync::oneshot::channel();
            s.push(Job::Append {
                bytes: Vec::new(),
                sync: true,
                done: Some(Done::Notify(tx)),
            });
            {
                let mut inner = s.inner.lock();
                let mut bytes = Vec::new();
                for i in 1..=10 {
                    let pe = entry_to_pb(&entry(3, i));
                    frame(&mut bytes, pb::log_record::Kind::Entry(pe.clone()));
                    inner.entries.insert(i, pe);
                }
                s.push(Job::Append {
                    bytes,
                    sync: true,
                    done: None,
                });
            }
            rx.await.unwrap().unwrap();
            s.truncate(LogId::new(LeaderId::new(3, 1), 8))
                .await
                .unwrap();
            s.purge(LogId::new(LeaderId::new(3, 1), 2)).await.unwrap();
            s.save_vote(&Vote::new(4, 1)).await.unwrap();
        }
        // A torn record at the end is cut off, not fatal.
        let path = dir.path().join("raft.log");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[0, 0, 0, 50, 1, 2, 3]).unwrap();
        drop(f);
        let mut s = LogStore::open(dir.path()).unwrap();
        let st = s.get_log_state().await.unwrap();
        assert_eq!(st.last_purged_log_id.map(|l| l.index), Some(2));
        assert_eq!(st.last_log_id.map(|l| l.index), Some(7));
        assert_eq!(s.read_vote().await.unwrap(), Some(Vote::new(4, 1)));
        let got = s.try_get_log_entries(3..100).await.unwrap();
        assert_eq!(
            got.iter().map(|e| e.log_id.index).collect::<Vec<_>>(),
            vec![3, 4, 5, 6, 7]
        );
        // Appends after the cut land where replay will find them.
        s.save_vote(&Vote::new(5, 1)).await.unwrap();
        drop(s);
        let mut s = LogStore::open(dir.path()).unwrap();
        assert_eq!(s.read_vote().await.unwrap(), Some(Vote::new(5, 1)));
    }

    #[tokio::test]
    async fn damage_in_the_middle_refuses_to_open_naming_file_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut s = LogStore::open(dir.path()).unwrap();
            for t in 1..=5 {
                s.save_vote(&Vote::new(t, 1)).await.unwrap();
            }
        }
        let path = dir.path().join("raft.log");
        let mut bytes = std::fs::read(&path).unwrap();
        // Flip the last payload byte of the second record.
        let first = 8 + u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
        let len = u32::from_be_bytes([
            bytes[first],
            bytes[first + 1],
            bytes[first + 2],
            bytes[first + 3],
        ]) as usize;
        bytes[first + 8 + len - 1] ^= 0x40;
        std::fs::write(&path, &bytes).unwrap();
        let err = LogStore::open(dir.path()).err().expect("must refuse");
        let msg = err.to_string();
        assert!(
            msg.contains("raft.log") && msg.contains(&format!("offset {first}")),
            "{msg}"
        );
        // The file is left as it was, for the operator.
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }
}
