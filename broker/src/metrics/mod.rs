//! The broker's own counters, cheap enough for the produce path, and the
//! Prometheus text they render to. This is the bottom layer: `api`,
//! `replica`, `server` and `broker` count through an `Arc<BrokerMetrics>`
//! handed to them; the HTTP endpoints that read these counters together
//! with the broker's state live in `ops` (the top layer, beside `server`).
//!
//! * `counters` — `BrokerMetrics`: per-topic and all-topic message/byte
//!   counters, ISR shrinks/expands, per-API request counts and latency
//!   histograms, the broker state; atomics and one `DashMap` of topics;
//! * `histogram` — a fixed-bucket latency histogram on atomics;
//! * `text` — Prometheus' text exposition format 0.0.4 (escaping, families);
//! * `process` — `process_*` metrics read from `/proc/self`.
//!
//! Children never reference this file, only their siblings.

pub mod counters;
pub mod histogram;
pub mod process;
pub mod text;
