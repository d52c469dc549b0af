//! The broker's log lines: `tracing` through `tracing-subscriber`, to stderr
//! (the journal under systemd), as text or as one JSON object per line
//! (`log.format=json` in server.properties, or `FJORD_LOG_FORMAT=json`, which
//! wins), with the level per module from `RUST_LOG` (default `info`).
//! Chosen before the rest of the file is parsed, so the configuration's own
//! warnings come out in the chosen format.

use std::path::Path;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl LogFormat {
    /// `text` or `json`.
    pub fn parse(v: &str) -> Option<LogFormat> {
        match v.trim() {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

/// The format asked for: `FJORD_LOG_FORMAT`, else `log.format` in the
/// properties file at `config`, else text. A value that is neither is left
/// to the configuration check (which exits 2 naming it); text meanwhile.
pub fn format_for(config: Option<&Path>) -> LogFormat {
    if let Some(f) = std::env::var("FJORD_LOG_FORMAT")
        .ok()
        .and_then(|v| LogFormat::parse(&v))
    {
        return f;
    }
    let text = config.and_then(|p| std::fs::read_to_string(p).ok());
    text.as_deref()
        .and_then(|t| {
            t.lines().find_map(|l| {
                let (k, v) = l.trim().split_once(['=', ':'])?;
                (k.trim() == "log.format").then(|| LogFormat::parse(v))?
            })
        })
        .unwrap_or(LogFormat::Text)
}

/// Install the process-wide subscriber.
pub fn init(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().with_current_span(false).init(),
        // Colour only on a terminal: not as escape codes in log files.
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_from_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.properties");
        std::fs::write(&p, "broker.id=1\n log.format = json\n").unwrap();
        if std::env::var("FJORD_LOG_FORMAT").is_err() {
            assert_eq!(format_for(Some(&p)), LogFormat::Json);
            std::fs::write(&p, "broker.id=1\n").unwrap();
            assert_eq!(format_for(Some(&p)), LogFormat::Text);
            assert_eq!(format_for(None), LogFormat::Text);
        }
        assert_eq!(LogFormat::parse("xml"), None);
    }
}
