//! Kafka Connect's REST API over the herder: the same paths, status codes and
//! `{"error_code": .., "message": ..}` error bodies, so existing tools and scripts
//! (curl, kafka-connect-py) work unchanged.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use crate::config::ConfigMap;
use crate::connectors::{self, PLUGINS};
use crate::herder::{Herder, HerderError};
use crate::worker::Target;

/// Request bodies larger than this are refused (configs are small).
const MAX_BODY: usize = 4 << 20;

pub async fn handle(herder: Arc<Herder>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query: BTreeMap<String, String> = req
        .uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default();
    let body = match read_body(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        })
        .collect();
    let segs: Vec<&str> = segs.iter().map(|s| s.as_str()).collect();
    match route(&herder, &method, &segs, &query, &body).await {
        Ok((status, v)) => reply(status, v),
        Err(e) => error(
            StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            &e.to_string(),
        ),
    }
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, Response<Full<Bytes>>> {
    let limited = http_body_util::Limited::new(req.into_body(), MAX_BODY);
    match limited.collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => Err(error(
            StatusCode::BAD_REQUEST,
            &format!("cannot read request body: {e}"),
        )),
    }
}

fn reply(status: StatusCode, v: Option<Value>) -> Response<Full<Bytes>> {
    let mut b = Response::builder().status(status);
    let body = match v {
        Some(v) => {
            b = b.header("content-type", "application/json");
            Bytes::from(serde_json::to_vec(&v).unwrap_or_default())
        }
        None => Bytes::new(),
    };
    b.body(Full::new(body))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())))
}

pub fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    reply(
        status,
        Some(json!({"error_code": status.as_u16(), "message": message})),
    )
}

type Out = Result<(StatusCode, Option<Value>), HerderError>;

fn ok(v: Value) -> Out {
    Ok((StatusCode::OK, Some(v)))
}

fn parse_json(body: &Bytes) -> Result<Value, HerderError> {
    serde_json::from_slice(body)
        .map_err(|e| HerderError::BadRequest(format!("Request body is not valid JSON: {e}")))
}

/// A JSON object of strings → ConfigMap (numbers and booleans are accepted as Connect
/// does, as their text).
fn config_map(v: &Value) -> Result<ConfigMap, HerderError> {
    let o = v
        .as_object()
        .ok_or_else(|| HerderError::BadRequest("Connector config must be a JSON object".into()))?;
    let mut m = ConfigMap::new();
    for (k, v) in o {
        let s = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => continue,
            _ => {
                return Err(HerderError::BadRequest(format!(
                    "Config value for {k} must be a string"
                )))
            }
        };
        m.insert(k.clone(), s);
    }
    Ok(m)
}

fn task_id(s: &str) -> Result<i32, HerderError> {
    s.parse()
        .map_err(|_| HerderError::NotFound(format!("Task id {s} not found")))
}

fn flag(q: &BTreeMap<String, String>, k: &str) -> Result<bool, HerderError> {
    match q.get(k).map(|s| s.as_str()) {
        None => Ok(false),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(v) => Err(HerderError::BadRequest(format!(
            "Invalid value {v} for query parameter {k}"
        ))),
    }
}

async fn route(
    h: &Herder,
    m: &Method,
    segs: &[&str],
    q: &BTreeMap<String, String>,
    body: &Bytes,
) -> Out {
    match (m, segs) {
        (&Method::GET, []) => ok(json!({
            "version": concat!("3.7.0-fjord-", env!("CARGO_PKG_VERSION")),
            "commit": "fjord",
            "kafka_cluster_id": Value::Null,
        })),
        (&Method::GET, ["connectors"]) => {
            let names = h.names().await?;
            let expand: Vec<&str> = q
                .get("expand")
                .map(|e| e.split(',').collect())
                .unwrap_or_default();
            if expand.is_empty() {
                return ok(json!(names));
            }
            let mut out = serde_json::Map::new();
            for n in names {
                let mut e = serde_json::Map::new();
                if expand.contains(&"status") {
                    if let Ok(s) = h.status(&n).await {
                        e.insert("status".into(), s);
                    }
                }
                if expand.contains(&"info") {
                    if let Ok(i) = h.info(&n).await {
                        e.insert("info".into(), i);
                    }
                }
                out.insert(n, Value::Object(e));
            }
            ok(Value::Object(out))
        }
        (&Method::POST, ["connectors"]) => {
            let v = parse_json(body)?;
            let name = v
                .get("name")
                .and_then(|n| n.as_str())
                .ok_or_else(|| {
                    HerderError::BadRequest("Connector name must be provided (\"name\")".into())
                })?
                .to_string();
            let cfg = config_map(v.get("config").ok_or_else(|| {
                HerderError::BadRequest("Connector config must be provided (\"config\")".into())
            })?)?;
            let (info, _) = h.put(&name, cfg, false).await?;
            Ok((StatusCode::CREATED, Some(info)))
        }
        (&Method::GET, ["connectors", n]) => ok(h.info(n).await?),
        (&Method::DELETE, ["connectors", n]) => {
            h.delete(n).await?;
            Ok((StatusCode::NO_CONTENT, None))
        }
        (&Method::GET, ["connectors", n, "config"]) => ok(json!(h.config(n).await?)),
        (&Method::PUT, ["connectors", n, "config"]) => {
            let cfg = config_map(&parse_json(body)?)?;
            let (info, created) = h.put(n, cfg, true).await?;
            Ok((
                if created {
                    StatusCode::CREATED
                } else {
                    StatusCode::OK
                },
                Some(info),
            ))
        }
        (&Method::GET, ["connectors", n, "status"]) => ok(h.status(n).await?),
        (&Method::GET, ["connectors", n, "tasks"]) => ok(h.tasks(n).await?),
        (&Method::GET, ["connectors", n, "tasks", id, "status"]) => {
            ok(h.task_status(n, task_id(id)?).await?)
        }
        (&Method::POST, ["connectors", n, "tasks", id, "restart"]) => {
            h.restart_task(n, task_id(id)?).await?;
            Ok((StatusCode::NO_CONTENT, None))
        }
        (&Method::GET, ["connectors", n, "topics"]) => ok(h.topics(n).await?),
        (&Method::PUT, ["connectors", n, "topics", "reset"]) => {
            h.reset_topics(n).await?;
            Ok((StatusCode::OK, None))
        }
        (&Method::POST, ["connectors", n, "restart"]) => {
            let include = flag(q, "includeTasks")?;
            let only_failed = flag(q, "onlyFailed")?;
            match h.restart(n, include, only_failed).await? {
                None => Ok((StatusCode::NO_CONTENT, None)),
                Some(s) => Ok((StatusCode::ACCEPTED, Some(s))),
            }
        }
        (&Method::PUT, ["connectors", n, "pause"]) => {
            h.set_target(n, Target::Paused).await?;
            Ok((StatusCode::ACCEPTED, None))
        }
        (&Method::PUT, ["connectors", n, "resume"]) => {
            h.set_target(n, Target::Running).await?;
            Ok((StatusCode::ACCEPTED, None))
        }
        (&Method::PUT, ["connectors", n, "stop"]) => {
            h.set_target(n, Target::Stopped).await?;
            Ok((StatusCode::NO_CONTENT, None))
        }
        (&Method::GET, ["connectors", n, "offsets"]) => ok(h.offsets(n).await?),
        (&Method::PATCH, ["connectors", n, "offsets"]) => {
            let v = parse_json(body)?;
            let msg = h.alter_offsets(n, &v).await?;
            ok(json!({ "message": msg }))
        }
        (&Method::DELETE, ["connectors", n, "offsets"]) => {
            let msg = h.reset_offsets(n).await?;
            ok(json!({ "message": msg }))
        }
        (&Method::GET, ["connector-plugins"]) => ok(Value::Array(
            PLUGINS
                .iter()
                .map(|p| json!({"class": p.class, "type": p.kind.as_str(), "version": p.version}))
                .collect(),
        )),
        (&Method::GET, ["connector-plugins", p, "config"]) => {
            let plugin = connectors::plugin(p)
                .ok_or_else(|| HerderError::NotFound(format!("Unknown plugin {p}")))?;
            ok(Value::Array(
                connectors::definitions(plugin.class)
                    .into_iter()
                    .map(|(name, ty, required, default)| json!({"name": name, "type": ty, "required": required, "default_value": default}))
                    .collect(),
            ))
        }
        (&Method::PUT, ["connector-plugins", p, "config", "validate"]) => {
            let cfg = config_map(&parse_json(body)?)?;
            ok(validate(p, cfg)?)
        }
        _ => Err(HerderError::NotFound("HTTP 404 Not Found".into())),
    }
}

/// The validate response: every key with its definition, value and errors.
fn validate(p: &str, mut cfg: ConfigMap) -> Result<Value, HerderError> {
    let plugin = connectors::plugin(p)
        .ok_or_else(|| HerderError::BadRequest(format!("Connector plugin {p} not found")))?;
    if let Some(c) = cfg.get("connector.class") {
        if connectors::plugin(c).map(|x| x.class) != Some(plugin.class) {
            return Err(HerderError::BadRequest(
                "Included connector type does not match request type".into(),
            ));
        }
    }
    cfg.insert("connector.class".into(), plugin.class.to_string());
    let errs = connectors::validate(&cfg);
    let by_key = connectors::errors_by_key(&errs);
    let mut configs = Vec::new();
    let defs = connectors::definitions(plugin.class);
    let mut seen = std::collections::BTreeSet::new();
    for (name, ty, required, default) in &defs {
        seen.insert(name.to_string());
        configs.push(json!({
            "definition": {"name": name, "type": ty, "required": required, "default_value": default, "importance": "HIGH", "documentation": "", "group": Value::Null, "order": -1, "dependents": []},
            "value": {"name": name, "value": cfg.get(*name), "recommended_values": [], "errors": by_key.get(*name).cloned().unwrap_or_default(), "visible": true},
        }));
    }
    // Errors on keys outside the definition list still show.
    for (k, msgs) in &by_key {
        if !seen.contains(k) {
            configs.push(json!({
                "definition": {"name": k, "type": "STRING", "required": false, "default_value": Value::Null, "importance": "HIGH", "documentation": "", "group": Value::Null, "order": -1, "dependents": []},
                "value": {"name": k, "value": cfg.get(k), "recommended_values": [], "errors": msgs, "visible": true},
            }));
        }
    }
    Ok(json!({
        "name": plugin.class,
        "error_count": errs.len(),
        "groups": ["Common"],
        "configs": configs,
    }))
}
