//! The operations listener: HTTP/1.1 through `hyper` (as the Schema
//! Registry's), GET only, four routes:
//!
//! | path | answer |
//! |---|---|
//! | `/metrics` | this broker's metrics (`broker_metrics`), Prometheus text |
//! | `/metrics/cluster` | kafka_exporter's cluster metrics (`cluster_metrics`) |
//! | `/health` | 200 while the process serves requests |
//! | `/ready` | 200 when ready (`health`), else 503 with the reasons as JSON |

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::{broker_metrics, cluster_metrics, health};
use crate::broker::Broker;
use crate::metrics::text::CONTENT_TYPE;

/// Serve until shutdown (the accept loop is fjord-http's).
pub async fn serve(listener: TcpListener, b: Arc<Broker>, shutdown: watch::Receiver<bool>) {
    fjord_http::serve(listener, "metrics", shutdown, move |req| {
        let b = b.clone();
        async move { handle(&b, req).await }
    })
    .await
}

fn reply(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(content_type),
    );
    r
}

const JSON: &str = "application/json";

async fn handle(b: &Arc<Broker>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            JSON,
            json!({"error": "only GET is served"}).to_string(),
        );
    }
    match req.uri().path() {
        "/metrics" => reply(StatusCode::OK, CONTENT_TYPE, broker_metrics::render(b)),
        "/metrics/cluster" => reply(
            StatusCode::OK,
            CONTENT_TYPE,
            cluster_metrics::render(b).await,
        ),
        "/health" => reply(
            StatusCode::OK,
            JSON,
            json!({"status": "UP", "broker": b.id()}).to_string(),
        ),
        "/ready" => {
            let why = health::not_ready(b);
            if why.is_empty() {
                reply(
                    StatusCode::OK,
                    JSON,
                    json!({"ready": true, "broker": b.id()}).to_string(),
                )
            } else {
                reply(
                    StatusCode::SERVICE_UNAVAILABLE,
                    JSON,
                    json!({"ready": false, "broker": b.id(), "reasons": why}).to_string(),
                )
            }
        }
        other => reply(
            StatusCode::NOT_FOUND,
            JSON,
            json!({"error": format!("no such path {other}; try /metrics, /metrics/cluster, /health, /ready")})
                .to_string(),
        ),
    }
}
