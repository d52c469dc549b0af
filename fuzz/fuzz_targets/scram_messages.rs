//! Feeds arbitrary bytes to the SASL parsers fjord-broker runs before a
//! client is authenticated: SCRAM's client-first and client-final messages
//! (and a full server exchange over them), PLAIN's message, a JAAS option
//! string and a stored credential string; and the client's side: a
//! server-first and server-final from a hostile broker. Nothing may panic.
//!
//! The SCRAM codec and JAAS parser come from fjord-kafka (pure Rust) and
//! broker/src/security/plain.rs is compiled in directly, so this target
//! needs no RocksDB build.
#![no_main]

#[path = "../../broker/src/security/plain.rs"]
#[allow(dead_code)]
mod plain;
use fjord_kafka::security::scram;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut client =
        scram::ClientExchange::with_nonce(scram::ScramMechanism::Sha256, "u", "p", "abc");
    let _ = client.final_message(data);
    let _ = client.verify(data);
    let _ = plain::parse_plain(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = plain::parse_jaas_options(s);
        let _ = scram::ScramCredential::parse_kafka_string(s);
    }
    let _ = scram::ClientFinal::parse(data);
    // Split the input: a client-first, then a client-final against it.
    let cut = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    if let Ok(first) = scram::ClientFirst::parse(&data[..cut]) {
        let cred = scram::ScramCredential::from_salted(
            scram::ScramMechanism::Sha256,
            b"salted",
            b"salt".to_vec(),
            4096,
        );
        let ex = scram::ServerExchange::start(scram::ScramMechanism::Sha256, first, cred);
        if let Some(rest) = data.get(cut + 1..) {
            if let Ok(fin) = scram::ClientFinal::parse(rest) {
                let _ = ex.finish(&fin);
            }
        }
    }
});
