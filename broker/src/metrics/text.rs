//! Prometheus' text exposition format (version 0.0.4, what `promtool check
//! metrics` and every Prometheus server read): `# HELP` / `# TYPE` once per
//! family, then one line per sample with escaped label values. Written by
//! hand rather than through a metrics crate because the endpoints render
//! snapshots (tens of thousands of per-partition gauges computed at scrape
//! time), which a registry of long-lived metric objects would have to
//! rebuild on every scrape.

use std::fmt::Write;

/// The content type of this format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A metric family's type, as the `# TYPE` line names it.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// An exposition being written.
#[derive(Default)]
pub struct Text {
    out: String,
}

impl Text {
    /// An empty exposition with room for `bytes`.
    pub fn with_capacity(bytes: usize) -> Text {
        Text {
            out: String::with_capacity(bytes),
        }
    }

    /// Start a family: its HELP and TYPE lines.
    pub fn family(&mut self, name: &str, kind: Kind, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {}", escape_help(help));
        let _ = writeln!(self.out, "# TYPE {name} {}", kind.name());
    }

    /// One sample of an integer value.
    pub fn int(&mut self, name: &str, labels: &[(&str, &str)], v: i64) {
        self.head(name, labels);
        let _ = writeln!(self.out, " {v}");
    }

    /// One sample of a float value (`+Inf`, `-Inf`, `NaN` spelled as Prometheus does).
    pub fn float(&mut self, name: &str, labels: &[(&str, &str)], v: f64) {
        self.head(name, labels);
        self.out.push(' ');
        self.out.push_str(&format_float(v));
        self.out.push('\n');
    }

    fn head(&mut self, name: &str, labels: &[(&str, &str)]) {
        self.out.push_str(name);
        if labels.is_empty() {
            return;
        }
        self.out.push('{');
        for (i, (k, v)) in labels.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            self.out.push_str(k);
            self.out.push_str("=\"");
            escape_label_into(&mut self.out, v);
            self.out.push('"');
        }
        self.out.push('}');
    }

    /// The text written so far.
    pub fn finish(self) -> String {
        self.out
    }
}

/// A float as the format spells it.
pub fn format_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// Label values escape backslash, double quote and newline.
fn escape_label_into(out: &mut String, v: &str) {
    if !v.contains(['\\', '"', '\n']) {
        out.push_str(v);
        return;
    }
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// HELP text escapes backslash and newline.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_samples_and_escaping() {
        let mut t = Text::default();
        t.family("a_total", Kind::Counter, "what a\ncounts");
        t.int("a_total", &[], 3);
        t.int("a_total", &[("topic", "x\"y\\z\n")], 2);
        t.float("b", &[("le", &format_float(f64::INFINITY))], 0.5);
        assert_eq!(
            t.finish(),
            "# HELP a_total what a\\ncounts\n# TYPE a_total counter\na_total 3\n\
             a_total{topic=\"x\\\"y\\\\z\\n\"} 2\nb{le=\"+Inf\"} 0.5\n"
        );
    }
}
