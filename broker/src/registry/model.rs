//! The registry's records as they sit in znodes (docs/architecture.md →
//! Schema Registry), and the cache they are parsed into.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A reference from one schema to a version of another subject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaRef {
    pub name: String,
    pub subject: String,
    pub version: i32,
}

/// `ids/<id>`: one schema, shared by every subject version that registered it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SchemaRec {
    #[serde(rename = "schemaType")]
    pub schema_type: String,
    pub schema: String,
    #[serde(default)]
    pub references: Vec<SchemaRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    #[serde(rename = "ruleSet", default, skip_serializing_if = "Option::is_none")]
    pub rule_set: Option<Value>,
    /// The content hash (`hashes/<hash>` points back here).
    pub hash: String,
}

/// `subjects/<subject>/<version>`: which schema a version is, and its soft-delete flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionRec {
    pub id: i32,
    #[serde(default)]
    pub deleted: bool,
}

/// `config` and `config/<subject>`: a compatibility level (kept as sent, plus the level).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigRec {
    #[serde(rename = "compatibilityLevel")]
    pub compatibility_level: String,
}

/// `mode` and `mode/<subject>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeRec {
    pub mode: String,
}

/// A znode's version and last-modified zxid: conditional writes start from
/// the version; the zxid keeps a late re-read from overwriting newer data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NodeMeta {
    pub version: i32,
    pub mzxid: i64,
}

/// Everything a broker knows about the registry, parsed.
#[derive(Debug, Default)]
pub struct State {
    /// Every node seen, by path relative to the root (for conditional writes).
    pub nodes: HashMap<String, NodeMeta>,
    pub schemas: HashMap<i32, Arc<SchemaRec>>,
    pub hashes: HashMap<String, i32>,
    /// Subject → version → record. A subject exists while it has a node.
    pub subjects: BTreeMap<String, BTreeMap<i32, VersionRec>>,
    pub counter: i32,
    pub global_config: Option<String>,
    pub subject_config: HashMap<String, String>,
    pub global_mode: Option<String>,
    pub subject_mode: HashMap<String, String>,
}

impl State {
    /// Live (not soft-deleted) versions of a subject, ascending.
    pub fn live_versions(&self, subject: &str) -> Vec<(i32, VersionRec)> {
        self.subjects
            .get(subject)
            .map(|vs| {
                vs.iter()
                    .filter(|(_, r)| !r.deleted)
                    .map(|(v, r)| (*v, *r))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether a subject has any version (live, or soft-deleted when `deleted`).
    pub fn subject_visible(&self, subject: &str, deleted: bool) -> bool {
        self.subjects
            .get(subject)
            .is_some_and(|vs| vs.values().any(|r| deleted || !r.deleted))
    }

    /// The effective compatibility level of a subject.
    pub fn level_of(&self, subject: &str) -> String {
        self.subject_config
            .get(subject)
            .or(self.global_config.as_ref())
            .cloned()
            .unwrap_or_else(|| "BACKWARD".to_string())
    }

    /// The effective mode of a subject.
    pub fn mode_of(&self, subject: Option<&str>) -> String {
        subject
            .and_then(|s| self.subject_mode.get(s))
            .or(self.global_mode.as_ref())
            .cloned()
            .unwrap_or_else(|| "READWRITE".to_string())
    }

    /// Subjects and versions (live ones) whose schema references `subject`/`version`.
    pub fn referenced_by(&self, subject: &str, version: i32) -> Vec<i32> {
        let mut ids = Vec::new();
        for vs in self.subjects.values() {
            for r in vs.values().filter(|r| !r.deleted) {
                if let Some(s) = self.schemas.get(&r.id) {
                    if s.references
                        .iter()
                        .any(|x| x.subject == subject && x.version == version)
                        && !ids.contains(&r.id)
                    {
                        ids.push(r.id);
                    }
                }
            }
        }
        ids.sort_unstable();
        ids
    }
}

/// Subject names become single znode names: every byte outside
/// `[A-Za-z0-9_-]` is written `%XX`, so `/`, `.` and `..` cannot escape.
pub fn encode_name(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b == b'_' || b == b'-' {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if out.is_empty() {
        out.push_str("%00empty");
    }
    out
}

/// The inverse of [`encode_name`] (None for a name it could not have made).
pub fn decode_name(s: &str) -> Option<String> {
    if s == "%00empty" {
        return Some(String::new());
    }
    percent_decode(s)
}

/// Decode `%XX` escapes (and nothing else) into UTF-8.
pub fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in ["topic-value", "a/b", "..", ".", "ü x", "", "%41"] {
            let e = encode_name(s);
            assert!(!e.contains('/') && e != "." && e != "..", "{e}");
            assert_eq!(decode_name(&e).as_deref(), Some(s));
        }
        assert_eq!(encode_name("orders-value"), "orders-value");
    }
}
