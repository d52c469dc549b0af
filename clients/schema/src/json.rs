//! JSON Schema: validated (and later used to validate documents) by the
//! `jsonschema` crate, built without its HTTP resolver — references resolve
//! only to registered schemas; and Confluent's compatibility rules, where the
//! content model matters: adding a property to an open object is a change
//! (old data may hold anything under that name), removing one from a closed
//! object is too.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::{canonical_json, ResolvedRef, SchemaError};

/// A parsed JSON Schema with its compiled validator.
#[derive(Clone)]
pub struct JsonSchema {
    pub value: Value,
    pub canonical: String,
    validator: Arc<jsonschema::Validator>,
}

impl std::fmt::Debug for JsonSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JsonSchema")
            .field("canonical", &self.canonical)
            .finish()
    }
}

impl JsonSchema {
    /// Parse and compile `text` (drafts 4, 6, 7, 2019-09, 2020-12 by `$schema`).
    pub fn parse(text: &str, refs: &[ResolvedRef]) -> Result<JsonSchema, SchemaError> {
        let value: Value = serde_json::from_str(text)
            .map_err(|e| SchemaError::Invalid(format!("not JSON: {e}")))?;
        if !value.is_object() && !value.is_boolean() {
            return Err(SchemaError::Invalid(
                "a JSON Schema is an object or a boolean".into(),
            ));
        }
        let mut opts = jsonschema::options();
        for r in refs {
            let v: Value = serde_json::from_str(&r.schema)
                .map_err(|e| SchemaError::Invalid(format!("reference {}: {e}", r.name)))?;
            let res = jsonschema::Resource::from_contents(v)
                .into_resource()
                .map_err(|e| SchemaError::Invalid(format!("reference {}: {e}", r.name)))?;
            opts = opts.with_resource(r.name.clone(), res);
        }
        let validator = opts
            .build(&value)
            .map_err(|e| SchemaError::Invalid(e.to_string()))?;
        Ok(JsonSchema {
            canonical: canonical_json(&value),
            value,
            validator: Arc::new(validator),
        })
    }

    /// Every reason `doc` is not valid under this schema (empty when valid).
    pub fn validate(&self, doc: &Value) -> Vec<String> {
        self.validator
            .iter_errors(doc)
            .map(|e| e.to_string())
            .collect()
    }

    /// The reasons `self` (reader) cannot accept what `writer` allowed.
    pub fn can_read(&self, writer: &JsonSchema) -> Vec<String> {
        let mut out = Vec::new();
        let cx = Cx {
            r_root: &self.value,
            w_root: &writer.value,
        };
        cx.check(&self.value, &writer.value, "#", &mut out, 0);
        out
    }
}

/// `Resource::from_contents` returns a Result in some jsonschema releases and
/// the resource itself in others.
trait IntoResource {
    fn into_resource(self) -> Result<jsonschema::Resource, String>;
}

impl IntoResource for jsonschema::Resource {
    fn into_resource(self) -> Result<jsonschema::Resource, String> {
        Ok(self)
    }
}

impl<E: std::fmt::Display> IntoResource for Result<jsonschema::Resource, E> {
    fn into_resource(self) -> Result<jsonschema::Resource, String> {
        self.map_err(|e| e.to_string())
    }
}

struct Cx<'a> {
    r_root: &'a Value,
    w_root: &'a Value,
}

fn msg(kind: &str, path: &str, description: &str) -> String {
    format!("{{errorType:\"{kind}\", description:\"{description}\", path:\"{path}\"}}")
}

/// Follow a local `$ref` (`#/definitions/x`, `#/$defs/x`) within `root`.
fn deref<'a>(root: &'a Value, v: &'a Value) -> &'a Value {
    let mut cur = v;
    for _ in 0..16 {
        let Some(r) = cur.get("$ref").and_then(Value::as_str) else {
            return cur;
        };
        let Some(ptr) = r.strip_prefix('#') else {
            return cur;
        };
        match root.pointer(ptr) {
            Some(t) => cur = t,
            None => return cur,
        }
    }
    cur
}

fn types(v: &Value) -> Option<Vec<String>> {
    match v.get("type")? {
        Value::String(s) => Some(vec![s.clone()]),
        Value::Array(a) => Some(
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect(),
        ),
        _ => None,
    }
}

fn num(v: &Value, k: &str) -> Option<f64> {
    v.get(k).and_then(Value::as_f64)
}

/// Whether an object schema admits properties it does not list (absent or
/// `true` additionalProperties: open; `false`: closed; a schema: partly open).
fn additional(v: &Value) -> Option<&Value> {
    match v.get("additionalProperties") {
        None | Some(Value::Bool(true)) => None,
        Some(x) => Some(x),
    }
}

fn props(v: &Value) -> Map<String, Value> {
    v.get("properties")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

fn required(v: &Value) -> Vec<String> {
    v.get("required")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

impl Cx<'_> {
    fn check(&self, r: &Value, w: &Value, path: &str, out: &mut Vec<String>, depth: u32) {
        if depth > 64 {
            return;
        }
        let r = deref(self.r_root, r);
        let w = deref(self.w_root, w);
        if r == w {
            return;
        }
        // Anything reads from nothing; true/{} reads anything.
        if w == &Value::Bool(false) || r == &Value::Bool(true) {
            return;
        }
        if r.as_object().is_some_and(|m| m.is_empty()) {
            return;
        }
        if r == &Value::Bool(false) {
            out.push(msg("SCHEMA_CLOSED", path, "the new schema accepts nothing"));
            return;
        }
        let empty = Value::Object(Map::new());
        let w = if w == &Value::Bool(true) { &empty } else { w };
        // type
        if let Some(rt) = types(r) {
            match types(w) {
                None => out.push(msg(
                    "TYPE_NARROWED",
                    path,
                    &format!("type restricted to {rt:?}"),
                )),
                Some(wt) => {
                    for t in &wt {
                        let ok =
                            rt.contains(t) || (t == "integer" && rt.iter().any(|x| x == "number"));
                        if !ok {
                            out.push(msg(
                                "TYPE_CHANGED",
                                path,
                                &format!("type {t} is no longer accepted (now {rt:?})"),
                            ));
                        }
                    }
                }
            }
        }
        // enum / const
        if let Some(re) = r.get("enum").and_then(Value::as_array) {
            match w.get("enum").and_then(Value::as_array) {
                None => out.push(msg("ENUM_ARRAY_NARROWED", path, "enum added")),
                Some(we) => {
                    if we.iter().any(|x| !re.contains(x)) {
                        out.push(msg("ENUM_ARRAY_NARROWED", path, "enum values removed"));
                    }
                }
            }
        }
        if let Some(rc) = r.get("const") {
            if w.get("const") != Some(rc) {
                out.push(msg("CONST_CHANGED", path, "const added or changed"));
            }
        }
        // numeric and length bounds: the reader may not be narrower.
        for (k, upper) in [
            ("maximum", true),
            ("exclusiveMaximum", true),
            ("maxLength", true),
            ("maxItems", true),
            ("maxProperties", true),
            ("minimum", false),
            ("exclusiveMinimum", false),
            ("minLength", false),
            ("minItems", false),
            ("minProperties", false),
        ] {
            if let Some(rv) = num(r, k) {
                let narrowed = match num(w, k) {
                    None => true,
                    Some(wv) => {
                        if upper {
                            rv < wv
                        } else {
                            rv > wv
                        }
                    }
                };
                if narrowed {
                    let kind = if upper {
                        format!("{}_DECREASED", snake(k))
                    } else {
                        format!("{}_INCREASED", snake(k))
                    };
                    out.push(msg(&kind, path, &format!("{k} narrowed")));
                }
            }
        }
        for k in ["pattern", "multipleOf", "format"] {
            if let Some(rv) = r.get(k) {
                if w.get(k) != Some(rv) {
                    out.push(msg(
                        &format!("{}_ADDED_OR_CHANGED", snake(k)),
                        path,
                        &format!("{k} added or changed"),
                    ));
                }
            }
        }
        if r.get("uniqueItems") == Some(&Value::Bool(true))
            && w.get("uniqueItems") != Some(&Value::Bool(true))
        {
            out.push(msg("UNIQUE_ITEMS_ADDED", path, "uniqueItems added"));
        }
        if let Some(rn) = r.get("not") {
            if w.get("not") != Some(rn) {
                out.push(msg("NOT_TYPE_EXTENDED", path, "not added or changed"));
            }
        }
        self.objects(r, w, path, out, depth);
        // arrays
        let (ri, wi) = (r.get("items"), w.get("items"));
        match (ri, wi) {
            (Some(ri), Some(wi)) if ri.is_object() || ri.is_boolean() => {
                self.check(ri, wi, &format!("{path}/items"), out, depth + 1)
            }
            (Some(ri), None) if ri.is_object() || ri.is_boolean() => self.check(
                ri,
                &Value::Bool(true),
                &format!("{path}/items"),
                out,
                depth + 1,
            ),
            _ => {}
        }
        // combinators
        for k in ["oneOf", "anyOf", "allOf"] {
            let ra = r.get(k).and_then(Value::as_array);
            let wa = w.get(k).and_then(Value::as_array);
            match (ra, wa) {
                (None, None) => {}
                (Some(ra), Some(wa)) => {
                    if k == "allOf" {
                        if ra.len() != wa.len() {
                            out.push(msg("COMBINED_TYPE_CHANGED", path, "allOf changed"));
                        } else {
                            for (i, (a, b)) in ra.iter().zip(wa).enumerate() {
                                self.check(a, b, &format!("{path}/{k}/{i}"), out, depth + 1);
                            }
                        }
                    } else {
                        // every writer branch must be readable by some reader branch
                        for (i, b) in wa.iter().enumerate() {
                            let ok = ra.iter().any(|a| {
                                let mut tmp = Vec::new();
                                self.check(a, b, path, &mut tmp, depth + 1);
                                tmp.is_empty()
                            });
                            if !ok {
                                out.push(msg(
                                    "COMBINED_TYPE_SUBSCHEMAS_CHANGED",
                                    &format!("{path}/{k}/{i}"),
                                    "a subschema is no longer accepted",
                                ));
                            }
                        }
                    }
                }
                (Some(ra), None) => {
                    // writer (one schema) must fit some reader branch
                    if k == "allOf" {
                        for (i, a) in ra.iter().enumerate() {
                            self.check(a, w, &format!("{path}/{k}/{i}"), out, depth + 1);
                        }
                    } else {
                        let mut stripped = w.clone();
                        if let Some(m) = stripped.as_object_mut() {
                            m.remove(k);
                        }
                        let ok = ra.iter().any(|a| {
                            let mut tmp = Vec::new();
                            self.check(a, &stripped, path, &mut tmp, depth + 1);
                            tmp.is_empty()
                        });
                        if !ok {
                            out.push(msg("SUM_TYPE_NARROWED", path, &format!("{k} added")));
                        }
                    }
                }
                (None, Some(wa)) => {
                    if k != "allOf" {
                        for (i, b) in wa.iter().enumerate() {
                            let mut tmp = Vec::new();
                            let mut stripped = r.clone();
                            if let Some(m) = stripped.as_object_mut() {
                                m.remove(k);
                            }
                            self.check(&stripped, b, path, &mut tmp, depth + 1);
                            if !tmp.is_empty() {
                                out.push(msg(
                                    "COMBINED_TYPE_CHANGED",
                                    &format!("{path}/{k}/{i}"),
                                    &format!("{k} removed"),
                                ));
                            }
                        }
                    }
                }
            }
        }
    }

    fn objects(&self, r: &Value, w: &Value, path: &str, out: &mut Vec<String>, depth: u32) {
        let (rp, wp) = (props(r), props(w));
        let (ra, wa) = (additional(r), additional(w));
        let r_has_obj =
            r.get("properties").is_some() || ra.is_some() || r.get("required").is_some();
        if !r_has_obj && w.get("properties").is_none() {
            return;
        }
        // Writer's properties: the reader must accept each.
        for (name, ws) in &wp {
            let p = format!("{path}/properties/{name}");
            match rp.get(name) {
                Some(rs) => self.check(rs, ws, &p, out, depth + 1),
                None => match ra {
                    None => {}
                    Some(Value::Bool(false)) => out.push(msg(
                        "PROPERTY_REMOVED_FROM_CLOSED_CONTENT_MODEL",
                        &p,
                        &format!("property '{name}' removed from a closed content model"),
                    )),
                    Some(schema) => {
                        let mut tmp = Vec::new();
                        self.check(schema, ws, &p, &mut tmp, depth + 1);
                        if !tmp.is_empty() {
                            out.push(msg(
                                "PROPERTY_REMOVED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
                                &p,
                                &format!("property '{name}' removed and additionalProperties does not cover it"),
                            ));
                        }
                    }
                },
            }
        }
        // Reader's new properties: old data may carry anything the writer allowed there.
        for (name, rs) in &rp {
            if wp.contains_key(name) {
                continue;
            }
            let p = format!("{path}/properties/{name}");
            match wa {
                Some(Value::Bool(false)) => {}
                None => {
                    let trivially_open =
                        rs == &Value::Bool(true) || rs.as_object().is_some_and(|m| m.is_empty());
                    if !trivially_open {
                        out.push(msg(
                            "PROPERTY_ADDED_TO_OPEN_CONTENT_MODEL",
                            &p,
                            &format!("property '{name}' added to an open content model"),
                        ));
                    }
                }
                Some(schema) => {
                    let mut tmp = Vec::new();
                    self.check(rs, schema, &p, &mut tmp, depth + 1);
                    if !tmp.is_empty() {
                        out.push(msg(
                            "PROPERTY_ADDED_NOT_COVERED_BY_PARTIALLY_OPEN_CONTENT_MODEL",
                            &p,
                            &format!("property '{name}' added and does not accept what additionalProperties allowed"),
                        ));
                    }
                }
            }
        }
        // additionalProperties itself.
        match (ra, wa) {
            (Some(Value::Bool(false)), None) => out.push(msg(
                "ADDITIONAL_PROPERTIES_REMOVED",
                path,
                "the content model was closed",
            )),
            (Some(rs), Some(ws)) if rs != ws && ws != &Value::Bool(false) => self.check(
                rs,
                ws,
                &format!("{path}/additionalProperties"),
                out,
                depth + 1,
            ),
            (Some(rs), None) if rs != &Value::Bool(false) => self.check(
                rs,
                &Value::Bool(true),
                &format!("{path}/additionalProperties"),
                out,
                depth + 1,
            ),
            _ => {}
        }
        // required: the reader may not require more than the writer did.
        let wr = required(w);
        for name in required(r) {
            if !wr.contains(&name) {
                let has_default = rp.get(&name).is_some_and(|s| s.get("default").is_some());
                if !has_default {
                    out.push(msg(
                        "REQUIRED_PROPERTY_ADDED_TO_UNOPEN_CONTENT_MODEL",
                        &format!("{path}/required"),
                        &format!("property '{name}' became required"),
                    ));
                }
            }
        }
    }
}

fn snake(k: &str) -> String {
    let mut s = String::new();
    for c in k.chars() {
        if c.is_ascii_uppercase() {
            s.push('_');
        }
        s.push(c.to_ascii_uppercase());
    }
    s
}
