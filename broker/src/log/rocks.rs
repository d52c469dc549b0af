//! The RocksDB `PartitionStore`: one DB per broker with the key layout of
//! `keys` (column family `log` for batches, `meta` for the registry, log
//! starts and epochs), tuned for large sequential batches; the HW
//! checkpoint beside it in `replication-offset-checkpoint`.

use std::path::Path;

use bytes::Bytes;
use parking_lot::{MappedRwLockReadGuard, RwLock, RwLockReadGuard};
use rocksdb::{ColumnFamilyDescriptor, Options, WriteBatch, WriteOptions, DB};

use super::error::LogError;
use super::keys::*;
use super::partition_store::{PartitionStore, Registered, Visit};
use super::txn::AbortedTxn;

/// Partition logs in a RocksDB database.
pub struct RocksStore {
    /// None only while `reopen` swaps it (after a failed write RocksDB
    /// does not clear by itself, e.g. EIO).
    db: RwLock<Option<DB>>,
    dir: std::path::PathBuf,
    /// `<dir>/replication-offset-checkpoint` and its content (partition id →
    /// HW): a small file rewritten with fsync + rename, as Kafka does, so a
    /// checkpoint never forces an fsync of the whole RocksDB WAL.
    hw_file: std::path::PathBuf,
    hws: parking_lot::Mutex<std::collections::HashMap<u32, i64>>,
}

impl RocksStore {
    /// Open (or create) the database under `<dir>/rocksdb`.
    pub fn open(dir: &Path) -> Result<RocksStore, LogError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| LogError::Meta(format!("{}: {e}", dir.display())))?;
        let db = open_db(dir, false)?;
        let hw_file = dir.join(HW_CHECKPOINT_FILE);
        let hws = parking_lot::Mutex::new(read_hw_file(&hw_file));
        Ok(RocksStore {
            db: RwLock::new(Some(db)),
            dir: dir.to_path_buf(),
            hw_file,
            hws,
        })
    }

    /// The open database (an error while `reopen` runs).
    fn db(&self) -> Result<MappedRwLockReadGuard<'_, DB>, LogError> {
        RwLockReadGuard::try_map(self.db.read(), |d| d.as_ref())
            .map_err(|_| LogError::Storage("the log store is reopening"))
    }
}

/// Open (or create) the database under `<dir>/rocksdb`; `read_only`: for
/// reads only, writing nothing (the fallback of a failed `reopen`).
fn open_db(dir: &Path, read_only: bool) -> Result<DB, LogError> {
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts.set_max_background_jobs(2);
    opts.set_bytes_per_sync(8 << 20);
    opts.set_max_total_wal_size(512 << 20);
    // Fetches read table files through a mapping: an uncompressed block is
    // then used in place, with no read(2) copy into a buffer first.
    opts.set_allow_mmap_reads(true);
    // A WAL record that fails its checksum in the middle stops the open
    // (naming the file) instead of RocksDB's default point-in-time recovery,
    // which silently drops it and everything after it: acknowledged
    // records. A record cut short at a WAL's end (a torn write) is still cut.
    opts.set_wal_recovery_mode(rocksdb::DBRecoveryMode::TolerateCorruptedTailRecords);
    let mut log_opts = Options::default();
    log_opts.set_write_buffer_size(64 << 20);
    log_opts.set_max_write_buffer_number(4);
    log_opts.set_target_file_size_base(128 << 20);
    log_opts.set_compression_type(rocksdb::DBCompressionType::None);
    // Blob files (BlobDB) were measured: consume from offset 0 dropped from
    // ~720k to ~390k msgs/s (one blob read per batch), so batches stay inline.
    log_opts.set_enable_blob_files(false);
    let meta_opts = Options::default();
    let cfs = vec![
        ColumnFamilyDescriptor::new(CF_LOG, log_opts),
        ColumnFamilyDescriptor::new(CF_META, meta_opts),
    ];
    let path = dir.join("rocksdb");
    let opened = if read_only {
        DB::open_cf_descriptors_read_only(&opts, &path, cfs, false)
    } else {
        DB::open_cf_descriptors(&opts, &path, cfs)
    };
    opened.map_err(|source| LogError::Open {
        path: path.display().to_string(),
        hint: match source.kind() {
            rocksdb::ErrorKind::Corruption => {
                " (damage in the middle of a file, not a torn tail: the LOG file there names \
                 the file and offset; nothing was changed: restore the log dir or let the \
                 broker re-replicate it from an empty one)"
            }
            _ => "",
        },
        source,
    })
}

fn cf<'a>(db: &'a DB, name: &str) -> Result<&'a rocksdb::ColumnFamily, LogError> {
    db.cf_handle(name)
        .ok_or_else(|| LogError::Meta(format!("missing column family {name}")))
}

impl PartitionStore for RocksStore {
    fn registered(&self) -> Result<Vec<Registered>, LogError> {
        let db = self.db()?;
        let mut it = db.raw_iterator_cf(cf(&db, CF_META)?);
        it.seek(b"P");
        let mut found = Vec::new();
        while it.valid() {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            if k.first() != Some(&b'P') {
                break;
            }
            let body = &k[1..];
            let sep = body.len().checked_sub(5).filter(|&i| body[i] == 0);
            let (Some(sep), Some(id)) = (sep, be_u32(v)) else {
                return Err(LogError::Meta("bad partition registry key".into()));
            };
            let topic = String::from_utf8_lossy(&body[..sep]).into_owned();
            let index =
                i32::from_be_bytes([body[sep + 1], body[sep + 2], body[sep + 3], body[sep + 4]]);
            found.push(Registered { topic, index, id });
            it.next();
        }
        Ok(found)
    }

    fn log_start(&self, id: u32) -> Result<Option<i64>, LogError> {
        let db = self.db()?;
        Ok(db
            .get_cf(cf(&db, CF_META)?, start_key(id))?
            .map(|v| be_i64(&v).unwrap_or(0)))
    }

    fn epochs(&self, id: u32) -> Result<Vec<(i32, i64)>, LogError> {
        let db = self.db()?;
        let mut eit = db.raw_iterator_cf(cf(&db, CF_META)?);
        let prefix = epoch_key(id, i32::MIN);
        eit.seek(&prefix[..5]);
        let mut out = Vec::new();
        while eit.valid() {
            let (Some(k), Some(v)) = (eit.key(), eit.value()) else {
                break;
            };
            if k.len() != 9 || k[..5] != prefix[..5] {
                break;
            }
            let e = i32::from_be_bytes([k[5], k[6], k[7], k[8]]);
            out.push((e, be_i64(v).unwrap_or(0)));
            eit.next();
        }
        Ok(out)
    }

    fn scan(&self, id: u32, from: i64, to: i64, visit: Visit<'_>) -> Result<(), LogError> {
        let db = self.db()?;
        let mut ro = rocksdb::ReadOptions::default();
        // A scan streams batches to a consumer once: no block cache churn, and
        // no block checksums on the way out. Kafka does not verify on reads
        // either: every batch carries its own CRC-32C, which clients check.
        ro.fill_cache(false);
        ro.set_verify_checksums(false);
        ro.set_iterate_upper_bound(if to == i64::MAX {
            log_key(id + 1, 0).to_vec()
        } else {
            log_key(id, to).to_vec()
        });
        let mut it = db.raw_iterator_cf_opt(cf(&db, CF_LOG)?, ro);
        it.seek(log_key(id, from));
        while it.valid() {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            if k.len() != 12 || be_u32(k) != Some(id) || !visit(v)? {
                break;
            }
            it.next();
        }
        it.status()?;
        Ok(())
    }

    fn register(&self, topic: &str, index: i32, id: u32) -> Result<(), LogError> {
        let db = self.db()?;
        db.put_cf(cf(&db, CF_META)?, part_key(topic, index), id.to_be_bytes())?;
        Ok(())
    }

    fn hw_checkpoint(&self, id: u32) -> Result<Option<i64>, LogError> {
        Ok(self.hws.lock().get(&id).copied())
    }

    fn put_hw_checkpoints(&self, hws: &[(u32, i64)]) -> Result<(), LogError> {
        let mut all = self.hws.lock();
        all.extend(hws.iter().copied());
        write_hw_file(&self.hw_file, &all)
            .map_err(|e| LogError::Meta(format!("{}: {e}", self.hw_file.display())))
    }

    fn put_epoch(&self, id: u32, epoch: i32, offset: i64) -> Result<(), LogError> {
        let db = self.db()?;
        db.put_cf(
            cf(&db, CF_META)?,
            epoch_key(id, epoch),
            offset.to_be_bytes(),
        )?;
        Ok(())
    }

    fn remove(&self, topic: &str, index: i32, id: u32) -> Result<(), LogError> {
        let db = self.db()?;
        // Ids are never reused; the file forgets it at the next checkpoint.
        self.hws.lock().remove(&id);
        let meta = cf(&db, CF_META)?;
        let mut wb = WriteBatch::default();
        wb.delete_range_cf(cf(&db, CF_LOG)?, log_key(id, 0), log_key(id + 1, 0));
        wb.delete_cf(meta, part_key(topic, index));
        wb.delete_cf(meta, start_key(id));
        // Epoch keys sort by their big-endian bytes: bound by the id prefix, not by epoch value.
        wb.delete_range_cf(meta, epoch_key(id, 0), epoch_key(id + 1, 0));
        db.write(wb)?;
        Ok(())
    }

    fn truncate(&self, id: u32, end: i64, epochs: &[i32]) -> Result<(), LogError> {
        let db = self.db()?;
        let meta = cf(&db, CF_META)?;
        let mut wb = WriteBatch::default();
        wb.delete_range_cf(cf(&db, CF_LOG)?, log_key(id, end), log_key(id + 1, 0));
        for e in epochs {
            wb.delete_cf(meta, epoch_key(id, *e));
        }
        db.write(wb)?;
        Ok(())
    }

    fn reset(&self, id: u32, start: i64) -> Result<(), LogError> {
        let db = self.db()?;
        let mut wb = WriteBatch::default();
        wb.put_cf(cf(&db, CF_META)?, start_key(id), start.to_be_bytes());
        wb.delete_range_cf(cf(&db, CF_LOG)?, log_key(id, 0), log_key(id + 1, 0));
        db.write(wb)?;
        Ok(())
    }

    fn advance_start(&self, id: u32, start: i64) -> Result<(), LogError> {
        let db = self.db()?;
        let mut wb = WriteBatch::default();
        wb.put_cf(cf(&db, CF_META)?, start_key(id), start.to_be_bytes());
        wb.delete_range_cf(cf(&db, CF_LOG)?, log_key(id, 0), log_key(id, start));
        db.write(wb)?;
        Ok(())
    }

    fn append(&self, batches: &[(u32, i64, &Bytes)], sync: bool) -> Result<(), String> {
        let db = self.db().map_err(|e| e.to_string())?;
        if batches.is_empty() {
            return Ok(());
        }
        let cf = cf(&db, CF_LOG).map_err(|e| e.to_string())?;
        let mut wb = WriteBatch::default();
        for (id, base, data) in batches {
            wb.put_cf(cf, log_key(*id, *base), data);
        }
        let mut wo = WriteOptions::default();
        wo.set_sync(sync);
        db.write_opt(wb, &wo).map_err(|e| e.to_string())
    }

    fn rewrite(&self, id: u32, puts: &[(i64, Bytes)], deletes: &[i64]) -> Result<(), LogError> {
        let db = self.db()?;
        let cf = cf(&db, CF_LOG)?;
        let mut wb = WriteBatch::default();
        for (base, data) in puts {
            wb.put_cf(cf, log_key(id, *base), data);
        }
        for base in deletes {
            wb.delete_cf(cf, log_key(id, *base));
        }
        db.write(wb)?;
        Ok(())
    }

    fn compact(&self, id: u32) {
        let Ok(db) = self.db() else {
            return;
        };
        if let Ok(cf) = cf(&db, CF_LOG) {
            db.compact_range_cf(cf, Some(log_key(id, 0)), Some(log_key(id, i64::MAX)));
        }
    }

    fn flush(&self) -> Result<(), LogError> {
        let db = self.db()?;
        db.flush_wal(true)?;
        Ok(())
    }

    fn reclaim(&self) {
        let Ok(db) = self.db() else {
            return;
        };
        // A WAL file goes once every column family's memtable holding part
        // of it is flushed; a flush drops the keys its range deletes cover.
        for name in [CF_LOG, CF_META] {
            if let Ok(cf) = cf(&db, name) {
                if let Err(e) = db.flush_cf(cf) {
                    tracing::warn!(error = %e, "flushing to reclaim space failed");
                }
            }
        }
    }

    fn reopen(&self) -> Result<(), LogError> {
        // Close first (RocksDB's LOCK), then open: the WAL is replayed from
        // what is on disk, a torn tail cut (point-in-time recovery).
        // If the disk still fails, open it read-only so fetches go on; a
        // later reopen tries again.
        let mut g = self.db.write();
        drop(g.take());
        match open_db(&self.dir, false) {
            Ok(db) => {
                *g = Some(db);
                tracing::warn!(dir = %self.dir.display(), "log store reopened");
                Ok(())
            }
            Err(e) => {
                *g = open_db(&self.dir, true).ok();
                Err(e)
            }
        }
    }

    fn probe(&self) -> Result<(), LogError> {
        let db = self.db()?;
        // RocksDB refuses every write while a background error (ENOSPC on
        // the WAL, ...) stands; its SstFileManager clears a no-space error
        // by itself once there is room (polled every 5 s).
        let mut wo = WriteOptions::default();
        wo.set_sync(true);
        db.put_cf_opt(cf(&db, CF_META)?, PROBE_KEY, [0u8], &wo)?;
        Ok(())
    }

    fn aborted(&self, id: u32) -> Result<Vec<AbortedTxn>, LogError> {
        let db = self.db()?;
        let mut it = db.raw_iterator_cf(cf(&db, CF_META)?);
        let lo = aborted_key(id, 0);
        it.seek(lo);
        let mut out = Vec::new();
        while it.valid() {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            if k.len() != 13 || k[..5] != lo[..5] {
                break;
            }
            let last = be_i64(&k[5..]).unwrap_or(0);
            let (Some(pid), Some(first)) = (be_i64(v), v.get(8..).and_then(be_i64)) else {
                return Err(LogError::Meta("bad aborted-transaction entry".into()));
            };
            out.push(AbortedTxn {
                producer_id: pid,
                first_offset: first,
                last_offset: last,
            });
            it.next();
        }
        it.status()?;
        Ok(out)
    }

    fn put_aborted(&self, id: u32, a: &AbortedTxn) -> Result<(), LogError> {
        let db = self.db()?;
        let mut v = [0u8; 16];
        v[..8].copy_from_slice(&a.producer_id.to_be_bytes());
        v[8..].copy_from_slice(&a.first_offset.to_be_bytes());
        db.put_cf(cf(&db, CF_META)?, aborted_key(id, a.last_offset), v)?;
        Ok(())
    }

    fn drop_aborted(&self, id: u32, from: i64, to: i64) -> Result<(), LogError> {
        let db = self.db()?;
        // The id's range ends where the next id's begins (keys sort by bytes).
        let hi = if to == i64::MAX {
            aborted_key(id + 1, 0)
        } else {
            aborted_key(id, to)
        };
        db.delete_range_cf(cf(&db, CF_META)?, aborted_key(id, from), hi)?;
        Ok(())
    }
}

/// The key `probe` writes in `meta` (outside every other key's prefix).
const PROBE_KEY: &[u8] = b"~probe";

/// The HW checkpoint file's name in the log directory (Kafka's).
const HW_CHECKPOINT_FILE: &str = "replication-offset-checkpoint";

/// Parse the checkpoint: a version line `0`, a count, then `<id> <hw>` lines.
/// Anything unreadable counts as no checkpoint (HW = log start).
fn read_hw_file(path: &Path) -> std::collections::HashMap<u32, i64> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Default::default();
    };
    let mut lines = text.lines();
    if lines.next() != Some("0") {
        return Default::default();
    }
    lines
        .skip(1)
        .filter_map(|l| {
            let (id, hw) = l.split_once(' ')?;
            Some((id.parse().ok()?, hw.parse().ok()?))
        })
        .collect()
}

/// Write the whole checkpoint to a temporary file, fsync it, rename it over
/// the old one and fsync the directory: it is the old or the new, never torn.
fn write_hw_file(path: &Path, hws: &std::collections::HashMap<u32, i64>) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut text = format!("0\n{}\n", hws.len());
    for (id, hw) in hws {
        text.push_str(&format!("{id} {hw}\n"));
    }
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The WAL files under `<dir>/rocksdb`, oldest first.
    fn wals(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut v: Vec<_> = std::fs::read_dir(dir.join("rocksdb"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "log"))
            .collect();
        v.sort();
        v
    }

    fn fill(dir: &Path) -> Vec<Bytes> {
        let db = RocksStore::open(dir).unwrap();
        db.register("t", 0, 1).unwrap();
        let batches: Vec<Bytes> = (0..64u8).map(|i| Bytes::from(vec![i; 1000])).collect();
        for (i, b) in batches.iter().enumerate() {
            db.append(&[(1, i as i64, b)], true).unwrap();
        }
        batches
    }

    fn count(db: &RocksStore) -> usize {
        let mut n = 0;
        db.scan(1, 0, i64::MAX, &mut |_| {
            n += 1;
            Ok(true)
        })
        .unwrap();
        n
    }

    #[test]
    fn a_damaged_wal_record_refuses_to_open_a_torn_wal_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        fill(dir.path());
        let wal = wals(dir.path()).pop().expect("a WAL file");
        let good = std::fs::read(&wal).unwrap();
        assert!(good.len() > 40_000, "{}", good.len());
        // A flipped byte in the middle: refused, the file named.
        let mut bad = good.clone();
        bad[good.len() / 2] ^= 0x5a;
        std::fs::write(&wal, &bad).unwrap();
        let err = RocksStore::open(dir.path())
            .err()
            .expect("opened a damaged WAL")
            .to_string();
        assert!(
            err.contains("Corruption") && err.contains("rocksdb"),
            "{err}"
        );
        assert!(err.contains("not a torn tail"), "{err}");
        // A torn tail (the last record cut short): opens, the rest is there.
        std::fs::write(&wal, &good[..good.len() - 500]).unwrap();
        let db = RocksStore::open(dir.path()).unwrap();
        assert_eq!(count(&db), 63);
    }
}
