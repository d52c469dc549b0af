//! The small HTTP/1.1 server (hyper) both listeners run, and what a route
//! gets and gives: the member's [`Handles`] in, a [`Reply`] out. Apart from
//! `mod.rs` so that the route tables (`admin`, `prom`) depend on it and not
//! on their parent.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::core::Core;
use crate::raft::Ensemble;

/// What the HTTP endpoints read: the state, the config, the ensemble.
#[derive(Clone)]
pub struct Handles {
    pub core: Arc<Mutex<Core>>,
    pub cfg: Arc<Config>,
    pub ens: Option<Arc<Ensemble>>,
}

impl Handles {
    /// The `mntr` report at this moment.
    pub fn report(&self) -> crate::monitor::Report {
        let quorum = self.ens.as_ref().map(|e| e.quorum_view());
        crate::monitor::collect(&self.core.lock(), quorum.as_ref())
    }
}

/// One answer: status, content type, body.
pub struct Reply {
    pub status: StatusCode,
    pub content_type: &'static str,
    pub body: String,
}

impl Reply {
    pub fn new(status: StatusCode, content_type: &'static str, body: String) -> Reply {
        Reply {
            status,
            content_type,
            body,
        }
    }

    pub fn not_found(path: &str) -> Reply {
        Reply::new(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            format!("no such path: {path}\n"),
        )
    }
}

/// A route table: method and path (no query) in, reply out.
pub type Route = Arc<dyn Fn(&Handles, &str) -> Reply + Send + Sync>;

/// Binds `addr`; the caller decides whether a taken port stops start-up.
pub async fn bind(addr: SocketAddr, what: &str) -> std::io::Result<TcpListener> {
    let l = TcpListener::bind(addr).await?;
    tracing::info!(%addr, "{what} listening");
    Ok(l)
}

/// Serves `route` on `listener` until `stop`, one task per connection.
pub async fn serve(listener: TcpListener, h: Handles, route: Route, stop: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.cancelled() => return,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "http: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let (h, route, stop) = (h.clone(), route.clone(), stop.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |req: Request<Incoming>| {
                let (h, route) = (h.clone(), route.clone());
                async move { Ok::<_, Infallible>(answer(&h, &route, &req)) }
            });
            let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "http connection ended");
                    }
                }
                _ = stop.cancelled() => conn.as_mut().graceful_shutdown(),
            }
        });
    }
}

fn answer(h: &Handles, route: &Route, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let reply = if req.method() == Method::GET || req.method() == Method::HEAD {
        route(h, req.uri().path())
    } else {
        Reply::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain; charset=utf-8",
            "only GET is served\n".into(),
        )
    };
    let body = if req.method() == Method::HEAD {
        Bytes::new()
    } else {
        Bytes::from(reply.body)
    };
    let mut r = Response::new(Full::new(body));
    *r.status_mut() = reply.status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(reply.content_type),
    );
    r
}
