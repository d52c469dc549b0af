//! How `fjord consume` prints a record: Kafka's DefaultMessageFormatter, driven
//! by kafka-console-consumer's `--property` names (print.key, key.separator,
//! ...) or the equivalent flags, so commands from the Kafka material work
//! verbatim; `--output json` prints one JSON object per record instead.

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{bail, Context};
use base64::Engine;
use fjord_kafka::client::ConsumedRecord;
use serde_json::json;

use crate::kafka::{key_value, text};
use crate::Output;

/// The flags that predate `--property` (each the same as a property).
pub struct Flags<'a> {
    pub key: bool,
    pub offset: bool,
    pub partition: bool,
    pub timestamp: bool,
    pub headers: bool,
    pub key_separator: &'a str,
}

/// How a key, value or header value becomes text: Kafka deserializer classes
/// that have a meaning for raw bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deser {
    /// StringDeserializer, ByteArrayDeserializer, BytesDeserializer, ...: the bytes as they are.
    Raw,
    Short,
    Int,
    Long,
    Float,
    Double,
}

const SERDE_PACKAGE: &str = "org.apache.kafka.common.serialization.";

fn deser(prop: &str, class: &str) -> anyhow::Result<Deser> {
    let short = class.strip_prefix(SERDE_PACKAGE).unwrap_or(class);
    Ok(match short {
        "StringDeserializer"
        | "ByteArrayDeserializer"
        | "BytesDeserializer"
        | "ByteBufferDeserializer"
        | "UUIDDeserializer"
        | "VoidDeserializer" => Deser::Raw,
        "ShortDeserializer" => Deser::Short,
        "IntegerDeserializer" => Deser::Int,
        "LongDeserializer" => Deser::Long,
        "FloatDeserializer" => Deser::Float,
        "DoubleDeserializer" => Deser::Double,
        _ => bail!(
            "{prop}={class}: unsupported deserializer; use one of {SERDE_PACKAGE}{{String,ByteArray,Bytes,ByteBuffer,UUID,Short,Integer,Long,Float,Double}}Deserializer"
        ),
    })
}

impl Deser {
    fn write(self, out: &mut Vec<u8>, b: &[u8]) -> anyhow::Result<()> {
        let fixed = |n: usize| -> anyhow::Result<&[u8]> {
            if b.len() != n {
                bail!("size of data received by the deserializer is not {n}");
            }
            Ok(b)
        };
        let s = match self {
            Deser::Raw => {
                out.extend_from_slice(b);
                return Ok(());
            }
            Deser::Short => i16::from_be_bytes(fixed(2)?.try_into()?).to_string(),
            Deser::Int => i32::from_be_bytes(fixed(4)?.try_into()?).to_string(),
            Deser::Long => i64::from_be_bytes(fixed(8)?.try_into()?).to_string(),
            Deser::Float => f32::from_be_bytes(fixed(4)?.try_into()?).to_string(),
            Deser::Double => f64::from_be_bytes(fixed(8)?.try_into()?).to_string(),
        };
        out.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Prints records as kafka-console-consumer does.
pub struct Printer {
    out: Output,
    timestamp: bool,
    partition: bool,
    offset: bool,
    headers: bool,
    key: bool,
    value: bool,
    key_sep: Vec<u8>,
    line_sep: Vec<u8>,
    headers_sep: Vec<u8>,
    headers_key_sep: Vec<u8>,
    null_literal: Vec<u8>,
    key_deser: Deser,
    value_deser: Deser,
    headers_deser: Deser,
}

/// The property names accepted, for the error message.
const PROPERTIES: &str = "print.timestamp, print.partition, print.offset, print.headers, \
print.key, print.value, key.separator, line.separator, headers.separator, \
headers.key.separator, null.literal, key.deserializer, value.deserializer, headers.deserializer";

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

impl Printer {
    /// The flags, then each `--property k=v` over them (Kafka's defaults otherwise).
    pub fn new(flags: Flags<'_>, properties: &[String], out: Output) -> anyhow::Result<Printer> {
        let mut p = Printer {
            out,
            timestamp: flags.timestamp,
            partition: flags.partition,
            offset: flags.offset,
            headers: flags.headers,
            key: flags.key,
            value: true,
            key_sep: flags.key_separator.as_bytes().to_vec(),
            line_sep: b"\n".to_vec(),
            headers_sep: b",".to_vec(),
            headers_key_sep: b":".to_vec(),
            null_literal: b"null".to_vec(),
            key_deser: Deser::Raw,
            value_deser: Deser::Raw,
            headers_deser: Deser::Raw,
        };
        let mut props = BTreeMap::new();
        for prop in properties {
            let (k, v) = key_value(prop).context("--property")?;
            props.insert(k, v);
        }
        for (k, v) in &props {
            // Kafka: a boolean property is true when it reads "true" (any case).
            let yes = v.trim().eq_ignore_ascii_case("true");
            let bytes = v.as_bytes().to_vec();
            match k.as_str() {
                "print.timestamp" => p.timestamp = yes,
                "print.partition" => p.partition = yes,
                "print.offset" => p.offset = yes,
                "print.headers" => p.headers = yes,
                "print.key" => p.key = yes,
                "print.value" => p.value = yes,
                "key.separator" => p.key_sep = bytes,
                "line.separator" => p.line_sep = bytes,
                "headers.separator" => p.headers_sep = bytes,
                "headers.key.separator" => p.headers_key_sep = bytes,
                "null.literal" => p.null_literal = bytes,
                "key.deserializer" => p.key_deser = deser(k, v)?,
                "value.deserializer" => p.value_deser = deser(k, v)?,
                "headers.deserializer" => p.headers_deser = deser(k, v)?,
                _ => bail!("unknown --property {k}; kafka-console-consumer's formatter properties are: {PROPERTIES}"),
            }
        }
        Ok(p)
    }

    /// One record in the chosen shape.
    pub fn print(
        &self,
        w: &mut impl Write,
        topic: &str,
        p: i32,
        r: &ConsumedRecord,
    ) -> anyhow::Result<()> {
        let ts_type = if r.log_append_time {
            "LogAppendTime"
        } else {
            "CreateTime"
        };
        if self.out == Output::Json {
            return self.print_json(w, topic, p, r, ts_type);
        }
        let mut line: Vec<u8> = Vec::with_capacity(64);
        // Each field is followed by the key separator when another follows, else
        // by the line separator (DefaultMessageFormatter's layout).
        let fields = [
            self.timestamp,
            self.partition,
            self.offset,
            self.headers,
            self.key,
            self.value,
        ];
        let more = |i: usize| fields[i + 1..].iter().any(|x| *x);
        let sep = |line: &mut Vec<u8>, i: usize| {
            line.extend_from_slice(if more(i) {
                &self.key_sep
            } else {
                &self.line_sep
            })
        };
        if self.timestamp {
            if r.timestamp < 0 {
                line.extend_from_slice(b"NO_TIMESTAMP");
            } else {
                line.extend_from_slice(format!("{ts_type}:{}", r.timestamp).as_bytes());
            }
            sep(&mut line, 0);
        }
        if self.partition {
            line.extend_from_slice(format!("Partition:{p}").as_bytes());
            sep(&mut line, 1);
        }
        if self.offset {
            line.extend_from_slice(format!("Offset:{}", r.offset).as_bytes());
            sep(&mut line, 2);
        }
        if self.headers {
            if r.headers.is_empty() {
                line.extend_from_slice(b"NO_HEADERS");
            }
            for (i, (k, v)) in r.headers.iter().enumerate() {
                if i > 0 {
                    line.extend_from_slice(&self.headers_sep);
                }
                line.extend_from_slice(k.as_bytes());
                line.extend_from_slice(&self.headers_key_sep);
                self.field(&mut line, self.headers_deser, v.as_deref())
                    .with_context(|| format!("header {k} at offset {}", r.offset))?;
            }
            sep(&mut line, 3);
        }
        if self.key {
            self.field(&mut line, self.key_deser, r.key.as_deref())
                .with_context(|| format!("key at offset {}", r.offset))?;
            sep(&mut line, 4);
        }
        if self.value {
            self.field(&mut line, self.value_deser, r.value.as_deref())
                .with_context(|| format!("value at offset {}", r.offset))?;
            line.extend_from_slice(&self.line_sep);
        }
        w.write_all(&line).context("stdout")?;
        Ok(())
    }

    fn field(&self, line: &mut Vec<u8>, d: Deser, b: Option<&[u8]>) -> anyhow::Result<()> {
        match b {
            Some(b) => d.write(line, b),
            None => {
                line.extend_from_slice(&self.null_literal);
                Ok(())
            }
        }
    }

    fn print_json(
        &self,
        w: &mut impl Write,
        topic: &str,
        p: i32,
        r: &ConsumedRecord,
        ts_type: &str,
    ) -> anyhow::Result<()> {
        let opt = |b: &Option<bytes::Bytes>| b.as_ref().map(|b| text(b));
        let mut v = json!({
            "topic": topic,
            "partition": p,
            "offset": r.offset,
            "timestamp": r.timestamp,
            "timestamp_type": ts_type,
            "key": opt(&r.key),
            "value": opt(&r.value),
            "headers": r.headers.iter().map(|(k, v)| json!([k, opt(v)])).collect::<Vec<_>>(),
        });
        // Non-UTF-8 payloads also come as base64 so scripts lose nothing.
        if r.value
            .as_ref()
            .is_some_and(|b| std::str::from_utf8(b).is_err())
        {
            v["value_base64"] = json!(r.value.as_ref().map(|b| b64(b)));
        }
        if r.key
            .as_ref()
            .is_some_and(|b| std::str::from_utf8(b).is_err())
        {
            v["key_base64"] = json!(r.key.as_ref().map(|b| b64(b)));
        }
        writeln!(w, "{v}").context("stdout")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn rec() -> ConsumedRecord {
        ConsumedRecord {
            offset: 7,
            timestamp: 1000,
            log_append_time: false,
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"v")),
            headers: vec![
                ("h1".into(), Some(Bytes::from_static(b"x"))),
                ("h2".into(), None),
            ],
        }
    }

    fn show(props: &[&str]) -> anyhow::Result<String> {
        let flags = Flags {
            key: false,
            offset: false,
            partition: false,
            timestamp: false,
            headers: false,
            key_separator: "\t",
        };
        let props: Vec<String> = props.iter().map(|s| s.to_string()).collect();
        let p = Printer::new(flags, &props, Output::Text)?;
        let mut out = Vec::new();
        p.print(&mut out, "t", 3, &rec())?;
        Ok(String::from_utf8(out)?)
    }

    #[test]
    fn default_message_formatter_layout() {
        assert_eq!(show(&[]).unwrap(), "v\n");
        assert_eq!(
            show(&["print.key=true", "key.separator=|"]).unwrap(),
            "k|v\n"
        );
        assert_eq!(
            show(&[
                "print.timestamp=true",
                "print.partition=true",
                "print.offset=true",
                "print.headers=true",
                "print.key=true",
                "null.literal=NULL"
            ])
            .unwrap(),
            "CreateTime:1000\tPartition:3\tOffset:7\th1:x,h2:NULL\tk\tv\n"
        );
        assert_eq!(
            show(&["print.key=true", "print.value=false", "line.separator=;"]).unwrap(),
            "k;"
        );
        assert_eq!(
            show(&[
                "print.headers=true",
                "headers.separator=|",
                "headers.key.separator=="
            ])
            .unwrap(),
            "h1=x|h2=null\tv\n"
        );
    }

    #[test]
    fn deserializers_and_unknown_properties() {
        assert_eq!(
            show(&["value.deserializer=org.apache.kafka.common.serialization.StringDeserializer"])
                .unwrap(),
            "v\n"
        );
        let e = show(&["value.deserializer=com.example.Avro"]).unwrap_err();
        assert!(e.to_string().contains("unsupported deserializer"), "{e}");
        // A one-byte value is not an Integer.
        assert!(show(&["value.deserializer=IntegerDeserializer"]).is_err());
        let e = show(&["print.keys=true"]).unwrap_err();
        assert!(
            e.to_string().contains("unknown --property print.keys"),
            "{e}"
        );
        assert!(show(&["print.key"]).is_err());
    }
}
