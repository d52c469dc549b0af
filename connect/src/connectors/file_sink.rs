//! `FileStreamSinkConnector`: each record's value as one line of `file` (strings as
//! they are, structs as JSON, bytes as UTF-8). Offsets are committed after the file is
//! flushed to disk, so every committed record is in the file.

use std::io::Write;

use super::records::{SinkRecord, TaskError};
use crate::config::{ConfigError, ConfigMap};
use crate::converters::Data;

#[derive(Debug, Clone)]
pub struct FileSinkConfig {
    pub file: String,
}

impl FileSinkConfig {
    pub fn from_config(m: &ConfigMap) -> Result<Self, ConfigError> {
        let file = m
            .get("file")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        if file.is_empty() {
            return Err(ConfigError::new(
                "file",
                "fjord-connect needs a file to write (stdout is not supported)",
            ));
        }
        Ok(FileSinkConfig { file })
    }
}

pub struct FileSink {
    cfg: FileSinkConfig,
    out: Option<std::io::BufWriter<std::fs::File>>,
}

impl FileSink {
    pub fn new(cfg: FileSinkConfig) -> Self {
        FileSink { cfg, out: None }
    }

    fn writer(&mut self) -> Result<&mut std::io::BufWriter<std::fs::File>, TaskError> {
        if self.out.is_none() {
            let f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.cfg.file)
                .map_err(|e| TaskError::Fatal(format!("org.apache.kafka.connect.errors.ConnectException: Couldn't find or create file '{}' for FileStreamSinkTask: {e}", self.cfg.file)))?;
            self.out = Some(std::io::BufWriter::with_capacity(1 << 20, f));
        }
        self.out
            .as_mut()
            .ok_or_else(|| TaskError::Fatal("file sink writer missing".into()))
    }

    pub fn put(&mut self, records: &[SinkRecord]) -> Result<(), TaskError> {
        if records.is_empty() {
            return Ok(());
        }
        let file = self.cfg.file.clone();
        let w = self.writer()?;
        for r in records {
            // Schemaless JSON text (never handed to this sink today) as its value.
            let parsed;
            let data = match &r.value.data {
                Data::Json(_) => {
                    parsed = Data::Value(r.value.to_json());
                    &parsed
                }
                d => d,
            };
            let res = match data {
                Data::Null => w.write_all(b"null\n"),
                Data::Bytes(b) => w.write_all(b).and_then(|_| w.write_all(b"\n")),
                Data::Value(serde_json::Value::String(s)) => {
                    w.write_all(s.as_bytes()).and_then(|_| w.write_all(b"\n"))
                }
                Data::Value(v) => w
                    .write_all(v.to_string().as_bytes())
                    .and_then(|_| w.write_all(b"\n")),
                Data::Json(text) => w.write_all(text).and_then(|_| w.write_all(b"\n")),
            };
            res.map_err(|e| TaskError::Retriable(format!("write to {file} failed: {e}")))?;
        }
        Ok(())
    }

    /// Flush and sync: after this, everything `put` is on disk.
    pub fn flush(&mut self) -> Result<(), TaskError> {
        if let Some(w) = self.out.as_mut() {
            w.flush().map_err(|e| {
                TaskError::Retriable(format!("flush of {} failed: {e}", self.cfg.file))
            })?;
            w.get_ref().sync_data().map_err(|e| {
                TaskError::Retriable(format!("sync of {} failed: {e}", self.cfg.file))
            })?;
        }
        Ok(())
    }
}
