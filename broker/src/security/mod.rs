//! Connection security (issue 16, docs/architecture.md → Security): what a
//! listener demands before requests are served — TLS (`tls`), then SASL
//! (`sasl` driving `plain` or `scram`) — and who the connection then is
//! (`principal`: `User:alice`, `User:CN=...`, `User:ANONYMOUS`), the
//! identity ACLs will check. SCRAM credentials are stored in the coordinator
//! (`credentials`); `listener` builds each listener's settings from
//! `server.properties`; `reauth` decides KIP-368 session lifetimes and
//! re-authentication.
//!
//! Children reference only each other and `config`/`wire`; `server` drives
//! the connection states with them, `api` serves the SCRAM user APIs.

pub mod credentials;
pub mod listener;
pub mod plain;
pub mod principal;
pub mod reauth;
pub mod sasl;
pub mod scram;
pub mod tls;
