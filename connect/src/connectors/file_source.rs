//! `FileStreamSourceConnector`: each complete line of `file` becomes a string record on
//! `topic`; the source offset is the byte position after the line, so a restart goes
//! on from the last flushed position (lines after it may be sent again: at least once,
//! as Kafka's).

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::records::{SourceRecord, TaskError};

/// Bytes read ahead from the file per poll: enough for a full `batch.size` of 1 KiB lines
/// (small reads made small producer batches, each waited for).
const READ_AHEAD: usize = 8 << 20;
use crate::config::{self, ConfigError, ConfigMap};
use crate::converters::{Data, SchemaAndValue};

#[derive(Debug, Clone)]
pub struct FileSourceConfig {
    pub file: String,
    pub topic: String,
    pub batch_size: usize,
}

impl FileSourceConfig {
    pub fn from_config(m: &ConfigMap) -> Result<Self, ConfigError> {
        let topic = config::required(m, "topic")?.to_string();
        if topic.contains(',') {
            return Err(ConfigError::new("topic", "'topic' in FileStreamSourceConnector configuration requires definition of a single topic"));
        }
        let file = m
            .get("file")
            .map(|s| s.trim().to_string())
            .unwrap_or_default();
        if file.is_empty() {
            // Kafka reads stdin then; a worker with a REST API has no useful stdin.
            return Err(ConfigError::new(
                "file",
                "fjord-connect needs a file to read (stdin is not supported)",
            ));
        }
        Ok(FileSourceConfig {
            file,
            topic,
            batch_size: config::int_at_least(m, "batch.size", 2000, 1)? as usize,
        })
    }
}

pub struct FileSource {
    cfg: FileSourceConfig,
    position: u64,
    partition: Value,
    /// Connect's STRING schema of every value, built once.
    schema: Arc<Value>,
    /// Bytes read ahead; `buf[head..]` are those not yet handed out (at `position`).
    buf: Vec<u8>,
    head: usize,
}

impl FileSource {
    /// Start at the stored offset (if any).
    pub fn new(cfg: FileSourceConfig, stored: &[(Value, Value)]) -> Self {
        let partition = json!({ "filename": cfg.file });
        let position = stored
            .iter()
            .find(|(p, _)| *p == partition)
            .and_then(|(_, o)| o.get("position").and_then(|v| v.as_u64()))
            .unwrap_or(0);
        FileSource {
            cfg,
            position,
            partition,
            schema: Arc::new(json!({"type": "string", "optional": false})),
            buf: Vec::new(),
            head: 0,
        }
    }

    pub fn topic(&self) -> &str {
        &self.cfg.topic
    }

    /// Up to `batch.size` lines; an empty batch after a short wait when there is nothing
    /// new (the file may not exist yet, or not have grown).
    pub async fn poll(&mut self) -> Result<Vec<SourceRecord>, TaskError> {
        let out = self.read_lines()?;
        if out.is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(out)
    }

    fn read_lines(&mut self) -> Result<Vec<SourceRecord>, TaskError> {
        let mut out = Vec::new();
        // Fill the buffer from the file at position + what is buffered, straight into
        // the buffer's spare room (no zeroed chunk, no second copy).
        if self.buf.len() - self.head < READ_AHEAD {
            // Move the unread rest to the front once per read, not once per batch.
            self.buf.drain(..self.head);
            self.head = 0;
            let f = match std::fs::File::open(&self.cfg.file) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
                Err(e) => {
                    return Err(TaskError::Retriable(format!(
                        "cannot open {}: {e}",
                        self.cfg.file
                    )))
                }
            };
            let mut f = f;
            let from = self.position + self.buf.len() as u64;
            if f.seek(SeekFrom::Start(from)).is_ok() {
                self.buf.reserve(READ_AHEAD);
                if let Err(e) = f.take(READ_AHEAD as u64).read_to_end(&mut self.buf) {
                    return Err(TaskError::Retriable(format!(
                        "cannot read {}: {e}",
                        self.cfg.file
                    )));
                }
            }
        }
        let mut start = self.head;
        while out.len() < self.cfg.batch_size {
            let Some(nl) = find_newline(&self.buf[start..]) else {
                break;
            };
            let mut line = &self.buf[start..start + nl];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            start += nl + 1;
            let text = match std::str::from_utf8(line) {
                Ok(s) => s.to_owned(),
                Err(_) => String::from_utf8_lossy(line).into_owned(),
            };
            out.push(SourceRecord {
                // Only the batch's last record carries the source offset (set below):
                // the worker stores it once the whole batch is acknowledged.
                partition: Value::Null,
                offset: Value::Null,
                topic: self.cfg.topic.clone(),
                key: SchemaAndValue::plain(Data::Null),
                value: SchemaAndValue {
                    schema: Some(self.schema.clone()),
                    data: Data::Value(Value::String(text)),
                },
            });
        }
        if let Some(last) = out.last_mut() {
            last.partition = self.partition.clone();
            last.offset = json!({ "position": self.position + (start - self.head) as u64 });
        }
        self.position += (start - self.head) as u64;
        self.head = start;
        Ok(out)
    }
}

/// The index of the first `\n` in `b` (memchr: vectorised; the bytewise search was
/// the source stage's largest own cost).
fn find_newline(b: &[u8]) -> Option<usize> {
    memchr::memchr(b'\n', b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_complete_lines_and_resumes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("in.txt");
        std::fs::write(&path, b"one\r\ntwo\nthr").unwrap();
        let m = crate::config::parse_properties(&format!(
            "topic=t\nfile={}\nbatch.size=10\n",
            path.display()
        ));
        let cfg = FileSourceConfig::from_config(&m).unwrap();
        let mut s = FileSource::new(cfg.clone(), &[]);
        let r = s.poll().await.unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].value.data, Data::Value(json!("one")));
        assert_eq!(
            r[0].offset,
            Value::Null,
            "only the batch's last record has the offset"
        );
        assert_eq!(r[1].offset, json!({"position": 9}));
        let stored = vec![(r[1].partition.clone(), r[1].offset.clone())];
        std::fs::write(&path, b"one\r\ntwo\nthree\n").unwrap();
        let mut again = FileSource::new(cfg, &stored);
        let r = again.poll().await.unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].value.data, Data::Value(json!("three")));
    }

    #[test]
    fn newlines_are_found_in_and_across_chunks() {
        for len in [0, 1, 31, 32, 33, 64, 100] {
            for at in 0..len {
                let mut b = vec![b'x'; len];
                b[at] = b'\n';
                if at + 1 < len {
                    b[len - 1] = b'\n';
                }
                assert_eq!(find_newline(&b), Some(at), "len {len} at {at}");
            }
            assert_eq!(find_newline(&vec![b'x'; len]), None);
        }
    }
}
