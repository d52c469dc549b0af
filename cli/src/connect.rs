//! `fjord connect ...`: a client of Kafka Connect's REST API (fjord-connect's, or any
//! Connect worker's): list, status, create, config, pause, resume, stop, restart,
//! delete, offsets. Answers are printed as the JSON the worker returns; Connect's
//! `{"error_code","message"}` bodies become errors.

use anyhow::{anyhow, bail, Context};
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use crate::sr_client::{enc, service, Rest};
use crate::Output;

/// `fjord connect ...`
#[derive(Debug, Args)]
pub struct ConnectArgs {
    /// The Connect worker's REST URL.
    #[arg(
        long = "connect-url",
        global = true,
        default_value = "http://127.0.0.1:8083"
    )]
    url: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Connector names (with --expand status|info, their status or config too).
    List {
        #[arg(long)]
        expand: Option<String>,
    },
    /// A connector's and its tasks' states (and a failed task's trace).
    Status {
        name: String,
    },
    /// Create a connector from a .properties file (`name=` inside) or a JSON file
    /// (`{"name":..,"config":{..}}`).
    Create {
        file: std::path::PathBuf,
    },
    /// Print a connector's config, or replace it with --file (.properties or JSON object).
    Config {
        name: String,
        #[arg(long)]
        file: Option<std::path::PathBuf>,
    },
    Pause {
        name: String,
    },
    Resume {
        name: String,
    },
    /// Stop the connector's tasks (needed before offsets can be changed).
    Stop {
        name: String,
    },
    /// Restart the connector (--include-tasks, --only-failed) or one task (--task N).
    Restart {
        name: String,
        #[arg(long)]
        include_tasks: bool,
        #[arg(long)]
        only_failed: bool,
        #[arg(long)]
        task: Option<i32>,
    },
    Delete {
        name: String,
    },
    /// Print offsets; --reset deletes them, --set FILE (JSON {"offsets":[..]}) alters
    /// them (the connector must be stopped).
    Offsets {
        name: String,
        #[arg(long)]
        reset: bool,
        #[arg(long)]
        set: Option<std::path::PathBuf>,
    },
}

pub async fn run(args: ConnectArgs, output: Output) -> anyhow::Result<()> {
    let w = service("the Connect worker", "--connect-url", &args.url)?;
    let c = |method: &'static str, path: String, body: Option<Value>| {
        let w = w.clone();
        async move { call(&w, method, &path, body.as_ref()).await }
    };
    let v = match args.cmd {
        Cmd::List { expand } => match expand {
            Some(e) => c("GET", format!("/connectors?expand={}", enc(&e)), None).await?,
            None => c("GET", "/connectors".into(), None).await?,
        },
        Cmd::Status { name } => {
            c("GET", format!("/connectors/{}/status", enc(&name)), None).await?
        }
        Cmd::Create { file } => {
            let (name, config) = read_config(&file)?;
            let name =
                name.ok_or_else(|| anyhow!("{}: no connector name (name=...)", file.display()))?;
            c(
                "POST",
                "/connectors".into(),
                Some(json!({"name": name, "config": config})),
            )
            .await?
        }
        Cmd::Config { name, file } => match file {
            None => c("GET", format!("/connectors/{}/config", enc(&name)), None).await?,
            Some(f) => {
                let (_, config) = read_config(&f)?;
                c(
                    "PUT",
                    format!("/connectors/{}/config", enc(&name)),
                    Some(config),
                )
                .await?
            }
        },
        Cmd::Pause { name } => c("PUT", format!("/connectors/{}/pause", enc(&name)), None).await?,
        Cmd::Resume { name } => {
            c("PUT", format!("/connectors/{}/resume", enc(&name)), None).await?
        }
        Cmd::Stop { name } => c("PUT", format!("/connectors/{}/stop", enc(&name)), None).await?,
        Cmd::Restart {
            name,
            include_tasks,
            only_failed,
            task,
        } => match task {
            Some(t) => {
                c(
                    "POST",
                    format!("/connectors/{}/tasks/{t}/restart", enc(&name)),
                    None,
                )
                .await?
            }
            None => {
                c(
                    "POST",
                    format!(
                    "/connectors/{}/restart?includeTasks={include_tasks}&onlyFailed={only_failed}",
                    enc(&name)
                ),
                    None,
                )
                .await?
            }
        },
        Cmd::Delete { name } => c("DELETE", format!("/connectors/{}", enc(&name)), None).await?,
        Cmd::Offsets { name, reset, set } => {
            let path = format!("/connectors/{}/offsets", enc(&name));
            match (reset, set) {
                (true, Some(_)) => bail!("--reset and --set are exclusive"),
                (true, None) => c("DELETE", path, None).await?,
                (false, Some(f)) => {
                    let text = std::fs::read_to_string(&f)
                        .with_context(|| format!("reading {}", f.display()))?;
                    let body: Value = serde_json::from_str(&text)
                        .with_context(|| format!("{}: not JSON", f.display()))?;
                    c("PATCH", path, Some(body)).await?
                }
                (false, None) => c("GET", path, None).await?,
            }
        }
    };
    match (output, &v) {
        (_, Value::Null) => {}
        (Output::Json, v) => println!("{v}"),
        (Output::Text, v) => println!("{}", serde_json::to_string_pretty(v).unwrap_or_default()),
    }
    Ok(())
}

async fn call(w: &Rest, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
    let (status, v) = w.call_raw(method, path, body).await?;
    if (200..300).contains(&status) {
        return Ok(match v {
            Value::String(s) if s.is_empty() => Value::Null,
            v => v,
        });
    }
    let msg = v
        .get("message")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string());
    bail!("connect: HTTP {status}: {msg}")
}

/// A connector config from a `.properties` file or a JSON file (either the config
/// object itself or `{"name":..,"config":{..}}`): (name if given, config object).
fn read_config(path: &std::path::Path) -> anyhow::Result<(Option<String>, Value)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    if let Ok(v) = serde_json::from_str::<Value>(&text) {
        if let Some(cfg) = v.get("config") {
            return Ok((
                v.get("name").and_then(Value::as_str).map(str::to_string),
                cfg.clone(),
            ));
        }
        return Ok((v.get("name").and_then(Value::as_str).map(str::to_string), v));
    }
    let mut m = Map::new();
    for line in text.lines() {
        let l = line.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with('!') {
            continue;
        }
        let Some(i) = l.find(['=', ':']) else {
            bail!("{}: cannot parse line {l:?}", path.display())
        };
        m.insert(
            l[..i].trim().to_string(),
            Value::String(l[i + 1..].trim().to_string()),
        );
    }
    let name = m.get("name").and_then(Value::as_str).map(str::to_string);
    Ok((name, Value::Object(m)))
}
