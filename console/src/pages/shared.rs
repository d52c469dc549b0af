//! What several pages share: a client with the console's timeout, and a
//! topic looked up by name (with the answers for one that does not exist).

use hyper::StatusCode;

use crate::app::{App, Reply};

/// A client for one page, with the console's timeout on every request.
pub(super) async fn client(app: &App) -> anyhow::Result<fjord_kafka::client::Client> {
    crate::cluster::connect(&app.cfg.bootstrap, app.cfg.timeout).await
}

/// A topic's page found its topic: the page's client, the Metadata
/// snapshot that named it (brokers included) and the topic itself.
pub(super) struct Found {
    pub c: fjord_kafka::client::Client,
    pub s: crate::cluster::Snapshot,
    pub t: crate::cluster::Topic,
}

/// `name` as Metadata describes it, or None when it does not exist (the
/// caller answers [`missing`] in its own form: a 404 page, JSON, a refusal).
pub(super) async fn find_topic(app: &App, name: &str) -> anyhow::Result<Option<Found>> {
    let mut c = client(app).await?;
    let s = crate::cluster::snapshot(&mut c, Some(&[name.to_string()]), &app.seen).await?;
    let Some(t) = s.topic(name).filter(|t| t.error_code == 0).cloned() else {
        return Ok(None);
    };
    Ok(Some(Found { c, s, t }))
}

/// What a page for a topic that does not exist says.
pub(super) fn missing(name: &str) -> String {
    format!("Topic '{name}' does not exist.")
}

/// The 404 page for a topic that does not exist.
pub(super) fn no_such_topic(app: &App, name: &str) -> Reply {
    let body = crate::html::notice("error", &missing(name));
    app.page(StatusCode::NOT_FOUND, name, &body)
}
