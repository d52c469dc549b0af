//! Avro schemas: parsing through `apache-avro` (with named types from
//! referenced schemas), the canonical text, and reader/writer compatibility
//! through the crate's checker (the Avro specification's resolution rules).

use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::Schema;

use crate::{canonical_json, ResolvedRef, SchemaError};

/// A parsed Avro schema and what it referenced.
#[derive(Debug, Clone)]
pub struct AvroSchema {
    pub schema: Schema,
    /// Referenced schemas, parsed, in reference order (named types they define
    /// are visible to `schema`).
    pub refs: Vec<Schema>,
    pub canonical: String,
}

impl AvroSchema {
    /// Parse `text`; named types may come from `refs`.
    pub fn parse(text: &str, refs: &[ResolvedRef]) -> Result<AvroSchema, SchemaError> {
        let json: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| SchemaError::Invalid(format!("not JSON: {e}")))?;
        let canonical = canonical_json(&json);
        let (schema, refs) = if refs.is_empty() {
            let s = Schema::parse_str(text).map_err(|e| SchemaError::Invalid(e.to_string()))?;
            (s, Vec::new())
        } else {
            let list: Vec<&str> = refs.iter().map(|r| r.schema.as_str()).collect();
            Schema::parse_str_with_list(text, &list)
                .map_err(|e| SchemaError::Invalid(e.to_string()))?
        };
        Ok(AvroSchema {
            schema,
            refs,
            canonical,
        })
    }

    /// The reasons `self` (reader) cannot read what `writer` wrote; empty when it can.
    pub fn can_read(&self, writer: &AvroSchema) -> Vec<String> {
        match SchemaCompatibility::can_read(&writer.schema, &self.schema) {
            Ok(()) => Vec::new(),
            Err(e) => vec![format!(
                "{{errorType:\"READER_CANNOT_READ_WRITER\", description:\"{}\"}}",
                e.to_string().replace('"', "'")
            )],
        }
    }
}
