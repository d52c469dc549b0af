//! The result line that every Fjord load generator ends with.
//!
//! A run ends with one line `TOOL key=value key=value ...` that the scripts under
//! `scripts/` and `bench/anchors/` read by field name (`tail -1`, then `key=`). With
//! `--json` the same fields follow as one JSON object on a line of its own, for tools that
//! would rather not parse text. Both renderings come from one list of fields, so they
//! cannot drift apart.

use std::fmt::Write;

/// One field's value and how it is written.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A count.
    Int(i64),
    /// A measurement, written with this many decimals.
    Float(f64, usize),
    /// A word (mode, acks, `ok`/`FAIL`); written bare in text, quoted in JSON.
    Text(String),
    /// A yes/no flag.
    Bool(bool),
}

/// The text form: `12`, `0.500` (with its decimals), `ok`, `true`.
impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Int(n) => write!(f, "{n}"),
            Value::Float(x, d) => write!(f, "{x:.d$}"),
            Value::Text(t) => write!(f, "{t}"),
            Value::Bool(b) => write!(f, "{b}"),
        }
    }
}

/// The fields of a run's result line, in the order they are printed.
#[derive(Clone, Debug)]
pub struct Summary {
    tool: &'static str,
    fields: Vec<(&'static str, Value)>,
}

impl Summary {
    /// An empty line for `tool` (`zkbench`, `kbench`).
    pub fn new(tool: &'static str) -> Self {
        Summary {
            tool,
            fields: Vec::new(),
        }
    }

    /// Appends a count.
    pub fn int(mut self, key: &'static str, v: impl TryInto<i64>) -> Self {
        self.fields
            .push((key, Value::Int(v.try_into().unwrap_or(i64::MAX))));
        self
    }

    /// Appends a measurement with `decimals` digits after the point.
    pub fn float(mut self, key: &'static str, v: f64, decimals: usize) -> Self {
        self.fields.push((key, Value::Float(v, decimals)));
        self
    }

    /// Appends a word.
    pub fn text(mut self, key: &'static str, v: impl Into<String>) -> Self {
        self.fields.push((key, Value::Text(v.into())));
        self
    }

    /// Appends a flag.
    pub fn flag(mut self, key: &'static str, v: bool) -> Self {
        self.fields.push((key, Value::Bool(v)));
        self
    }

    /// Appends every field of `more`, in order.
    pub fn extend(mut self, more: impl IntoIterator<Item = (&'static str, Value)>) -> Self {
        self.fields.extend(more);
        self
    }

    /// `TOOL key=value ...`: the line the scripts read.
    pub fn to_text(&self) -> String {
        let mut s = self.tool.to_string();
        for (k, v) in &self.fields {
            let _ = write!(s, " {k}={v}");
        }
        s
    }

    /// `{"tool":"TOOL","key":value,...}`; a value that is not a finite number is `null`.
    pub fn to_json(&self) -> String {
        let mut s = format!("{{\"tool\":{}", quote(self.tool));
        for (k, v) in &self.fields {
            let _ = write!(s, ",{}:", quote(k));
            let _ = match v {
                Value::Int(n) => write!(s, "{n}"),
                Value::Float(x, d) if x.is_finite() => write!(s, "{x:.d$}"),
                Value::Float(..) => write!(s, "null"),
                Value::Text(t) => write!(s, "{}", quote(t)),
                Value::Bool(b) => write!(s, "{b}"),
            };
        }
        s.push('}');
        s
    }

    /// Prints the text line, then the JSON line when `json` is set.
    pub fn print(&self, json: bool) {
        println!("{}", self.to_text());
        if json {
            println!("{}", self.to_json());
        }
    }
}

/// A JSON string literal.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Summary {
        Summary::new("zkbench")
            .text("mode", "create")
            .int("ops", 169_417u64)
            .float("secs", 10.04612, 3)
            .float("ops_per_s", 16864.49, 1)
            .flag("group", false)
    }

    #[test]
    fn text_line_is_key_value_words() {
        assert_eq!(
            sample().to_text(),
            "zkbench mode=create ops=169417 secs=10.046 ops_per_s=16864.5 group=false"
        );
    }

    #[test]
    fn json_line_has_the_same_fields() {
        assert_eq!(
            sample().to_json(),
            r#"{"tool":"zkbench","mode":"create","ops":169417,"secs":10.046,"ops_per_s":16864.5,"group":false}"#
        );
    }

    #[test]
    fn json_escapes_and_nulls() {
        let s = Summary::new("kbench")
            .text("note", "a\"b\\\n")
            .float("rate", f64::INFINITY, 1);
        assert_eq!(
            s.to_json(),
            r#"{"tool":"kbench","note":"a\"b\\\u000a","rate":null}"#
        );
        assert_eq!(s.to_text(), "kbench note=a\"b\\\n rate=inf");
    }
}
