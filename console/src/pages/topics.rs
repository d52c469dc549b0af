//! `/topics` (the list, searchable with `?q=`, sorted by any column and cut
//! into pages by `listing`, with each topic's size, produce rate
//! and the lag of the groups reading it as the sampler last saw them, and
//! the create form),
//! `/topics/{t}` (each partition's leader, replicas, ISR, earliest and latest
//! offsets and size, and its configs and partition count with their edit forms from
//! `topic_edit`) and the delete flow: `/topics/{t}/delete` asks to type the name,
//! and its POST deletes.

use hyper::StatusCode;

use crate::app::{App, Reply, Req};
use crate::cluster;
use crate::html::{bytes, csrf_field, enc, esc, ids, link, notice, table};
use crate::listing::{self, num, text, Row};

pub async fn list(app: &App, r: &Req) -> anyhow::Result<Reply> {
    let mut c = super::shared::client(app).await?;
    let s = cluster::snapshot(&mut c, None, &app.seen).await?;
    let mut body = String::new();
    if let Some(t) = r.q("created") {
        body += &notice("ok", &format!("Created topic {t}."));
    }
    if let Some(t) = r.q("deleted") {
        body += &notice("ok", &format!("Deleted topic {t}."));
    }
    let q = r.q("q").unwrap_or("");
    body += &format!(
        "<form method=\"get\" action=\"/topics\"><input name=\"q\" value=\"{}\" placeholder=\"search\"> <button>Search</button></form>",
        esc(q)
    );
    let figures = app.history.topics();
    let sizes = app.history.topic_sizes();
    let rows: Vec<Row> = s
        .topics
        .iter()
        .filter(|t| q.is_empty() || t.name.contains(q))
        .map(|t| {
            let under = t.partitions.iter().filter(|p| p.under_replicated()).count();
            let f = figures.get(&t.name).copied().unwrap_or_default();
            let size = sizes.get(&t.name).copied();
            Row {
                cells: vec![
                    link(&format!("/topics/{}", enc(&t.name)), &t.name),
                    t.partitions.len().to_string(),
                    t.replication().to_string(),
                    under.to_string(),
                    size.map_or("-".to_string(), bytes),
                    f.rate.map_or("-".to_string(), |r| format!("{r:.1}")),
                    format!(
                        "<span class=\"lag\">{}</span>",
                        f.lag.map_or("-".to_string(), |l| l.to_string())
                    ),
                    if t.internal {
                        "yes".into()
                    } else {
                        String::new()
                    },
                ],
                keys: vec![
                    text(&t.name),
                    num(Some(t.partitions.len() as f64)),
                    num(Some(t.replication() as f64)),
                    num(Some(under as f64)),
                    num(size.map(|b| b as f64)),
                    num(f.rate),
                    num(f.lag.map(|l| l as f64)),
                    text(if t.internal { "yes" } else { "" }),
                ],
            }
        })
        .collect();
    body += &listing::render(
        "topics",
        "/topics",
        &[
            "topic",
            "partitions",
            "replication",
            "under-replicated",
            "size",
            "msg/s",
            "group lag",
            "internal",
        ],
        rows,
        r,
    );
    if !app.cfg.read_only {
        body += &create_form(app, &CreateForm::default());
    }
    Ok(app.page(StatusCode::OK, "Topics", &body))
}

#[derive(Default)]
struct CreateForm<'a> {
    name: &'a str,
    partitions: &'a str,
    rf: &'a str,
    configs: &'a str,
}

fn create_form(app: &App, f: &CreateForm<'_>) -> String {
    format!(
        "<h2>Create a topic</h2><form method=\"post\" action=\"/topics\" id=\"create-topic\">{}\
<label>Name <input name=\"name\" id=\"new-topic-name\" value=\"{}\" required></label> \
<label>Partitions <input name=\"partitions\" id=\"new-topic-partitions\" value=\"{}\" size=\"4\"></label> \
<label>Replication <input name=\"replication\" id=\"new-topic-rf\" value=\"{}\" size=\"4\"></label><br>\
<label>Configs (key=value per line)<br><textarea name=\"configs\" rows=\"3\" cols=\"40\">{}</textarea></label><br>\
<button id=\"create-topic-submit\">Create</button></form>",
        csrf_field(&app.csrf),
        esc(f.name),
        esc(if f.partitions.is_empty() { "1" } else { f.partitions }),
        esc(if f.rf.is_empty() { "1" } else { f.rf }),
        esc(f.configs)
    )
}

pub async fn create(app: &App, r: &Req) -> anyhow::Result<Reply> {
    let form = CreateForm {
        name: r.f("name").trim(),
        partitions: r.f("partitions").trim(),
        rf: r.f("replication").trim(),
        configs: r.f("configs"),
    };
    let again = |msg: &str| {
        let body = notice("error", msg) + &create_form(app, &form);
        Ok(app.page(StatusCode::BAD_REQUEST, "Create a topic", &body))
    };
    if form.name.is_empty() {
        return again("a topic needs a name");
    }
    let Ok(partitions) = form.partitions.parse::<i32>() else {
        return again("partitions must be a number");
    };
    let Ok(rf) = form.rf.parse::<i16>() else {
        return again("replication must be a number");
    };
    let configs = match cluster::parse_configs(form.configs) {
        Ok(c) => c,
        Err(e) => return again(&e),
    };
    let mut c = super::shared::client(app).await?;
    if let Err(e) =
        fjord_kafka::topic_admin::create_topic(&mut c, form.name, partitions, rf, &configs).await
    {
        return again(&format!("the brokers refused: {e:#}"));
    }
    Ok(Reply::Redirect(format!(
        "/topics/{}?created=1",
        enc(form.name)
    )))
}

pub async fn topic(app: &App, name: &str, r: &Req) -> anyhow::Result<Reply> {
    let Some(super::shared::Found { mut c, s, t }) = super::shared::find_topic(app, name).await?
    else {
        return Ok(super::shared::no_such_topic(app, name));
    };
    let t = &t;
    let earliest = cluster::offsets(&mut c, t, -2).await?;
    let latest = cluster::offsets(&mut c, t, -1).await?;
    let holders: std::collections::BTreeSet<i32> = t
        .partitions
        .iter()
        .flat_map(|p| p.replicas.iter().copied())
        .filter(|id| s.live.contains_key(id))
        .collect();
    let only = [(
        name.to_string(),
        t.partitions.iter().map(|p| p.index).collect::<Vec<_>>(),
    )];
    let disk = crate::disk::read(&mut c, holders, Some(&only)).await;
    let mut body = String::new();
    if r.q("created").is_some() {
        body += &notice("ok", &format!("Created topic {name}."));
    }
    match r.q("configs") {
        Some("saved") => body += &notice("ok", &format!("Saved the configs of {name}.")),
        Some(_) => body += &notice("info", "No config changed."),
        None => {}
    }
    if let Some(n) = r.q("partitions") {
        body += &notice("ok", &format!("Topic {name} now has {n} partitions."));
    }
    let off = |m: &std::collections::BTreeMap<i32, i64>, p: i32| {
        m.get(&p).map_or("?".to_string(), |o| o.to_string())
    };
    let rows: Vec<Vec<String>> = t
        .partitions
        .iter()
        .map(|p| {
            let leader = if p.leader < 0 {
                "<span class=\"bad\">none</span>".to_string()
            } else {
                p.leader.to_string()
            };
            let isr = if p.under_replicated() {
                format!("<span class=\"bad\">{}</span>", ids(&p.isr))
            } else {
                ids(&p.isr)
            };
            vec![
                p.index.to_string(),
                leader,
                ids(&p.replicas),
                isr,
                off(&earliest, p.index),
                off(&latest, p.index),
                disk.partitions
                    .get(&(name.to_string(), p.index))
                    .map_or("-".to_string(), |b| bytes(*b)),
                link(
                    &format!(
                        "/topics/{}/messages?partition={}&offset=0",
                        enc(name),
                        p.index
                    ),
                    "browse",
                ),
            ]
        })
        .collect();
    body += &format!(
        "<p>{} · {}</p>",
        link(&format!("/topics/{}/messages", enc(name)), "Messages"),
        link("/topics", "All topics")
    );
    body += &table(
        "partitions",
        &[
            "partition",
            "leader",
            "replicas",
            "ISR",
            "earliest",
            "latest",
            "size",
            "",
        ],
        &rows,
    );
    body += &super::topic_edit::section(app, &mut c, name, t.partitions.len()).await;
    if !app.cfg.read_only {
        body += &format!(
            "<p><a class=\"button\" id=\"delete-topic\" href=\"/topics/{}/delete\">Delete this topic…</a></p>",
            esc(&enc(name))
        );
    }
    Ok(app.page(StatusCode::OK, &format!("Topic {name}"), &body))
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
        "{}<form method=\"post\" action=\"/topics/{}/delete\" id=\"confirm-delete\">{}\
<label>Type the topic's name to confirm: <input name=\"confirm\" id=\"confirm-name\" autocomplete=\"off\"></label> \
<button id=\"confirm-delete-submit\">Delete</button></form>",
        notice(
            "error",
            &format!("Deleting topic {name} removes all of its messages. This cannot be undone.")
        ),
        esc(&enc(name)),
        csrf_field(&app.csrf)
    );
    Ok(app.page(StatusCode::OK, &format!("Delete topic {name}?"), &body))
}

pub async fn delete(app: &App, name: &str, r: &Req) -> anyhow::Result<Reply> {
    if r.f("confirm") != name {
        let body = notice(
            "error",
            "The name typed does not match the topic's: nothing was deleted.",
        );
        return Ok(app.page(StatusCode::BAD_REQUEST, "Not deleted", &body));
    }
    let mut c = super::shared::client(app).await?;
    cluster::delete_topic(&mut c, name).await?;
    Ok(Reply::Redirect(format!("/topics?deleted={}", enc(name))))
}
