//! `/schemas` (when `schema.registry.url` is set): the subjects with their
//! latest version, schema id and type, and the global compatibility level;
//! `/schemas/{s}` a subject's versions, compatibility level (changed by a
//! POST to `/schemas/{s}/compatibility`), one version's
//! schema (`?version=`), a side-by-side diff of two (`?left=&right=`), and
//! the register form. `/schemas/register` is a POST: `step=check` asks the
//! registry whether the schema is compatible with the latest version and
//! only then shows a Register button; `step=register` registers it. All
//! through the registry's REST API; when it is missing or failing, only
//! these pages say so.

use hyper::StatusCode;
use serde_json::{json, Value};

use crate::app::{App, Reply, Req};
use crate::diff::{self, Row};
use crate::html::{csrf_field, enc, esc, link, notice, table};
use fjord_http::client::{Rest, RestError};

const TYPES: &[&str] = &["AVRO", "JSON", "PROTOBUF"];
/// The registry's compatibility levels.
const LEVELS: &[&str] = &[
    "BACKWARD",
    "BACKWARD_TRANSITIVE",
    "FORWARD",
    "FORWARD_TRANSITIVE",
    "FULL",
    "FULL_TRANSITIVE",
    "NONE",
];

/// The registry's client, or the page that says why there is none.
fn registry(app: &App) -> Result<Rest, Reply> {
    let Some(url) = app.cfg.schema_registry.as_deref() else {
        let body = notice(
            "info",
            "schema.registry.url is not set: the Schemas pages are off.",
        );
        return Err(app.page(StatusCode::OK, "Schemas", &body));
    };
    Rest::new("the Schema Registry", url, app.cfg.timeout).map_err(|e| unreachable(app, &e))
}

/// The registry could not be read: said on this page only.
fn unreachable(app: &App, e: &RestError) -> Reply {
    let body = notice(
        "error",
        &format!(
            "The Schema Registry could not be read: {e}. The other pages do not depend on it."
        ),
    );
    app.page(StatusCode::BAD_GATEWAY, "Schemas", &body)
}

fn s(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(x)) => x.clone(),
        Some(Value::Null) | None => String::new(),
        Some(x) => x.to_string(),
    }
}

/// Avro's and JSON Schema's text pretty-printed (so a diff is by line);
/// Protobuf as registered.
fn pretty(schema: &str, kind: &str) -> String {
    if kind == "PROTOBUF" {
        return schema.to_string();
    }
    serde_json::from_str::<Value>(schema)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| schema.to_string())
}

/// `schemaType` is absent for Avro.
fn kind(v: &Value) -> String {
    match s(v, "schemaType") {
        k if k.is_empty() => "AVRO".to_string(),
        k => k,
    }
}

pub async fn list(app: &App, r: &Req) -> anyhow::Result<Reply> {
    let sr = match registry(app) {
        Ok(x) => x,
        Err(page) => return Ok(page),
    };
    let (global, latest) =
        match tokio::try_join!(sr.get("/config"), sr.get("/schemas?latestOnly=true")) {
            Ok(x) => x,
            Err(e) => return Ok(unreachable(app, &e)),
        };
    let q = r.q("q").unwrap_or("");
    let rows: Vec<Vec<String>> = latest
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter(|v| q.is_empty() || s(v, "subject").contains(q))
        .map(|v| {
            let subject = s(v, "subject");
            vec![
                link(&format!("/schemas/{}", enc(&subject)), &subject),
                esc(&s(v, "version")),
                esc(&s(v, "id")),
                esc(&kind(v)),
            ]
        })
        .collect();
    let mut body = format!(
        "<p>Registry {} · global compatibility <b id=\"global-compatibility\">{}</b> · {} subject(s)</p>",
        esc(sr.url()),
        esc(&s(&global, "compatibilityLevel")),
        rows.len()
    );
    body += &format!(
        "<form method=\"get\" action=\"/schemas\"><input name=\"q\" value=\"{}\" placeholder=\"search\"> <button>Search</button></form>",
        esc(q)
    );
    body += &table(
        "subjects",
        &["subject", "latest version", "schema id", "type"],
        &rows,
    );
    if !app.cfg.read_only {
        body += "<h2>Register a schema</h2>";
        body += &register_form(app, None, "AVRO", "");
    }
    Ok(app.page(StatusCode::OK, "Schemas", &body))
}

/// The form whose POST checks compatibility first (`subject` None: typed in).
fn register_form(app: &App, subject: Option<&str>, kind: &str, schema: &str) -> String {
    let subject_field = match subject {
        Some(sub) => format!(
            "<input type=\"hidden\" name=\"subject\" value=\"{}\">",
            esc(sub)
        ),
        None => "<label>Subject <input name=\"subject\" id=\"new-subject\"></label><br>".into(),
    };
    let options: String = TYPES
        .iter()
        .map(|t| {
            let sel = if *t == kind { " selected" } else { "" };
            format!("<option value=\"{t}\"{sel}>{t}</option>")
        })
        .collect();
    format!(
        "<form method=\"post\" action=\"/schemas/register\" id=\"register-form\">{}\
<input type=\"hidden\" name=\"step\" value=\"check\">{subject_field}\
<label>Type <select name=\"schemaType\" id=\"new-schema-type\">{options}</select></label><br>\
<textarea name=\"schema\" id=\"new-schema\" rows=\"12\" cols=\"90\">{}</textarea><br>\
<button id=\"check-schema\">Check compatibility</button></form>",
        csrf_field(&app.csrf),
        esc(schema)
    )
}

pub async fn subject(app: &App, name: &str, r: &Req) -> anyhow::Result<Reply> {
    let sr = match registry(app) {
        Ok(x) => x,
        Err(page) => return Ok(page),
    };
    let sub = enc(name);
    let version = r.q("version").unwrap_or("latest");
    let shown = format!("/subjects/{sub}/versions/{}", enc(version));
    let (config_path, versions_path) = (
        format!("/config/{sub}?defaultToGlobal=true"),
        format!("/subjects/{sub}/versions"),
    );
    let got = tokio::try_join!(sr.get(&config_path), sr.get(&versions_path), sr.get(&shown),);
    let (config, versions, v) = match got {
        Ok(x) => x,
        Err(e) if e.status() == Some(404) => {
            let body = notice("error", &format!("{e}"));
            return Ok(app.page(StatusCode::NOT_FOUND, &format!("Subject {name}"), &body));
        }
        Err(e) => return Ok(unreachable(app, &e)),
    };
    let versions: Vec<i64> = versions
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    let mut body = String::new();
    if let Some(id) = r.q("registered") {
        body += &notice("ok", &format!("Registered: schema id {id}."));
    }
    if r.q("compatibility").is_some() {
        body += &notice("ok", "Compatibility level saved.");
    }
    let k = kind(&v);
    let level = s(&config, "compatibilityLevel");
    body += &format!(
        "<p>Compatibility <b id=\"compatibility\">{}</b> · versions {}</p>",
        esc(&level),
        versions
            .iter()
            .map(|x| link(&format!("/schemas/{sub}?version={x}"), &x.to_string()))
            .collect::<Vec<_>>()
            .join(" ")
    );
    if !app.cfg.read_only {
        let opts: String = LEVELS
            .iter()
            .map(|l| {
                let sel = if *l == level { " selected" } else { "" };
                format!("<option value=\"{l}\"{sel}>{l}</option>")
            })
            .collect();
        body += &format!(
            "<form method=\"post\" action=\"/schemas/{sub}/compatibility\" id=\"compatibility-form\">{}\
<label>Compatibility of this subject <select name=\"level\" id=\"compatibility-level\">{opts}</select></label> \
<button id=\"set-compatibility\">Save</button></form>",
            csrf_field(&app.csrf)
        );
    }
    body += &format!(
        "<h2>Version <span id=\"version\">{}</span></h2><p>Schema id <b id=\"schema-id\">{}</b> · type <b id=\"schema-type\">{}</b></p><pre id=\"schema\">{}</pre>",
        esc(&s(&v, "version")),
        esc(&s(&v, "id")),
        esc(&k),
        esc(&pretty(&s(&v, "schema"), &k))
    );
    body += &diff_section(&sr, &sub, &versions, r).await;
    if !app.cfg.read_only {
        body += "<h2>Register a new version</h2>";
        body += &register_form(app, Some(name), &k, &pretty(&s(&v, "schema"), &k));
    }
    Ok(app.page(StatusCode::OK, &format!("Subject {name}"), &body))
}

/// The compare form, and the side-by-side diff when two versions are asked.
async fn diff_section(sr: &Rest, sub: &str, versions: &[i64], r: &Req) -> String {
    let last = versions.last().copied().unwrap_or(1);
    let left = r.q("left").and_then(|x| x.parse::<i64>().ok());
    let right = r.q("right").and_then(|x| x.parse::<i64>().ok());
    let select = |name: &str, pick: i64| {
        let opts: String = versions
            .iter()
            .map(|x| {
                let sel = if *x == pick { " selected" } else { "" };
                format!("<option value=\"{x}\"{sel}>{x}</option>")
            })
            .collect();
        format!("<select name=\"{name}\" id=\"diff-{name}\">{opts}</select>")
    };
    let mut out = format!(
        "<h2>Compare versions</h2><form method=\"get\" action=\"/schemas/{}\">{} with {} <button id=\"compare\">Compare</button></form>",
        esc(sub),
        select("left", left.unwrap_or(last.saturating_sub(1).max(1))),
        select("right", right.unwrap_or(last)),
    );
    let (Some(l), Some(rt)) = (left, right) else {
        return out;
    };
    let (pl, pr) = (
        format!("/subjects/{sub}/versions/{l}"),
        format!("/subjects/{sub}/versions/{rt}"),
    );
    let got = tokio::try_join!(sr.get(&pl), sr.get(&pr));
    let (a, b) = match got {
        Ok(x) => x,
        Err(e) => return out + &notice("error", &format!("{e}")),
    };
    let (ta, tb) = (
        pretty(&s(&a, "schema"), &kind(&a)),
        pretty(&s(&b, "schema"), &kind(&b)),
    );
    let rows = side_by_side(&diff::lines(&ta, &tb));
    let changed = rows.iter().filter(|r| r.0 != "same").count();
    out += &format!(
        "<p id=\"diff-summary\">Version {l} (id {}) against version {rt} (id {}): {changed} line(s) differ.</p>",
        esc(&s(&a, "id")),
        esc(&s(&b, "id"))
    );
    out += &format!(
        "<table id=\"diff\"><thead><tr><th>version {l}</th><th>version {rt}</th></tr></thead><tbody>"
    );
    for (class, left, right) in rows {
        let (cl, cr) = match class {
            "same" => ("same", "same"),
            _ => (
                if left.is_some() { "del" } else { "" },
                if right.is_some() { "add" } else { "" },
            ),
        };
        out += &format!(
            "<tr><td class=\"{cl}\">{}</td><td class=\"{cr}\">{}</td></tr>",
            esc(left.unwrap_or("")),
            esc(right.unwrap_or(""))
        );
    }
    out + "</tbody></table>"
}

/// Rows of (kind, left line, right line): removed and added runs between
/// unchanged lines share rows, so a changed line sits beside its new form.
fn side_by_side<'a>(d: &[Row<'a>]) -> Vec<(&'static str, Option<&'a str>, Option<&'a str>)> {
    let mut out = Vec::new();
    let (mut dels, mut adds): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
    let flush = |out: &mut Vec<_>, dels: &mut Vec<&'a str>, adds: &mut Vec<&'a str>| {
        for i in 0..dels.len().max(adds.len()) {
            out.push(("changed", dels.get(i).copied(), adds.get(i).copied()));
        }
        dels.clear();
        adds.clear();
    };
    for r in d {
        match r {
            Row::Same(x) => {
                flush(&mut out, &mut dels, &mut adds);
                out.push(("same", Some(*x), Some(*x)));
            }
            Row::Del(x) => dels.push(*x),
            Row::Add(x) => adds.push(*x),
        }
    }
    flush(&mut out, &mut dels, &mut adds);
    out
}

/// POST `/schemas/{s}/compatibility`: the subject's level (`PUT /config/{s}`).
pub async fn compatibility(app: &App, name: &str, r: &Req) -> anyhow::Result<Reply> {
    let sr = match registry(app) {
        Ok(x) => x,
        Err(page) => return Ok(page),
    };
    let level = r.f("level");
    if !LEVELS.contains(&level) {
        let body = notice("error", &format!("'{level}' is not a compatibility level"));
        return Ok(app.page(StatusCode::BAD_REQUEST, &format!("Subject {name}"), &body));
    }
    let sub = enc(name);
    let put = json!({ "compatibility": level });
    match sr.call("PUT", &format!("/config/{sub}"), Some(&put)).await {
        Ok(_) => Ok(Reply::Redirect(format!(
            "/schemas/{sub}?compatibility=saved"
        ))),
        Err(e @ RestError::Refused { .. }) => {
            let body = notice("error", &format!("{e}"));
            Ok(app.page(StatusCode::BAD_REQUEST, &format!("Subject {name}"), &body))
        }
        Err(e) => Ok(unreachable(app, &e)),
    }
}

/// POST `/schemas/register`: check compatibility, then (a second POST) register.
pub async fn register(app: &App, r: &Req) -> anyhow::Result<Reply> {
    let sr = match registry(app) {
        Ok(x) => x,
        Err(page) => return Ok(page),
    };
    let subject = r.f("subject").trim().to_string();
    let schema = r.f("schema").to_string();
    let k = match r.f("schemaType") {
        "" => "AVRO",
        t => t,
    };
    let title = format!("Register a schema under {subject}");
    let again = |msg: &str, status: StatusCode| {
        let body = notice("error", msg)
            + &register_form(
                app,
                (!subject.is_empty()).then_some(subject.as_str()),
                k,
                &schema,
            );
        app.page(status, &title, &body)
    };
    if subject.is_empty() || schema.trim().is_empty() {
        return Ok(again(
            "A subject and a schema are needed.",
            StatusCode::BAD_REQUEST,
        ));
    }
    if !TYPES.contains(&k) {
        return Ok(again(
            &format!("unknown schema type {k}"),
            StatusCode::BAD_REQUEST,
        ));
    }
    let mut req = json!({ "schema": schema });
    if k != "AVRO" {
        req["schemaType"] = json!(k);
    }
    let sub = enc(&subject);
    if r.f("step") == "register" {
        return match sr
            .call("POST", &format!("/subjects/{sub}/versions"), Some(&req))
            .await
        {
            Ok(v) => Ok(Reply::Redirect(format!(
                "/schemas/{sub}?registered={}",
                enc(&s(&v, "id"))
            ))),
            Err(RestError::Unreachable { .. }) | Err(RestError::Refused { status: 500.., .. }) => {
                Ok(again(
                    "The Schema Registry could not be reached: nothing was registered.",
                    StatusCode::BAD_GATEWAY,
                ))
            }
            Err(e) => Ok(again(&format!("Not registered: {e}"), StatusCode::CONFLICT)),
        };
    }
    let check = sr
        .call(
            "POST",
            &format!("/compatibility/subjects/{sub}/versions/latest?verbose=true"),
            Some(&req),
        )
        .await;
    let verdict = match check {
        Ok(v) if v.get("is_compatible").and_then(Value::as_bool) == Some(true) => {
            Ok(format!("Compatible with the latest version of {subject}."))
        }
        Ok(v) => {
            let why: Vec<String> = v
                .get("messages")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .map(|m| m.as_str().map_or_else(|| m.to_string(), str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            Err(format!(
                "Not compatible with the latest version of {subject}: {}",
                why.join("; ")
            ))
        }
        // No subject yet (40401) or no version (40402): nothing to be compatible with.
        Err(RestError::Refused { status: 404, .. }) => Ok(format!(
            "{subject} has no version yet: this will be its first."
        )),
        Err(e) => Err(format!("{e}")),
    };
    let mut body = String::new();
    match verdict {
        Ok(msg) => {
            body += &format!(
                "<p class=\"notice ok\" id=\"compat-result\">{}</p>",
                esc(&msg)
            );
            body += &format!("<pre id=\"schema\">{}</pre>", esc(&pretty(&schema, k)));
            body += &format!(
                "<form method=\"post\" action=\"/schemas/register\" id=\"register-confirm\">{}\
<input type=\"hidden\" name=\"step\" value=\"register\">\
<input type=\"hidden\" name=\"subject\" value=\"{}\">\
<input type=\"hidden\" name=\"schemaType\" value=\"{}\">\
<input type=\"hidden\" name=\"schema\" value=\"{}\">\
<button id=\"register-submit\">Register</button> {}</form>",
                csrf_field(&app.csrf),
                esc(&subject),
                esc(k),
                esc(&schema),
                link(&format!("/schemas/{sub}"), "Cancel")
            );
            Ok(app.page(StatusCode::OK, &title, &body))
        }
        Err(msg) => {
            body += &format!(
                "<p class=\"notice error\" id=\"compat-result\">{}</p>",
                esc(&msg)
            );
            body += &register_form(app, Some(&subject), k, &schema);
            Ok(app.page(StatusCode::CONFLICT, &title, &body))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_pair_changes() {
        let d = diff::lines("a\nb\nc", "a\nB\nc\nd");
        let rows = side_by_side(&d);
        assert_eq!(
            rows,
            vec![
                ("same", Some("a"), Some("a")),
                ("changed", Some("b"), Some("B")),
                ("same", Some("c"), Some("c")),
                ("changed", None, Some("d")),
            ]
        );
        assert_eq!(
            pretty("{\"type\":\"string\"}", "AVRO"),
            "{\n  \"type\": \"string\"\n}"
        );
        assert_eq!(
            pretty("syntax = \"proto3\";", "PROTOBUF"),
            "syntax = \"proto3\";"
        );
    }
}
