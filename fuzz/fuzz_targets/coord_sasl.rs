//! Feeds arbitrary bytes to the coordinator's SASL DIGEST-MD5 parsers, run
//! before a client is authenticated: the directive list of a
//! digest-response, a whole server exchange (challenge, then the input as
//! the response), and the JAAS file parser. Nothing may panic.
#![no_main]

use fjord_coord::sasl::{jaas_section, parse_directives, DigestServer, SaslUsers};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_directives(data);
    let users = SaslUsers::from_options(&[("user_bob".into(), "bob-secret".into())]);
    let mut s = DigestServer::with_nonce("fuzz-nonce".into());
    let _ = s.step(b"", &users);
    let _ = s.step(data, &users);
    let _ = s.step(data, &users);
    // An initial response (not allowed) must fail cleanly too.
    let _ = DigestServer::new().step(data, &users);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = jaas_section(text, "Server");
    }
});
