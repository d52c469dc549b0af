//! `fjord acl add|list|remove`: ACLs with `kafka-acls.sh`'s options
//! (`--allow-principal`, `--deny-principal`, `--allow-host`, `--deny-host`,
//! `--operation` (repeatable), `--topic`, `--group`, `--cluster`,
//! `--transactional-id`, `--resource-pattern-type`), sent as CreateAcls,
//! DescribeAcls and DeleteAcls to any broker (which stores them in the
//! coordinator, Kafka's layout). The text output is kafka-acls.sh's.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use fjord_kafka::client::Node;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;

use crate::kafka::Bootstrap;
use crate::Output;

/// `fjord acl ...`
#[derive(Debug, Args)]
pub struct AclArgs {
    #[command(subcommand)]
    cmd: AclCmd,
}

#[derive(Debug, Subcommand)]
enum AclCmd {
    /// Add ACLs (kafka-acls.sh --add).
    Add {
        #[command(flatten)]
        res: Resources,
        #[command(flatten)]
        who: Entries,
        #[command(flatten)]
        bs: Bootstrap,
    },
    /// List ACLs (kafka-acls.sh --list), optionally of some resources or a principal.
    List {
        #[command(flatten)]
        res: Resources,
        /// Only ACLs of this principal (User:name).
        #[arg(long)]
        principal: Option<String>,
        #[command(flatten)]
        bs: Bootstrap,
    },
    /// Remove ACLs (kafka-acls.sh --remove): the given entries, or every
    /// ACL of the resources when no principal is given.
    Remove {
        #[command(flatten)]
        res: Resources,
        #[command(flatten)]
        who: Entries,
        #[command(flatten)]
        bs: Bootstrap,
    },
}

#[derive(Debug, Args)]
struct Resources {
    /// Topic name (repeatable; `*` for every topic).
    #[arg(long)]
    topic: Vec<String>,
    /// Consumer group (repeatable; `*` for every group).
    #[arg(long)]
    group: Vec<String>,
    /// The cluster resource (kafka-cluster).
    #[arg(long)]
    cluster: bool,
    /// Transactional id (repeatable).
    #[arg(long = "transactional-id")]
    transactional_id: Vec<String>,
    /// literal | prefixed (add); also any | match (list, remove).
    #[arg(long = "resource-pattern-type")]
    resource_pattern_type: Option<String>,
}

#[derive(Debug, Args)]
struct Entries {
    #[arg(long = "allow-principal")]
    allow_principal: Vec<String>,
    #[arg(long = "deny-principal")]
    deny_principal: Vec<String>,
    /// Hosts the allow entries apply to (default `*`).
    #[arg(long = "allow-host")]
    allow_host: Vec<String>,
    /// Hosts the deny entries apply to (default `*`).
    #[arg(long = "deny-host")]
    deny_host: Vec<String>,
    /// Operation (repeatable): Read, Write, Create, Delete, Alter, Describe,
    /// ClusterAction, DescribeConfigs, AlterConfigs, IdempotentWrite, All.
    #[arg(long)]
    operation: Vec<String>,
}

const TYPES: [(&str, i8); 4] = [
    ("TOPIC", 2),
    ("GROUP", 3),
    ("CLUSTER", 4),
    ("TRANSACTIONAL_ID", 5),
];
const OPS: [(&str, i8); 14] = [
    ("ANY", 1),
    ("ALL", 2),
    ("READ", 3),
    ("WRITE", 4),
    ("CREATE", 5),
    ("DELETE", 6),
    ("ALTER", 7),
    ("DESCRIBE", 8),
    ("CLUSTER_ACTION", 9),
    ("DESCRIBE_CONFIGS", 10),
    ("ALTER_CONFIGS", 11),
    ("IDEMPOTENT_WRITE", 12),
    ("CREATE_TOKENS", 13),
    ("DESCRIBE_TOKENS", 14),
];
const PATTERNS: [(&str, i8); 4] = [("ANY", 1), ("MATCH", 2), ("LITERAL", 3), ("PREFIXED", 4)];
const PERMS: [(&str, i8); 3] = [("ANY", 1), ("DENY", 2), ("ALLOW", 3)];

fn name_of(table: &[(&'static str, i8)], code: i8) -> &'static str {
    table
        .iter()
        .find(|(_, c)| *c == code)
        .map_or("UNKNOWN", |(n, _)| n)
}

fn operation(s: &str) -> Result<i8> {
    let k = s.to_ascii_uppercase().replace(['_', '-'], "");
    OPS.iter()
        .find(|(n, _)| n.replace('_', "") == k)
        .map(|(_, c)| *c)
        .with_context(|| format!("unknown operation {s:?}"))
}

fn pattern(s: Option<&str>, default: i8) -> Result<i8> {
    match s {
        None => Ok(default),
        Some(s) => PATTERNS
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(s))
            .map(|(_, c)| *c)
            .with_context(|| format!("unknown --resource-pattern-type {s:?}")),
    }
}

fn sb(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

impl Resources {
    /// (type code, name) for every resource named.
    fn list(&self) -> Vec<(i8, String)> {
        let mut out: Vec<(i8, String)> = self.topic.iter().map(|t| (2, t.clone())).collect();
        out.extend(self.group.iter().map(|g| (3, g.clone())));
        if self.cluster {
            out.push((4, "kafka-cluster".into()));
        }
        out.extend(self.transactional_id.iter().map(|t| (5, t.clone())));
        out
    }
}

impl Entries {
    /// (principal, host, permission code) for every entry named.
    fn list(&self) -> Vec<(String, String, i8)> {
        let hosts = |h: &Vec<String>| {
            if h.is_empty() {
                vec!["*".to_string()]
            } else {
                h.clone()
            }
        };
        let mut out = Vec::new();
        for p in &self.allow_principal {
            for h in hosts(&self.allow_host) {
                out.push((p.clone(), h, 3));
            }
        }
        for p in &self.deny_principal {
            for h in hosts(&self.deny_host) {
                out.push((p.clone(), h, 2));
            }
        }
        out
    }
    fn operations(&self, default: i8) -> Result<Vec<i8>> {
        if self.operation.is_empty() {
            return Ok(vec![default]);
        }
        self.operation.iter().map(|o| operation(o)).collect()
    }
}

fn print_acls(rows: &[(i8, String, i8, String, String, i8, i8)], output: Output) {
    match output {
        Output::Json => {
            let v: Vec<_> = rows
                .iter()
                .map(|(t, n, pt, p, h, op, perm)| {
                    json!({
                        "resource_type": name_of(&TYPES, *t), "name": n,
                        "pattern_type": name_of(&PATTERNS, *pt), "principal": p, "host": h,
                        "operation": name_of(&OPS, *op), "permission_type": name_of(&PERMS, *perm),
                    })
                })
                .collect();
            println!("{}", serde_json::Value::Array(v));
        }
        Output::Text => {
            let mut last: Option<(i8, &str, i8)> = None;
            for (t, n, pt, p, h, op, perm) in rows {
                if last != Some((*t, n.as_str(), *pt)) {
                    if last.is_some() {
                        println!();
                    }
                    println!(
                        "Current ACLs for resource `ResourcePattern(resourceType={}, name={n}, patternType={})`: ",
                        name_of(&TYPES, *t),
                        name_of(&PATTERNS, *pt)
                    );
                    last = Some((*t, n.as_str(), *pt));
                }
                println!(
                    " \t(principal={p}, host={h}, operation={}, permissionType={})",
                    name_of(&OPS, *op),
                    name_of(&PERMS, *perm)
                );
            }
        }
    }
}

pub async fn run(args: AclArgs, output: Output) -> Result<()> {
    match args.cmd {
        AclCmd::Add { res, who, bs } => {
            let pt = pattern(res.resource_pattern_type.as_deref(), 3)?;
            if !matches!(pt, 3 | 4) {
                bail!("--resource-pattern-type must be literal or prefixed to add ACLs");
            }
            let resources = res.list();
            let entries = who.list();
            if resources.is_empty() || entries.is_empty() {
                bail!("give a resource (--topic, --group, --cluster, --transactional-id) and --allow-principal or --deny-principal");
            }
            let ops = who.operations(2)?;
            let mut creations = Vec::new();
            for (t, n) in &resources {
                for (p, h, perm) in &entries {
                    for op in &ops {
                        creations.push(
                            AclCreation::default()
                                .with_resource_type(*t)
                                .with_resource_name(sb(n))
                                .with_resource_pattern_type(pt)
                                .with_principal(sb(p))
                                .with_host(sb(h))
                                .with_operation(*op)
                                .with_permission_type(*perm),
                        );
                    }
                }
            }
            let req = CreateAclsRequest::default().with_creations(creations.clone());
            let mut c = bs.connect().await?;
            let resp = c.call(Node::Any, &req, 3).await.context("CreateAcls")?;
            for r in &resp.results {
                if r.error_code != 0 {
                    bail!(
                        "CreateAcls: error {}: {}",
                        r.error_code,
                        r.error_message
                            .as_ref()
                            .map(|m| m.to_string())
                            .unwrap_or_default()
                    );
                }
            }
            let rows: Vec<_> = creations
                .iter()
                .map(|c| {
                    (
                        c.resource_type,
                        c.resource_name.to_string(),
                        c.resource_pattern_type,
                        c.principal.to_string(),
                        c.host.to_string(),
                        c.operation,
                        c.permission_type,
                    )
                })
                .collect();
            if output == Output::Text {
                println!("Adding ACLs:");
            }
            print_acls(&rows, output);
        }
        AclCmd::List { res, principal, bs } => {
            let resources = res.list();
            let pt = pattern(
                res.resource_pattern_type.as_deref(),
                if resources.is_empty() { 1 } else { 3 },
            )?;
            let mut c = bs.connect().await?;
            let mut rows = Vec::new();
            let targets: Vec<(i8, Option<String>)> = if resources.is_empty() {
                vec![(1, None)]
            } else {
                resources.into_iter().map(|(t, n)| (t, Some(n))).collect()
            };
            for (t, n) in targets {
                let req = DescribeAclsRequest::default()
                    .with_resource_type_filter(t)
                    .with_resource_name_filter(n.as_deref().map(sb))
                    .with_pattern_type_filter(pt)
                    .with_principal_filter(principal.as_deref().map(sb))
                    .with_host_filter(None)
                    .with_operation(1)
                    .with_permission_type(1);
                let resp = c.call(Node::Any, &req, 3).await.context("DescribeAcls")?;
                if resp.error_code != 0 {
                    bail!(
                        "DescribeAcls: error {}: {}",
                        resp.error_code,
                        resp.error_message
                            .map(|m| m.to_string())
                            .unwrap_or_default()
                    );
                }
                for r in resp.resources {
                    for a in r.acls {
                        rows.push((
                            r.resource_type,
                            r.resource_name.to_string(),
                            r.pattern_type,
                            a.principal.to_string(),
                            a.host.to_string(),
                            a.operation,
                            a.permission_type,
                        ));
                    }
                }
            }
            rows.sort();
            rows.dedup();
            print_acls(&rows, output);
        }
        AclCmd::Remove { res, who, bs } => {
            let pt = pattern(res.resource_pattern_type.as_deref(), 3)?;
            let resources = res.list();
            if resources.is_empty() {
                bail!("give a resource (--topic, --group, --cluster, --transactional-id)");
            }
            let entries = who.list();
            let mut filters = Vec::new();
            for (t, n) in &resources {
                let base = DeleteAclsFilter::default()
                    .with_resource_type_filter(*t)
                    .with_resource_name_filter(Some(sb(n)))
                    .with_pattern_type_filter(pt)
                    .with_principal_filter(None)
                    .with_host_filter(None)
                    .with_operation(1)
                    .with_permission_type(1);
                if entries.is_empty() {
                    filters.push(base);
                    continue;
                }
                for (p, h, perm) in &entries {
                    for op in who.operations(1)? {
                        filters.push(
                            base.clone()
                                .with_principal_filter(Some(sb(p)))
                                .with_host_filter(Some(sb(h)))
                                .with_operation(op)
                                .with_permission_type(*perm),
                        );
                    }
                }
            }
            let req = DeleteAclsRequest::default().with_filters(filters);
            let mut c = bs.connect().await?;
            let resp = c.call(Node::Any, &req, 3).await.context("DeleteAcls")?;
            let mut rows = Vec::new();
            for fr in resp.filter_results {
                if fr.error_code != 0 {
                    bail!(
                        "DeleteAcls: error {}: {}",
                        fr.error_code,
                        fr.error_message.map(|m| m.to_string()).unwrap_or_default()
                    );
                }
                for m in fr.matching_acls {
                    if m.error_code != 0 {
                        bail!(
                            "DeleteAcls: error {} on {}",
                            m.error_code,
                            m.resource_name.as_str()
                        );
                    }
                    rows.push((
                        m.resource_type,
                        m.resource_name.to_string(),
                        m.pattern_type,
                        m.principal.to_string(),
                        m.host.to_string(),
                        m.operation,
                        m.permission_type,
                    ));
                }
            }
            rows.sort();
            rows.dedup();
            if output == Output::Text {
                println!("Removed ACLs:");
            }
            print_acls(&rows, output);
        }
    }
    Ok(())
}
