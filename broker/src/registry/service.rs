//! What each Schema Registry request means (Confluent's semantics), on top of
//! the [`Store`]: reads answer from this broker's state (re-reading a
//! subject or an id from the coordinator once before answering "not found",
//! since another broker may have written it a moment ago); writes are planned
//! from the state and committed as one conditional multi, re-planned after a
//! conflict. So a schema gets one id cluster-wide however many brokers
//! register it at once, and a compatibility check always ran against the
//! versions the write was committed over.

use std::sync::Arc;
use std::time::Duration;

use fjord_schema::{Level, Parsed, ResolvedRef, SchemaType};
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::ApiError;
use super::model::{ConfigRec, ModeRec, SchemaRec, SchemaRef, State, VersionRec};
use super::store::{config_path, mode_path, subject_path, version_path, CommitError, Op, Store};

/// How many times a write is re-planned after conflicts before giving up.
const MAX_ATTEMPTS: u32 = 64;
/// A schema node must fit in one coordinator frame with room to spare.
pub const MAX_SCHEMA_BYTES: usize = 900 * 1024;

/// A schema as clients send it (register, lookup, compatibility).
#[derive(Debug, Default, Deserialize)]
pub struct SchemaRequest {
    #[serde(default)]
    pub schema: Option<String>,
    #[serde(rename = "schemaType", default)]
    pub schema_type: Option<String>,
    #[serde(default)]
    pub references: Option<Vec<SchemaRef>>,
    #[serde(default)]
    pub metadata: Option<Value>,
    #[serde(rename = "ruleSet", default)]
    pub rule_set: Option<Value>,
    #[serde(default)]
    pub id: Option<i32>,
    #[serde(default)]
    pub version: Option<i32>,
}

/// A version as a path names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionSel {
    Latest,
    Num(i32),
}

impl VersionSel {
    pub fn parse(s: &str) -> Result<VersionSel, ApiError> {
        if s == "latest" || s == "-1" {
            return Ok(VersionSel::Latest);
        }
        match s.parse::<i32>() {
            Ok(v) if v >= 1 => Ok(VersionSel::Num(v)),
            _ => Err(ApiError::invalid_version(s)),
        }
    }
}

/// A request schema, validated and hashed.
struct Candidate {
    kind: SchemaType,
    parsed: Parsed,
    rec: SchemaRec,
}

/// The registry's request semantics.
pub struct Registry {
    pub store: Arc<Store>,
}

fn is_true(v: Option<&str>) -> bool {
    v.is_some_and(|s| s.eq_ignore_ascii_case("true"))
}

impl Registry {
    pub fn new(store: Arc<Store>) -> Registry {
        Registry { store }
    }

    /// Fail with 50002 unless the state is loaded (bounded wait).
    pub async fn ready(&self) -> Result<(), ApiError> {
        if self.store.wait_ready(Duration::from_secs(10)).await {
            Ok(())
        } else {
            Err(ApiError::timeout("the registry state is still loading"))
        }
    }

    // ----- parsing -----

    /// Resolve references (transitively) to the texts they name.
    fn resolve_refs(state: &State, refs: &[SchemaRef]) -> Result<Vec<ResolvedRef>, ApiError> {
        let mut out: Vec<ResolvedRef> = Vec::new();
        let mut stack: Vec<SchemaRef> = refs.iter().rev().cloned().collect();
        let mut guard = 0;
        while let Some(r) = stack.pop() {
            guard += 1;
            if guard > 1000 {
                return Err(ApiError::invalid_schema("Invalid schema: reference cycle"));
            }
            if out.iter().any(|x| x.name == r.name) {
                continue;
            }
            let rec = state
                .subjects
                .get(&r.subject)
                .and_then(|vs| vs.get(&r.version))
                .and_then(|v| state.schemas.get(&v.id))
                .ok_or_else(|| {
                    ApiError::invalid_schema(format!(
                        "Invalid schema: reference {} (subject {}, version {}) not found",
                        r.name, r.subject, r.version
                    ))
                })?;
            // Its own references first (imports of the import).
            for inner in rec.references.iter().rev() {
                stack.push(inner.clone());
            }
            out.push(ResolvedRef {
                name: r.name.clone(),
                schema: rec.schema.clone(),
            });
        }
        // Dependencies before dependents is not required by the parsers, but
        // Avro's list parser resolves in any order.
        Ok(out)
    }

    fn parse_rec(state: &State, rec: &SchemaRec) -> Result<Parsed, ApiError> {
        let kind = SchemaType::parse(&rec.schema_type)
            .ok_or_else(|| ApiError::invalid_schema("unknown stored schema type"))?;
        let refs = Self::resolve_refs(state, &rec.references)?;
        fjord_schema::parse(kind, &rec.schema, &refs).map_err(ApiError::invalid_schema)
    }

    fn candidate(&self, req: &SchemaRequest) -> Result<Candidate, ApiError> {
        let text = req
            .schema
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| ApiError::invalid_schema("Empty schema"))?;
        if text.len() > MAX_SCHEMA_BYTES {
            return Err(ApiError::invalid_schema(format!(
                "Invalid schema: {} bytes is more than the {} a schema may have",
                text.len(),
                MAX_SCHEMA_BYTES
            )));
        }
        let kind = match req.schema_type.as_deref() {
            None | Some("") => SchemaType::Avro,
            Some(t) => SchemaType::parse(t)
                .ok_or_else(|| ApiError::unprocessable(format!("Invalid schema type {t}")))?,
        };
        let refs = req.references.clone().unwrap_or_default();
        let resolved = Self::resolve_refs(&self.store.state(), &refs)?;
        let parsed = fjord_schema::parse(kind, text, &resolved).map_err(|e| {
            ApiError::invalid_schema(format!(
                "Invalid schema {} with refs {:?}: {e}",
                truncate(text),
                refs.iter().map(|r| &r.name).collect::<Vec<_>>()
            ))
        })?;
        let canonical = parsed.canonical();
        let refs_json = serde_json::to_value(&refs).unwrap_or(Value::Null);
        let extra = [
            fjord_schema::canonical_json(&refs_json),
            req.metadata
                .as_ref()
                .map(fjord_schema::canonical_json)
                .unwrap_or_default(),
            req.rule_set
                .as_ref()
                .map(fjord_schema::canonical_json)
                .unwrap_or_default(),
        ];
        let hash = fjord_schema::content_hash(
            kind,
            &canonical,
            &[extra[0].as_str(), extra[1].as_str(), extra[2].as_str()],
        );
        Ok(Candidate {
            kind,
            parsed,
            rec: SchemaRec {
                schema_type: kind.as_str().to_string(),
                schema: canonical,
                references: refs,
                metadata: req.metadata.clone(),
                rule_set: req.rule_set.clone(),
                hash,
            },
        })
    }

    /// Compatibility reasons of `new` against `versions` of `subject` at `level`.
    fn compat_against(
        &self,
        level: Level,
        new: &Parsed,
        versions: &[(i32, VersionRec)],
    ) -> Result<Vec<String>, ApiError> {
        let previous: Vec<(i32, Parsed)> = {
            let st = self.store.state();
            let mut out = Vec::with_capacity(versions.len());
            for (v, r) in versions {
                let Some(rec) = st.schemas.get(&r.id) else {
                    continue;
                };
                match Self::parse_rec(&st, rec) {
                    Ok(p) => out.push((*v, p)),
                    Err(e) => {
                        tracing::warn!(version = v, error = %e.message, "stored schema does not parse; skipped in the compatibility check")
                    }
                }
            }
            out
        };
        Ok(fjord_schema::check(level, new, &previous))
    }

    // ----- reads -----

    /// `GET /schemas/types`
    pub fn types(&self) -> Value {
        json!(["JSON", "PROTOBUF", "AVRO"])
    }

    async fn schema_by_id(&self, id: i32) -> Result<Arc<SchemaRec>, ApiError> {
        if let Some(r) = self.store.state().schemas.get(&id).cloned() {
            return Ok(r);
        }
        self.store.refresh(&[format!("ids/{id}")]).await;
        self.store
            .state()
            .schemas
            .get(&id)
            .cloned()
            .ok_or_else(|| ApiError::schema_not_found(id))
    }

    /// The schema text in the asked format (`serialized`: a Protobuf
    /// schema as a base64 FileDescriptorProto, what confluent-kafka reads).
    fn formatted(&self, rec: &SchemaRec, format: Option<&str>) -> String {
        if rec.schema_type == "PROTOBUF" && format == Some("serialized") {
            let st = self.store.state();
            if let Ok(Parsed::Protobuf(p)) = Self::parse_rec(&st, rec) {
                return p.serialized_b64();
            }
        }
        rec.schema.clone()
    }

    fn schema_body(
        &self,
        rec: &SchemaRec,
        format: Option<&str>,
        into: &mut serde_json::Map<String, Value>,
    ) {
        if rec.schema_type != "AVRO" {
            into.insert("schemaType".into(), json!(rec.schema_type));
        }
        into.insert("schema".into(), json!(self.formatted(rec, format)));
        if !rec.references.is_empty() {
            into.insert("references".into(), json!(rec.references));
        }
        if let Some(m) = &rec.metadata {
            into.insert("metadata".into(), m.clone());
        }
        if let Some(r) = &rec.rule_set {
            into.insert("ruleSet".into(), r.clone());
        }
    }

    /// `GET /schemas/ids/{id}`
    pub async fn get_schema(&self, id: i32, format: Option<&str>) -> Result<Value, ApiError> {
        let rec = self.schema_by_id(id).await?;
        let mut m = serde_json::Map::new();
        self.schema_body(&rec, format, &mut m);
        Ok(Value::Object(m))
    }

    /// `GET /schemas/ids/{id}/schema` and `.../versions/{v}/schema`: the schema itself.
    pub fn raw(rec: &SchemaRec) -> String {
        if rec.schema_type == "PROTOBUF" {
            json!(rec.schema).to_string()
        } else {
            rec.schema.clone()
        }
    }

    pub async fn get_schema_raw(&self, id: i32) -> Result<String, ApiError> {
        Ok(Self::raw(&*self.schema_by_id(id).await?))
    }

    /// `GET /schemas/ids/{id}/subjects` and `/versions`.
    pub async fn id_usage(
        &self,
        id: i32,
        deleted: bool,
        versions: bool,
    ) -> Result<Value, ApiError> {
        self.schema_by_id(id).await?;
        let st = self.store.state();
        let mut out = Vec::new();
        for (s, vs) in &st.subjects {
            for (v, r) in vs {
                if r.id == id && (deleted || !r.deleted) {
                    if versions {
                        out.push(json!({"subject": s, "version": v}));
                    } else if !out.contains(&json!(s)) {
                        out.push(json!(s));
                    }
                }
            }
        }
        Ok(Value::Array(out))
    }

    /// `GET /schemas`
    pub fn list_schemas(&self, prefix: &str, deleted: bool, latest_only: bool) -> Value {
        let st = self.store.state();
        let mut out = Vec::new();
        for (s, vs) in st.subjects.range(prefix.to_string()..) {
            if !s.starts_with(prefix) {
                break;
            }
            let mut picked: Vec<(&i32, &VersionRec)> =
                vs.iter().filter(|(_, r)| deleted || !r.deleted).collect();
            if latest_only {
                picked = picked.into_iter().last().into_iter().collect();
            }
            for (v, r) in picked {
                if let Some(rec) = st.schemas.get(&r.id) {
                    let mut m = serde_json::Map::new();
                    m.insert("subject".into(), json!(s));
                    m.insert("version".into(), json!(v));
                    m.insert("id".into(), json!(r.id));
                    self.schema_body(rec, None, &mut m);
                    out.push(Value::Object(m));
                }
            }
        }
        Value::Array(out)
    }

    /// `GET /subjects`
    pub fn list_subjects(&self, prefix: &str, deleted: bool, deleted_only: bool) -> Value {
        let st = self.store.state();
        let out: Vec<&String> = st
            .subjects
            .iter()
            .filter(|(s, _)| s.starts_with(prefix))
            .filter(|(_, vs)| {
                let live = vs.values().any(|r| !r.deleted);
                let dead = vs.values().any(|r| r.deleted);
                if deleted_only {
                    dead && !live
                } else {
                    live || (deleted && dead)
                }
            })
            .map(|(s, _)| s)
            .collect();
        json!(out)
    }

    /// Make sure this broker has seen the subject (re-read once if not).
    async fn known_subject(&self, subject: &str, deleted: bool) -> Result<(), ApiError> {
        if self.store.state().subject_visible(subject, deleted) {
            return Ok(());
        }
        self.store.refresh_subject(subject).await;
        if self.store.state().subject_visible(subject, deleted) {
            Ok(())
        } else {
            Err(ApiError::subject_not_found(subject))
        }
    }

    /// `GET /subjects/{s}/versions`
    pub async fn versions(&self, subject: &str, deleted: bool) -> Result<Value, ApiError> {
        self.known_subject(subject, deleted).await?;
        let st = self.store.state();
        let vs: Vec<i32> = st
            .subjects
            .get(subject)
            .map(|vs| {
                vs.iter()
                    .filter(|(_, r)| deleted || !r.deleted)
                    .map(|(v, _)| *v)
                    .collect()
            })
            .unwrap_or_default();
        Ok(json!(vs))
    }

    /// The version a selector names, with its record.
    async fn pick(
        &self,
        subject: &str,
        sel: VersionSel,
        deleted: bool,
    ) -> Result<(i32, VersionRec, Arc<SchemaRec>), ApiError> {
        self.known_subject(subject, deleted).await?;
        let found = {
            let st = self.store.state();
            let vs = st.subjects.get(subject);
            match sel {
                VersionSel::Latest => vs.and_then(|vs| {
                    vs.iter()
                        .rev()
                        .find(|(_, r)| deleted || !r.deleted)
                        .map(|(v, r)| (*v, *r))
                }),
                VersionSel::Num(n) => vs
                    .and_then(|vs| vs.get(&n))
                    .filter(|r| deleted || !r.deleted)
                    .map(|r| (n, *r)),
            }
        };
        let Some((v, r)) = found else {
            return Err(match sel {
                VersionSel::Num(n) => ApiError::version_not_found(n),
                VersionSel::Latest => ApiError::subject_not_found(subject),
            });
        };
        let rec = self.schema_by_id(r.id).await?;
        Ok((v, r, rec))
    }

    /// `GET /subjects/{s}/versions/{v}`
    pub async fn get_version(
        &self,
        subject: &str,
        sel: VersionSel,
        deleted: bool,
        format: Option<&str>,
    ) -> Result<Value, ApiError> {
        let (v, r, rec) = self.pick(subject, sel, deleted).await?;
        let mut m = serde_json::Map::new();
        m.insert("subject".into(), json!(subject));
        m.insert("version".into(), json!(v));
        m.insert("id".into(), json!(r.id));
        self.schema_body(&rec, format, &mut m);
        if r.deleted {
            m.insert("deleted".into(), json!(true));
        }
        Ok(Value::Object(m))
    }

    /// `GET /subjects/{s}/versions/{v}/schema`
    pub async fn get_version_raw(
        &self,
        subject: &str,
        sel: VersionSel,
        deleted: bool,
    ) -> Result<String, ApiError> {
        let (_, _, rec) = self.pick(subject, sel, deleted).await?;
        Ok(Self::raw(&rec))
    }

    /// `GET /subjects/{s}/versions/{v}/referencedby`
    pub async fn referenced_by(&self, subject: &str, sel: VersionSel) -> Result<Value, ApiError> {
        let (v, _, _) = self.pick(subject, sel, true).await?;
        Ok(json!(self.store.state().referenced_by(subject, v)))
    }

    /// `POST /subjects/{s}`: is this schema registered under the subject?
    pub async fn lookup(
        &self,
        subject: &str,
        req: &SchemaRequest,
        deleted: bool,
        format: Option<&str>,
    ) -> Result<Value, ApiError> {
        let cand = self.candidate(req)?;
        let find = |st: &State| {
            st.subjects.get(subject).and_then(|vs| {
                vs.iter()
                    .filter(|(_, r)| deleted || !r.deleted)
                    .find(|(_, r)| {
                        st.schemas
                            .get(&r.id)
                            .is_some_and(|s| s.hash == cand.rec.hash)
                    })
                    .map(|(v, r)| (*v, *r))
            })
        };
        let mut hit = find(&self.store.state());
        if hit.is_none() {
            self.store.refresh_subject(subject).await;
            self.store
                .refresh(&[format!("hashes/{}", cand.rec.hash)])
                .await;
            let known = self.store.state().hashes.get(&cand.rec.hash).copied();
            if let Some(id) = known {
                self.store.refresh(&[format!("ids/{id}")]).await;
            }
            hit = find(&self.store.state());
        }
        let Some((v, r)) = hit else {
            return Err(if self.store.state().subject_visible(subject, deleted) {
                ApiError::schema_not_found("not found")
            } else {
                ApiError::subject_not_found(subject)
            });
        };
        let rec = self.schema_by_id(r.id).await?;
        let mut m = serde_json::Map::new();
        m.insert("subject".into(), json!(subject));
        m.insert("id".into(), json!(r.id));
        m.insert("version".into(), json!(v));
        self.schema_body(&rec, format, &mut m);
        Ok(Value::Object(m))
    }

    // ----- compatibility -----

    /// `POST /compatibility/subjects/{s}/versions[/{v}]`
    pub async fn test_compat(
        &self,
        subject: &str,
        sel: Option<VersionSel>,
        req: &SchemaRequest,
        verbose: bool,
    ) -> Result<Value, ApiError> {
        let cand = self.candidate(req)?;
        let level_s = self.store.state().level_of(subject);
        let level = Level::parse(&level_s).unwrap_or(Level::Backward);
        let versions: Vec<(i32, VersionRec)> = match sel {
            Some(sel) => {
                let (v, r, _) = self.pick(subject, sel, false).await?;
                vec![(v, r)]
            }
            None => {
                self.store.refresh_subject(subject).await;
                self.store.state().live_versions(subject)
            }
        };
        let _ = cand.kind;
        let msgs = self.compat_against(level, &cand.parsed, &versions)?;
        let mut m = serde_json::Map::new();
        m.insert("is_compatible".into(), json!(msgs.is_empty()));
        if verbose {
            m.insert("messages".into(), json!(msgs));
        }
        Ok(Value::Object(m))
    }

    // ----- writes -----

    fn check_writable(st: &State, subject: Option<&str>) -> Result<String, ApiError> {
        let mode = st.mode_of(subject);
        if mode == "READONLY" || mode == "READONLY_OVERRIDE" {
            return Err(ApiError::not_permitted(match subject {
                Some(s) => format!("Subject {s} is in read-only mode"),
                None => "The registry is in read-only mode".to_string(),
            }));
        }
        Ok(mode)
    }

    /// Conflict → re-read the planned-from nodes, back off a little, re-plan.
    async fn after_conflict(&self, attempt: u32, paths: &[String], subject: Option<&str>) {
        if let Some(s) = subject {
            self.store.refresh_subject(s).await;
        }
        self.store.refresh(paths).await;
        let jitter = rand::random::<u64>() % (2 + u64::from(attempt.min(10)) * 3);
        tokio::time::sleep(Duration::from_millis(jitter)).await;
    }

    /// `POST /subjects/{s}/versions`: the schema's id under the subject,
    /// registering it (new version, new id only if the content is new).
    pub async fn register(&self, subject: &str, req: &SchemaRequest) -> Result<Value, ApiError> {
        let cand = self.candidate(req)?;
        let hash = cand.rec.hash.clone();
        let rec_bytes = serde_json::to_vec(&cand.rec).map_err(ApiError::store)?;
        for attempt in 0..MAX_ATTEMPTS {
            // Plan from the current state.
            let plan = {
                let st = self.store.state();
                let mode = Self::check_writable(&st, Some(subject))?;
                let import = mode == "IMPORT";
                if req.id.is_some() && !import {
                    return Err(ApiError::not_permitted(
                        "Overwrite new schema is not permitted: a schema id can only be given in IMPORT mode",
                    ));
                }
                let versions = st.subjects.get(subject);
                let known = st.hashes.get(&hash).copied();
                // Already registered (live) under this subject: its id, no write.
                // The watch-fed state may hold a version and the hash before
                // the schema itself (`ids/N`): either match counts, or a
                // racing registration would add the same schema again.
                if let Some((v, r)) = versions.and_then(|vs| {
                    vs.iter().find(|(_, r)| {
                        !r.deleted
                            && (known == Some(r.id)
                                || st.schemas.get(&r.id).is_some_and(|s| s.hash == hash))
                    })
                }) {
                    if req.id.is_none_or(|id| id == r.id) {
                        return Ok(json!({"id": r.id, "version": v}));
                    }
                }
                let live = st.live_versions(subject);
                let level = Level::parse(&st.level_of(subject)).unwrap_or(Level::Backward);
                let max_version = versions
                    .and_then(|vs| vs.keys().next_back().copied())
                    .unwrap_or(0);
                let version = match (import, req.version) {
                    (true, Some(v)) => {
                        if versions.is_some_and(|vs| vs.contains_key(&v)) {
                            return Err(ApiError::not_permitted(format!(
                                "Version {v} already exists under subject {subject}"
                            )));
                        }
                        v
                    }
                    _ => max_version + 1,
                };
                let mut ops = Vec::new();
                let mut refresh = vec!["counter".to_string(), format!("hashes/{hash}")];
                let id = match (req.id, known) {
                    (Some(want), _) => {
                        match st.schemas.get(&want) {
                            Some(s) if s.hash != hash => {
                                return Err(ApiError::not_permitted(format!(
                                    "Overwrite new schema with id {want} is not permitted."
                                )))
                            }
                            Some(_) => {}
                            None => {
                                ops.push(Op::Create(format!("ids/{want}"), rec_bytes.clone()));
                                if known.is_none() {
                                    ops.push(Op::Create(
                                        format!("hashes/{hash}"),
                                        want.to_string().into_bytes(),
                                    ));
                                }
                                if want > st.counter {
                                    let cv = st.nodes.get("counter").map_or(0, |m| m.version);
                                    ops.push(Op::Set(
                                        "counter".into(),
                                        want.to_string().into_bytes(),
                                        cv,
                                    ));
                                }
                                refresh.push(format!("ids/{want}"));
                            }
                        }
                        want
                    }
                    (None, Some(id)) => id,
                    (None, None) => {
                        let id = st
                            .counter
                            .checked_add(1)
                            .ok_or_else(|| ApiError::store("schema ids exhausted"))?;
                        let cv = st.nodes.get("counter").map_or(0, |m| m.version);
                        ops.push(Op::Set("counter".into(), id.to_string().into_bytes(), cv));
                        ops.push(Op::Create(format!("ids/{id}"), rec_bytes.clone()));
                        ops.push(Op::Create(
                            format!("hashes/{hash}"),
                            id.to_string().into_bytes(),
                        ));
                        id
                    }
                };
                let sp = subject_path(subject);
                match st.nodes.get(&sp) {
                    Some(m) => ops.push(Op::Set(sp, b"{}".to_vec(), m.version)),
                    None => ops.push(Op::Create(sp, b"{}".to_vec())),
                }
                let vrec = VersionRec { id, deleted: false };
                ops.push(Op::Create(
                    version_path(subject, version),
                    serde_json::to_vec(&vrec).map_err(ApiError::store)?,
                ));
                (ops, refresh, id, version, live, level, import)
            };
            let (ops, refresh, id, version, live, level, import) = plan;
            if !import {
                let msgs = self.compat_against(level, &cand.parsed, &live)?;
                if !msgs.is_empty() {
                    return Err(ApiError::incompatible(&msgs));
                }
            }
            match self.store.commit(ops).await {
                Ok(()) => {
                    tracing::debug!(subject, id, version, "schema registered");
                    return Ok(json!({"id": id, "version": version}));
                }
                Err(CommitError::Conflict(why)) => {
                    tracing::debug!(subject, attempt, why, "register raced; re-planning");
                    self.after_conflict(attempt, &refresh, Some(subject)).await;
                }
                Err(CommitError::Unavailable(e)) => return Err(ApiError::store(e)),
            }
        }
        Err(ApiError::timeout(
            "too many concurrent changes to the subject",
        ))
    }

    /// `DELETE /subjects/{s}` (soft, or `permanent` after soft).
    pub async fn delete_subject(&self, subject: &str, permanent: bool) -> Result<Value, ApiError> {
        self.known_subject(subject, true).await?;
        for attempt in 0..MAX_ATTEMPTS {
            let (ops, versions) = {
                let st = self.store.state();
                Self::check_writable(&st, Some(subject))?;
                let Some(vs) = st.subjects.get(subject).filter(|vs| !vs.is_empty()) else {
                    return Err(ApiError::subject_not_found(subject));
                };
                let sp = subject_path(subject);
                let sver = st.nodes.get(&sp).map_or(-1, |m| m.version);
                let mut ops = Vec::new();
                let mut out = Vec::new();
                if permanent {
                    if vs.values().any(|r| !r.deleted) {
                        return Err(ApiError::subject_not_soft_deleted(subject));
                    }
                    for v in vs.keys() {
                        if !st.referenced_by(subject, *v).is_empty() {
                            return Err(ApiError::referenced(subject, *v));
                        }
                        let p = version_path(subject, *v);
                        let ver = st.nodes.get(&p).map_or(-1, |m| m.version);
                        ops.push(Op::Delete(p, ver));
                        out.push(*v);
                    }
                    ops.push(Op::Delete(sp, sver));
                    for p in [config_path(Some(subject)), mode_path(Some(subject))] {
                        if st.nodes.contains_key(&p) {
                            ops.push(Op::Delete(p, -1));
                        }
                    }
                } else {
                    let live: Vec<(i32, VersionRec)> = st.live_versions(subject);
                    if live.is_empty() {
                        return Err(ApiError::subject_soft_deleted(subject));
                    }
                    for (v, r) in &live {
                        if !st.referenced_by(subject, *v).is_empty() {
                            return Err(ApiError::referenced(subject, *v));
                        }
                        let p = version_path(subject, *v);
                        let ver = st.nodes.get(&p).map_or(-1, |m| m.version);
                        let rec = VersionRec {
                            id: r.id,
                            deleted: true,
                        };
                        ops.push(Op::Set(
                            p,
                            serde_json::to_vec(&rec).map_err(ApiError::store)?,
                            ver,
                        ));
                        out.push(*v);
                    }
                    ops.push(Op::Set(sp, b"{}".to_vec(), sver));
                }
                (ops, out)
            };
            match self.store.commit(ops).await {
                Ok(()) => return Ok(json!(versions)),
                Err(CommitError::Conflict(_)) => {
                    self.after_conflict(attempt, &[], Some(subject)).await
                }
                Err(CommitError::Unavailable(e)) => return Err(ApiError::store(e)),
            }
        }
        Err(ApiError::timeout(
            "too many concurrent changes to the subject",
        ))
    }

    /// `DELETE /subjects/{s}/versions/{v}` (soft, or `permanent` after soft).
    pub async fn delete_version(
        &self,
        subject: &str,
        sel: VersionSel,
        permanent: bool,
    ) -> Result<Value, ApiError> {
        self.known_subject(subject, true).await?;
        for attempt in 0..MAX_ATTEMPTS {
            let (ops, version) = {
                let st = self.store.state();
                Self::check_writable(&st, Some(subject))?;
                let Some(vs) = st.subjects.get(subject) else {
                    return Err(ApiError::subject_not_found(subject));
                };
                let (v, r) = match sel {
                    VersionSel::Num(n) => match vs.get(&n) {
                        Some(r) => (n, *r),
                        None => return Err(ApiError::version_not_found(n)),
                    },
                    VersionSel::Latest => {
                        let pick = if permanent {
                            vs.iter().next_back()
                        } else {
                            vs.iter().rev().find(|(_, r)| !r.deleted)
                        };
                        match pick {
                            Some((v, r)) => (*v, *r),
                            None => return Err(ApiError::subject_not_found(subject)),
                        }
                    }
                };
                if !st.referenced_by(subject, v).is_empty() {
                    return Err(ApiError::referenced(subject, v));
                }
                let p = version_path(subject, v);
                let ver = st.nodes.get(&p).map_or(-1, |m| m.version);
                let sp = subject_path(subject);
                let sver = st.nodes.get(&sp).map_or(-1, |m| m.version);
                let mut ops = Vec::new();
                if permanent {
                    if !r.deleted {
                        return Err(ApiError::version_not_soft_deleted(subject, v));
                    }
                    ops.push(Op::Delete(p, ver));
                    if vs.len() == 1 {
                        ops.push(Op::Delete(sp, sver));
                    } else {
                        ops.push(Op::Set(sp, b"{}".to_vec(), sver));
                    }
                } else {
                    if r.deleted {
                        return Err(ApiError::version_soft_deleted(subject, v));
                    }
                    let rec = VersionRec {
                        id: r.id,
                        deleted: true,
                    };
                    ops.push(Op::Set(
                        p,
                        serde_json::to_vec(&rec).map_err(ApiError::store)?,
                        ver,
                    ));
                    ops.push(Op::Set(sp, b"{}".to_vec(), sver));
                }
                (ops, v)
            };
            match self.store.commit(ops).await {
                Ok(()) => return Ok(json!(version)),
                Err(CommitError::Conflict(_)) => {
                    self.after_conflict(attempt, &[], Some(subject)).await
                }
                Err(CommitError::Unavailable(e)) => return Err(ApiError::store(e)),
            }
        }
        Err(ApiError::timeout(
            "too many concurrent changes to the subject",
        ))
    }

    // ----- config and mode -----

    /// `GET /config[/{s}]`
    pub fn get_config(
        &self,
        subject: Option<&str>,
        default_to_global: bool,
    ) -> Result<Value, ApiError> {
        let st = self.store.state();
        let level = match subject {
            None => st
                .global_config
                .clone()
                .unwrap_or_else(|| "BACKWARD".into()),
            Some(s) => match st.subject_config.get(s) {
                Some(l) => l.clone(),
                None if default_to_global => st
                    .global_config
                    .clone()
                    .unwrap_or_else(|| "BACKWARD".into()),
                None => return Err(ApiError::subject_config_not_found(s)),
            },
        };
        Ok(json!({"compatibilityLevel": level}))
    }

    /// Write (Some) or clear (None) one config or mode node, re-planning on conflict.
    async fn put_node(
        &self,
        path: String,
        data: Option<Vec<u8>>,
        global: bool,
    ) -> Result<(), ApiError> {
        for attempt in 0..MAX_ATTEMPTS {
            let op = {
                let st = self.store.state();
                match (st.nodes.get(&path), &data, global) {
                    (Some(m), Some(d), _) => Op::Set(path.clone(), d.clone(), m.version),
                    (None, Some(d), false) => Op::Create(path.clone(), d.clone()),
                    (None, Some(d), true) => Op::Set(path.clone(), d.clone(), -1),
                    (Some(m), None, true) => Op::Set(path.clone(), Vec::new(), m.version),
                    (Some(m), None, false) => Op::Delete(path.clone(), m.version),
                    (None, None, _) => return Ok(()),
                }
            };
            match self.store.commit(vec![op]).await {
                Ok(()) => return Ok(()),
                Err(CommitError::Conflict(_)) => {
                    self.after_conflict(attempt, std::slice::from_ref(&path), None)
                        .await
                }
                Err(CommitError::Unavailable(e)) => return Err(ApiError::store(e)),
            }
        }
        Err(ApiError::timeout("too many concurrent changes"))
    }

    /// `PUT /config[/{s}]`
    pub async fn put_config(&self, subject: Option<&str>, body: &Value) -> Result<Value, ApiError> {
        let raw = body
            .get("compatibility")
            .or_else(|| body.get("compatibilityLevel"))
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::invalid_compatibility("null"))?;
        let level = Level::parse(raw).ok_or_else(|| ApiError::invalid_compatibility(raw))?;
        Self::check_writable(&self.store.state(), subject)?;
        let rec = ConfigRec {
            compatibility_level: level.as_str().to_string(),
        };
        let data = serde_json::to_vec(&rec).map_err(ApiError::store)?;
        self.put_node(config_path(subject), Some(data), subject.is_none())
            .await?;
        Ok(json!({"compatibility": level.as_str()}))
    }

    /// `DELETE /config[/{s}]`: back to the default (global) or to the global (subject).
    pub async fn delete_config(&self, subject: Option<&str>) -> Result<Value, ApiError> {
        let prev = self.get_config(subject, false)?;
        self.put_node(config_path(subject), None, subject.is_none())
            .await?;
        Ok(prev)
    }

    /// `GET /mode[/{s}]`
    pub fn get_mode(
        &self,
        subject: Option<&str>,
        default_to_global: bool,
    ) -> Result<Value, ApiError> {
        let st = self.store.state();
        let mode = match subject {
            None => st.mode_of(None),
            Some(s) => match st.subject_mode.get(s) {
                Some(m) => m.clone(),
                None if default_to_global => st.mode_of(None),
                None => return Err(ApiError::subject_mode_not_found(s)),
            },
        };
        Ok(json!({"mode": mode}))
    }

    /// `PUT /mode[/{s}]`
    pub async fn put_mode(
        &self,
        subject: Option<&str>,
        body: &Value,
        force: bool,
    ) -> Result<Value, ApiError> {
        let raw = body
            .get("mode")
            .and_then(Value::as_str)
            .ok_or_else(|| ApiError::invalid_mode("null"))?;
        let mode = raw.to_ascii_uppercase();
        if !["READWRITE", "READONLY", "READONLY_OVERRIDE", "IMPORT"].contains(&mode.as_str()) {
            return Err(ApiError::invalid_mode(raw));
        }
        if mode == "IMPORT" && !force {
            let st = self.store.state();
            let nonempty = match subject {
                Some(s) => st.subject_visible(s, true),
                None => st.subjects.values().any(|vs| !vs.is_empty()),
            };
            if nonempty {
                return Err(ApiError::not_permitted(
                    "Cannot import since found existing subjects",
                ));
            }
        }
        let data = serde_json::to_vec(&ModeRec { mode: mode.clone() }).map_err(ApiError::store)?;
        self.put_node(mode_path(subject), Some(data), subject.is_none())
            .await?;
        Ok(json!({"mode": mode}))
    }

    /// `DELETE /mode/{s}`
    pub async fn delete_mode(&self, subject: Option<&str>) -> Result<Value, ApiError> {
        let prev = self.get_mode(subject, false)?;
        self.put_node(mode_path(subject), None, subject.is_none())
            .await?;
        Ok(prev)
    }

    /// Whether `id` is a registered schema usable for `subject`'s records
    /// (broker-side validation: a cached lookup, a coordinator read on a miss).
    pub async fn id_exists(&self, id: i32) -> bool {
        self.schema_by_id(id).await.is_ok()
    }

    /// Query flag helper for the HTTP layer.
    pub fn flag(v: Option<&str>) -> bool {
        is_true(v)
    }
}

fn truncate(s: &str) -> String {
    if s.len() <= 200 {
        s.to_string()
    } else {
        let mut end = 200;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    }
}
