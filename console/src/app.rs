//! What every page receives: [`App`], the handles a request shares (the
//! settings, the CSRF token, the brokers seen, the registry's schemas, the
//! sampler's history), the parsed [`Req`] and the page's [`Reply`]. Apart
//! from `server` (which parses and renders) so that the pages and the
//! server both depend on it, and not on each other.

use std::collections::BTreeMap;
use std::sync::Arc;

use hyper::{Method, StatusCode};

use crate::cluster::Seen;
use crate::config::ConsoleConfig;
use crate::html::{self, Frame};
use crate::sampler::History;

/// What every request shares.
pub struct App {
    pub cfg: ConsoleConfig,
    /// The token every state-changing form carries; random per process, so
    /// another site cannot know it (it cannot read our pages).
    pub csrf: String,
    pub seen: Arc<Seen>,
    /// Schemas by id, for values written through the registry.
    pub schemas: crate::typed::Schemas,
    /// What the sampler saw, for the charts (the sampler holds it too).
    pub history: Arc<History>,
}

impl App {
    pub fn new(cfg: ConsoleConfig) -> App {
        use rand::Rng;
        let mut rng = rand::rng();
        let csrf: String = (0..32)
            .map(|_| format!("{:02x}", rng.random::<u8>()))
            .collect();
        App {
            cfg,
            csrf,
            seen: Arc::default(),
            schemas: crate::typed::Schemas::default(),
            history: Arc::default(),
        }
    }

    pub fn frame(&self) -> Frame {
        Frame {
            read_only: self.cfg.read_only,
            zk: self.cfg.zookeeper.is_some(),
            registry: self.cfg.schema_registry.is_some(),
            connect: self.cfg.connect.is_some(),
        }
    }

    /// A whole page in the frame.
    pub fn page(&self, status: StatusCode, title: &str, body: &str) -> Reply {
        Reply::Html(status, html::page(&self.frame(), title, body))
    }

    /// An error page: `what` failed because of `e`.
    pub fn error(&self, status: StatusCode, what: &str, e: &str) -> Reply {
        let body = format!(
            "{}<p><a href=\"javascript:location.reload()\">Try again</a></p>",
            html::notice("error", &format!("{what}: {e}"))
        );
        self.page(status, what, &body)
    }
}

/// A page's answer.
pub enum Reply {
    Html(StatusCode, String),
    /// 303 See Other to a URL (after a successful POST).
    Redirect(String),
    /// The style sheet shipped inside the binary.
    Css,
    /// The script shipped inside the binary.
    Script,
    /// A JSON answer (the live tail's polls).
    Json(String),
}

/// A parsed request: method, decoded path segments, query and form fields.
pub struct Req {
    pub method: Method,
    pub segs: Vec<String>,
    pub query: BTreeMap<String, String>,
    pub form: BTreeMap<String, String>,
}

impl Req {
    pub fn q(&self, k: &str) -> Option<&str> {
        self.query
            .get(k)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }
    pub fn f(&self, k: &str) -> &str {
        self.form.get(k).map(String::as_str).unwrap_or("")
    }
}
