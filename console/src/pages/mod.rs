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
mod shared;
mod tail;
mod topic_edit;
mod topics;
mod znodes;

use hyper::{Method, StatusCode};

use crate::app::{App, Reply, Req};

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
