//! The client's SASL exchange on a freshly opened connection, as Kafka's
//! clients run it: SaslHandshake v1 naming the mechanism, then one
//! SaslAuthenticate per token — PLAIN's single `\0user\0password`, or
//! SCRAM's client-first and client-final, with the server's final signature
//! checked (a broker that does not know the credential is not trusted).

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
use kafka_protocol::protocol::StrBytes;

use super::scram::ClientExchange;
use super::{Mechanism, SaslCredentials};
use crate::client::{ClientError, Conn};

fn auth_err(conn: &Conn, msg: String) -> ClientError {
    ClientError::Auth {
        addr: conn.addr().to_string(),
        msg,
    }
}

/// One SaslAuthenticate round: the server's token, or its refusal.
async fn round(conn: &mut Conn, mech: Mechanism, token: Vec<u8>) -> Result<Bytes, ClientError> {
    let req = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token));
    let resp = conn.call(&req, 2).await?;
    if resp.error_code != 0 {
        let name = KafkaName(resp.error_code);
        return Err(auth_err(
            conn,
            format!(
                "{name} with SASL mechanism {}: {}",
                mech.name(),
                resp.error_message
                    .as_deref()
                    .unwrap_or("authentication failed")
            ),
        ));
    }
    Ok(resp.auth_bytes)
}

struct KafkaName(i16);
impl std::fmt::Display for KafkaName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::client::KafkaError::new(self.0, None).name())
    }
}

/// Authenticate `conn` (ApiVersions already done) as `creds`.
pub(crate) async fn authenticate(
    conn: &mut Conn,
    creds: &SaslCredentials,
) -> Result<(), ClientError> {
    let mech = creds.mechanism;
    let hs = SaslHandshakeRequest::default()
        .with_mechanism(StrBytes::from_string(mech.name().to_string()));
    let resp = conn.call(&hs, 1).await?;
    if resp.error_code == ResponseError::UnsupportedSaslMechanism.code() {
        let offered: Vec<String> = resp.mechanisms.iter().map(|m| m.to_string()).collect();
        return Err(auth_err(
            conn,
            format!(
                "UNSUPPORTED_SASL_MECHANISM: the broker does not enable {} (it offers {})",
                mech.name(),
                offered.join(", ")
            ),
        ));
    }
    if resp.error_code != 0 {
        return Err(auth_err(
            conn,
            format!("SaslHandshake: {}", KafkaName(resp.error_code)),
        ));
    }
    match mech {
        Mechanism::Plain => {
            let token = format!("\0{}\0{}", creds.username, creds.password).into_bytes();
            round(conn, mech, token).await?;
        }
        Mechanism::Scram(m) => {
            let mut ex = ClientExchange::new(m, &creds.username, &creds.password);
            let server_first = round(conn, mech, ex.first()).await?;
            let fin = ex
                .final_message(&server_first)
                .map_err(|e| auth_err(conn, format!("{}: server-first: {e}", m.name())))?;
            let server_final = round(conn, mech, fin).await?;
            ex.verify(&server_final)
                .map_err(|e| auth_err(conn, format!("{}: server signature: {e}", m.name())))?;
        }
    }
    Ok(())
}
