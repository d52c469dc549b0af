//! The built-in connectors under the class names people already write, the checks
//! every connector config goes through (one list of errors, each naming its key),
//! and how a connector splits into task configs. Task code lives one connector a file.

pub mod file_sink;
pub mod file_source;
pub mod jdbc_config;
pub mod jdbc_copy;
pub mod jdbc_db;
pub mod jdbc_dialect;
pub mod jdbc_rows;
pub mod jdbc_sink;
pub mod jdbc_source;
pub mod jdbc_types;
pub mod jdbc_url;
pub mod s3_client;
pub mod s3_partitioner;
pub mod s3_sink;
pub mod s3_uploads;

mod records;
pub use records::{SinkRecord, SourceRecord, TaskError};

use std::collections::BTreeMap;

use crate::config::{self, ConfigError, ConfigMap};
use crate::errors::ErrorPolicy;

pub const FILE_SOURCE: &str = "org.apache.kafka.connect.file.FileStreamSourceConnector";
pub const FILE_SINK: &str = "org.apache.kafka.connect.file.FileStreamSinkConnector";
pub const S3_SINK: &str = "io.confluent.connect.s3.S3SinkConnector";
pub const JDBC_SINK: &str = "io.confluent.connect.jdbc.JdbcSinkConnector";
pub const JDBC_SOURCE: &str = "io.confluent.connect.jdbc.JdbcSourceConnector";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Source,
    Sink,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Source => "source",
            Kind::Sink => "sink",
        }
    }
}

pub struct Plugin {
    pub class: &'static str,
    pub kind: Kind,
    pub version: &'static str,
}

pub const PLUGINS: &[Plugin] = &[
    Plugin {
        class: FILE_SINK,
        kind: Kind::Sink,
        version: env!("CARGO_PKG_VERSION"),
    },
    Plugin {
        class: FILE_SOURCE,
        kind: Kind::Source,
        version: env!("CARGO_PKG_VERSION"),
    },
    Plugin {
        class: S3_SINK,
        kind: Kind::Sink,
        version: env!("CARGO_PKG_VERSION"),
    },
    Plugin {
        class: JDBC_SINK,
        kind: Kind::Sink,
        version: env!("CARGO_PKG_VERSION"),
    },
    Plugin {
        class: JDBC_SOURCE,
        kind: Kind::Source,
        version: env!("CARGO_PKG_VERSION"),
    },
];

/// Find a plugin by its full class name or, as Connect allows, its simple name with or
/// without the `Connector` suffix (`FileStreamSink`, `S3SinkConnector`).
pub fn plugin(name: &str) -> Option<&'static Plugin> {
    let name = name.trim();
    PLUGINS.iter().find(|p| {
        let simple = p.class.rsplit('.').next().unwrap_or(p.class);
        p.class == name || simple == name || simple.strip_suffix("Connector") == Some(name)
    })
}

/// Check a whole connector config; every problem is listed (the REST validate call
/// shows them all), standalone and POST refuse on the first.
pub fn validate(m: &ConfigMap) -> Vec<ConfigError> {
    let mut errs = Vec::new();
    let mut push = |r: Result<(), ConfigError>| {
        if let Err(e) = r {
            errs.push(e)
        }
    };
    push(config::required(m, "name").map(|_| ()));
    let class = match config::required(m, "connector.class") {
        Ok(c) => c,
        Err(e) => {
            errs.push(e);
            return errs;
        }
    };
    let Some(p) = plugin(class) else {
        errs.push(ConfigError::new(
            "connector.class",
            format!(
                "Failed to find any class that implements Connector and which name matches {class}, available connectors are: {}",
                PLUGINS.iter().map(|p| p.class).collect::<Vec<_>>().join(", ")
            ),
        ));
        return errs;
    };
    push(config::int_at_least(m, "tasks.max", 1, 1).map(|_| ()));
    push(crate::converters::section(m, "key.converter", false).map(|_| ()));
    push(crate::converters::section(m, "value.converter", false).map(|_| ()));
    push(ErrorPolicy::from_config(m).map(|_| ()));
    push(crate::transforms::Transforms::from_config(m).map(|_| ()));
    if p.kind == Kind::Sink {
        let topics = config::list(m, "topics");
        let regex = m
            .get("topics.regex")
            .map(|s| s.trim())
            .filter(|s| !s.is_empty());
        match (topics.is_empty(), regex) {
            (true, None) => push(Err(ConfigError::new(
                "topics",
                "Must configure one of topics or topics.regex",
            ))),
            (false, Some(_)) => push(Err(ConfigError::new(
                "topics",
                "topics and topics.regex are mutually exclusive options, but both are set.",
            ))),
            _ => {}
        }
        if let Some(dlq) = m.get("errors.deadletterqueue.topic.name").map(|s| s.trim()) {
            if topics.iter().any(|t| t == dlq) {
                push(Err(ConfigError::new(
                    "errors.deadletterqueue.topic.name",
                    format!("The DLQ topic '{dlq}' may not be included in the list of topics ('topics=...') consumed by the connector"),
                )));
            }
        }
    }
    match p.class {
        FILE_SOURCE => push(file_source::FileSourceConfig::from_config(m).map(|_| ())),
        FILE_SINK => push(file_sink::FileSinkConfig::from_config(m).map(|_| ())),
        S3_SINK => push(s3_sink::S3Config::from_config(m).map(|_| ())),
        JDBC_SINK => push(jdbc_config::JdbcSinkConfig::from_config(m).map(|_| ())),
        JDBC_SOURCE => push(jdbc_source::JdbcSourceConfig::from_config(m).map(|_| ())),
        _ => {}
    }
    errs
}

/// Split a connector into task configs: FileStream source reads one file (one task,
/// as Kafka's); the JDBC source reads its tables in one task (one connection keeps
/// the offsets of all its tables in step); sinks run `tasks.max` consumers of one group.
pub fn task_configs(m: &ConfigMap) -> Vec<ConfigMap> {
    let max = config::int(m, "tasks.max", 1).unwrap_or(1).max(1) as usize;
    let n = match plugin(m.get("connector.class").map(|s| s.as_str()).unwrap_or("")) {
        Some(p) if p.class == FILE_SOURCE || p.class == JDBC_SOURCE => 1,
        Some(_) => max,
        None => 0,
    };
    (0..n)
        .map(|i| {
            let mut c = m.clone();
            c.insert("task.id".into(), i.to_string());
            c
        })
        .collect()
}

/// Config definitions for `PUT /connector-plugins/{p}/config/validate`: the keys shown
/// with their type, whether required, and the default.
pub fn definitions(class: &str) -> Vec<(&'static str, &'static str, bool, Option<&'static str>)> {
    let mut d = vec![
        ("name", "STRING", true, None),
        ("connector.class", "STRING", true, None),
        ("tasks.max", "INT", false, Some("1")),
        ("key.converter", "CLASS", false, None),
        ("value.converter", "CLASS", false, None),
        ("errors.tolerance", "STRING", false, Some("none")),
        ("errors.retry.timeout", "LONG", false, Some("0")),
        ("errors.retry.delay.max.ms", "LONG", false, Some("60000")),
        ("errors.log.enable", "BOOLEAN", false, Some("false")),
        (
            "errors.log.include.messages",
            "BOOLEAN",
            false,
            Some("false"),
        ),
    ];
    let p = plugin(class);
    if p.map(|p| p.kind) == Some(Kind::Sink) {
        d.extend([
            ("topics", "LIST", false, Some("")),
            ("topics.regex", "STRING", false, Some("")),
            (
                "errors.deadletterqueue.topic.name",
                "STRING",
                false,
                Some(""),
            ),
            (
                "errors.deadletterqueue.topic.replication.factor",
                "SHORT",
                false,
                Some("3"),
            ),
            (
                "errors.deadletterqueue.context.headers.enable",
                "BOOLEAN",
                false,
                Some("false"),
            ),
        ]);
    }
    match p.map(|p| p.class) {
        Some(FILE_SOURCE) => d.extend([
            ("file", "STRING", false, None),
            ("topic", "STRING", true, None),
            ("batch.size", "INT", false, Some("2000")),
        ]),
        Some(FILE_SINK) => d.push(("file", "STRING", false, None)),
        Some(S3_SINK) => d.extend(s3_sink::definitions()),
        Some(JDBC_SINK) => d.extend(jdbc_config::definitions()),
        Some(JDBC_SOURCE) => d.extend(jdbc_source::definitions()),
        _ => {}
    }
    d
}

/// Group errors by key (the validate response lists them under each config).
pub fn errors_by_key(errs: &[ConfigError]) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in errs {
        out.entry(e.key.clone())
            .or_default()
            .push(e.message.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse_properties;

    #[test]
    fn plugins_by_full_and_simple_names() {
        assert_eq!(plugin("FileStreamSink").unwrap().class, FILE_SINK);
        assert_eq!(plugin("S3SinkConnector").unwrap().class, S3_SINK);
        assert_eq!(plugin("JdbcSinkConnector").unwrap().class, JDBC_SINK);
        assert_eq!(plugin("JdbcSource").unwrap().class, JDBC_SOURCE);
        assert_eq!(plugin(FILE_SOURCE).unwrap().kind, Kind::Source);
        assert!(plugin("com.example.Nope").is_none());
    }

    #[test]
    fn validation_names_keys() {
        let m = parse_properties("name=x\nconnector.class=com.example.Nope\n");
        assert_eq!(validate(&m)[0].key, "connector.class");
        let m = parse_properties(&format!("name=x\nconnector.class={FILE_SINK}\n"));
        assert_eq!(validate(&m)[0].key, "topics");
        let m = parse_properties(&format!(
            "name=x\nconnector.class={FILE_SINK}\ntopics=a\ntasks.max=two\n"
        ));
        assert_eq!(validate(&m)[0].key, "tasks.max");
        let m = parse_properties(&format!(
            "name=x\nconnector.class={FILE_SINK}\ntopics=a\nerrors.tolerance=some\n"
        ));
        assert_eq!(validate(&m)[0].key, "errors.tolerance");
        let m = parse_properties(&format!(
            "name=x\nconnector.class={FILE_SINK}\ntopics=a\nfile=/tmp/x\ntasks.max=3\n"
        ));
        assert!(validate(&m).is_empty());
        assert_eq!(task_configs(&m).len(), 3);
    }
}
