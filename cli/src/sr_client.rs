//! The CLI's handles on REST services (the Schema Registry for `fjord schema`
//! and the typed producer/consumer, a Connect worker for `fjord connect`):
//! fjord-http's JSON client, named for the flag that gave its URL.

use std::time::Duration;

use anyhow::anyhow;
pub use fjord_http::client::{enc, Rest};

/// Long enough for a registry behind a busy broker; a dead one still fails the command.
const TIMEOUT: Duration = Duration::from_secs(30);

/// `flag` is the option the URL came from (`--schema-registry`), named in errors.
pub fn service(what: &'static str, flag: &str, url: &str) -> anyhow::Result<Rest> {
    Rest::new(what, url, TIMEOUT).map_err(|e| anyhow!("{flag} {url}: {e}"))
}
