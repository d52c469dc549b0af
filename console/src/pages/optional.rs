//! `/schemas` and `/connect`: the optional services. Their pages are not
//! built yet; when configured, the page says so on its own and no other page
//! depends on them.

use hyper::StatusCode;

use crate::html::notice;
use crate::server::{App, Reply};

pub async fn schemas(app: &App) -> anyhow::Result<Reply> {
    Ok(optional(
        app,
        "Schemas",
        app.cfg.schema_registry.as_deref(),
        "schema.registry.url",
    ))
}

pub async fn connect(app: &App) -> anyhow::Result<Reply> {
    Ok(optional(
        app,
        "Connect",
        app.cfg.connect.as_deref(),
        "connect.url",
    ))
}

fn optional(app: &App, title: &str, url: Option<&str>, key: &str) -> Reply {
    let body = match url {
        None => notice("info", &format!("{key} is not set: this page is off.")),
        Some(u) => notice(
            "info",
            &format!("{title} at {u}: this console does not show it yet."),
        ),
    };
    app.page(StatusCode::OK, title, &body)
}
