//! The pages, one file each, and the routes that pick them. Every URL is
//! stable (bookmarkable): `/`, `/brokers`, `/brokers/{id}`, `/topics`, `/topics/{t}`,
//! `/topics/{t}/messages?partition=&offset=|timestamp=`, `/topics/{t}/tail`
//! (and its `/tail/poll`), `/topics/{t}/configs`, `/topics/{t}/partitions`,
//! `/topics/{t}/delete`,
//! `/groups`, `/groups/{g}`, `/groups/{g}/reset`, `/groups/{g}/delete`, `/zk?path=`,
//! and when configured `/schemas`, `/schemas/{s}?version=|left=&right=`,
//! `/schemas/register`, `/schemas/{s}/compatibility`, `/connect`, `/connect/{c}`, `/connect/{c}/action`.

mod brokers;
mod connect;
mod groups;
mod messages;
mod overview;
mod schemas;
mod tail;
mod topic_edit;
mod topics;
mod znodes;

use hyper::{Method, StatusCode};

use crate::server::{App, Reply, Req};

/// Pick the page for `r`.
pub async fn route(app: &App, r: &Req) -> Reply {
    let segs: Vec<&str> = r.segs.iter().map(String::as_str).collect();
    let get = r.method == Method::GET || r.method == Method::HEAD;
    let res = match (get, segs.as_slice()) {
        (true, []) => overview::page(app).await,
        (true, ["brokers"]) => brokers::page(app).await,
        (true, ["brokers", id]) => brokers::broker(app, id).await,
        (true, ["topics"]) => topics::list(app, r).await,
        (false, ["topics"]) => topics::create(app, r).await,
        (true, ["topics", t]) => topics::topic(app, t, r).await,
        (true, ["topics", t, "messages"]) => messages::page(app, t, r).await,
        (true, ["topics", t, "tail"]) => tail::page(app, t, r).await,
        (true, ["topics", t, "tail", "poll"]) => tail::poll(app, t, r).await,
        (false, ["topics", t, "configs"]) => topic_edit::configs(app, t, r).await,
        (false, ["topics", t, "partitions"]) => topic_edit::partitions(app, t, r).await,
        (true, ["topics", t, "delete"]) => topics::confirm_delete(app, t).await,
        (false, ["topics", t, "delete"]) => topics::delete(app, t, r).await,
        (true, ["groups"]) => groups::list(app, r).await,
        (true, ["groups", g]) => groups::group(app, g, r).await,
        (false, ["groups", g, "reset"]) => groups::reset(app, g, r).await,
        (true, ["groups", g, "delete"]) => groups::confirm_delete(app, g).await,
        (false, ["groups", g, "delete"]) => groups::delete(app, g, r).await,
        (true, ["zk"]) => znodes::page(app, r).await,
        (true, ["schemas"]) => schemas::list(app, r).await,
        (false, ["schemas", "register"]) => schemas::register(app, r).await,
        (true, ["schemas", s]) => schemas::subject(app, s, r).await,
        (false, ["schemas", s, "compatibility"]) => schemas::compatibility(app, s, r).await,
        (true, ["connect"]) => connect::list(app).await,
        (true, ["connect", c]) => connect::connector(app, c, r).await,
        (false, ["connect", c, "action"]) => connect::action(app, c, r).await,
        _ => Ok(app.error(StatusCode::NOT_FOUND, "Not found", "no such page")),
    };
    res.unwrap_or_else(|e| {
        app.error(
            StatusCode::BAD_GATEWAY,
            "The cluster could not be read",
            &format!("{e:#}"),
        )
    })
}

/// A client for one page, with the console's timeout on every request.
async fn client(app: &App) -> anyhow::Result<fjord_kafka::client::Client> {
    crate::cluster::connect(&app.cfg.bootstrap, app.cfg.timeout).await
}

/// A topic's page found its topic: the page's client, the Metadata
/// snapshot that named it (brokers included) and the topic itself.
struct Found {
    c: fjord_kafka::client::Client,
    s: crate::cluster::Snapshot,
    t: crate::cluster::Topic,
}

/// `name` as Metadata describes it, or None when it does not exist (the
/// caller answers [`missing`] in its own form: a 404 page, JSON, a refusal).
async fn find_topic(app: &App, name: &str) -> anyhow::Result<Option<Found>> {
    let mut c = client(app).await?;
    let s = crate::cluster::snapshot(&mut c, Some(&[name.to_string()]), &app.seen).await?;
    let Some(t) = s.topic(name).filter(|t| t.error_code == 0).cloned() else {
        return Ok(None);
    };
    Ok(Some(Found { c, s, t }))
}

/// What a page for a topic that does not exist says.
fn missing(name: &str) -> String {
    format!("Topic '{name}' does not exist.")
}

/// The 404 page for a topic that does not exist.
fn no_such_topic(app: &App, name: &str) -> Reply {
    let body = crate::html::notice("error", &missing(name));
    app.page(StatusCode::NOT_FOUND, name, &body)
}
