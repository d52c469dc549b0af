//! SASL for clients as ZooKeeper's SASLAuthenticationProvider does it with
//! the DIGEST-MD5 mechanism (RFC 2831, `auth` quality of protection only):
//! the users of the JAAS file's `Server` section (`user_<name>="<password>"`,
//! ZooKeeper's DigestLoginModule), the server side of the exchange, and the
//! identity it yields (`sasl:<name>`). No maintained Rust crate does the
//! DIGEST-MD5 server side, so it is here, small, on RustCrypto's md-5, and
//! fuzzed (fuzz/fuzz_targets/coord_sasl.rs).
//!
//! The exchange is carried by OpCode.sasl (102) packets, answered in the
//! handler; this file knows nothing about the wire.

use std::collections::HashMap;
use std::path::Path;

use md5::{Digest, Md5};

/// The realm and host ZooKeeper hard-codes for DIGEST-MD5 (its clients use
/// `zookeeper/zk-sasl-md5` as digest-uri, whatever host they dial).
pub const REALM: &str = "zk-sasl-md5";
pub const SERVICE: &str = "zookeeper";
/// RFC 2831 caps a digest-response at 4096 bytes; anything longer is refused
/// before it is parsed.
pub const MAX_TOKEN: usize = 4096;

/// Why an exchange (or the JAAS file) failed; the client only ever sees
/// AuthFailed, the log gets this.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SaslError {
    #[error("malformed DIGEST-MD5 message: {0}")]
    Malformed(&'static str),
    #[error("SASL token of {0} bytes exceeds {MAX_TOKEN}")]
    TooLong(usize),
    #[error("DIGEST-MD5 does not take an initial response")]
    InitialResponse,
    #[error("unknown user or wrong password for {0:?}")]
    BadCredentials(String),
    #[error("unsupported DIGEST-MD5 option: {0}")]
    Unsupported(String),
    #[error("the SASL exchange is already complete")]
    Complete,
    #[error("JAAS file: {0}")]
    Jaas(String),
}

/// The user table of the JAAS `Server` section.
#[derive(Clone, Default)]
pub struct SaslUsers {
    users: HashMap<String, String>,
}

impl std::fmt::Debug for SaslUsers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.users.keys().collect();
        names.sort();
        f.debug_struct("SaslUsers").field("users", &names).finish()
    }
}

impl SaslUsers {
    /// Reads `file`'s `section` (ZooKeeper: `Server`, or the name in
    /// `zookeeper.sasl.serverconfig`).
    pub fn load(file: &Path, section: &str) -> Result<SaslUsers, SaslError> {
        let text = std::fs::read_to_string(file)
            .map_err(|e| SaslError::Jaas(format!("{}: {e}", file.display())))?;
        let opts = jaas_section(&text, section)?
            .ok_or_else(|| SaslError::Jaas(format!("{}: no {section} section", file.display())))?;
        Ok(Self::from_options(&opts))
    }

    /// The `user_<name>` options of a login module.
    pub fn from_options(opts: &[(String, String)]) -> SaslUsers {
        SaslUsers {
            users: opts
                .iter()
                .filter_map(|(k, v)| Some((k.strip_prefix("user_")?.to_string(), v.clone())))
                .collect(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    fn password(&self, user: &str) -> Option<&str> {
        self.users.get(user).map(String::as_str)
    }
}

/// The options (`key="value"` after the module name and flag) of every
/// login module in `section` of a JAAS configuration, or None if there is
/// no such section. Comments (`//`, `/* */`) are skipped.
pub fn jaas_section(text: &str, section: &str) -> Result<Option<Vec<(String, String)>>, SaslError> {
    let toks = jaas_tokens(text)?;
    let mut i = 0;
    let bad = |w: &str| SaslError::Jaas(w.to_string());
    while i < toks.len() {
        let Tok::Word(name) = &toks[i] else {
            return Err(bad("expected a section name"));
        };
        if toks.get(i + 1) != Some(&Tok::Punct('{')) {
            return Err(bad("expected '{' after a section name"));
        }
        i += 2;
        let mut opts = Vec::new();
        // Modules: `class flag key=value ... ;` until `}`.
        loop {
            match toks.get(i) {
                Some(Tok::Punct('}')) => {
                    i += 1;
                    break;
                }
                Some(Tok::Word(_)) => {}
                _ => return Err(bad("expected a login module or '}'")),
            }
            i += 1; // class
            match toks.get(i) {
                Some(Tok::Word(_)) => i += 1, // required/requisite/sufficient/optional
                _ => return Err(bad("expected a control flag after the login module")),
            }
            loop {
                match (toks.get(i), toks.get(i + 1), toks.get(i + 2)) {
                    (Some(Tok::Punct(';')), _, _) => {
                        i += 1;
                        break;
                    }
                    (
                        Some(Tok::Word(k)),
                        Some(Tok::Punct('=')),
                        Some(Tok::Word(v) | Tok::Quoted(v)),
                    ) => {
                        opts.push((k.clone(), v.clone()));
                        i += 3;
                    }
                    _ => return Err(bad("expected key=\"value\" or ';'")),
                }
            }
        }
        if toks.get(i) == Some(&Tok::Punct(';')) {
            i += 1;
        }
        if name == section {
            return Ok(Some(opts));
        }
    }
    Ok(None)
}

#[derive(Debug, PartialEq, Eq)]
enum Tok {
    Word(String),
    Quoted(String),
    Punct(char),
}

fn jaas_tokens(text: &str) -> Result<Vec<Tok>, SaslError> {
    let mut out = Vec::new();
    let c: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < c.len() {
        match c[i] {
            w if w.is_whitespace() => i += 1,
            '/' if c.get(i + 1) == Some(&'/') => {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            }
            '/' if c.get(i + 1) == Some(&'*') => {
                i += 2;
                while i < c.len() && !(c[i] == '*' && c.get(i + 1) == Some(&'/')) {
                    i += 1;
                }
                i += 2;
            }
            p @ ('{' | '}' | ';' | '=') => {
                out.push(Tok::Punct(p));
                i += 1;
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match c.get(i) {
                        None => return Err(SaslError::Jaas("unterminated quoted value".into())),
                        Some('"') => break,
                        Some('\\') if i + 1 < c.len() => {
                            s.push(c[i + 1]);
                            i += 2;
                        }
                        Some(&ch) => {
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                i += 1;
                out.push(Tok::Quoted(s));
            }
            _ => {
                let start = i;
                while i < c.len()
                    && !c[i].is_whitespace()
                    && !matches!(c[i], '{' | '}' | ';' | '=' | '"')
                {
                    i += 1;
                }
                out.push(Tok::Word(c[start..i].iter().collect()));
            }
        }
    }
    Ok(out)
}

/// `key=value, key="quoted"` directives of a DIGEST-MD5 message (RFC 2831
/// 7.1 lists, `\` escapes in quoted strings). A repeated key is malformed.
pub fn parse_directives(msg: &[u8]) -> Result<Vec<(String, String)>, SaslError> {
    let text = std::str::from_utf8(msg).map_err(|_| SaslError::Malformed("not UTF-8"))?;
    let b = text.as_bytes();
    let mut out: Vec<(String, String)> = Vec::new();
    let mut i = 0;
    let skip_lws = |i: &mut usize| {
        while *i < b.len() && matches!(b[*i], b' ' | b'\t' | b'\r' | b'\n') {
            *i += 1;
        }
    };
    loop {
        skip_lws(&mut i);
        while i < b.len() && b[i] == b',' {
            i += 1;
            skip_lws(&mut i);
        }
        if i >= b.len() {
            break;
        }
        let ks = i;
        while i < b.len() && b[i] != b'=' && b[i] != b',' && !b[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = text[ks..i].to_ascii_lowercase();
        skip_lws(&mut i);
        if key.is_empty() || i >= b.len() || b[i] != b'=' {
            return Err(SaslError::Malformed("expected key=value"));
        }
        i += 1;
        skip_lws(&mut i);
        let value = if i < b.len() && b[i] == b'"' {
            i += 1;
            let mut v = Vec::new();
            loop {
                match b.get(i) {
                    None => return Err(SaslError::Malformed("unterminated quoted string")),
                    Some(b'"') => {
                        i += 1;
                        break;
                    }
                    Some(b'\\') => match b.get(i + 1) {
                        Some(&c) => {
                            v.push(c);
                            i += 2;
                        }
                        None => return Err(SaslError::Malformed("dangling escape")),
                    },
                    Some(&c) => {
                        v.push(c);
                        i += 1;
                    }
                }
            }
            String::from_utf8(v).map_err(|_| SaslError::Malformed("not UTF-8"))?
        } else {
            let vs = i;
            while i < b.len() && b[i] != b',' && !b[i].is_ascii_whitespace() {
                i += 1;
            }
            text[vs..i].to_string()
        };
        if out.iter().any(|(k, _)| *k == key) {
            return Err(SaslError::Malformed("repeated directive"));
        }
        out.push((key, value));
        skip_lws(&mut i);
        if i < b.len() && b[i] != b',' {
            return Err(SaslError::Malformed("expected ',' between directives"));
        }
    }
    Ok(out)
}

fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Text as RFC 2831 hashes it with `charset=utf-8`: ISO 8859-1 when every
/// character fits, else UTF-8.
fn latin1_or_utf8(s: &str) -> Vec<u8> {
    if s.chars().all(|c| (c as u32) < 256) {
        s.chars().map(|c| c as u8).collect()
    } else {
        s.as_bytes().to_vec()
    }
}

/// The hex `response` (with `A2 = prefix:digest-uri`; the client's uses
/// `AUTHENTICATE`, the server's `rspauth` an empty prefix).
#[allow(clippy::too_many_arguments)]
pub fn digest_response(
    user: &str,
    realm: &str,
    password: &str,
    nonce: &str,
    cnonce: &str,
    nc: &str,
    qop: &str,
    digest_uri: &str,
    authzid: Option<&str>,
    a2_prefix: &str,
) -> String {
    let mut h = Md5::new();
    h.update(latin1_or_utf8(user));
    h.update(b":");
    h.update(latin1_or_utf8(realm));
    h.update(b":");
    h.update(latin1_or_utf8(password));
    let inner = h.finalize();
    let mut a1 = inner.to_vec();
    a1.extend_from_slice(format!(":{nonce}:{cnonce}").as_bytes());
    if let Some(z) = authzid {
        a1.push(b':');
        a1.extend_from_slice(z.as_bytes());
    }
    let ha1 = hex(&Md5::digest(&a1));
    let ha2 = hex(&Md5::digest(format!("{a2_prefix}:{digest_uri}").as_bytes()));
    hex(&Md5::digest(
        format!("{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}").as_bytes(),
    ))
}

/// One connection's DIGEST-MD5 exchange: challenge, then the client's
/// response checked and answered with `rspauth`.
#[derive(Debug)]
pub struct DigestServer {
    nonce: String,
    state: State,
}

#[derive(Debug, PartialEq, Eq)]
enum State {
    Start,
    Challenged,
    Done,
}

/// What a step produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this token back and wait for the next.
    Continue(Vec<u8>),
    /// Authenticated as this user; send the token (rspauth).
    Done { token: Vec<u8>, user: String },
}

impl Default for DigestServer {
    fn default() -> Self {
        Self::new()
    }
}

impl DigestServer {
    pub fn new() -> Self {
        let raw: [u8; 24] = rand::random();
        use base64::Engine;
        Self::with_nonce(base64::engine::general_purpose::STANDARD.encode(raw))
    }

    /// A fixed nonce (tests).
    pub fn with_nonce(nonce: String) -> Self {
        DigestServer {
            nonce,
            state: State::Start,
        }
    }

    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Feeds the client's token.
    pub fn step(&mut self, token: &[u8], users: &SaslUsers) -> Result<Step, SaslError> {
        if token.len() > MAX_TOKEN {
            return Err(SaslError::TooLong(token.len()));
        }
        match self.state {
            State::Start => {
                if !token.is_empty() {
                    return Err(SaslError::InitialResponse);
                }
                self.state = State::Challenged;
                Ok(Step::Continue(
                    format!(
                        "realm=\"{REALM}\",nonce=\"{}\",qop=\"auth\",charset=utf-8,algorithm=md5-sess",
                        self.nonce
                    )
                    .into_bytes(),
                ))
            }
            State::Challenged => {
                // One try per exchange, whatever happens.
                self.state = State::Done;
                self.check(token, users)
            }
            State::Done => Err(SaslError::Complete),
        }
    }

    fn check(&self, token: &[u8], users: &SaslUsers) -> Result<Step, SaslError> {
        let d = parse_directives(token)?;
        let get = |k: &str| d.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        let need = |k: &'static str| get(k).ok_or(SaslError::Malformed(k));
        let user = need("username")?;
        let nonce = need("nonce")?;
        let cnonce = need("cnonce")?;
        let nc = need("nc")?;
        let uri = need("digest-uri")?;
        let response = need("response")?;
        let realm = get("realm").unwrap_or("");
        let qop = get("qop").unwrap_or("auth");
        if nonce != self.nonce {
            return Err(SaslError::Malformed("nonce does not match the challenge"));
        }
        if nc != "00000001" {
            return Err(SaslError::Malformed("nonce-count must be 00000001"));
        }
        if qop != "auth" {
            return Err(SaslError::Unsupported(format!("qop={qop}")));
        }
        if realm != REALM && !realm.is_empty() {
            return Err(SaslError::Malformed("realm is not the one offered"));
        }
        let uri_ok = uri
            .split_once('/')
            .is_some_and(|(serv, host)| serv == SERVICE && host.split('/').next() == Some(REALM));
        if !uri_ok {
            return Err(SaslError::Malformed(
                "digest-uri is not zookeeper/zk-sasl-md5",
            ));
        }
        let authzid = get("authzid");
        if authzid.is_some_and(|z| z != user) {
            return Err(SaslError::Unsupported(
                "authzid other than the username".into(),
            ));
        }
        let Some(password) = users.password(user) else {
            return Err(SaslError::BadCredentials(user.to_string()));
        };
        let expect = digest_response(
            user,
            realm,
            password,
            nonce,
            cnonce,
            nc,
            qop,
            uri,
            authzid,
            "AUTHENTICATE",
        );
        let r = response.to_ascii_lowercase();
        // Constant time over equal lengths: the hex digests always are.
        let same = r.len() == expect.len()
            && r.bytes()
                .zip(expect.bytes())
                .fold(0u8, |a, (x, y)| a | (x ^ y))
                == 0;
        if !same {
            return Err(SaslError::BadCredentials(user.to_string()));
        }
        let rspauth = digest_response(
            user, realm, password, nonce, cnonce, nc, qop, uri, authzid, "",
        );
        Ok(Step::Done {
            token: format!("rspauth={rspauth}").into_bytes(),
            user: user.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> SaslUsers {
        SaslUsers::from_options(&[("user_bob".into(), "bobsecret".into())])
    }

    #[test]
    fn rfc2831_example() {
        // RFC 2831 section 4 (imap example), its response value.
        let r = digest_response(
            "chris",
            "elwood.innosoft.com",
            "secret",
            "OA6MG9tEQGm2hh",
            "OA6MHXh6VqTrRk",
            "00000001",
            "auth",
            "imap/elwood.innosoft.com",
            None,
            "AUTHENTICATE",
        );
        assert_eq!(r, "d388dad90d4bbd760a152321f2143af7");
        let rsp = digest_response(
            "chris",
            "elwood.innosoft.com",
            "secret",
            "OA6MG9tEQGm2hh",
            "OA6MHXh6VqTrRk",
            "00000001",
            "auth",
            "imap/elwood.innosoft.com",
            None,
            "",
        );
        assert_eq!(rsp, "ea40f60335c427b5527b84dbabcdfffd");
    }

    fn client_response(nonce: &str, user: &str, pass: &str) -> Vec<u8> {
        let uri = "zookeeper/zk-sasl-md5";
        let r = digest_response(
            user,
            REALM,
            pass,
            nonce,
            "abc",
            "00000001",
            "auth",
            uri,
            None,
            "AUTHENTICATE",
        );
        format!("username=\"{user}\",realm=\"{REALM}\",nonce=\"{nonce}\",nc=00000001,cnonce=\"abc\",digest-uri=\"{uri}\",maxbuf=65536,response={r},qop=auth")
            .into_bytes()
    }

    #[test]
    fn exchange_right_and_wrong_password() {
        let mut s = DigestServer::with_nonce("N0nce".into());
        let Step::Continue(ch) = s.step(b"", &users()).unwrap() else {
            panic!()
        };
        let d = parse_directives(&ch).unwrap();
        assert!(d.contains(&("nonce".into(), "N0nce".into())));
        assert!(d.contains(&("realm".into(), REALM.into())));
        let Step::Done { token, user } = s
            .step(&client_response("N0nce", "bob", "bobsecret"), &users())
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(user, "bob");
        let expect = digest_response(
            "bob",
            REALM,
            "bobsecret",
            "N0nce",
            "abc",
            "00000001",
            "auth",
            "zookeeper/zk-sasl-md5",
            None,
            "",
        );
        assert_eq!(token, format!("rspauth={expect}").into_bytes());
        assert!(s.is_done());
        assert_eq!(s.step(b"", &users()), Err(SaslError::Complete));

        let mut s = DigestServer::with_nonce("N0nce".into());
        s.step(b"", &users()).unwrap();
        assert_eq!(
            s.step(&client_response("N0nce", "bob", "nope"), &users()),
            Err(SaslError::BadCredentials("bob".into()))
        );
        // Only one try per exchange.
        assert_eq!(
            s.step(&client_response("N0nce", "bob", "bobsecret"), &users()),
            Err(SaslError::Complete)
        );
        let mut s = DigestServer::with_nonce("N0nce".into());
        s.step(b"", &users()).unwrap();
        assert!(matches!(
            s.step(&client_response("other", "bob", "bobsecret"), &users()),
            Err(SaslError::Malformed(_))
        ));
        let mut s = DigestServer::with_nonce("N0nce".into());
        assert_eq!(s.step(b"x", &users()), Err(SaslError::InitialResponse));
        assert_eq!(
            DigestServer::new().step(&vec![b'a'; MAX_TOKEN + 1], &users()),
            Err(SaslError::TooLong(MAX_TOKEN + 1))
        );
    }

    #[test]
    fn directives() {
        let d = parse_directives(br#"a=1, b="x\"y" ,, C = "z,w""#).unwrap();
        assert_eq!(
            d,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x\"y".into()),
                ("c".into(), "z,w".into())
            ]
        );
        assert!(parse_directives(b"a=1,a=2").is_err());
        assert!(parse_directives(b"a=\"1").is_err());
        assert!(parse_directives(b"a").is_err());
        assert!(parse_directives(b"a=1 b=2").is_err());
        assert_eq!(parse_directives(b"").unwrap(), vec![]);
    }

    #[test]
    fn jaas_file() {
        let text = r#"
            // the coordinator's users
            Server {
                org.apache.zookeeper.server.auth.DigestLoginModule required
                user_super="adminsecret"
                /* bob */ user_bob="bob\"secret";
            };
            Client {
                org.apache.zookeeper.server.auth.DigestLoginModule required
                username="bob" password="bobsecret";
            };
        "#;
        let s = jaas_section(text, "Server").unwrap().unwrap();
        let u = SaslUsers::from_options(&s);
        assert_eq!(u.password("bob"), Some("bob\"secret"));
        assert_eq!(u.password("super"), Some("adminsecret"));
        let c = jaas_section(text, "Client").unwrap().unwrap();
        assert_eq!(
            c,
            vec![
                ("username".into(), "bob".into()),
                ("password".into(), "bobsecret".into())
            ]
        );
        assert_eq!(jaas_section(text, "Other").unwrap(), None);
        assert!(jaas_section("Server { x required a=\"b\" }", "Server").is_err());
        assert!(jaas_section("Server { x required a=\"b", "Server").is_err());
        assert!(format!("{u:?}").contains("bob") && !format!("{u:?}").contains("secret"));
    }
}
