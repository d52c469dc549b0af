//! The decision, as Kafka's AclAuthorizer makes it, from the cache alone (no
//! coordinator round trip): a super user may do anything; otherwise the
//! entries of the resource's matching patterns (literal, literal `*`,
//! stored prefixes) decide — none at all means `allow.everyone.if.no.acl.found`;
//! any DENY for the principal (or `User:*`), host (or `*`) and operation
//! (or ALL) refuses; else an ALLOW for an operation that implies the asked
//! one grants. Also Kafka's `authorizeByResourceType` (KIP-679): may the
//! principal do `op` on *some* resource of a type (an idempotent producer's
//! WRITE on any topic).

use std::collections::HashSet;
use std::sync::Arc;

use super::cache::AclCache;
use super::model::*;

/// Kafka's class names that turn the authorizer on.
pub const AUTHORIZER_CLASSES: [&str; 3] = [
    "kafka.security.authorizer.AclAuthorizer",
    "kafka.security.auth.SimpleAclAuthorizer",
    "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
];

/// `super.users` and `allow.everyone.if.no.acl.found`.
#[derive(Debug, Clone, Default)]
pub struct AclSettings {
    pub super_users: HashSet<String>,
    pub allow_if_no_acl: bool,
}

impl AclSettings {
    /// From server.properties: None when `authorizer.class.name` is unset or
    /// empty (no authorizer: every request allowed, as Kafka).
    pub fn from_raw(
        raw: &std::collections::BTreeMap<String, String>,
    ) -> Result<Option<AclSettings>, String> {
        let class = raw
            .get("authorizer.class.name")
            .map(|s| s.trim())
            .unwrap_or("");
        if class.is_empty() {
            return Ok(None);
        }
        if !AUTHORIZER_CLASSES.contains(&class) {
            return Err(format!(
                "authorizer.class.name: unknown authorizer {class:?} (one of {})",
                AUTHORIZER_CLASSES.join(", ")
            ));
        }
        let super_users = raw
            .get("super.users")
            .map(|s| {
                s.split(';')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default();
        let allow_if_no_acl = match raw
            .get("allow.everyone.if.no.acl.found")
            .map(|v| v.trim().to_ascii_lowercase())
        {
            None => false,
            Some(v) if v == "true" => true,
            Some(v) if v == "false" => false,
            Some(v) => {
                return Err(format!(
                    "allow.everyone.if.no.acl.found: {v:?} is not a boolean"
                ))
            }
        };
        Ok(Some(AclSettings {
            super_users,
            allow_if_no_acl,
        }))
    }
}

/// Who asks: the connection's principal and client host (IP as text).
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Arc<str>,
    pub host: String,
}

/// The decision function over the shared cache.
pub struct Authorizer {
    settings: AclSettings,
    cache: Arc<AclCache>,
}

impl Authorizer {
    pub fn new(settings: AclSettings, cache: Arc<AclCache>) -> Authorizer {
        Authorizer { settings, cache }
    }

    pub fn cache(&self) -> &Arc<AclCache> {
        &self.cache
    }

    pub fn is_super(&self, principal: &str) -> bool {
        self.settings.super_users.contains(principal)
    }

    /// May `who` do `op` on resource (`t`, `name`)?
    pub fn authorize(&self, who: &Caller, op: Operation, t: ResourceType, name: &str) -> bool {
        if self.is_super(&who.principal) {
            return true;
        }
        let (p, h) = (&*who.principal, who.host.as_str());
        let allowed_ops = op.implied_by();
        let (mut denied, mut allowed) = (false, false);
        let found = self.cache.for_matching(t, name, |e| match e.permission {
            Permission::Deny => denied |= e.applies(p, h, op),
            Permission::Allow => {
                allowed |= allowed_ops.iter().any(|o| e.applies(p, h, *o));
            }
            Permission::Any => {}
        });
        if !found {
            return self.settings.allow_if_no_acl;
        }
        !denied && allowed
    }

    /// Kafka's `authorizeByResourceType`: may `who` do `op` on at least one
    /// resource of type `t`? Yes if the literal name Kafka probes with
    /// ("hardcode") is authorized (super users, no-ACL default), else if an
    /// ALLOW pattern is not dominated by a DENY (a DENY on literal `*`
    /// dominates everything; a DENY prefix dominates the literal names and
    /// longer prefixes it starts; a DENY literal its own name).
    pub fn authorize_by_type(&self, who: &Caller, op: Operation, t: ResourceType) -> bool {
        if self.authorize(who, op, t, "hardcode") {
            return true;
        }
        let (p, h) = (&*who.principal, who.host.as_str());
        let mut deny_lit: HashSet<String> = HashSet::new();
        let mut deny_pre: Vec<String> = Vec::new();
        let mut allow: Vec<(PatternType, String)> = Vec::new();
        self.cache.for_type(t, |pt, name, e| {
            if !e.applies(p, h, op) {
                return;
            }
            match e.permission {
                Permission::Deny => match pt {
                    PatternType::Literal => {
                        deny_lit.insert(name.to_string());
                    }
                    _ => deny_pre.push(name.to_string()),
                },
                Permission::Allow => allow.push((pt, name.to_string())),
                Permission::Any => {}
            }
        });
        if deny_lit.contains(WILDCARD_RESOURCE) {
            return false;
        }
        allow.iter().any(|(pt, name)| {
            let by_prefix = deny_pre.iter().any(|d| name.starts_with(d.as_str()));
            match pt {
                PatternType::Literal => !by_prefix && !deny_lit.contains(name),
                _ => !by_prefix,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(p: &str, host: &str, op: Operation, perm: Permission) -> AclEntry {
        AclEntry {
            principal: p.into(),
            host: host.into(),
            operation: op,
            permission: perm,
        }
    }
    fn pat(t: ResourceType, n: &str, pt: PatternType) -> ResourcePattern {
        ResourcePattern {
            resource_type: t,
            name: n.into(),
            pattern_type: pt,
        }
    }
    fn who(p: &str) -> Caller {
        Caller {
            principal: Arc::from(p),
            host: "127.0.0.1".into(),
        }
    }
    fn authz(allow_if_no_acl: bool) -> Authorizer {
        let cache = Arc::new(AclCache::new());
        use Operation::*;
        use Permission::*;
        use ResourceType::*;
        cache.put(
            &pat(Topic, "orders", PatternType::Literal),
            vec![
                entry("User:alice", "*", Write, Allow),
                entry("User:bob", "*", Read, Allow),
                entry("User:carol", "*", All, Allow),
                entry("User:carol", "*", Write, Deny),
            ],
        );
        cache.put(
            &pat(Topic, "logs-", PatternType::Prefixed),
            vec![entry("User:bob", "*", Read, Allow)],
        );
        cache.put(
            &pat(Topic, "logs-secret", PatternType::Literal),
            vec![entry("User:bob", "*", Read, Deny)],
        );
        cache.put(
            &pat(Group, "billing", PatternType::Literal),
            vec![entry("User:bob", "*", Read, Allow)],
        );
        cache.put(
            &pat(Topic, "*", PatternType::Literal),
            vec![entry("User:*", "10.9.9.9", Describe, Allow)],
        );
        cache.put(
            &pat(Cluster, CLUSTER_NAME, PatternType::Literal),
            vec![entry("User:dave", "127.0.0.1", ClusterAction, Allow)],
        );
        let mut s = AclSettings {
            allow_if_no_acl,
            ..Default::default()
        };
        s.super_users.insert("User:admin".into());
        Authorizer::new(s, cache)
    }

    #[test]
    fn kafka_semantics() {
        use Operation::*;
        use ResourceType::*;
        let a = authz(false);
        let (alice, bob, carol) = (who("User:alice"), who("User:bob"), who("User:carol"));
        assert!(a.authorize(&alice, Write, Topic, "orders"));
        assert!(!a.authorize(&alice, Read, Topic, "orders"));
        assert!(
            a.authorize(&alice, Describe, Topic, "orders"),
            "WRITE implies DESCRIBE"
        );
        assert!(a.authorize(&bob, Read, Topic, "orders"));
        assert!(!a.authorize(&bob, Write, Topic, "orders"));
        // Prefixed family, and a literal DENY inside it wins.
        assert!(a.authorize(&bob, Read, Topic, "logs-app"));
        assert!(a.authorize(&bob, Describe, Topic, "logs-app"));
        assert!(!a.authorize(&bob, Read, Topic, "logs-secret"));
        assert!(!a.authorize(&bob, Read, Topic, "logs"));
        // DENY beats ALL; ALL grants the rest.
        assert!(!a.authorize(&carol, Write, Topic, "orders"));
        assert!(a.authorize(&carol, Read, Topic, "orders"));
        assert!(a.authorize(&carol, Delete, Topic, "orders"));
        // Groups.
        assert!(a.authorize(&bob, Read, Group, "billing"));
        assert!(!a.authorize(&bob, Read, Group, "other"));
        // Super user, and hosts.
        assert!(a.authorize(&who("User:admin"), Alter, Cluster, CLUSTER_NAME));
        assert!(a.authorize(&who("User:dave"), ClusterAction, Cluster, CLUSTER_NAME));
        let far = Caller {
            principal: Arc::from("User:dave"),
            host: "10.0.0.7".into(),
        };
        assert!(!a.authorize(&far, ClusterAction, Cluster, CLUSTER_NAME));
        let via_star = Caller {
            principal: Arc::from("User:eve"),
            host: "10.9.9.9".into(),
        };
        assert!(a.authorize(&via_star, Describe, Topic, "anything"));
        assert!(!a.authorize(&via_star, Read, Topic, "anything"));
    }

    #[test]
    fn no_acl_found_follows_the_setting() {
        use Operation::*;
        use ResourceType::*;
        let bob = who("User:bob");
        // TransactionalId has no ACL at all.
        assert!(!authz(false).authorize(&bob, Write, TransactionalId, "tx"));
        assert!(authz(true).authorize(&bob, Write, TransactionalId, "tx"));
        // A resource with ACLs (for others) is not "no ACL found".
        assert!(!authz(true).authorize(&bob, Write, Topic, "orders"));
        // The topic wildcard has ACLs: every topic has some.
        assert!(!authz(true).authorize(&bob, Write, Topic, "fresh"));
    }

    #[test]
    fn by_resource_type() {
        use Operation::*;
        use ResourceType::*;
        let a = authz(false);
        assert!(a.authorize_by_type(&who("User:alice"), Write, Topic));
        assert!(!a.authorize_by_type(&who("User:bob"), Write, Topic));
        assert!(a.authorize_by_type(&who("User:admin"), Write, Topic));
        // A prefix DENY dominates an ALLOW of a longer prefix.
        let c = Arc::new(AclCache::new());
        c.put(
            &pat(Topic, "a-b", PatternType::Prefixed),
            vec![entry("User:x", "*", Write, Permission::Allow)],
        );
        c.put(
            &pat(Topic, "a-", PatternType::Prefixed),
            vec![entry("User:x", "*", Write, Permission::Deny)],
        );
        let b = Authorizer::new(AclSettings::default(), c);
        assert!(!b.authorize_by_type(&who("User:x"), Write, Topic));
    }

    #[test]
    fn settings() {
        let mut raw = std::collections::BTreeMap::new();
        assert!(AclSettings::from_raw(&raw).unwrap().is_none());
        raw.insert(
            "authorizer.class.name".to_string(),
            "kafka.security.authorizer.AclAuthorizer".to_string(),
        );
        raw.insert(
            "super.users".to_string(),
            "User:admin; User:ANONYMOUS".to_string(),
        );
        let s = AclSettings::from_raw(&raw).unwrap().unwrap();
        assert!(s.super_users.contains("User:ANONYMOUS") && !s.allow_if_no_acl);
        raw.insert(
            "allow.everyone.if.no.acl.found".to_string(),
            "maybe".to_string(),
        );
        assert!(AclSettings::from_raw(&raw).is_err());
        raw.insert("authorizer.class.name".to_string(), "x.Y".to_string());
        assert!(AclSettings::from_raw(&raw).is_err());
    }
}
