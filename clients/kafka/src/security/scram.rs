//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677) as Kafka speaks them:
//! the stored credential (`salt`, `stored_key`, `server_key`, `iterations`,
//! in Kafka's string form for `/config/users/<user>`), the three messages a
//! client sends and the server's answers, and the proof check — and the
//! client's side of the exchange (`ClientExchange`), so the broker and
//! fjord-kafka's client share one codec. The hashes,
//! HMAC and PBKDF2 are RustCrypto's (`sha2`, `hmac`, `pbkdf2`); only the
//! message grammar is written here. Parsers take untrusted bytes and never
//! panic (fuzzed: fuzz/fuzz_targets/scram_messages.rs).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

/// Kafka's bounds on a credential's iteration count.
pub const MIN_ITERATIONS: u32 = 4096;
pub const MAX_ITERATIONS: u32 = 16384;

/// A SCRAM mechanism, by its SASL name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ScramMechanism {
    Sha256,
    Sha512,
}

impl ScramMechanism {
    /// `SCRAM-SHA-256` / `SCRAM-SHA-512`.
    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }
    /// Parse a SASL mechanism name.
    pub fn parse(s: &str) -> Option<ScramMechanism> {
        match s.trim().to_ascii_uppercase().as_str() {
            "SCRAM-SHA-256" => Some(ScramMechanism::Sha256),
            "SCRAM-SHA-512" => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }
    /// The protocol's ScramMechanism enum (DescribeUserScramCredentials).
    pub fn code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }
    /// From the protocol's enum.
    pub fn from_code(c: i8) -> Option<ScramMechanism> {
        match c {
            1 => Some(ScramMechanism::Sha256),
            2 => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
            ScramMechanism::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        // HMAC accepts keys of any length: new_from_slice cannot fail.
        match self {
            ScramMechanism::Sha256 => match Hmac::<Sha256>::new_from_slice(key) {
                Ok(mut m) => {
                    m.update(data);
                    m.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            },
            ScramMechanism::Sha512 => match Hmac::<Sha512>::new_from_slice(key) {
                Ok(mut m) => {
                    m.update(data);
                    m.finalize().into_bytes().to_vec()
                }
                Err(_) => Vec::new(),
            },
        }
    }

    /// Hi() of RFC 5802: PBKDF2 with this HMAC.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => {
                let mut out = [0u8; 32];
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out);
                out.to_vec()
            }
            ScramMechanism::Sha512 => {
                let mut out = [0u8; 64];
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out);
                out.to_vec()
            }
        }
    }
}

/// What the server keeps of a SCRAM password (never the password itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: u32,
}

impl ScramCredential {
    /// Derive from a password (a random salt when `salt` is None).
    pub fn new(
        mech: ScramMechanism,
        password: &[u8],
        salt: Option<&[u8]>,
        iterations: u32,
    ) -> ScramCredential {
        let salt = match salt {
            Some(s) => s.to_vec(),
            None => {
                let mut s = vec![0u8; 16];
                rand::Rng::fill(&mut rand::rng(), &mut s[..]);
                s
            }
        };
        let salted = mech.salted_password(password, &salt, iterations);
        Self::from_salted(mech, &salted, salt, iterations)
    }

    /// From SaltedPassword (AlterUserScramCredentials sends that, not the password).
    pub fn from_salted(
        mech: ScramMechanism,
        salted: &[u8],
        salt: Vec<u8>,
        iterations: u32,
    ) -> ScramCredential {
        let client_key = mech.hmac(salted, b"Client Key");
        ScramCredential {
            stored_key: mech.hash(&client_key),
            server_key: mech.hmac(salted, b"Server Key"),
            salt,
            iterations,
        }
    }

    /// Kafka's string form (ScramCredentialUtils): base64 fields.
    pub fn to_kafka_string(&self) -> String {
        format!(
            "salt={},stored_key={},server_key={},iterations={}",
            B64.encode(&self.salt),
            B64.encode(&self.stored_key),
            B64.encode(&self.server_key),
            self.iterations
        )
    }

    /// Parse Kafka's string form.
    pub fn parse_kafka_string(s: &str) -> Option<ScramCredential> {
        let (mut salt, mut stored, mut server, mut iter) = (None, None, None, None);
        for part in s.split(',') {
            let (k, v) = part.split_once('=')?;
            match k.trim() {
                "salt" => salt = Some(B64.decode(v.trim()).ok()?),
                "stored_key" => stored = Some(B64.decode(v.trim()).ok()?),
                "server_key" => server = Some(B64.decode(v.trim()).ok()?),
                "iterations" => iter = Some(v.trim().parse().ok()?),
                _ => {}
            }
        }
        Some(ScramCredential {
            salt: salt?,
            stored_key: stored?,
            server_key: server?,
            iterations: iter?,
        })
    }
}

/// Why a SCRAM message was refused (logged; the client only hears a generic failure).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    #[error("malformed SCRAM message: {0}")]
    Malformed(&'static str),
    #[error("channel binding is not supported")]
    ChannelBinding,
    #[error("nonce mismatch")]
    Nonce,
    #[error("invalid proof")]
    Proof,
}

/// The client's first message: `gs2-header client-first-bare`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFirst {
    /// The gs2 header as sent (`n,,` / `y,,` / with `a=`), echoed base64 in `c=`.
    pub gs2_header: String,
    pub authzid: Option<String>,
    pub username: String,
    pub nonce: String,
    /// `n=...,r=...[,ext...]`: the part that enters AuthMessage.
    pub bare: String,
    /// Extensions (`tokenauth=true` for delegation tokens), as sent.
    pub extensions: Vec<(String, String)>,
}

/// `saslname` of RFC 5802: `=2C` is `,`, `=3D` is `=`; any other `=` is an error.
fn decode_saslname(s: &str) -> Result<String, ScramError> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let esc = rest
            .get(i..i + 3)
            .ok_or(ScramError::Malformed("bad escape"))?;
        match esc {
            "=2C" => out.push(','),
            "=3D" => out.push('='),
            _ => return Err(ScramError::Malformed("bad escape")),
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Ok(out)
}

/// `printable` of RFC 5802 (a nonce): ASCII 0x21..0x7e except `,`.
fn printable(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

impl ClientFirst {
    pub fn parse(msg: &[u8]) -> Result<ClientFirst, ScramError> {
        let s = std::str::from_utf8(msg).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let (cb, rest) = s
            .split_once(',')
            .ok_or(ScramError::Malformed("no gs2 header"))?;
        match cb {
            "n" | "y" => {}
            c if c.starts_with("p=") => return Err(ScramError::ChannelBinding),
            _ => return Err(ScramError::Malformed("bad channel binding flag")),
        }
        let (authz, bare) = rest
            .split_once(',')
            .ok_or(ScramError::Malformed("no gs2 header"))?;
        let authzid = match authz {
            "" => None,
            a => Some(decode_saslname(
                a.strip_prefix("a=")
                    .ok_or(ScramError::Malformed("bad authzid"))?,
            )?),
        };
        let gs2_header = format!("{cb},{authz},");
        let mut parts = bare.split(',');
        let user = parts
            .next()
            .and_then(|p| p.strip_prefix("n="))
            .ok_or(ScramError::Malformed("no username"))?;
        let nonce = parts
            .next()
            .and_then(|p| p.strip_prefix("r="))
            .ok_or(ScramError::Malformed("no nonce"))?;
        if !printable(nonce) {
            return Err(ScramError::Malformed("bad nonce"));
        }
        let mut extensions = Vec::new();
        for p in parts {
            let (k, v) = p
                .split_once('=')
                .ok_or(ScramError::Malformed("bad extension"))?;
            extensions.push((k.to_string(), v.to_string()));
        }
        let username = decode_saslname(user)?;
        if username.is_empty() {
            return Err(ScramError::Malformed("empty username"));
        }
        Ok(ClientFirst {
            gs2_header,
            authzid,
            username,
            nonce: nonce.to_string(),
            bare: bare.to_string(),
            extensions,
        })
    }
}

/// The client's final message: `c=...,r=...[,ext],p=...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientFinal {
    pub channel_binding: Vec<u8>,
    pub nonce: String,
    pub proof: Vec<u8>,
    /// Everything before `,p=`: the part that enters AuthMessage.
    pub without_proof: String,
}

impl ClientFinal {
    pub fn parse(msg: &[u8]) -> Result<ClientFinal, ScramError> {
        let s = std::str::from_utf8(msg).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let i = s.rfind(",p=").ok_or(ScramError::Malformed("no proof"))?;
        let without_proof = &s[..i];
        let proof = B64
            .decode(&s[i + 3..])
            .map_err(|_| ScramError::Malformed("proof not base64"))?;
        let mut parts = without_proof.split(',');
        let cb = parts
            .next()
            .and_then(|p| p.strip_prefix("c="))
            .ok_or(ScramError::Malformed("no channel binding"))?;
        let channel_binding = B64
            .decode(cb)
            .map_err(|_| ScramError::Malformed("channel binding not base64"))?;
        let nonce = parts
            .next()
            .and_then(|p| p.strip_prefix("r="))
            .ok_or(ScramError::Malformed("no nonce"))?;
        Ok(ClientFinal {
            channel_binding,
            nonce: nonce.to_string(),
            proof,
            without_proof: without_proof.to_string(),
        })
    }
}

/// The server side of one exchange after the client's first message.
#[derive(Debug, Clone)]
pub struct ServerExchange {
    pub mech: ScramMechanism,
    pub first: ClientFirst,
    pub server_first: String,
    pub nonce: String,
    pub cred: ScramCredential,
}

impl ServerExchange {
    /// Answer a client-first with `r=<client+server nonce>,s=<salt>,i=<n>`.
    pub fn start(
        mech: ScramMechanism,
        first: ClientFirst,
        cred: ScramCredential,
    ) -> ServerExchange {
        // Alphanumeric, as Kafka's ScramFormatter makes them.
        let rnd: String = rand::Rng::sample_iter(rand::rng(), rand::distr::Alphanumeric)
            .take(24)
            .map(char::from)
            .collect();
        let nonce = format!("{}{}", first.nonce, rnd);
        let server_first = format!(
            "r={},s={},i={}",
            nonce,
            B64.encode(&cred.salt),
            cred.iterations
        );
        ServerExchange {
            mech,
            first,
            server_first,
            nonce,
            cred,
        }
    }

    /// Check the client's proof; on success the server-final `v=...`.
    pub fn finish(&self, fin: &ClientFinal) -> Result<String, ScramError> {
        if fin.channel_binding != self.first.gs2_header.as_bytes() {
            return Err(ScramError::ChannelBinding);
        }
        // Kafka's ScramSaslServer checks `endsWith`: librdkafka before 2.1
        // sends its own nonce again in front of the combined one.
        if !fin.nonce.ends_with(&self.nonce) {
            return Err(ScramError::Nonce);
        }
        let auth_message = format!(
            "{},{},{}",
            self.first.bare, self.server_first, fin.without_proof
        );
        let client_sig = self
            .mech
            .hmac(&self.cred.stored_key, auth_message.as_bytes());
        if fin.proof.len() != client_sig.len() {
            return Err(ScramError::Proof);
        }
        let client_key: Vec<u8> = fin
            .proof
            .iter()
            .zip(&client_sig)
            .map(|(a, b)| a ^ b)
            .collect();
        if !constant_time_eq(&self.mech.hash(&client_key), &self.cred.stored_key) {
            return Err(ScramError::Proof);
        }
        let server_sig = self
            .mech
            .hmac(&self.cred.server_key, auth_message.as_bytes());
        Ok(format!("v={}", B64.encode(server_sig)))
    }
}

/// Equality whose time does not depend on where the inputs differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `saslname` encoding of RFC 5802 (`,` → `=2C`, `=` → `=3D`).
fn encode_saslname(s: &str) -> String {
    s.replace('=', "=3D").replace(',', "=2C")
}

/// Most PBKDF2 rounds a client runs for a server (a hostile server must not
/// make us spin): Kafka's own upper bound.
const CLIENT_MAX_ITERATIONS: u32 = MAX_ITERATIONS;

/// The client side of one exchange: `first()` → server-first → `final_message()`
/// → server-final → `verify()`.
#[derive(Debug, Clone)]
pub struct ClientExchange {
    mech: ScramMechanism,
    password: Vec<u8>,
    nonce: String,
    bare: String,
    /// Set by `final_message`: AuthMessage and SaltedPassword, for `verify`.
    auth: Option<(String, Vec<u8>)>,
}

impl ClientExchange {
    /// A new exchange for `user` with a random nonce.
    pub fn new(mech: ScramMechanism, user: &str, password: &str) -> ClientExchange {
        let nonce: String = rand::Rng::sample_iter(rand::rng(), rand::distr::Alphanumeric)
            .take(24)
            .map(char::from)
            .collect();
        Self::with_nonce(mech, user, password, &nonce)
    }

    /// With a given nonce (RFC examples, tests).
    pub fn with_nonce(mech: ScramMechanism, user: &str, password: &str, nonce: &str) -> Self {
        ClientExchange {
            mech,
            password: password.as_bytes().to_vec(),
            nonce: nonce.to_string(),
            bare: format!("n={},r={nonce}", encode_saslname(user)),
            auth: None,
        }
    }

    /// The client-first message (`n,,n=<user>,r=<nonce>`).
    pub fn first(&self) -> Vec<u8> {
        format!("n,,{}", self.bare).into_bytes()
    }

    /// Answer the server-first (`r=..,s=..,i=..`) with the client-final and its proof.
    pub fn final_message(&mut self, server_first: &[u8]) -> Result<Vec<u8>, ScramError> {
        let sf =
            std::str::from_utf8(server_first).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        if sf.starts_with("e=") {
            return Err(ScramError::Malformed("server error"));
        }
        let (mut nonce, mut salt, mut iter) = (None, None, None);
        for part in sf.split(',') {
            match part.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => {
                    salt = Some(
                        B64.decode(v)
                            .map_err(|_| ScramError::Malformed("salt not base64"))?,
                    )
                }
                Some(("i", v)) => {
                    iter = Some(
                        v.parse::<u32>()
                            .map_err(|_| ScramError::Malformed("bad iteration count"))?,
                    )
                }
                _ => {}
            }
        }
        let nonce = nonce.ok_or(ScramError::Malformed("no nonce"))?;
        let salt = salt.ok_or(ScramError::Malformed("no salt"))?;
        let iter = iter.ok_or(ScramError::Malformed("no iteration count"))?;
        if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() || !printable(nonce) {
            return Err(ScramError::Nonce);
        }
        if iter == 0 || iter > CLIENT_MAX_ITERATIONS {
            return Err(ScramError::Malformed("iteration count out of range"));
        }
        let salted = self.mech.salted_password(&self.password, &salt, iter);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{sf},{without_proof}", self.bare);
        let client_key = self.mech.hmac(&salted, b"Client Key");
        let stored_key = self.mech.hash(&client_key);
        let sig = self.mech.hmac(&stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&sig).map(|(a, b)| a ^ b).collect();
        self.auth = Some((auth_message, salted));
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Check the server-final (`v=<signature>`): the server knew the credential.
    pub fn verify(&self, server_final: &[u8]) -> Result<(), ScramError> {
        let (auth_message, salted) = self
            .auth
            .as_ref()
            .ok_or(ScramError::Malformed("server-final before client-final"))?;
        let sf =
            std::str::from_utf8(server_final).map_err(|_| ScramError::Malformed("not UTF-8"))?;
        let v = sf
            .split(',')
            .find_map(|p| p.strip_prefix("v="))
            .ok_or(ScramError::Malformed("no server signature"))?;
        let got = B64
            .decode(v)
            .map_err(|_| ScramError::Malformed("signature not base64"))?;
        let server_key = self.mech.hmac(salted, b"Server Key");
        let want = self.mech.hmac(&server_key, auth_message.as_bytes());
        if constant_time_eq(&got, &want) {
            Ok(())
        } else {
            Err(ScramError::Proof)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's SCRAM-SHA-256 example (user, password, nonces, salt, proof).
    #[test]
    fn rfc7677_example() {
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let cred = ScramCredential::new(ScramMechanism::Sha256, b"pencil", Some(&salt), 4096);
        let first = ClientFirst::parse(b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO").unwrap();
        let mut ex = ServerExchange::start(ScramMechanism::Sha256, first, cred);
        // Replace the random server nonce with the RFC's.
        ex.nonce = "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into();
        ex.server_first = format!("r={},s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", ex.nonce);
        let fin = ClientFinal::parse(
            b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        )
        .unwrap();
        assert_eq!(
            ex.finish(&fin).unwrap(),
            "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
        let mut bad = fin.clone();
        bad.proof[0] ^= 1;
        assert_eq!(ex.finish(&bad), Err(ScramError::Proof));
    }

    #[test]
    fn kafka_string_round_trip() {
        let c = ScramCredential::new(ScramMechanism::Sha512, b"pw", None, 4096);
        let s = c.to_kafka_string();
        assert!(s.starts_with("salt=") && s.ends_with(",iterations=4096"));
        assert_eq!(ScramCredential::parse_kafka_string(&s), Some(c));
        assert_eq!(ScramCredential::parse_kafka_string("salt=!!"), None);
    }

    #[test]
    fn bad_messages_are_errors() {
        for m in [
            &b""[..],
            b"n",
            b"n,,",
            b"p=tls-unique,,n=a,r=b",
            b"n,,n=a=2,r=x",
            b"n,,n=,r=x",
            b"x,,n=a,r=b",
            b"n,,r=b",
            b"\xff\xfe",
        ] {
            assert!(ClientFirst::parse(m).is_err(), "{m:?}");
        }
        let f = ClientFirst::parse(b"n,a=bob,n=al=2Cice,r=abc,tokenauth=true").unwrap();
        assert_eq!(f.username, "al,ice");
        assert_eq!(f.authzid.as_deref(), Some("bob"));
        assert_eq!(f.extensions, vec![("tokenauth".into(), "true".into())]);
        for m in [
            &b"c=biws,r=x"[..],
            b"c=!!,r=x,p=AA==",
            b"r=x,p=AA==",
            b"c=biws,p=%%",
        ] {
            assert!(ClientFinal::parse(m).is_err(), "{m:?}");
        }
    }

    /// RFC 7677's example from the client's side, then against our server.
    #[test]
    fn client_rfc7677_and_round_trip() {
        let mut c = ClientExchange::with_nonce(
            ScramMechanism::Sha256,
            "user",
            "pencil",
            "rOprNGfwEbeRWgbNEkqO",
        );
        assert_eq!(c.first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let fin = c
            .final_message(b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
            .unwrap();
        assert_eq!(
            String::from_utf8(fin).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        c.verify(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        assert!(c.verify(b"v=AAAA").is_err());
        for m in [ScramMechanism::Sha256, ScramMechanism::Sha512] {
            let cred = ScramCredential::new(m, b"s3cret", None, 4096);
            let mut c = ClientExchange::new(m, "a,b=c", "s3cret");
            let first = ClientFirst::parse(&c.first()).unwrap();
            assert_eq!(first.username, "a,b=c");
            let ex = ServerExchange::start(m, first, cred.clone());
            let fin = c.final_message(ex.server_first.as_bytes()).unwrap();
            let v = ex.finish(&ClientFinal::parse(&fin).unwrap()).unwrap();
            c.verify(v.as_bytes()).unwrap();
            // A wrong password fails the server's check.
            let mut bad = ClientExchange::new(m, "u", "nope");
            let first = ClientFirst::parse(&bad.first()).unwrap();
            let ex = ServerExchange::start(m, first, cred);
            let fin = bad.final_message(ex.server_first.as_bytes()).unwrap();
            assert!(ex.finish(&ClientFinal::parse(&fin).unwrap()).is_err());
        }
        // A server nonce that does not extend ours, or absurd iterations: refused.
        let mut c = ClientExchange::with_nonce(ScramMechanism::Sha256, "u", "p", "abc");
        assert!(c.final_message(b"r=xyz123,s=AAAA,i=4096").is_err());
        assert!(c.final_message(b"r=abc123,s=AAAA,i=999999999").is_err());
        assert!(c.final_message(b"r=abc123,s=!!,i=4096").is_err());
    }
}
