//! Broker-side schema validation (Confluent's topic configs
//! `confluent.value.schema.validation` / `confluent.key.schema.validation`):
//! the leader refuses a batch any of whose values (keys) is not framed with
//! the id of a schema registered under the topic's subject
//! (`<topic>-value` / `<topic>-key`, TopicNameStrategy). The check reads
//! this broker's registry state only: one lookup per distinct id in a batch
//! (the records of a batch nearly always share one).

use std::collections::BTreeMap;

use bytes::Bytes;

use super::service::Registry;

/// Whether a topic's configs turn validation on, for (keys, values).
pub fn enabled(configs: &BTreeMap<String, String>) -> (bool, bool) {
    let on = |k: &str| {
        configs
            .get(k)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    };
    (
        on("confluent.key.schema.validation"),
        on("confluent.value.schema.validation"),
    )
}

/// None when every record passes; else why the first one fails (naming its
/// offset within the batch).
pub fn check(
    reg: &Registry,
    topic: &str,
    keys: bool,
    values: bool,
    records: &Bytes,
) -> Option<String> {
    let decoded = match fjord_kafka::client::decode_records(records, 0) {
        Ok(r) => r,
        Err(e) => {
            return Some(format!(
                "records could not be decoded for schema validation: {e}"
            ))
        }
    };
    let st = reg.store.state();
    let mut ok_ids: Vec<(bool, i32)> = Vec::new();
    for r in &decoded {
        for (is_key, on, data) in [(true, keys, &r.key), (false, values, &r.value)] {
            if !on {
                continue;
            }
            let what = if is_key { "key" } else { "value" };
            let Some(b) = data else {
                return Some(format!("record at offset {} in the batch has a null {what}, not framed with a schema id", r.offset));
            };
            let id = match fjord_schema::framing::unframe(b) {
                Ok((id, _)) => id,
                Err(e) => {
                    return Some(format!(
                    "record at offset {} in the batch: {what} is not framed with a schema id ({e})",
                    r.offset
                ))
                }
            };
            if ok_ids.contains(&(is_key, id)) {
                continue;
            }
            let subject = format!("{topic}-{what}");
            let registered = st
                .subjects
                .get(&subject)
                .is_some_and(|vs| vs.values().any(|v| v.id == id));
            if !registered {
                return Some(format!(
                    "record at offset {} in the batch: {what} schema id {id} is not registered under subject {subject}",
                    r.offset
                ));
            }
            ok_ids.push((is_key, id));
        }
    }
    None
}
