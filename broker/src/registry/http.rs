//! The Schema Registry's HTTP listener (`schema.registry.listeners`): HTTP/1.1
//! through `hyper`, one route table over Confluent's paths, bodies capped at
//! 16 MiB (413 beyond), every error a Confluent-shaped JSON body, and a
//! quick 404 for paths Fjord does not serve (`/contexts`, `/exporters`, ...).

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Method, Request, Response};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::error::ApiError;
use super::model::percent_decode;
use super::service::{Registry, SchemaRequest, VersionSel};

/// Largest request body accepted (Confluent's limit).
pub const MAX_BODY: usize = 16 * 1024 * 1024;

const CONTENT_TYPE: &str = "application/vnd.schemaregistry.v1+json";

/// Serve until shutdown (the accept loop is fjord-http's).
pub async fn serve(listener: TcpListener, reg: Arc<Registry>, shutdown: watch::Receiver<bool>) {
    fjord_http::serve(listener, "schema registry", shutdown, move |req| {
        let reg = reg.clone();
        async move { handle(&reg, req).await }
    })
    .await
}

fn reply(status: u16, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::OK);
    if let Ok(v) = hyper::header::HeaderValue::from_str(CONTENT_TYPE) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

fn error_reply(e: &ApiError) -> Response<Full<Bytes>> {
    reply(e.status, e.body())
}

/// Query parameters, decoded (`+` as space).
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(q: Option<&str>) -> Query {
        let mut out = Vec::new();
        for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let dec =
                |s: &str| percent_decode(&s.replace('+', " ")).unwrap_or_else(|| s.to_string());
            out.push((dec(k), dec(v)));
        }
        Query(out)
    }
    fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(x, _)| x == k).map(|(_, v)| v.as_str())
    }
    fn flag(&self, k: &str) -> bool {
        Registry::flag(self.get(k))
    }
}

async fn handle(reg: &Registry, req: Request<Incoming>) -> Response<Full<Bytes>> {
    match route(reg, req).await {
        Ok((status, body)) => reply(status, body),
        Err(e) => error_reply(&e),
    }
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, ApiError> {
    if let Some(len) = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
    {
        if len > MAX_BODY as u64 {
            // Read (and drop) a moderately oversized body first, so the
            // client, still sending, gets the 413 rather than a reset.
            if len <= 4 * MAX_BODY as u64 {
                let mut body = req.into_body();
                while let Some(f) = body.frame().await {
                    if f.is_err() {
                        break;
                    }
                }
            }
            return Err(ApiError::too_large(MAX_BODY));
        }
    }
    match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) => {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                Err(ApiError::too_large(MAX_BODY))
            } else {
                Err(ApiError::bad_request(format!("cannot read the body: {e}")))
            }
        }
    }
}

fn json_body(b: &[u8]) -> Result<Value, ApiError> {
    if b.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::unprocessable("empty body"));
    }
    serde_json::from_slice(b).map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))
}

fn schema_body(b: &[u8]) -> Result<SchemaRequest, ApiError> {
    let v = json_body(b)?;
    if !v.is_object() {
        return Err(ApiError::unprocessable("the body must be a JSON object"));
    }
    serde_json::from_value(v).map_err(|e| ApiError::unprocessable(e.to_string()))
}

fn id_of(s: &str) -> Result<i32, ApiError> {
    s.parse::<i32>().map_err(|_| ApiError::not_found())
}

fn ok(v: Value) -> Result<(u16, String), ApiError> {
    Ok((200, v.to_string()))
}

async fn route(reg: &Registry, req: Request<Incoming>) -> Result<(u16, String), ApiError> {
    let method = req.method().clone();
    let q = Query::parse(req.uri().query());
    let raw_path = req.uri().path().to_string();
    let mut segs = Vec::new();
    for s in raw_path.split('/').filter(|s| !s.is_empty()) {
        segs.push(percent_decode(s).ok_or_else(ApiError::not_found)?);
    }
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    // Paths Fjord serves; anything else answers 404 before any work.
    let known = matches!(
        segs.first(),
        None | Some(&"schemas")
            | Some(&"subjects")
            | Some(&"compatibility")
            | Some(&"config")
            | Some(&"mode")
    );
    if !known {
        return Err(ApiError::not_found());
    }
    let body = if method == Method::POST || method == Method::PUT {
        read_body(req).await?
    } else {
        Bytes::new()
    };
    reg.ready().await?;
    let deleted = q.flag("deleted");
    let format = q.get("format");
    use Method as M;
    match (&method, segs.as_slice()) {
        (&M::GET, []) => ok(serde_json::json!({})),
        (&M::GET, ["schemas", "types"]) => ok(reg.types()),
        (&M::GET, ["schemas"]) => ok(reg.list_schemas(
            q.get("subjectPrefix").unwrap_or(""),
            deleted,
            q.flag("latestOnly"),
        )),
        (&M::GET, ["schemas", "ids", id]) => ok(reg.get_schema(id_of(id)?, format).await?),
        (&M::GET, ["schemas", "ids", id, "schema"]) => {
            Ok((200, reg.get_schema_raw(id_of(id)?).await?))
        }
        (&M::GET, ["schemas", "ids", id, "subjects"]) => {
            ok(reg.id_usage(id_of(id)?, deleted, false).await?)
        }
        (&M::GET, ["schemas", "ids", id, "versions"]) => {
            ok(reg.id_usage(id_of(id)?, deleted, true).await?)
        }
        (&M::GET, ["subjects"]) => ok(reg.list_subjects(
            q.get("subjectPrefix").unwrap_or(""),
            deleted,
            q.flag("deletedOnly"),
        )),
        (&M::POST, ["subjects", s]) => {
            ok(reg.lookup(s, &schema_body(&body)?, deleted, format).await?)
        }
        (&M::DELETE, ["subjects", s]) => ok(reg.delete_subject(s, q.flag("permanent")).await?),
        (&M::GET, ["subjects", s, "versions"]) => ok(reg.versions(s, deleted).await?),
        (&M::POST, ["subjects", s, "versions"]) => {
            ok(reg.register(s, &schema_body(&body)?).await?)
        }
        (&M::GET, ["subjects", s, "versions", v]) => ok(reg
            .get_version(s, VersionSel::parse(v)?, deleted, format)
            .await?),
        (&M::DELETE, ["subjects", s, "versions", v]) => ok(reg
            .delete_version(s, VersionSel::parse(v)?, q.flag("permanent"))
            .await?),
        (&M::GET, ["subjects", s, "versions", v, "schema"]) => Ok((
            200,
            reg.get_version_raw(s, VersionSel::parse(v)?, deleted)
                .await?,
        )),
        (&M::GET, ["subjects", s, "versions", v, "referencedby"]) => {
            ok(reg.referenced_by(s, VersionSel::parse(v)?).await?)
        }
        (&M::POST, ["compatibility", "subjects", s, "versions"]) => ok(reg
            .test_compat(s, None, &schema_body(&body)?, q.flag("verbose"))
            .await?),
        (&M::POST, ["compatibility", "subjects", s, "versions", v]) => ok(reg
            .test_compat(
                s,
                Some(VersionSel::parse(v)?),
                &schema_body(&body)?,
                q.flag("verbose"),
            )
            .await?),
        (&M::GET, ["config"]) => ok(reg.get_config(None, false)?),
        (&M::PUT, ["config"]) => ok(reg.put_config(None, &json_body(&body)?).await?),
        (&M::DELETE, ["config"]) => ok(reg.delete_config(None).await?),
        (&M::GET, ["config", s]) => ok(reg.get_config(Some(s), q.flag("defaultToGlobal"))?),
        (&M::PUT, ["config", s]) => ok(reg.put_config(Some(s), &json_body(&body)?).await?),
        (&M::DELETE, ["config", s]) => ok(reg.delete_config(Some(s)).await?),
        (&M::GET, ["mode"]) => ok(reg.get_mode(None, false)?),
        (&M::PUT, ["mode"]) => ok(reg
            .put_mode(None, &json_body(&body)?, q.flag("force"))
            .await?),
        (&M::GET, ["mode", s]) => ok(reg.get_mode(Some(s), q.flag("defaultToGlobal"))?),
        (&M::PUT, ["mode", s]) => ok(reg
            .put_mode(Some(s), &json_body(&body)?, q.flag("force"))
            .await?),
        (&M::DELETE, ["mode", s]) => ok(reg.delete_mode(Some(s)).await?),
        // A known path with the wrong method, or an unknown one under a known prefix.
        (_, ["schemas", ..])
        | (_, ["subjects", ..])
        | (_, ["compatibility", ..])
        | (_, ["config", ..])
        | (_, ["mode", ..])
            if path_exists(&segs) =>
        {
            Err(ApiError::method_not_allowed())
        }
        _ => Err(ApiError::not_found()),
    }
}

/// Whether some method serves this path (for 405 rather than 404).
fn path_exists(segs: &[&str]) -> bool {
    matches!(
        segs,
        ["schemas"]
            | ["schemas", "types"]
            | ["schemas", "ids", _]
            | ["schemas", "ids", _, "schema" | "subjects" | "versions"]
            | ["subjects"]
            | ["subjects", _]
            | ["subjects", _, "versions"]
            | ["subjects", _, "versions", _]
            | ["subjects", _, "versions", _, "schema" | "referencedby"]
            | ["compatibility", "subjects", _, "versions"]
            | ["compatibility", "subjects", _, "versions", _]
            | ["config"]
            | ["config", _]
            | ["mode"]
            | ["mode", _]
    )
}
