//! Confluent's seven compatibility levels over the three schema types.
//!
//! BACKWARD: the new schema reads what the latest one wrote; FORWARD: the
//! latest reads what the new one writes; FULL: both. The `_TRANSITIVE`
//! variants check against every live version, not only the latest. NONE
//! checks nothing. Schemas of different types never read each other.

use crate::Parsed;

/// A compatibility level as configured per subject or globally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    None,
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
}

impl Level {
    /// Parse the wire name (case-insensitive).
    pub fn parse(s: &str) -> Option<Level> {
        Some(match s.to_ascii_uppercase().as_str() {
            "NONE" => Level::None,
            "BACKWARD" => Level::Backward,
            "BACKWARD_TRANSITIVE" => Level::BackwardTransitive,
            "FORWARD" => Level::Forward,
            "FORWARD_TRANSITIVE" => Level::ForwardTransitive,
            "FULL" => Level::Full,
            "FULL_TRANSITIVE" => Level::FullTransitive,
            _ => return None,
        })
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::None => "NONE",
            Level::Backward => "BACKWARD",
            Level::BackwardTransitive => "BACKWARD_TRANSITIVE",
            Level::Forward => "FORWARD",
            Level::ForwardTransitive => "FORWARD_TRANSITIVE",
            Level::Full => "FULL",
            Level::FullTransitive => "FULL_TRANSITIVE",
        }
    }

    fn transitive(self) -> bool {
        matches!(
            self,
            Level::BackwardTransitive | Level::ForwardTransitive | Level::FullTransitive
        )
    }

    fn backward(self) -> bool {
        matches!(
            self,
            Level::Backward | Level::BackwardTransitive | Level::Full | Level::FullTransitive
        )
    }

    fn forward(self) -> bool {
        matches!(
            self,
            Level::Forward | Level::ForwardTransitive | Level::Full | Level::FullTransitive
        )
    }
}

/// Reasons `reader` cannot read data written with `writer` (empty: it can).
pub fn can_read(reader: &Parsed, writer: &Parsed) -> Vec<String> {
    match (reader, writer) {
        (Parsed::Avro(r), Parsed::Avro(w)) => r.can_read(w),
        (Parsed::Protobuf(r), Parsed::Protobuf(w)) => r.can_read(w),
        (Parsed::Json(r), Parsed::Json(w)) => r.can_read(w),
        _ => vec![format!(
            "{{errorType:\"SCHEMA_TYPE_CHANGED\", description:\"schema type changed from {} to {}\"}}",
            writer.kind().as_str(),
            reader.kind().as_str()
        )],
    }
}

/// Check `new` against `previous` (live versions, oldest first) at `level`.
/// Returns the reasons it is not compatible; empty when it is.
pub fn check(level: Level, new: &Parsed, previous: &[(i32, Parsed)]) -> Vec<String> {
    if level == Level::None || previous.is_empty() {
        return Vec::new();
    }
    let against: Vec<&(i32, Parsed)> = if level.transitive() {
        previous.iter().rev().collect()
    } else {
        previous.last().into_iter().collect()
    };
    let mut out = Vec::new();
    for (version, old) in against {
        let mut reasons = Vec::new();
        if level.backward() {
            reasons.extend(can_read(new, old));
        }
        if level.forward() {
            reasons.extend(can_read(old, new));
        }
        if !reasons.is_empty() {
            out.extend(reasons);
            out.push(format!("{{oldSchemaVersion: {version}}}"));
            out.push(format!("{{oldSchema: '{}'}}", old.canonical()));
            out.push(format!("{{compatibility: '{}'}}", level.as_str()));
            // Confluent stops at the first version that fails.
            break;
        }
    }
    out
}
