//! `fjord user create|delete|list`: SCRAM users, the job of `kafka-configs
//! --entity-type users --alter --add-config 'SCRAM-SHA-256=[password=...]'`.
//! The password is salted and hashed here (PBKDF2, RFC 5802's SaltedPassword)
//! and sent with AlterUserScramCredentials, so it never crosses the wire or
//! reaches the coordinator in clear; any broker stores it at
//! `/config/users/<user>`.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use fjord_kafka::client::Node;
use kafka_protocol::messages::alter_user_scram_credentials_request::{
    ScramCredentialDeletion, ScramCredentialUpsertion,
};
use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest,
};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use crate::kafka::Bootstrap;
use crate::Output;

/// `fjord user ...`
#[derive(Debug, Args)]
pub struct UserArgs {
    #[command(subcommand)]
    cmd: UserCmd,
}

#[derive(Debug, Subcommand)]
enum UserCmd {
    /// Create a user or change its password for one SCRAM mechanism.
    Create {
        name: String,
        #[arg(long, default_value = "SCRAM-SHA-256")]
        mechanism: String,
        #[arg(long)]
        password: String,
        #[arg(long, default_value_t = 4096)]
        iterations: i32,
        /// Write the credential straight into the coordinator (host:port[/chroot])
        /// instead of asking a broker, as `kafka-configs --zookeeper`: how the
        /// inter-broker SCRAM user is made before any broker can authenticate.
        #[arg(long = "coord", visible_alias = "zookeeper")]
        coord: Option<String>,
        #[command(flatten)]
        bs: Bootstrap,
    },
    /// Delete a user's credential for one mechanism.
    Delete {
        name: String,
        #[arg(long, default_value = "SCRAM-SHA-256")]
        mechanism: String,
        #[command(flatten)]
        bs: Bootstrap,
    },
    /// List users and their mechanisms (or describe the named ones).
    List {
        names: Vec<String>,
        #[command(flatten)]
        bs: Bootstrap,
    },
}

fn mechanism(s: &str) -> Result<(i8, &'static str)> {
    match s.to_ascii_uppercase().as_str() {
        "SCRAM-SHA-256" => Ok((1, "SCRAM-SHA-256")),
        "SCRAM-SHA-512" => Ok((2, "SCRAM-SHA-512")),
        o => bail!("unknown mechanism {o}: SCRAM-SHA-256 or SCRAM-SHA-512"),
    }
}

fn mechanism_name(code: i8) -> &'static str {
    match code {
        1 => "SCRAM-SHA-256",
        2 => "SCRAM-SHA-512",
        _ => "UNKNOWN",
    }
}

/// RFC 5802's Hi(): PBKDF2 with the mechanism's HMAC.
fn salted_password(code: i8, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
    if code == 2 {
        let mut out = [0u8; 64];
        pbkdf2::pbkdf2_hmac::<sha2::Sha512>(password, salt, iterations, &mut out);
        out.to_vec()
    } else {
        let mut out = [0u8; 32];
        pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, iterations, &mut out);
        out.to_vec()
    }
}

/// Kafka's `Sanitizer`: URL-encode all but `[A-Za-z0-9._-]`.
fn sanitize(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Write `/config/users/<user>` in Kafka's JSON (other mechanisms and
/// configs of the user kept) and the `/config/changes` notification, with
/// the credential derived here (the password never leaves this process).
async fn create_in_coord(
    coord: &str,
    user: &str,
    mech: &str,
    password: &str,
    iterations: u32,
) -> Result<()> {
    use fjord_kafka::security::scram::{ScramCredential, ScramMechanism};
    use fjord_zk::client::{CreateMode, ZkClient};
    use fjord_zk::proto::{Acl, ErrorCode};
    let m = ScramMechanism::parse(mech).context("mechanism")?;
    let cred = ScramCredential::new(m, password.as_bytes(), None, iterations);
    let zk = ZkClient::connect(coord, std::time::Duration::from_secs(10))
        .await
        .with_context(|| format!("coordinator {coord}"))?;
    let result = async {
        for dir in ["/config", "/config/users", "/config/changes"] {
            match zk
                .create(dir, b"", &Acl::open_unsafe(), CreateMode::Persistent)
                .await
            {
                Ok(_) => {}
                Err(e) if e.code() == Some(ErrorCode::NodeExists) => {}
                Err(e) => return Err(anyhow::anyhow!("create {dir}: {e}")),
            }
        }
        let path = format!("/config/users/{}", sanitize(user));
        for _ in 0..5 {
            let (old, version) = match zk.get_data(&path).await {
                Ok((d, st)) => (serde_json::from_slice(&d).unwrap_or(json!({})), st.version),
                Err(e) if e.code() == Some(ErrorCode::NoNode) => (json!({}), -1),
                Err(e) => return Err(anyhow::anyhow!("read {path}: {e}")),
            };
            let mut config = old
                .get("config")
                .and_then(|c| c.as_object())
                .cloned()
                .unwrap_or_default();
            config.insert(mech.to_string(), json!(cred.to_kafka_string()));
            let body = json!({"version": 1, "config": config}).to_string();
            let r = if version < 0 {
                zk.create(
                    &path,
                    body.as_bytes(),
                    &Acl::open_unsafe(),
                    CreateMode::Persistent,
                )
                .await
                .map(|_| ())
            } else {
                zk.set_data(&path, body.as_bytes(), version)
                    .await
                    .map(|_| ())
            };
            match r {
                Ok(()) => {
                    let note =
                        json!({"version": 2, "entity_path": format!("users/{}", sanitize(user))});
                    zk.create(
                        "/config/changes/config_change_",
                        note.to_string().as_bytes(),
                        &Acl::open_unsafe(),
                        CreateMode::PersistentSequential,
                    )
                    .await
                    .map_err(|e| anyhow::anyhow!("notify: {e}"))?;
                    return Ok(());
                }
                Err(e)
                    if matches!(
                        e.code(),
                        Some(ErrorCode::BadVersion) | Some(ErrorCode::NodeExists)
                    ) => {}
                Err(e) => return Err(anyhow::anyhow!("write {path}: {e}")),
            }
        }
        bail!("{path}: changed concurrently, giving up")
    }
    .await;
    zk.close().await;
    result
}

/// Send one AlterUserScramCredentials and fail on any per-user error.
async fn alter(bs: &Bootstrap, req: AlterUserScramCredentialsRequest) -> Result<()> {
    let mut c = bs.connect().await?;
    let resp = c
        .call(Node::Any, &req, 0)
        .await
        .context("AlterUserScramCredentials")?;
    let results: Vec<_> = resp
        .results
        .iter()
        .map(|r| {
            (
                r.user.to_string(),
                r.error_code,
                r.error_message.as_ref().map(|m| m.to_string()),
            )
        })
        .collect();
    check(&results)
}

fn check(results: &[(String, i16, Option<String>)]) -> Result<()> {
    for (user, code, msg) in results {
        if *code != 0 {
            bail!("{user}: error {code}: {}", msg.clone().unwrap_or_default());
        }
    }
    Ok(())
}

pub async fn run(args: UserArgs, output: Output) -> Result<()> {
    match args.cmd {
        UserCmd::Create {
            name,
            mechanism: m,
            password,
            iterations,
            coord,
            bs,
        } => {
            let (code, mname) = mechanism(&m)?;
            if !(4096..=16384).contains(&iterations) {
                bail!("--iterations must be between 4096 and 16384");
            }
            if let Some(coord) = coord {
                create_in_coord(&coord, &name, mname, &password, iterations as u32).await?;
                match output {
                    Output::Json => println!(
                        "{}",
                        json!({"user": name, "mechanism": mname, "iterations": iterations})
                    ),
                    Output::Text => {
                        println!("Completed updating config for user {name} ({mname}).")
                    }
                }
                return Ok(());
            }
            let mut salt = vec![0u8; 16];
            rand::Rng::fill(&mut rand::rng(), &mut salt[..]);
            let salted = salted_password(code, password.as_bytes(), &salt, iterations as u32);
            let req = AlterUserScramCredentialsRequest::default().with_upsertions(vec![
                ScramCredentialUpsertion::default()
                    .with_name(StrBytes::from_string(name.clone()))
                    .with_mechanism(code)
                    .with_iterations(iterations)
                    .with_salt(salt.into())
                    .with_salted_password(salted.into()),
            ]);
            alter(&bs, req).await?;
            match output {
                Output::Json => println!(
                    "{}",
                    json!({"user": name, "mechanism": mname, "iterations": iterations})
                ),
                Output::Text => println!("Completed updating config for user {name} ({mname})."),
            }
        }
        UserCmd::Delete {
            name,
            mechanism: m,
            bs,
        } => {
            let (code, mname) = mechanism(&m)?;
            let req = AlterUserScramCredentialsRequest::default().with_deletions(vec![
                ScramCredentialDeletion::default()
                    .with_name(StrBytes::from_string(name.clone()))
                    .with_mechanism(code),
            ]);
            alter(&bs, req).await?;
            match output {
                Output::Json => println!(
                    "{}",
                    json!({"user": name, "mechanism": mname, "deleted": true})
                ),
                Output::Text => println!("Deleted {mname} credential of user {name}."),
            }
        }
        UserCmd::List { names, bs } => {
            let users = if names.is_empty() {
                None
            } else {
                Some(
                    names
                        .iter()
                        .map(|n| UserName::default().with_name(StrBytes::from_string(n.clone())))
                        .collect(),
                )
            };
            let req = DescribeUserScramCredentialsRequest::default().with_users(users);
            let mut c = bs.connect().await?;
            let resp = c
                .call(Node::Any, &req, 0)
                .await
                .context("DescribeUserScramCredentials")?;
            if resp.error_code != 0 {
                bail!(
                    "error {}: {}",
                    resp.error_code,
                    resp.error_message
                        .map(|m| m.to_string())
                        .unwrap_or_default()
                );
            }
            check(
                &resp
                    .results
                    .iter()
                    .map(|r| {
                        (
                            r.user.to_string(),
                            r.error_code,
                            r.error_message.as_ref().map(|m| m.to_string()),
                        )
                    })
                    .collect::<Vec<_>>(),
            )?;
            match output {
                Output::Json => {
                    let v: Vec<_> = resp
                        .results
                        .iter()
                        .map(|r| {
                            json!({
                                "user": r.user.to_string(),
                                "credentials": r.credential_infos.iter().map(|c| json!({
                                    "mechanism": mechanism_name(c.mechanism),
                                    "iterations": c.iterations,
                                })).collect::<Vec<_>>(),
                            })
                        })
                        .collect();
                    println!("{}", serde_json::Value::Array(v));
                }
                Output::Text => {
                    for r in &resp.results {
                        // kafka-configs' shape.
                        let creds: Vec<String> = r
                            .credential_infos
                            .iter()
                            .map(|c| {
                                format!(
                                    "{}=iterations={}",
                                    mechanism_name(c.mechanism),
                                    c.iterations
                                )
                            })
                            .collect();
                        println!(
                            "SCRAM credential configs for user-principal '{}' are {}",
                            r.user,
                            creds.join(", ")
                        );
                    }
                }
            }
        }
    }
    Ok(())
}
