//! The payment-alerts topology: count each customer's payments per UTC day (tumbling 1-day
//! windows with a grace period) and emit one alert when the 11th arrives. The count is the
//! committed state, so "already alerted" is too: the count passes 11 once per window.

pub mod cli;

use std::time::Duration;

use fjord_streams::{
    BytesSerde, Consumed, Grouped, JsonSerde, Produced, RegistrySerde, Result, Serde,
    StreamsBuilder, StringSerde, Topology, Windows,
};
use serde::{Deserialize, Serialize};

pub const DAY_MS: i64 = 86_400_000;

/// An input record: `{"customer_id", "amount", "ts"}` with `ts` in ms since the epoch (UTC).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Payment {
    pub customer_id: String,
    pub amount: f64,
    pub ts: i64,
}

/// An output record: `{"customer_id", "day", "count"}`, day as `YYYY-MM-DD` (UTC).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Alert {
    pub customer_id: String,
    pub day: String,
    pub count: i64,
}

/// How payments are read and alerts written: plain JSON, or through a Schema Registry
/// (Confluent's wire format, subjects `<topic>-value`), as Confluent's Avro, JSON Schema
/// and Protobuf serializers write and their deserializers read them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Registry {
        kind: RegistryFormat,
        registry_url: String,
    },
}

/// The Schema Registry's three formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistryFormat {
    Avro,
    JsonSchema,
    Protobuf,
}

impl RegistryFormat {
    /// A serde writing `schema` (this format's text) under `subject`.
    fn serde<T>(self, url: &str, subject: &str, schema: &str) -> Result<RegistrySerde<T>> {
        match self {
            RegistryFormat::Avro => RegistrySerde::avro(url, subject, schema),
            RegistryFormat::JsonSchema => RegistrySerde::json_schema(url, subject, schema),
            RegistryFormat::Protobuf => RegistrySerde::protobuf(url, subject, schema),
        }
    }

    /// The (payment, alert) schemas in this format.
    fn schemas(self) -> (&'static str, &'static str) {
        match self {
            RegistryFormat::Avro => (PAYMENT_AVRO, ALERT_AVRO),
            RegistryFormat::JsonSchema => (PAYMENT_JSON_SCHEMA, ALERT_JSON_SCHEMA),
            RegistryFormat::Protobuf => (PAYMENT_PROTO, ALERT_PROTO),
        }
    }
}

/// The Avro schema of a payment (`{"customer_id", "amount", "ts"}`).
pub const PAYMENT_AVRO: &str = r#"{"type":"record","name":"Payment","namespace":"fjord.examples","fields":[{"name":"customer_id","type":"string"},{"name":"amount","type":"double"},{"name":"ts","type":"long"}]}"#;
/// The Avro schema of an alert (`{"customer_id", "day", "count"}`).
pub const ALERT_AVRO: &str = r#"{"type":"record","name":"Alert","namespace":"fjord.examples","fields":[{"name":"customer_id","type":"string"},{"name":"day","type":"string"},{"name":"count","type":"long"}]}"#;
/// The JSON Schema of a payment.
pub const PAYMENT_JSON_SCHEMA: &str = r#"{"$schema":"http://json-schema.org/draft-07/schema#","title":"Payment","type":"object","properties":{"customer_id":{"type":"string"},"amount":{"type":"number"},"ts":{"type":"integer"}},"required":["customer_id","amount","ts"]}"#;
/// The JSON Schema of an alert.
pub const ALERT_JSON_SCHEMA: &str = r#"{"$schema":"http://json-schema.org/draft-07/schema#","title":"Alert","type":"object","properties":{"customer_id":{"type":"string"},"day":{"type":"string"},"count":{"type":"integer"}},"required":["customer_id","day","count"]}"#;
/// The Protobuf schema of a payment.
pub const PAYMENT_PROTO: &str = "syntax = \"proto3\";\npackage fjord.examples;\n\nmessage Payment {\n  string customer_id = 1;\n  double amount = 2;\n  int64 ts = 3;\n}\n";
/// The Protobuf schema of an alert.
pub const ALERT_PROTO: &str = "syntax = \"proto3\";\npackage fjord.examples;\n\nmessage Alert {\n  string customer_id = 1;\n  string day = 2;\n  int64 count = 3;\n}\n";

pub struct Options {
    pub format: Format,
    pub input: String,
    pub output: String,
    /// The count that raises the alert (11: "more than 10 payments a day").
    pub threshold: i64,
    pub grace: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            format: Format::Json,
            input: "payments".into(),
            output: "payment-alerts".into(),
            threshold: 11,
            grace: Duration::from_secs(3600),
        }
    }
}

/// `YYYY-MM-DD` of a UTC epoch-ms timestamp (Howard Hinnant's civil_from_days).
pub fn utc_day(ms: i64) -> String {
    let z = ms.div_euclid(DAY_MS) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!("{y:04}-{m:02}-{d:02}")
}

pub fn topology(o: &Options) -> Result<Topology> {
    match &o.format {
        Format::Json => build(o, JsonSerde::<Payment>::new(), JsonSerde::<Alert>::new()),
        Format::Registry { kind, registry_url } => {
            let (payment, alert) = kind.schemas();
            build(
                o,
                kind.serde::<Payment>(registry_url, &format!("{}-value", o.input), payment)?,
                kind.serde::<Alert>(registry_url, &format!("{}-value", o.output), alert)?,
            )
        }
    }
}

fn build(
    o: &Options,
    payments: impl Serde<Payment>,
    alerts: impl Serde<Alert>,
) -> Result<Topology> {
    let b = StreamsBuilder::new();
    // Event time is the payment's own `ts`; a payment that is not valid JSON of this shape
    // fails deserialization and goes to the dead-letter topic (errors.dead.letter.queue.topic.name).
    let payments = b.stream(
        &o.input,
        Consumed::with(BytesSerde, payments).with_timestamp_extractor(|_, p: &Payment, _| p.ts),
    );
    let threshold = o.threshold;
    payments
        .select_key(|_, p| p.customer_id.clone())
        .group_by_key(Grouped::with(
            "payments-by-customer",
            StringSerde,
            JsonSerde::<Payment>::new(),
        ))
        .windowed_by(Windows::Tumbling {
            size: Duration::from_millis(DAY_MS as u64),
            grace: o.grace,
        })
        .count("payment-counts")
        .to_stream()
        .filter(move |_, count| *count == threshold)
        .map(|w, count| {
            let alert = Alert {
                customer_id: w.key.clone(),
                day: utc_day(w.start),
                count,
            };
            (w.key, alert)
        })
        .to(&o.output, Produced::with(StringSerde, alerts));
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use fjord_streams::TopologyTestDriver;

    const D0: i64 = 1_700_006_400_000; // 2023-11-15T00:00:00Z

    fn pay(d: &mut TopologyTestDriver, c: &str, ts: i64) {
        let p = Payment {
            customer_id: c.into(),
            amount: 1.5,
            ts,
        };
        d.pipe_raw("payments", None, Some(&serde_json::to_vec(&p).unwrap()), 0)
            .unwrap();
    }

    fn alerts(d: &mut TopologyTestDriver) -> Vec<Alert> {
        d.read("payment-alerts", &StringSerde, &JsonSerde::<Alert>::new())
            .unwrap()
            .into_iter()
            .map(|(_, a, _)| a)
            .collect()
    }

    #[test]
    fn utc_days() {
        assert_eq!(utc_day(0), "1970-01-01");
        assert_eq!(utc_day(D0), "2023-11-15");
        assert_eq!(utc_day(D0 - 1), "2023-11-14");
        assert_eq!(utc_day(951_782_400_000), "2000-02-29");
    }

    #[test]
    fn one_alert_at_the_eleventh_payment_per_customer_day() {
        let o = Options {
            grace: Duration::from_secs(600),
            ..Options::default()
        };
        let mut d = TopologyTestDriver::new(topology(&o).unwrap(), "pa").unwrap();
        for i in 0..10 {
            pay(&mut d, "alice", D0 + i * 1000);
        }
        assert!(alerts(&mut d).is_empty());
        pay(&mut d, "alice", D0 + 20_000);
        assert_eq!(
            alerts(&mut d),
            vec![Alert {
                customer_id: "alice".into(),
                day: "2023-11-15".into(),
                count: 11
            }]
        );
        for i in 0..5 {
            pay(&mut d, "alice", D0 + 30_000 + i);
        }
        assert!(
            alerts(&mut d).is_empty(),
            "12th..16th payments raise nothing"
        );
        // The next day starts again.
        for i in 0..11 {
            pay(&mut d, "alice", D0 + DAY_MS + i);
        }
        assert_eq!(alerts(&mut d)[0].day, "2023-11-16");
    }

    #[test]
    fn grace_and_dead_letters() {
        let o = Options {
            grace: Duration::from_secs(600),
            ..Options::default()
        };
        let mut d = TopologyTestDriver::new(topology(&o).unwrap(), "pa")
            .unwrap()
            .with_dead_letter_topic("payments-dlq");
        for i in 0..10 {
            pay(&mut d, "bob", D0 + i);
        }
        // Stream time moves 5 minutes into the next day: day 0 is closed but within grace.
        pay(&mut d, "carol", D0 + DAY_MS + 300_000);
        pay(&mut d, "bob", D0 + 50);
        assert_eq!(
            alerts(&mut d).len(),
            1,
            "a late payment within grace is counted"
        );
        assert_eq!(d.stats().late_dropped, 0);
        // 11 minutes into the next day: past the grace period.
        pay(&mut d, "carol", D0 + DAY_MS + 660_000);
        pay(&mut d, "bob", D0 + 60);
        assert_eq!(
            d.stats().late_dropped,
            1,
            "a payment after grace is dropped and counted"
        );
        d.pipe_raw("payments", Some(b"k"), Some(b"{not json"), 0)
            .unwrap();
        let dlq = d.read_raw("payments-dlq");
        assert_eq!(
            dlq,
            vec![(Some(b"k".to_vec()), Some(b"{not json".to_vec()), 0)]
        );
        assert_eq!(d.stats().dead_lettered, 1);
    }
}
