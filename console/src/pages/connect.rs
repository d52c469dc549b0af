//! `/connect` (when `connect.url` is set): the worker's connectors with their
//! type, state and tasks' states; `/connect/{c}` one connector: its state,
//! each task with the error trace of a failed one, its config, and its
//! dead-letter topic (`errors.deadletterqueue.topic.name`) with the number of
//! records in it (from the brokers' offsets) and a link to browse it.
//! `/connect/{c}/action` is a POST: pause, resume, restart (connector and
//! tasks) or restart one task, through Connect's REST API. When the worker is
//! missing or failing, only these pages say so.

use hyper::StatusCode;
use serde_json::Value;

use crate::app::{App, Reply, Req};
use crate::cluster;
use crate::html::{csrf_field, enc, esc, link, notice, table};
use fjord_http::client::{Rest, RestError};

/// The worker's client, or the page that says why there is none.
fn worker(app: &App) -> Result<Rest, Reply> {
    let Some(url) = app.cfg.connect.as_deref() else {
        let body = notice("info", "connect.url is not set: the Connect pages are off.");
        return Err(app.page(StatusCode::OK, "Connect", &body));
    };
    Rest::new("the Connect worker", url, app.cfg.timeout).map_err(|e| unreachable(app, &e))
}

fn unreachable(app: &App, e: &RestError) -> Reply {
    let body = notice(
        "error",
        &format!("The Connect worker could not be read: {e}. The other pages do not depend on it."),
    );
    app.page(StatusCode::BAD_GATEWAY, "Connect", &body)
}

fn s(v: &Value, k: &str) -> String {
    match v.get(k) {
        Some(Value::String(x)) => x.clone(),
        Some(Value::Null) | None => String::new(),
        Some(x) => x.to_string(),
    }
}

fn state_span(state: &str) -> String {
    let class = match state {
        "RUNNING" => "up",
        "FAILED" => "bad",
        _ => "",
    };
    format!("<span class=\"{class}\">{}</span>", esc(state))
}

fn tasks_of(status: &Value) -> &[Value] {
    status
        .get("tasks")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

pub async fn list(app: &App) -> anyhow::Result<Reply> {
    let w = match worker(app) {
        Ok(x) => x,
        Err(page) => return Ok(page),
    };
    let all = match w.get("/connectors?expand=status").await {
        Ok(v) => v,
        Err(e) => return Ok(unreachable(app, &e)),
    };
    let rows: Vec<Vec<String>> = all
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(name, e)| {
                    let st = e.get("status").unwrap_or(&Value::Null);
                    let conn = st.get("connector").unwrap_or(&Value::Null);
                    let tasks = tasks_of(st)
                        .iter()
                        .map(|t| format!("{}: {}", esc(&s(t, "id")), state_span(&s(t, "state"))))
                        .collect::<Vec<_>>()
                        .join(", ");
                    vec![
                        link(&format!("/connect/{}", enc(name)), name),
                        esc(&s(st, "type")),
                        state_span(&s(conn, "state")),
                        tasks,
                        esc(&s(conn, "worker_id")),
                    ]
                })
                .collect()
        })
        .unwrap_or_default();
    let mut body = format!(
        "<p>Worker {} · {} connector(s)</p>",
        esc(w.url()),
        rows.len()
    );
    body += &table(
        "connectors",
        &["connector", "type", "state", "tasks", "worker"],
        &rows,
    );
    Ok(app.page(StatusCode::OK, "Connect", &body))
}

pub async fn connector(app: &App, name: &str, r: &Req) -> anyhow::Result<Reply> {
    let w = match worker(app) {
        Ok(x) => x,
        Err(page) => return Ok(page),
    };
    let n = enc(name);
    let (status_path, config_path) = (
        format!("/connectors/{n}/status"),
        format!("/connectors/{n}/config"),
    );
    let got = tokio::try_join!(w.get(&status_path), w.get(&config_path));
    let (st, config) = match got {
        Ok(x) => x,
        Err(e) if e.status() == Some(404) => {
            let body = notice("error", &format!("{e}"));
            return Ok(app.page(StatusCode::NOT_FOUND, &format!("Connector {name}"), &body));
        }
        Err(e) => return Ok(unreachable(app, &e)),
    };
    let conn = st.get("connector").unwrap_or(&Value::Null);
    let state = s(conn, "state");
    let mut body = String::new();
    if let Some(done) = r.q("done") {
        body += &notice("ok", &format!("Asked the worker to {done}."));
    }
    body += &format!(
        "<p>Type {} · state <b id=\"connector-state\">{}</b> · worker {}</p>",
        esc(&s(&st, "type")),
        state_span(&state),
        esc(&s(conn, "worker_id"))
    );
    if let Some(trace) = conn.get("trace").and_then(Value::as_str) {
        body += &format!(
            "<pre class=\"trace\" id=\"connector-trace\">{}</pre>",
            esc(trace)
        );
    }
    if !app.cfg.read_only {
        body += "<p>";
        for (action, label) in [
            ("pause", "Pause"),
            ("resume", "Resume"),
            ("restart", "Restart connector and tasks"),
        ] {
            body += &action_form(app, name, action, label, None);
        }
        body += "</p>";
    }
    let rows: Vec<Vec<String>> = tasks_of(&st)
        .iter()
        .map(|t| {
            let id = s(t, "id");
            let task_state = s(t, "state");
            let mut trace = t
                .get("trace")
                .and_then(Value::as_str)
                .map(|x| {
                    format!(
                        "<pre class=\"trace\" id=\"trace-{}\">{}</pre>",
                        esc(&id),
                        esc(x)
                    )
                })
                .unwrap_or_default();
            if !app.cfg.read_only && task_state == "FAILED" {
                trace += &action_form(app, name, "restart-task", "Restart task", Some(&id));
            }
            vec![
                esc(&id),
                state_span(&task_state),
                esc(&s(t, "worker_id")),
                trace,
            ]
        })
        .collect();
    body += "<h2>Tasks</h2>";
    body += &table("tasks", &["task", "state", "worker", "error"], &rows);
    body += &dead_letters(app, &config).await;
    let cfg_rows: Vec<Vec<String>> = config
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                    vec![esc(k), esc(&v)]
                })
                .collect()
        })
        .unwrap_or_default();
    body += "<h2>Config</h2>";
    body += &table("config", &["key", "value"], &cfg_rows);
    Ok(app.page(StatusCode::OK, &format!("Connector {name}"), &body))
}

/// The dead-letter topic and how many records it holds (latest − earliest
/// offsets over its partitions), read from the brokers.
async fn dead_letters(app: &App, config: &Value) -> String {
    let Some(dlq) = config
        .get("errors.deadletterqueue.topic.name")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    else {
        return "<h2>Dead-letter topic</h2><p>None configured (errors.deadletterqueue.topic.name).</p>".into();
    };
    let count = async {
        let mut c = super::shared::client(app).await?;
        let snap = cluster::snapshot(&mut c, Some(&[dlq.to_string()]), &app.seen).await?;
        let Some(t) = snap.topic(dlq).filter(|t| t.error_code == 0) else {
            return anyhow::Ok(None);
        };
        let lo = cluster::offsets(&mut c, t, -2).await?;
        let hi = cluster::offsets(&mut c, t, -1).await?;
        Ok(Some(
            hi.iter()
                .map(|(p, h)| h - lo.get(p).copied().unwrap_or(0))
                .sum::<i64>(),
        ))
    }
    .await;
    let text = match count {
        Ok(Some(n)) => format!(
            "<b id=\"dlq-count\">{n}</b> record(s) · {}",
            link(&format!("/topics/{}/messages", enc(dlq)), "browse them")
        ),
        Ok(None) => "<b id=\"dlq-count\">0</b> record(s): the topic does not exist yet".into(),
        Err(e) => notice("error", &format!("cannot count its records: {e:#}")),
    };
    format!(
        "<h2>Dead-letter topic</h2><p><span id=\"dlq-topic\">{}</span>: {text}</p>",
        esc(dlq)
    )
}

fn action_form(app: &App, name: &str, action: &str, label: &str, task: Option<&str>) -> String {
    let task_field = task
        .map(|t| format!("<input type=\"hidden\" name=\"task\" value=\"{}\">", esc(t)))
        .unwrap_or_default();
    let id = match task {
        Some(t) => format!("{action}-{}", esc(t)),
        None => action.to_string(),
    };
    format!(
        "<form class=\"inline\" method=\"post\" action=\"/connect/{}/action\">{}\
<input type=\"hidden\" name=\"action\" value=\"{action}\">{task_field}\
<button id=\"{id}\">{}</button></form> ",
        esc(&enc(name)),
        csrf_field(&app.csrf),
        esc(label)
    )
}

/// POST `/connect/{c}/action`.
pub async fn action(app: &App, name: &str, r: &Req) -> anyhow::Result<Reply> {
    let w = match worker(app) {
        Ok(x) => x,
        Err(page) => return Ok(page),
    };
    let n = enc(name);
    let (method, path, done) = match r.f("action") {
        "pause" => ("PUT", format!("/connectors/{n}/pause"), "pause"),
        "resume" => ("PUT", format!("/connectors/{n}/resume"), "resume"),
        "restart" => (
            "POST",
            format!("/connectors/{n}/restart?includeTasks=true&onlyFailed=false"),
            "restart",
        ),
        "restart-task" => {
            let Ok(t) = r.f("task").parse::<u32>() else {
                let body = notice("error", "no task id given");
                return Ok(app.page(StatusCode::BAD_REQUEST, "Not done", &body));
            };
            (
                "POST",
                format!("/connectors/{n}/tasks/{t}/restart"),
                "restart a task",
            )
        }
        other => {
            let body = notice("error", &format!("unknown action '{other}'"));
            return Ok(app.page(StatusCode::BAD_REQUEST, "Not done", &body));
        }
    };
    match w.call(method, &path, None).await {
        Ok(_) => Ok(Reply::Redirect(format!("/connect/{n}?done={}", enc(done)))),
        Err(e) => {
            let status = if e.status().is_some() {
                StatusCode::CONFLICT
            } else {
                StatusCode::BAD_GATEWAY
            };
            let body = notice("error", &format!("{e}"));
            Ok(app.page(status, "Not done", &body))
        }
    }
}
