//! The client's side of a SASL exchange as Kafka's clients run it, without
//! I/O: the tokens to carry in SaslAuthenticate, one per round — PLAIN's
//! single `\0user\0password`, or SCRAM's client-first and client-final,
//! with the server's final signature checked (a broker that does not know
//! the credential is not trusted). `client::conn` sends SaslHandshake and
//! carries the tokens; keeping the exchange apart from the connection
//! keeps the dependency one way (the connection uses security, not back).

use super::scram::ClientExchange;
use super::settings::{Mechanism, SaslCredentials};

/// Where an exchange stands.
enum State {
    /// PLAIN: the one token not yet sent.
    Plain(Vec<u8>),
    /// SCRAM, before client-first.
    ScramFirst(ClientExchange),
    /// SCRAM, client-first sent: the server-first is awaited.
    ScramFinal(ClientExchange),
    /// SCRAM, client-final sent: the server's signature is awaited.
    ScramVerify(ClientExchange),
    Done,
}

/// One client exchange for `creds`.
pub(crate) struct SaslExchange {
    state: State,
}

impl SaslExchange {
    pub(crate) fn new(creds: &SaslCredentials) -> SaslExchange {
        let state = match creds.mechanism {
            Mechanism::Plain => {
                State::Plain(format!("\0{}\0{}", creds.username, creds.password).into_bytes())
            }
            Mechanism::Scram(m) => {
                State::ScramFirst(ClientExchange::new(m, &creds.username, &creds.password))
            }
        };
        SaslExchange { state }
    }

    /// The next token to send, given the server's answer to the last one
    /// (`None` before the first round); `Ok(None)` once authenticated. An
    /// error says which step the server's token failed.
    pub(crate) fn step(&mut self, server: Option<&[u8]>) -> Result<Option<Vec<u8>>, String> {
        let server = server.unwrap_or_default();
        match std::mem::replace(&mut self.state, State::Done) {
            State::Plain(token) => Ok(Some(token)),
            State::ScramFirst(ex) => {
                let first = ex.first();
                self.state = State::ScramFinal(ex);
                Ok(Some(first))
            }
            State::ScramFinal(mut ex) => {
                let fin = ex
                    .final_message(server)
                    .map_err(|e| format!("server-first: {e}"))?;
                self.state = State::ScramVerify(ex);
                Ok(Some(fin))
            }
            State::ScramVerify(ex) => {
                ex.verify(server)
                    .map_err(|e| format!("server signature: {e}"))?;
                Ok(None)
            }
            State::Done => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::scram::ScramMechanism;

    fn creds(mechanism: Mechanism) -> SaslCredentials {
        SaslCredentials {
            mechanism,
            username: "alice".into(),
            password: "secret".into(),
        }
    }

    #[test]
    fn plain_is_one_token() {
        let mut ex = SaslExchange::new(&creds(Mechanism::Plain));
        assert_eq!(ex.step(None), Ok(Some(b"\0alice\0secret".to_vec())));
        assert_eq!(ex.step(Some(b"")), Ok(None));
    }

    #[test]
    fn scram_refuses_a_malformed_server_first_and_a_wrong_signature() {
        let mech = Mechanism::Scram(ScramMechanism::Sha256);
        let mut ex = SaslExchange::new(&creds(mech));
        let first = ex.step(None).ok().flatten().unwrap_or_default();
        assert!(first.starts_with(b"n,,n=alice,r="), "{first:?}");
        let e = ex.step(Some(b"garbage")).err().unwrap_or_default();
        assert!(e.starts_with("server-first:"), "{e}");

        let mut ex = SaslExchange::new(&creds(mech));
        let first =
            String::from_utf8(ex.step(None).ok().flatten().unwrap_or_default()).unwrap_or_default();
        let nonce = first.rsplit("r=").next().unwrap_or_default().to_string();
        let server_first = format!("r={nonce}srv,s=c2FsdA==,i=4096");
        assert!(matches!(
            ex.step(Some(server_first.as_bytes())),
            Ok(Some(_))
        ));
        let e = ex.step(Some(b"v=AAAA")).err().unwrap_or_default();
        assert!(e.starts_with("server signature:"), "{e}");
    }
}
