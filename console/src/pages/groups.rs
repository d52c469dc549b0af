//! `/groups` (state, members, topics, total lag; sorted and paged by `listing`), `/groups/{g}` (members
//! and their assignment; its lag over the last 15 minutes as the sampler saw
//! it; committed offset, end offset and lag per
//! partition; the reset form) and `/groups/{g}/reset`: a POST with
//! `step=preview` shows the new offsets and an Execute button, one with
//! `step=execute` commits them, both only while the group is empty;
//! `/groups/{g}/delete` asks for the name, and its POST deletes the group.

use hyper::StatusCode;

use crate::app::{App, Reply, Req};
use crate::groups::{self, Reset};
use crate::html::{csrf_field, enc, esc, link, notice, table};
use crate::listing::{self, num, text, Row};

fn opt(v: Option<i64>) -> String {
    v.map_or("-".to_string(), |x| x.to_string())
}

pub async fn list(app: &App, r: &Req) -> anyhow::Result<Reply> {
    let mut c = super::shared::client(app).await?;
    let rows = groups::list(&mut c).await?;
    let q = r.q("q").unwrap_or("");
    let rows: Vec<Row> = rows
        .iter()
        .filter(|g| q.is_empty() || g.name.contains(q))
        .map(|g| {
            let topics = g.topics.iter().cloned().collect::<Vec<_>>().join(", ");
            Row {
                cells: vec![
                    link(&format!("/groups/{}", enc(&g.name)), &g.name),
                    esc(&g.state),
                    g.members.to_string(),
                    esc(&topics),
                    format!("<span class=\"lag\">{}</span>", g.lag),
                ],
                keys: vec![
                    text(&g.name),
                    text(&g.state),
                    num(Some(g.members as f64)),
                    text(&topics),
                    num(Some(g.lag as f64)),
                ],
            }
        })
        .collect();
    let mut body = String::new();
    if let Some(g) = r.q("deleted") {
        body += &notice("ok", &format!("Deleted group {g}."));
    }
    body += &format!(
        "<form method=\"get\" action=\"/groups\"><input name=\"q\" value=\"{}\" placeholder=\"search\"> <button>Search</button></form>",
        esc(q)
    );
    body += &listing::render(
        "groups",
        "/groups",
        &["group", "state", "members", "topics", "lag"],
        rows,
        r,
    );
    Ok(app.page(StatusCode::OK, "Consumer groups", &body))
}

pub async fn group(app: &App, name: &str, r: &Req) -> anyhow::Result<Reply> {
    let mut c = super::shared::client(app).await?;
    let d = groups::detail(&mut c, name).await?;
    let mut body = String::new();
    if r.q("reset").is_some() {
        body += &notice("ok", "Offsets reset.");
    }
    body += &format!(
        "<p>State <b id=\"group-state\">{}</b> · {} member(s) · total lag <b id=\"total-lag\">{}</b></p>",
        esc(&d.description.state),
        d.description.members.len(),
        d.offsets.iter().filter_map(|o| o.lag()).sum::<i64>()
    );
    body += &crate::chart::line(
        "group-lag-chart",
        "Lag",
        "messages",
        &app.history.group_lag(name),
        crate::sampler::now_ms(),
    );
    if !d.description.members.is_empty() {
        let rows: Vec<Vec<String>> = d
            .description
            .members
            .iter()
            .map(|m| {
                vec![
                    esc(&m.id),
                    esc(&m.client_id),
                    esc(&m.host),
                    esc(&m
                        .assignment
                        .iter()
                        .map(|(t, p)| format!("{t}-{p}"))
                        .collect::<Vec<_>>()
                        .join(", ")),
                ]
            })
            .collect();
        body += "<h2>Members</h2>";
        body += &table(
            "members",
            &["member", "client id", "host", "assignment"],
            &rows,
        );
    }
    let rows: Vec<Vec<String>> = d
        .offsets
        .iter()
        .map(|o| {
            vec![
                link(&format!("/topics/{}", enc(&o.tp.0)), &o.tp.0),
                o.tp.1.to_string(),
                opt(o.committed),
                opt(o.end),
                format!("<span class=\"lag\">{}</span>", opt(o.lag())),
            ]
        })
        .collect();
    body += "<h2>Offsets</h2>";
    body += &table(
        "offsets",
        &["topic", "partition", "committed", "end", "lag"],
        &rows,
    );
    if !app.cfg.read_only {
        body += &reset_form(app, name, groups::resettable(&d.description.state));
        body += &format!(
            "<p><a id=\"delete-group\" href=\"/groups/{}/delete\">Delete this group…</a></p>",
            esc(&enc(name))
        );
    }
    Ok(app.page(StatusCode::OK, &format!("Group {name}"), &body))
}

fn reset_form(app: &App, name: &str, allowed: bool) -> String {
    let mut s = String::from("<h2>Reset offsets</h2>");
    if !allowed {
        s += &notice(
            "info",
            "Offsets can be reset only while the group has no members: stop its consumers first.",
        );
    }
    s += &format!(
        "<form method=\"post\" action=\"/groups/{}/reset\" id=\"reset-form\">{}\
<input type=\"hidden\" name=\"step\" value=\"preview\">\
<label>To <select name=\"strategy\" id=\"reset-strategy\">\
<option value=\"earliest\">earliest</option><option value=\"latest\">latest</option>\
<option value=\"offset\">offset</option><option value=\"timestamp\">timestamp (ms)</option>\
<option value=\"shift\">shift by N</option></select></label> \
<label>Value <input name=\"value\" id=\"reset-value\" size=\"16\"></label> \
<label>Topic (empty: all the group's) <input name=\"topic\" id=\"reset-topic\"></label> \
<button id=\"reset-preview\">Preview</button></form>",
        esc(&enc(name)),
        csrf_field(&app.csrf)
    );
    s
}

pub async fn reset(app: &App, name: &str, r: &Req) -> anyhow::Result<Reply> {
    let strategy = r.f("strategy");
    let value = r.f("value");
    let topic = r.f("topic").trim();
    let title = format!("Reset offsets of {name}");
    let reset = match Reset::parse(strategy, value) {
        Ok(x) => x,
        Err(e) => {
            let body = notice("error", &e) + &reset_form(app, name, true);
            return Ok(app.page(StatusCode::BAD_REQUEST, &title, &body));
        }
    };
    let topics: Vec<String> = if topic.is_empty() {
        Vec::new()
    } else {
        vec![topic.to_string()]
    };
    let mut c = super::shared::client(app).await?;
    let (state, moves) = groups::plan(&mut c, name, &topics, reset).await?;
    if moves.is_empty() {
        let body = notice(
            "error",
            "No partitions to reset: the group has no committed offsets there (a shift moves only committed offsets) and no topic was named.",
        );
        return Ok(app.page(StatusCode::BAD_REQUEST, &title, &body));
    }
    if r.f("step") == "execute" {
        return match groups::execute(&mut c, name, &moves).await {
            Ok(()) => Ok(Reply::Redirect(format!("/groups/{}?reset=1", enc(name)))),
            Err(e) => {
                let body = notice("error", &format!("{e:#}"));
                Ok(app.page(StatusCode::CONFLICT, &title, &body))
            }
        };
    }
    let rows: Vec<Vec<String>> = moves
        .iter()
        .map(|m| {
            vec![
                esc(&m.tp.0),
                m.tp.1.to_string(),
                opt(m.current),
                format!("<b>{}</b>", m.new),
            ]
        })
        .collect();
    let mut body = format!(
        "<p>Group state <b id=\"group-state\">{}</b>. Preview of the new offsets:</p>",
        esc(&state)
    );
    body += &table(
        "reset-preview",
        &["topic", "partition", "current", "new"],
        &rows,
    );
    if groups::resettable(&state) {
        body += &format!(
            "<form method=\"post\" action=\"/groups/{}/reset\" id=\"reset-execute-form\">{}\
<input type=\"hidden\" name=\"step\" value=\"execute\">\
<input type=\"hidden\" name=\"strategy\" value=\"{}\">\
<input type=\"hidden\" name=\"value\" value=\"{}\">\
<input type=\"hidden\" name=\"topic\" value=\"{}\">\
<button id=\"reset-execute\">Execute</button> {}</form>",
            esc(&enc(name)),
            csrf_field(&app.csrf),
            esc(strategy),
            esc(value),
            esc(topic),
            crate::html::link(&format!("/groups/{}", enc(name)), "Cancel")
        );
    } else {
        body += &notice(
            "error",
            &format!("The group is {state}: offsets can be reset only while it has no members."),
        );
    }
    Ok(app.page(StatusCode::OK, &title, &body))
}

pub async fn confirm_delete(app: &App, name: &str) -> anyhow::Result<Reply> {
    if app.cfg.read_only {
        let body = notice(
            "error",
            "this console is read-only (console.read.only=true)",
        );
        return Ok(app.page(StatusCode::FORBIDDEN, "Refused", &body));
    }
    let body = format!(
        "{}<form method=\"post\" action=\"/groups/{}/delete\" id=\"confirm-delete-group\">{}\
<label>Type the group's name to confirm: <input name=\"confirm\" id=\"confirm-group-name\" autocomplete=\"off\"></label> \
<button id=\"confirm-delete-group-submit\">Delete</button></form>",
        notice(
            "error",
            &format!("Deleting group {name} removes its committed offsets. Only a group without members can be deleted.")
        ),
        esc(&enc(name)),
        csrf_field(&app.csrf)
    );
    Ok(app.page(StatusCode::OK, &format!("Delete group {name}?"), &body))
}

pub async fn delete(app: &App, name: &str, r: &Req) -> anyhow::Result<Reply> {
    if r.f("confirm") != name {
        let body = notice(
            "error",
            "The name typed does not match the group's: nothing was deleted.",
        );
        return Ok(app.page(StatusCode::BAD_REQUEST, "Not deleted", &body));
    }
    let mut c = super::shared::client(app).await?;
    match groups::delete(&mut c, name).await {
        Ok(()) => Ok(Reply::Redirect(format!("/groups?deleted={}", enc(name)))),
        Err(e) => {
            let body = notice("error", &format!("{e:#}"));
            Ok(app.page(StatusCode::CONFLICT, "Not deleted", &body))
        }
    }
}
