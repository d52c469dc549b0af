//! fjord-http: the one HTTP/1.1 accept loop Fjord's REST listeners share
//! (the broker's Schema Registry and metrics/health endpoints, fjord-connect's
//! REST API): keep-alive connections on hyper, a task each, ended gracefully
//! at shutdown. Each listener brings only its handler. [`client`] is the
//! other side: the JSON client the CLI, the console and the Connect
//! converters call those services with.

pub mod client;
pub mod registry;

use std::convert::Infallible;
use std::future::Future;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// Accept connections on `listener` until `shutdown` changes, answering
/// every request with `handle`. `what` names the listener in log lines.
pub async fn serve<H, F>(
    listener: TcpListener,
    what: &'static str,
    mut shutdown: watch::Receiver<bool>,
    handle: H,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = shutdown.changed() => return,
        };
        let (stream, _) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, listener = what, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let handle = handle.clone();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let svc = service_fn(move |req| {
                let answer = handle(req);
                async move { Ok::<_, Infallible>(answer.await) }
            });
            let conn = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, listener = what, "HTTP connection ended");
                    }
                }
                _ = stop.changed() => conn.as_mut().graceful_shutdown(),
            }
        });
    }
}
