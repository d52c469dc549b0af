//! Keys and values written through the Schema Registry (Confluent framing:
//! magic byte, schema id, payload): the schema fetched by id from the
//! registry (`GET /schemas/ids/{id}`, references resolved), parsed by
//! fjord-schema and kept for the process's life (an id never changes its
//! schema), and the payload decoded to JSON shown with its schema id.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use fjord_schema::{codec, framing, Parsed, ResolvedRef, SchemaType};
use serde_json::Value;

use crate::html::enc;
use fjord_http::client::Rest;

/// Schemas by id (a failed fetch is not kept: the registry may come back).
#[derive(Default)]
pub struct Schemas(Mutex<HashMap<i32, Arc<Parsed>>>);

impl Schemas {
    fn get(&self, id: i32) -> Option<Arc<Parsed>> {
        self.0.lock().ok()?.get(&id).cloned()
    }

    /// Fetch and parse every id of `framed` bytes not yet known; the ids
    /// that failed, with why.
    pub async fn load<'a>(
        &self,
        sr: &Rest,
        framed: impl Iterator<Item = &'a [u8]>,
    ) -> HashMap<i32, String> {
        let mut ids: Vec<i32> = framed
            .filter_map(|b| framing::unframe(b).ok().map(|(id, _)| id))
            .filter(|id| self.get(*id).is_none())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        let mut failed = HashMap::new();
        for id in ids {
            match fetch(sr, id).await {
                Ok(p) => {
                    if let Ok(mut m) = self.0.lock() {
                        m.insert(id, Arc::new(p));
                    }
                }
                Err(e) => {
                    failed.insert(id, e);
                }
            }
        }
        failed
    }

    /// `b` decoded to pretty JSON after `[schema id N]`, or why it is not.
    pub fn show(&self, b: Option<&[u8]>, failed: &HashMap<i32, String>) -> String {
        let Some(b) = b else {
            return "null".to_string();
        };
        let (id, rest) = match framing::unframe(b) {
            Ok(x) => x,
            Err(e) => return format!("(not schema-framed: {e}) {}", String::from_utf8_lossy(b)),
        };
        let Some(p) = self.get(id) else {
            let why = failed.get(&id).map_or("not loaded", String::as_str);
            return format!("[schema id {id}] (schema unavailable: {why})");
        };
        match codec::decode(&p, rest) {
            Ok(v) => format!(
                "[schema id {id}, {}]\n{}",
                p.kind().as_str(),
                serde_json::to_string_pretty(&v).unwrap_or_else(|_| v.to_string())
            ),
            Err(e) => format!("[schema id {id}] (does not decode: {e})"),
        }
    }
}

fn text(v: &Value, k: &str) -> String {
    v.get(k).and_then(Value::as_str).unwrap_or("").to_string()
}

async fn fetch(sr: &Rest, id: i32) -> Result<Parsed, String> {
    let v = sr
        .get(&format!("/schemas/ids/{id}"))
        .await
        .map_err(|e| e.to_string())?;
    let kind = match text(&v, "schemaType") {
        k if k.is_empty() => SchemaType::Avro,
        k => SchemaType::parse(&k).ok_or_else(|| format!("unknown schema type {k}"))?,
    };
    let mut refs = Vec::new();
    for r in v
        .get("references")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let (name, subject) = (text(r, "name"), text(r, "subject"));
        let version = r.get("version").and_then(Value::as_i64).unwrap_or(-1);
        let rv = sr
            .get(&format!("/subjects/{}/versions/{version}", enc(&subject)))
            .await
            .map_err(|e| format!("reference {name}: {e}"))?;
        refs.push(ResolvedRef {
            name,
            schema: text(&rv, "schema"),
        });
    }
    fjord_schema::parse(kind, &text(&v, "schema"), &refs).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framed_avro_shows_as_json_with_its_id() {
        let s = Schemas::default();
        let schema = r#"{"type":"record","name":"P","fields":[{"name":"id","type":"int"},{"name":"who","type":"string"}]}"#;
        let p = fjord_schema::parse(SchemaType::Avro, schema, &[]).unwrap();
        let (payload, _) = codec::encode(&p, &serde_json::json!({"id": 7, "who": "ann"})).unwrap();
        s.0.lock().unwrap().insert(42, Arc::new(p));
        let framed = framing::frame(42, None, &payload);
        let shown = s.show(Some(&framed), &HashMap::new());
        assert!(shown.starts_with("[schema id 42, AVRO]\n"), "{shown}");
        assert!(
            shown.contains("\"id\": 7") && shown.contains("\"who\": \"ann\""),
            "{shown}"
        );
        assert!(s
            .show(Some(b"plain"), &HashMap::new())
            .starts_with("(not schema-framed"));
        let other = framing::frame(9, None, &payload);
        let failed = HashMap::from([(9, "HTTP 404".to_string())]);
        assert!(s
            .show(Some(&other), &failed)
            .contains("schema unavailable: HTTP 404"));
        assert_eq!(s.show(None, &failed), "null");
    }
}
