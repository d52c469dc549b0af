//! Kafka's ZooKeeper layout for ACLs (ZkData.scala's ZkAclStore), so that
//! Kafka's own tools and Fjord read and write the same znodes:
//!
//! * `/kafka-acl/<ResourceType>/<name>` — LITERAL patterns;
//! * `/kafka-acl-extended/prefixed/<ResourceType>/<name>` — PREFIXED ones;
//! * data `{"version":1,"acls":[{"principal":"User:alice",
//!   "permissionType":"Allow","operation":"Write","host":"*"}]}`;
//! * after a change, a sequential `/kafka-acl-changes/acl_changes_` node
//!   holding `TOPIC:orders` (literal) or a `/kafka-acl-extended-changes/
//!   acl_changes_` node holding `{"version":1,"resourceType":"TOPIC",
//!   "name":"logs-","patternType":"PREFIXED"}` (Kafka's change events).
//!
//! Decoding never panics: an unreadable entry is skipped, an unreadable
//! body is an error the caller logs.

use serde_json::{json, Value};

use super::model::*;

pub const LITERAL_ROOT: &str = "/kafka-acl";
pub const EXTENDED_ROOT: &str = "/kafka-acl-extended";
pub const LITERAL_CHANGES: &str = "/kafka-acl-changes";
pub const EXTENDED_CHANGES: &str = "/kafka-acl-extended-changes";
pub const CHANGE_PREFIX: &str = "acl_changes_";

/// The root under which patterns of `pt` live (`/kafka-acl`, `/kafka-acl-extended/prefixed`).
pub fn store_root(pt: PatternType) -> String {
    match pt {
        PatternType::Literal => LITERAL_ROOT.to_string(),
        other => format!("{EXTENDED_ROOT}/{}", other.enum_name().to_ascii_lowercase()),
    }
}

/// The znode of a pattern.
pub fn resource_path(p: &ResourcePattern) -> String {
    format!(
        "{}/{}/{}",
        store_root(p.pattern_type),
        p.resource_type.zk_name(),
        p.name
    )
}

/// The pattern a znode path names (None for paths that are not resource nodes).
pub fn parse_resource_path(path: &str) -> Option<ResourcePattern> {
    let (pattern_type, rest) = if let Some(r) = path.strip_prefix("/kafka-acl-extended/prefixed/") {
        (PatternType::Prefixed, r)
    } else {
        (PatternType::Literal, path.strip_prefix("/kafka-acl/")?)
    };
    let (t, name) = rest.split_once('/')?;
    if name.is_empty() || name.contains('/') {
        return None;
    }
    Some(ResourcePattern {
        resource_type: ResourceType::parse(t).filter(|t| *t != ResourceType::Any)?,
        name: name.to_string(),
        pattern_type,
    })
}

/// Encode a pattern's entries as Kafka's znode body.
pub fn encode_acls(entries: &[AclEntry]) -> Vec<u8> {
    let acls: Vec<Value> = entries
        .iter()
        .map(|e| {
            json!({
                "principal": e.principal,
                "permissionType": e.permission.json_name(),
                "operation": e.operation.json_name(),
                "host": e.host,
            })
        })
        .collect();
    json!({"version": 1, "acls": acls}).to_string().into_bytes()
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("not ACL JSON: {0}")]
    Json(String),
    #[error("unsupported ACL znode version {0}")]
    Version(i64),
}

/// Decode a znode body (an empty body is no entries, as Kafka reads it).
pub fn decode_acls(data: &[u8]) -> Result<Vec<AclEntry>, CodecError> {
    if data.is_empty() {
        return Ok(Vec::new());
    }
    let v: Value = serde_json::from_slice(data).map_err(|e| CodecError::Json(e.to_string()))?;
    let version = v.get("version").and_then(Value::as_i64).unwrap_or(1);
    if version != 1 {
        return Err(CodecError::Version(version));
    }
    let Some(acls) = v.get("acls").and_then(Value::as_array) else {
        return Ok(Vec::new());
    };
    let mut out: Vec<AclEntry> = acls
        .iter()
        .filter_map(|a| {
            Some(AclEntry {
                principal: a.get("principal")?.as_str()?.to_string(),
                host: a.get("host")?.as_str()?.to_string(),
                operation: Operation::parse(a.get("operation")?.as_str()?)
                    .filter(|o| *o != Operation::Any)?,
                permission: Permission::parse(a.get("permissionType")?.as_str()?)
                    .filter(|p| *p != Permission::Any)?,
            })
        })
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// The change notification for a pattern: (parent path, body).
pub fn change_note(p: &ResourcePattern) -> (&'static str, Vec<u8>) {
    match p.pattern_type {
        PatternType::Literal => (
            LITERAL_CHANGES,
            format!("{}:{}", p.resource_type.enum_name(), p.name).into_bytes(),
        ),
        _ => (
            EXTENDED_CHANGES,
            json!({
                "version": 1,
                "resourceType": p.resource_type.enum_name(),
                "name": p.name,
                "patternType": p.pattern_type.enum_name(),
            })
            .to_string()
            .into_bytes(),
        ),
    }
}

/// The pattern a change notification names (either store's form).
pub fn parse_change_note(parent: &str, data: &[u8]) -> Option<ResourcePattern> {
    let s = std::str::from_utf8(data).ok()?;
    if parent == LITERAL_CHANGES {
        let (t, name) = s.split_once(':')?;
        return Some(ResourcePattern {
            resource_type: ResourceType::parse(t)?,
            name: name.to_string(),
            pattern_type: PatternType::Literal,
        });
    }
    let v: Value = serde_json::from_str(s).ok()?;
    Some(ResourcePattern {
        resource_type: ResourceType::parse(v.get("resourceType")?.as_str()?)?,
        name: v.get("name")?.as_str()?.to_string(),
        pattern_type: PatternType::parse(v.get("patternType")?.as_str()?)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(t: ResourceType, n: &str, pt: PatternType) -> ResourcePattern {
        ResourcePattern {
            resource_type: t,
            name: n.into(),
            pattern_type: pt,
        }
    }

    #[test]
    fn paths_are_kafkas() {
        let p = pat(ResourceType::Topic, "orders", PatternType::Literal);
        assert_eq!(resource_path(&p), "/kafka-acl/Topic/orders");
        assert_eq!(parse_resource_path("/kafka-acl/Topic/orders"), Some(p));
        let q = pat(ResourceType::TransactionalId, "tx-", PatternType::Prefixed);
        assert_eq!(
            resource_path(&q),
            "/kafka-acl-extended/prefixed/TransactionalId/tx-"
        );
        assert_eq!(parse_resource_path(&resource_path(&q)), Some(q));
        assert_eq!(parse_resource_path("/kafka-acl/Topic"), None);
        assert_eq!(parse_resource_path("/kafka-acl/Nope/x"), None);
        assert_eq!(
            parse_resource_path("/kafka-acl-changes/acl_changes_1"),
            None
        );
    }

    #[test]
    fn json_round_trip_and_kafkas_bytes() {
        let e = AclEntry {
            principal: "User:alice".into(),
            host: "*".into(),
            operation: Operation::Write,
            permission: Permission::Allow,
        };
        let body = encode_acls(std::slice::from_ref(&e));
        assert_eq!(decode_acls(&body).unwrap(), vec![e.clone()]);
        // What Kafka's AclAuthorizer writes (key order differs; fields match).
        let kafka = br#"{"version":1,"acls":[{"principal":"User:alice","permissionType":"Allow","operation":"Write","host":"*"},{"principal":"User:bob","permissionType":"Deny","operation":"DescribeConfigs","host":"10.0.0.1"}]}"#;
        let got = decode_acls(kafka).unwrap();
        assert_eq!(got.len(), 2);
        assert!(got.contains(&e));
        assert!(got.iter().any(|x| x.operation == Operation::DescribeConfigs
            && x.permission == Permission::Deny
            && x.host == "10.0.0.1"));
        assert_eq!(decode_acls(b"").unwrap(), vec![]);
        assert!(decode_acls(b"{nope").is_err());
        assert_eq!(
            decode_acls(br#"{"version":2,"acls":[]}"#),
            Err(CodecError::Version(2))
        );
        // Entries that cannot be read are skipped, not fatal.
        let partly = br#"{"version":1,"acls":[{"principal":"User:a"},{"principal":"User:b","permissionType":"Allow","operation":"Read","host":"*"}]}"#;
        assert_eq!(decode_acls(partly).unwrap().len(), 1);
    }

    #[test]
    fn change_notes() {
        let p = pat(ResourceType::Topic, "orders", PatternType::Literal);
        let (parent, body) = change_note(&p);
        assert_eq!(parent, "/kafka-acl-changes");
        assert_eq!(body, b"TOPIC:orders");
        assert_eq!(parse_change_note(parent, &body), Some(p));
        assert_eq!(
            parse_change_note(LITERAL_CHANGES, b"Topic:a:b").map(|p| p.name),
            Some("a:b".into())
        );
        let q = pat(ResourceType::Group, "bill", PatternType::Prefixed);
        let (parent, body) = change_note(&q);
        assert_eq!(parent, "/kafka-acl-extended-changes");
        assert_eq!(parse_change_note(parent, &body), Some(q));
        assert_eq!(parse_change_note(EXTENDED_CHANGES, b"garbage"), None);
    }
}
