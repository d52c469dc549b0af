//! KIP-368 re-authentication, without I/O: how long an authenticated SASL
//! session lives (`connections.max.reauth.ms`, told to the client as
//! SaslAuthenticate's `session_lifetime_ms`), whether a SaslHandshake on an
//! authenticated connection begins a re-authentication, when a session has
//! expired (the connection is then closed at its next request), and what a
//! finished re-authentication must keep (the principal). `server` asks it
//! about every request of an authenticated SASL connection.

use std::time::{Duration, Instant};

/// Kafka starts at most one re-authentication a second on a connection; a
/// handshake sooner is served as any request after authentication is
/// (ILLEGAL_SASL_STATE), which keeps a client from spinning the exchange.
pub const MIN_REAUTH_INTERVAL: Duration = Duration::from_secs(1);

/// What to do with a request on an authenticated SASL connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Dispatch it as usual.
    Serve,
    /// A SaslHandshake that starts a re-authentication.
    BeginReauth,
    /// The session ended: close the connection (Kafka's
    /// "Disconnecting expired channel").
    Expired,
}

/// The `session_lifetime_ms` of a completed authentication: the configured
/// maximum (0 = off) for a client that spoke SaslAuthenticate v1 or later,
/// 0 for one that cannot re-authenticate (SaslAuthenticate v0, the raw v0
/// token flow). PLAIN and SCRAM credentials carry no lifetime of their own
/// (no delegation tokens), so the configured value is the answer, as Kafka's.
pub fn session_lifetime_ms(max_reauth_ms: u64, client_can_reauth: bool) -> u64 {
    if client_can_reauth {
        max_reauth_ms
    } else {
        0
    }
}

/// One connection's authenticated SASL session.
#[derive(Debug, Clone)]
pub struct AuthSession {
    pub mechanism: String,
    pub principal: String,
    /// When the session ends; None: never (lifetime 0).
    expires: Option<Instant>,
    last_reauth_start: Option<Instant>,
}

impl AuthSession {
    /// A session that began at `now` with `lifetime_ms` (0: never ends).
    pub fn new(mechanism: &str, principal: &str, lifetime_ms: u64, now: Instant) -> AuthSession {
        AuthSession {
            mechanism: mechanism.to_string(),
            principal: principal.to_string(),
            expires: expiry(lifetime_ms, now),
            last_reauth_start: None,
        }
    }

    /// Kafka's order: a handshake that may begin a re-authentication does,
    /// even on an expired session; anything else on an expired session closes.
    /// Sessions without a lifetime never re-authenticate (the handshake gets
    /// ILLEGAL_SASL_STATE from the request handlers) and never expire.
    pub fn verdict(&self, is_handshake: bool, now: Instant) -> Verdict {
        let Some(expires) = self.expires else {
            return Verdict::Serve;
        };
        let spaced = self
            .last_reauth_start
            .is_none_or(|t| now.saturating_duration_since(t) >= MIN_REAUTH_INTERVAL);
        if is_handshake && spaced {
            Verdict::BeginReauth
        } else if now > expires {
            Verdict::Expired
        } else {
            Verdict::Serve
        }
    }

    /// A re-authentication starts at `now`.
    pub fn begin(&mut self, now: Instant) {
        self.last_reauth_start = Some(now);
    }

    /// A re-authentication finished as `principal`: the session is extended
    /// by `lifetime_ms`, or, for another principal, refused with Kafka's
    /// message (the connection is then closed).
    pub fn complete(
        &mut self,
        principal: &str,
        lifetime_ms: u64,
        now: Instant,
    ) -> Result<(), String> {
        if principal != self.principal {
            return Err(format!(
                "Cannot change principals during re-authentication from {}: {}",
                self.principal, principal
            ));
        }
        self.expires = expiry(lifetime_ms, now);
        Ok(())
    }
}

fn expiry(lifetime_ms: u64, now: Instant) -> Option<Instant> {
    (lifetime_ms > 0).then(|| now + Duration::from_millis(lifetime_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetime_only_for_clients_that_can_reauthenticate() {
        assert_eq!(session_lifetime_ms(3000, true), 3000);
        assert_eq!(session_lifetime_ms(3000, false), 0);
        assert_eq!(session_lifetime_ms(0, true), 0);
    }

    #[test]
    fn no_lifetime_never_expires_nor_reauthenticates() {
        let t0 = Instant::now();
        let s = AuthSession::new("PLAIN", "User:alice", 0, t0);
        let later = t0 + Duration::from_secs(86_400);
        assert_eq!(s.verdict(false, later), Verdict::Serve);
        assert_eq!(s.verdict(true, later), Verdict::Serve);
    }

    #[test]
    fn expiry_reauth_and_spacing() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut s = AuthSession::new("SCRAM-SHA-512", "User:bob", 3000, t0);
        assert_eq!(s.verdict(false, t0 + ms(2999)), Verdict::Serve);
        assert_eq!(s.verdict(false, t0 + ms(3000)), Verdict::Serve);
        assert_eq!(s.verdict(false, t0 + ms(3001)), Verdict::Expired);
        // A handshake re-authenticates, even on an expired session.
        assert_eq!(s.verdict(true, t0 + ms(100)), Verdict::BeginReauth);
        assert_eq!(s.verdict(true, t0 + ms(5000)), Verdict::BeginReauth);
        s.begin(t0 + ms(2700));
        // Within a second of the last start: an ordinary request (served
        // before the expiry, closing after it).
        assert_eq!(s.verdict(true, t0 + ms(2900)), Verdict::Serve);
        assert_eq!(s.verdict(true, t0 + ms(3500)), Verdict::Expired);
        assert_eq!(s.verdict(true, t0 + ms(3700)), Verdict::BeginReauth);
        // The same principal extends the session from the completion.
        s.complete("User:bob", 3000, t0 + ms(2710)).unwrap();
        assert_eq!(s.verdict(false, t0 + ms(5700)), Verdict::Serve);
        assert_eq!(s.verdict(false, t0 + ms(5711)), Verdict::Expired);
        // Another principal is refused and leaves the session as it was.
        let e = s.complete("User:eve", 3000, t0 + ms(5000)).unwrap_err();
        assert!(
            e.contains("Cannot change principals during re-authentication"),
            "{e}"
        );
        assert_eq!(s.verdict(false, t0 + ms(5711)), Verdict::Expired);
    }
}
