//! SCRAM-SHA-256/512: the message codec, credentials and proof checks live in
//! fjord-kafka (`fjord_kafka::security::scram`), so the broker's server side
//! and the client's side share one implementation; re-exported here.

pub use fjord_kafka::security::scram::*;
