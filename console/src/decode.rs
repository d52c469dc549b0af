//! How a key, value or header is shown: as text (UTF-8, lossy), as JSON
//! (pretty-printed when it parses, else text with a note), as hex, or
//! through the Schema Registry (`typed`, which needs the registry; here it
//! falls back to text). The result is plain text; the page escapes it.

/// The decodings the messages page offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Hex,
    /// Confluent-framed Avro, Protobuf or JSON Schema, decoded by `typed`.
    Schema,
}

impl Format {
    pub fn parse(s: &str) -> Format {
        match s {
            "json" => Format::Json,
            "hex" => Format::Hex,
            "schema" => Format::Schema,
            _ => Format::Text,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Json => "json",
            Format::Hex => "hex",
            Format::Schema => "schema",
        }
    }
}

/// `b` shown in `f`; `None` (a null key or value) shows as `null`.
pub fn show(b: Option<&[u8]>, f: Format) -> String {
    let Some(b) = b else {
        return "null".to_string();
    };
    match f {
        Format::Text | Format::Schema => String::from_utf8_lossy(b).into_owned(),
        Format::Hex => hex(b),
        Format::Json => match serde_json::from_slice::<serde_json::Value>(b) {
            Ok(v) => serde_json::to_string_pretty(&v)
                .unwrap_or_else(|_| String::from_utf8_lossy(b).into_owned()),
            Err(_) => format!("(not JSON) {}", String::from_utf8_lossy(b)),
        },
    }
}

/// Lower-case hex, bytes separated by spaces.
pub fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 3);
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&format!("{x:02x}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(show(None, Format::Text), "null");
        assert_eq!(show(Some(b"hi"), Format::Text), "hi");
        assert_eq!(show(Some(b"\x00\xff"), Format::Hex), "00 ff");
        assert_eq!(show(Some(b"{\"a\":1}"), Format::Json), "{\n  \"a\": 1\n}");
        assert_eq!(show(Some(b"nope"), Format::Json), "(not JSON) nope");
        assert_eq!(Format::parse("hex"), Format::Hex);
        assert_eq!(Format::parse("schema").name(), "schema");
        assert_eq!(Format::parse("whatever"), Format::Text);
    }
}
