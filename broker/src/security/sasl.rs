//! One connection's SASL exchange, without I/O: the mechanism chosen by
//! SaslHandshake, then each client token (from SaslAuthenticate, or raw
//! frames after a v0 handshake) answered with the next server token, until
//! the client is authenticated (a principal) or refused. PLAIN takes one
//! token; SCRAM two (client-first → server-first, client-final →
//! server-final). A refusal carries the reason for the log and Kafka's
//! generic message for the client.

use super::credentials::ScramStore;
use super::plain::{parse_plain, PlainUsers};
use super::principal::user;
use super::scram::{ClientFinal, ClientFirst, ScramMechanism, ServerExchange};

/// Largest SASL token accepted before authentication (Kafka's
/// SaslServerAuthenticator.MAX_RECEIVE_SIZE).
pub const MAX_TOKEN: usize = 512 * 1024;

/// A listener's SASL settings.
#[derive(Debug, Clone, Default)]
pub struct SaslConfig {
    /// Enabled mechanisms, upper case, in configured order.
    pub mechanisms: Vec<String>,
    /// PLAIN's users (from the JAAS config); None: PLAIN has no users.
    pub plain: Option<PlainUsers>,
    /// connections.max.reauth.ms by mechanism (0 = sessions do not expire).
    pub max_reauth_ms: std::collections::BTreeMap<String, u64>,
}

impl SaslConfig {
    pub fn enabled(&self, mech: &str) -> bool {
        self.mechanisms.iter().any(|m| m == mech)
    }

    /// KIP-368's maximum session lifetime for `mech` (0: off).
    pub fn max_reauth_ms(&self, mech: &str) -> u64 {
        self.max_reauth_ms.get(mech).copied().unwrap_or(0)
    }
}

/// What one step produced.
#[derive(Debug)]
pub enum Step {
    /// Send this token and wait for the next.
    Continue(Vec<u8>),
    /// Authenticated: send the final token (may be empty).
    Done { token: Vec<u8>, principal: String },
    /// Refused: `reason` for the log, `message` for the client.
    Failed { reason: String, message: String },
}

enum Mech {
    Plain,
    Scram(ScramMechanism),
}

enum State {
    First,
    ScramFinal(Box<ServerExchange>),
    Finished,
}

/// One connection's exchange after SaslHandshake chose `mech`.
pub struct SaslSession {
    mech: Mech,
    state: State,
}

fn failed(mech: &str, reason: impl Into<String>) -> Step {
    Step::Failed {
        reason: reason.into(),
        message: format!(
            "Authentication failed during authentication due to invalid credentials with SASL mechanism {mech}"
        ),
    }
}

impl SaslSession {
    /// A session for an enabled mechanism we implement; None otherwise.
    pub fn new(cfg: &SaslConfig, mech: &str) -> Option<SaslSession> {
        if !cfg.enabled(mech) {
            return None;
        }
        let m = match mech {
            "PLAIN" => Mech::Plain,
            m => Mech::Scram(ScramMechanism::parse(m)?),
        };
        Some(SaslSession {
            mech: m,
            state: State::First,
        })
    }

    /// The mechanism's name, upper case (as SaslHandshake chose it).
    pub fn name(&self) -> &'static str {
        match self.mech {
            Mech::Plain => "PLAIN",
            Mech::Scram(m) => m.name(),
        }
    }

    /// Feed the client's next token.
    pub async fn step(&mut self, cfg: &SaslConfig, store: &dyn ScramStore, token: &[u8]) -> Step {
        let name = self.name();
        let state = std::mem::replace(&mut self.state, State::Finished);
        match (&self.mech, state) {
            (Mech::Plain, State::First) => {
                let Some(m) = parse_plain(token) else {
                    return failed(name, "malformed PLAIN message");
                };
                if !m.authzid.is_empty() && m.authzid != m.username {
                    return failed(
                        name,
                        format!("user {} may not act as {}", m.username, m.authzid),
                    );
                }
                let ok = cfg
                    .plain
                    .as_ref()
                    .is_some_and(|u| u.check(&m.username, &m.password));
                if !ok {
                    return failed(name, format!("invalid password for user {:?}", m.username));
                }
                Step::Done {
                    token: Vec::new(),
                    principal: user(&m.username),
                }
            }
            (Mech::Scram(mech), State::First) => {
                let first = match ClientFirst::parse(token) {
                    Ok(f) => f,
                    Err(e) => return failed(name, e.to_string()),
                };
                if let Some(a) = &first.authzid {
                    if *a != first.username {
                        return failed(name, format!("user {} may not act as {a}", first.username));
                    }
                }
                if first
                    .extensions
                    .iter()
                    .any(|(k, v)| k == "tokenauth" && v == "true")
                {
                    return failed(name, "delegation tokens are not supported");
                }
                let creds = match store.get(&first.username).await {
                    Ok(c) => c,
                    Err(e) => return failed(name, format!("credential store: {e}")),
                };
                let Some(cred) = creds.get(mech).cloned() else {
                    return failed(
                        name,
                        format!("no {} credential for user {:?}", name, first.username),
                    );
                };
                let ex = ServerExchange::start(*mech, first, cred);
                let out = ex.server_first.clone().into_bytes();
                self.state = State::ScramFinal(Box::new(ex));
                Step::Continue(out)
            }
            (Mech::Scram(_), State::ScramFinal(ex)) => {
                let fin = match ClientFinal::parse(token) {
                    Ok(f) => f,
                    Err(e) => return failed(name, e.to_string()),
                };
                match ex.finish(&fin) {
                    Ok(v) => Step::Done {
                        token: v.into_bytes(),
                        principal: user(&ex.first.username),
                    },
                    Err(e) => failed(name, format!("user {:?}: {e}", ex.first.username)),
                }
            }
            _ => failed(name, "token after the exchange ended"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::credentials::FileStore;
    use super::super::scram::ScramCredential;
    use super::*;
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine;

    fn cfg() -> SaslConfig {
        SaslConfig {
            mechanisms: vec!["PLAIN".into(), "SCRAM-SHA-512".into()],
            plain: PlainUsers::from_jaas(r#"X required user_alice="pw";"#),
            ..Default::default()
        }
    }

    #[tokio::test]
    async fn plain_good_and_bad() {
        let store = FileStore::in_memory();
        let mut s = SaslSession::new(&cfg(), "PLAIN").unwrap();
        match s.step(&cfg(), &store, b"\0alice\0pw").await {
            Step::Done { principal, .. } => assert_eq!(principal, "User:alice"),
            o => panic!("{o:?}"),
        }
        let mut s = SaslSession::new(&cfg(), "PLAIN").unwrap();
        assert!(matches!(
            s.step(&cfg(), &store, b"\0alice\0no").await,
            Step::Failed { .. }
        ));
        assert!(SaslSession::new(&cfg(), "SCRAM-SHA-256").is_none());
        assert!(SaslSession::new(&cfg(), "GSSAPI").is_none());
    }

    /// A full SCRAM-SHA-512 exchange computed the client's way.
    #[tokio::test]
    async fn scram_exchange() {
        let store = FileStore::in_memory();
        let m = ScramMechanism::Sha512;
        let cred = ScramCredential::new(m, b"secret", None, 4096);
        store.set("bob", m, Some(cred.clone())).await.unwrap();
        let mut s = SaslSession::new(&cfg(), "SCRAM-SHA-512").unwrap();
        let Step::Continue(sf) = s.step(&cfg(), &store, b"n,,n=bob,r=abc").await else {
            panic!()
        };
        let sf = String::from_utf8(sf).unwrap();
        let nonce = sf
            .split(',')
            .next()
            .unwrap()
            .strip_prefix("r=")
            .unwrap()
            .to_string();
        assert!(nonce.starts_with("abc") && nonce.len() > 3);
        let salted = m.salted_password(b"secret", &cred.salt, 4096);
        use hmac::{Hmac, Mac};
        use sha2::{Digest, Sha512};
        let hm = |k: &[u8], d: &[u8]| {
            let mut h = Hmac::<Sha512>::new_from_slice(k).unwrap();
            h.update(d);
            h.finalize().into_bytes().to_vec()
        };
        let ck = hm(&salted, b"Client Key");
        let sk = Sha512::digest(&ck).to_vec();
        let without = format!("c=biws,r={nonce}");
        let am = format!("n=bob,r=abc,{sf},{without}");
        let sig = hm(&sk, am.as_bytes());
        let proof: Vec<u8> = ck.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        let fin = format!("{without},p={}", B64.encode(&proof));
        match s.step(&cfg(), &store, fin.as_bytes()).await {
            Step::Done { token, principal } => {
                assert_eq!(principal, "User:bob");
                let server_key = hm(&salted, b"Server Key");
                let v = format!("v={}", B64.encode(hm(&server_key, am.as_bytes())));
                assert_eq!(String::from_utf8(token).unwrap(), v);
            }
            o => panic!("{o:?}"),
        }
        // Unknown user: refused at the first message.
        let mut s = SaslSession::new(&cfg(), "SCRAM-SHA-512").unwrap();
        assert!(matches!(
            s.step(&cfg(), &store, b"n,,n=eve,r=abc").await,
            Step::Failed { .. }
        ));
    }
}
