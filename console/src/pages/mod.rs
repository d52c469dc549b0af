//! The pages, one file each, and the routes that pick them. Every URL is
//! stable (bookmarkable): `/`, `/brokers`, `/topics`, `/topics/{t}`,
//! `/topics/{t}/messages?partition=&offset=|timestamp=`, `/topics/{t}/delete`,
//! `/groups`, `/groups/{g}`, `/groups/{g}/reset`, `/zk?path=`.

mod brokers;
mod groups;
mod messages;
mod optional;
mod overview;
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
        (true, ["topics"]) => topics::list(app, r).await,
        (false, ["topics"]) => topics::create(app, r).await,
        (true, ["topics", t]) => topics::topic(app, t, r).await,
        (true, ["topics", t, "messages"]) => messages::page(app, t, r).await,
        (true, ["topics", t, "delete"]) => topics::confirm_delete(app, t).await,
        (false, ["topics", t, "delete"]) => topics::delete(app, t, r).await,
        (true, ["groups"]) => groups::list(app, r).await,
        (true, ["groups", g]) => groups::group(app, g, r).await,
        (false, ["groups", g, "reset"]) => groups::reset(app, g, r).await,
        (true, ["zk"]) => znodes::page(app, r).await,
        (true, ["schemas"]) => optional::schemas(app).await,
        (true, ["connect"]) => optional::connect(app).await,
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
