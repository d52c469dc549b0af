//! The coordinator's two HTTP listeners, as ZooKeeper has them: the
//! Prometheus endpoint (`metricsProvider.*`, `prom`) and the AdminServer
//! (`admin.*`, `admin`). Both are GET-only route tables over one small
//! HTTP/1.1 server (hyper); they read the member's state through the same
//! handles the client path uses and never change it.

pub mod admin;
mod listener;
pub mod prom;

pub use listener::{bind, serve, Handles, Reply, Route};
