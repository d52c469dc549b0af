//! `fjord schema ...`: the Schema Registry's REST API for scripts and people
//! (list, versions, get, register, check, delete, config, mode), against any
//! Confluent-compatible registry, fjord-broker's included.

use anyhow::{anyhow, Context};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::sr_client::{enc, service};
use crate::Output;

/// `fjord schema ...`
#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// The Schema Registry's URL.
    #[arg(
        long = "schema-registry",
        global = true,
        default_value = "http://127.0.0.1:8081"
    )]
    registry: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Subjects (with --deleted, soft-deleted ones too).
    List {
        #[arg(long)]
        prefix: Option<String>,
        #[arg(long)]
        deleted: bool,
    },
    /// A subject's versions.
    Versions {
        subject: String,
        #[arg(long)]
        deleted: bool,
    },
    /// A subject's version (default latest), or a schema by --id.
    Get {
        subject: Option<String>,
        #[arg(default_value = "latest")]
        version: String,
        #[arg(long)]
        id: Option<i32>,
    },
    /// Register a schema file under a subject; prints its id.
    Register {
        subject: String,
        #[arg(long)]
        file: std::path::PathBuf,
        /// AVRO, PROTOBUF or JSON.
        #[arg(long = "type", default_value = "AVRO")]
        kind: String,
    },
    /// Test a schema file against a subject (latest, a version, or --all).
    Check {
        subject: String,
        #[arg(long)]
        file: std::path::PathBuf,
        #[arg(long = "type", default_value = "AVRO")]
        kind: String,
        #[arg(long, default_value = "latest")]
        version: String,
        /// Against every version, as the subject's level says.
        #[arg(long)]
        all: bool,
    },
    /// Soft-delete a subject or one version; --permanent after that.
    Delete {
        subject: String,
        #[arg(long)]
        version: Option<String>,
        #[arg(long)]
        permanent: bool,
    },
    /// Show or --set the compatibility level (global without a subject).
    Config {
        subject: Option<String>,
        #[arg(long)]
        set: Option<String>,
    },
    /// Show or --set the mode (global without a subject).
    Mode {
        subject: Option<String>,
        #[arg(long)]
        set: Option<String>,
        #[arg(long)]
        force: bool,
    },
}

fn body(file: &std::path::Path, kind: &str) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    Ok(json!({"schema": text, "schemaType": kind.to_ascii_uppercase()}))
}

/// Run `fjord schema`.
pub async fn run(a: SchemaArgs, out: Output) -> anyhow::Result<()> {
    let r = service("the schema registry", "--schema-registry", &a.registry)?;
    let v = match a.cmd {
        Cmd::List { prefix, deleted } => {
            let mut q = format!("/subjects?deleted={deleted}");
            if let Some(p) = prefix {
                q.push_str(&format!("&subjectPrefix={}", enc(&p)));
            }
            r.call("GET", &q, None).await?
        }
        Cmd::Versions { subject, deleted } => {
            r.call(
                "GET",
                &format!("/subjects/{}/versions?deleted={deleted}", enc(&subject)),
                None,
            )
            .await?
        }
        Cmd::Get {
            subject,
            version,
            id,
        } => match (id, subject) {
            (Some(id), _) => r.call("GET", &format!("/schemas/ids/{id}"), None).await?,
            (None, Some(s)) => {
                r.call(
                    "GET",
                    &format!("/subjects/{}/versions/{}", enc(&s), enc(&version)),
                    None,
                )
                .await?
            }
            (None, None) => return Err(anyhow!("give a subject or --id")),
        },
        Cmd::Register {
            subject,
            file,
            kind,
        } => {
            r.call(
                "POST",
                &format!("/subjects/{}/versions", enc(&subject)),
                Some(&body(&file, &kind)?),
            )
            .await?
        }
        Cmd::Check {
            subject,
            file,
            kind,
            version,
            all,
        } => {
            let path = if all {
                format!(
                    "/compatibility/subjects/{}/versions?verbose=true",
                    enc(&subject)
                )
            } else {
                format!(
                    "/compatibility/subjects/{}/versions/{}?verbose=true",
                    enc(&subject),
                    enc(&version)
                )
            };
            r.call("POST", &path, Some(&body(&file, &kind)?)).await?
        }
        Cmd::Delete {
            subject,
            version,
            permanent,
        } => {
            let path = match version {
                Some(v) => format!(
                    "/subjects/{}/versions/{}?permanent={permanent}",
                    enc(&subject),
                    enc(&v)
                ),
                None => format!("/subjects/{}?permanent={permanent}", enc(&subject)),
            };
            r.call("DELETE", &path, None).await?
        }
        Cmd::Config { subject, set } => {
            let path = match &subject {
                Some(s) => format!("/config/{}", enc(s)),
                None => "/config".to_string(),
            };
            match set {
                Some(level) => {
                    r.call("PUT", &path, Some(&json!({"compatibility": level})))
                        .await?
                }
                None if subject.is_some() => {
                    r.call("GET", &format!("{path}?defaultToGlobal=true"), None)
                        .await?
                }
                None => r.call("GET", &path, None).await?,
            }
        }
        Cmd::Mode {
            subject,
            set,
            force,
        } => {
            let path = match &subject {
                Some(s) => format!("/mode/{}", enc(s)),
                None => "/mode".to_string(),
            };
            match set {
                Some(m) => {
                    r.call(
                        "PUT",
                        &format!("{path}?force={force}"),
                        Some(&json!({"mode": m})),
                    )
                    .await?
                }
                None if subject.is_some() => {
                    r.call("GET", &format!("{path}?defaultToGlobal=true"), None)
                        .await?
                }
                None => r.call("GET", &path, None).await?,
            }
        }
    };
    print(&v, out);
    Ok(())
}

fn print(v: &Value, out: Output) {
    match (out, v) {
        (Output::Json, _) => println!("{v}"),
        (Output::Text, Value::Array(items)) => {
            for i in items {
                match i {
                    Value::String(s) => println!("{s}"),
                    other => println!("{other}"),
                }
            }
        }
        (Output::Text, Value::Object(m)) if m.contains_key("schema") => {
            for k in ["subject", "version", "id", "schemaType"] {
                if let Some(x) = m.get(k) {
                    println!(
                        "{k}: {}",
                        x.as_str()
                            .map(String::from)
                            .unwrap_or_else(|| x.to_string())
                    );
                }
            }
            if let Some(s) = m.get("schema").and_then(Value::as_str) {
                println!("{s}");
            }
        }
        (Output::Text, other) => println!("{other}"),
    }
}
