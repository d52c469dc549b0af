//! The ACL model as Kafka has it (`org.apache.kafka.common.acl` and
//! `.resource`): resource types, operations, permission and pattern types
//! with their wire codes and their names in Kafka's JSON and tools, one ACL
//! entry (principal, host, operation, permission), a resource pattern, and
//! the filters of DescribeAcls/DeleteAcls. Also the one rule the decision
//! needs from here: which granted operations imply the asked one
//! (READ/WRITE/DELETE/ALTER imply DESCRIBE; ALTER_CONFIGS implies
//! DESCRIBE_CONFIGS), as Kafka's AclAuthorizer.

/// The cluster resource's only name.
pub const CLUSTER_NAME: &str = "kafka-cluster";
/// The literal resource name that matches every name.
pub const WILDCARD_RESOURCE: &str = "*";
/// The principal that matches every user.
pub const WILDCARD_PRINCIPAL: &str = "User:*";
/// The host that matches every host.
pub const WILDCARD_HOST: &str = "*";

/// Kafka's `ResourceType` (wire codes as Kafka's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceType {
    Any,
    Topic,
    Group,
    Cluster,
    TransactionalId,
    DelegationToken,
    User,
}

impl ResourceType {
    /// The specific types, in Kafka's order (paths under `/kafka-acl`).
    pub const SPECIFIC: [ResourceType; 6] = [
        ResourceType::Topic,
        ResourceType::Group,
        ResourceType::Cluster,
        ResourceType::TransactionalId,
        ResourceType::DelegationToken,
        ResourceType::User,
    ];
    pub fn code(self) -> i8 {
        match self {
            ResourceType::Any => 1,
            ResourceType::Topic => 2,
            ResourceType::Group => 3,
            ResourceType::Cluster => 4,
            ResourceType::TransactionalId => 5,
            ResourceType::DelegationToken => 6,
            ResourceType::User => 7,
        }
    }
    pub fn from_code(c: i8) -> Option<ResourceType> {
        Some(match c {
            1 => ResourceType::Any,
            2 => ResourceType::Topic,
            3 => ResourceType::Group,
            4 => ResourceType::Cluster,
            5 => ResourceType::TransactionalId,
            6 => ResourceType::DelegationToken,
            7 => ResourceType::User,
            _ => return None,
        })
    }
    /// The znode segment (`SecurityUtils.resourceTypeName`): `TransactionalId`.
    pub fn zk_name(self) -> &'static str {
        match self {
            ResourceType::Any => "Any",
            ResourceType::Topic => "Topic",
            ResourceType::Group => "Group",
            ResourceType::Cluster => "Cluster",
            ResourceType::TransactionalId => "TransactionalId",
            ResourceType::DelegationToken => "DelegationToken",
            ResourceType::User => "User",
        }
    }
    /// The enum name (`TRANSACTIONAL_ID`), as change events carry it.
    pub fn enum_name(self) -> &'static str {
        match self {
            ResourceType::Any => "ANY",
            ResourceType::Topic => "TOPIC",
            ResourceType::Group => "GROUP",
            ResourceType::Cluster => "CLUSTER",
            ResourceType::TransactionalId => "TRANSACTIONAL_ID",
            ResourceType::DelegationToken => "DELEGATION_TOKEN",
            ResourceType::User => "USER",
        }
    }
    /// Either spelling, any case (Kafka's `fromString` after its name rule).
    pub fn parse(s: &str) -> Option<ResourceType> {
        let k = s.to_ascii_lowercase().replace('_', "");
        ResourceType::SPECIFIC
            .into_iter()
            .chain([ResourceType::Any])
            .find(|t| t.zk_name().to_ascii_lowercase() == k)
    }
}

/// Kafka's `AclOperation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    Any,
    All,
    Read,
    Write,
    Create,
    Delete,
    Alter,
    Describe,
    ClusterAction,
    DescribeConfigs,
    AlterConfigs,
    IdempotentWrite,
    CreateTokens,
    DescribeTokens,
}

impl Operation {
    const ALL_SPECIFIC: [Operation; 13] = [
        Operation::All,
        Operation::Read,
        Operation::Write,
        Operation::Create,
        Operation::Delete,
        Operation::Alter,
        Operation::Describe,
        Operation::ClusterAction,
        Operation::DescribeConfigs,
        Operation::AlterConfigs,
        Operation::IdempotentWrite,
        Operation::CreateTokens,
        Operation::DescribeTokens,
    ];
    pub fn code(self) -> i8 {
        match self {
            Operation::Any => 1,
            Operation::All => 2,
            Operation::Read => 3,
            Operation::Write => 4,
            Operation::Create => 5,
            Operation::Delete => 6,
            Operation::Alter => 7,
            Operation::Describe => 8,
            Operation::ClusterAction => 9,
            Operation::DescribeConfigs => 10,
            Operation::AlterConfigs => 11,
            Operation::IdempotentWrite => 12,
            Operation::CreateTokens => 13,
            Operation::DescribeTokens => 14,
        }
    }
    pub fn from_code(c: i8) -> Option<Operation> {
        if c == 1 {
            return Some(Operation::Any);
        }
        Operation::ALL_SPECIFIC.into_iter().find(|o| o.code() == c)
    }
    /// Kafka's JSON name (`SecurityUtils.operationName`): `DescribeConfigs`.
    pub fn json_name(self) -> &'static str {
        match self {
            Operation::Any => "Any",
            Operation::All => "All",
            Operation::Read => "Read",
            Operation::Write => "Write",
            Operation::Create => "Create",
            Operation::Delete => "Delete",
            Operation::Alter => "Alter",
            Operation::Describe => "Describe",
            Operation::ClusterAction => "ClusterAction",
            Operation::DescribeConfigs => "DescribeConfigs",
            Operation::AlterConfigs => "AlterConfigs",
            Operation::IdempotentWrite => "IdempotentWrite",
            Operation::CreateTokens => "CreateTokens",
            Operation::DescribeTokens => "DescribeTokens",
        }
    }
    /// `Read`, `READ`, `describe_configs`, `DescribeConfigs`: any case, `_` ignored.
    pub fn parse(s: &str) -> Option<Operation> {
        let k = s.to_ascii_lowercase().replace(['_', '-'], "");
        Operation::ALL_SPECIFIC
            .into_iter()
            .chain([Operation::Any])
            .find(|o| o.json_name().to_ascii_lowercase() == k)
    }
    /// The granted operations that allow `self` (besides ALL): Kafka's
    /// implications — DESCRIBE is implied by READ, WRITE, DELETE, ALTER;
    /// DESCRIBE_CONFIGS by ALTER_CONFIGS. DENY entries never use this: a
    /// DENY READ does not deny DESCRIBE.
    pub fn implied_by(self) -> &'static [Operation] {
        match self {
            Operation::Describe => &[
                Operation::Describe,
                Operation::Read,
                Operation::Write,
                Operation::Delete,
                Operation::Alter,
            ],
            Operation::DescribeConfigs => &[Operation::DescribeConfigs, Operation::AlterConfigs],
            Operation::Read => &[Operation::Read],
            Operation::Write => &[Operation::Write],
            Operation::Create => &[Operation::Create],
            Operation::Delete => &[Operation::Delete],
            Operation::Alter => &[Operation::Alter],
            Operation::ClusterAction => &[Operation::ClusterAction],
            Operation::AlterConfigs => &[Operation::AlterConfigs],
            Operation::IdempotentWrite => &[Operation::IdempotentWrite],
            Operation::CreateTokens => &[Operation::CreateTokens],
            Operation::DescribeTokens => &[Operation::DescribeTokens],
            Operation::All => &[Operation::All],
            Operation::Any => &[],
        }
    }
}

/// Kafka's `AclPermissionType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    Any,
    Deny,
    Allow,
}

impl Permission {
    pub fn code(self) -> i8 {
        match self {
            Permission::Any => 1,
            Permission::Deny => 2,
            Permission::Allow => 3,
        }
    }
    pub fn from_code(c: i8) -> Option<Permission> {
        Some(match c {
            1 => Permission::Any,
            2 => Permission::Deny,
            3 => Permission::Allow,
            _ => return None,
        })
    }
    pub fn json_name(self) -> &'static str {
        match self {
            Permission::Any => "Any",
            Permission::Deny => "Deny",
            Permission::Allow => "Allow",
        }
    }
    pub fn parse(s: &str) -> Option<Permission> {
        match s.to_ascii_lowercase().as_str() {
            "allow" => Some(Permission::Allow),
            "deny" => Some(Permission::Deny),
            "any" => Some(Permission::Any),
            _ => None,
        }
    }
}

/// Kafka's `PatternType`: LITERAL and PREFIXED are stored; ANY and MATCH
/// only filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PatternType {
    Any,
    Match,
    Literal,
    Prefixed,
}

impl PatternType {
    pub fn code(self) -> i8 {
        match self {
            PatternType::Any => 1,
            PatternType::Match => 2,
            PatternType::Literal => 3,
            PatternType::Prefixed => 4,
        }
    }
    pub fn from_code(c: i8) -> Option<PatternType> {
        Some(match c {
            1 => PatternType::Any,
            2 => PatternType::Match,
            3 => PatternType::Literal,
            4 => PatternType::Prefixed,
            _ => return None,
        })
    }
    pub fn enum_name(self) -> &'static str {
        match self {
            PatternType::Any => "ANY",
            PatternType::Match => "MATCH",
            PatternType::Literal => "LITERAL",
            PatternType::Prefixed => "PREFIXED",
        }
    }
    pub fn parse(s: &str) -> Option<PatternType> {
        [
            PatternType::Any,
            PatternType::Match,
            PatternType::Literal,
            PatternType::Prefixed,
        ]
        .into_iter()
        .find(|p| p.enum_name().eq_ignore_ascii_case(s.trim()))
    }
}

/// A stored resource pattern: type, name, LITERAL or PREFIXED.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourcePattern {
    pub resource_type: ResourceType,
    pub name: String,
    pub pattern_type: PatternType,
}

/// One access control entry of a pattern.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AclEntry {
    pub principal: String,
    pub host: String,
    pub operation: Operation,
    pub permission: Permission,
}

impl AclEntry {
    /// Does this entry speak for `principal` from `host` about `op`?
    /// (Exact or wildcard principal and host; the exact operation or ALL.)
    pub fn applies(&self, principal: &str, host: &str, op: Operation) -> bool {
        (self.operation == op || self.operation == Operation::All)
            && (self.principal == principal || self.principal == WILDCARD_PRINCIPAL)
            && (self.host == host || self.host == WILDCARD_HOST)
    }
}

/// A DescribeAcls/DeleteAcls filter (None: any value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AclFilter {
    pub resource_type: ResourceType,
    pub name: Option<String>,
    pub pattern_type: PatternType,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Operation,
    pub permission: Permission,
}

impl AclFilter {
    /// Kafka's `ResourcePatternFilter.matches`: ANY matches every pattern
    /// whose name equals the filter's; MATCH every pattern that would apply
    /// to a resource of that name (the literal, the literal wildcard, every
    /// prefix); LITERAL/PREFIXED the same type and name.
    pub fn matches_pattern(&self, p: &ResourcePattern) -> bool {
        if self.resource_type != ResourceType::Any && self.resource_type != p.resource_type {
            return false;
        }
        match self.pattern_type {
            PatternType::Any => self.name.as_ref().is_none_or(|n| *n == p.name),
            PatternType::Match => match &self.name {
                None => true,
                Some(n) => match p.pattern_type {
                    PatternType::Literal => *n == p.name || p.name == WILDCARD_RESOURCE,
                    PatternType::Prefixed => n.starts_with(&p.name),
                    _ => false,
                },
            },
            t => t == p.pattern_type && self.name.as_ref().is_none_or(|n| *n == p.name),
        }
    }
    /// The entry half of the filter.
    pub fn matches_entry(&self, e: &AclEntry) -> bool {
        self.principal.as_ref().is_none_or(|p| *p == e.principal)
            && self.host.as_ref().is_none_or(|h| *h == e.host)
            && (self.operation == Operation::Any || self.operation == e.operation)
            && (self.permission == Permission::Any || self.permission == e.permission)
    }
}

/// A principal string must be `Type:name` (Kafka's `SecurityUtils.parseKafkaPrincipal`).
pub fn valid_principal(p: &str) -> bool {
    p.split_once(':')
        .is_some_and(|(t, n)| !t.is_empty() && !n.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for t in ResourceType::SPECIFIC {
            assert_eq!(ResourceType::from_code(t.code()), Some(t));
            assert_eq!(ResourceType::parse(t.zk_name()), Some(t));
            assert_eq!(ResourceType::parse(t.enum_name()), Some(t));
        }
        for c in 1..=14 {
            let o = Operation::from_code(c).unwrap();
            assert_eq!(o.code(), c);
            assert_eq!(Operation::parse(o.json_name()), Some(o));
        }
        assert_eq!(Operation::from_code(0), None);
        assert_eq!(
            Operation::parse("DESCRIBE_CONFIGS"),
            Some(Operation::DescribeConfigs)
        );
        assert_eq!(
            Operation::parse("IdempotentWrite"),
            Some(Operation::IdempotentWrite)
        );
        assert_eq!(Operation::parse("nope"), None);
        assert_eq!(PatternType::parse("prefixed"), Some(PatternType::Prefixed));
        assert_eq!(Permission::parse("Deny"), Some(Permission::Deny));
    }

    #[test]
    fn implications_are_kafkas() {
        let d = Operation::Describe.implied_by();
        for o in [
            Operation::Read,
            Operation::Write,
            Operation::Delete,
            Operation::Alter,
        ] {
            assert!(d.contains(&o));
        }
        assert!(!d.contains(&Operation::Create));
        assert!(Operation::DescribeConfigs
            .implied_by()
            .contains(&Operation::AlterConfigs));
        assert_eq!(Operation::Read.implied_by(), &[Operation::Read]);
    }

    #[test]
    fn filters() {
        let lit = ResourcePattern {
            resource_type: ResourceType::Topic,
            name: "orders".into(),
            pattern_type: PatternType::Literal,
        };
        let pre = ResourcePattern {
            resource_type: ResourceType::Topic,
            name: "ord".into(),
            pattern_type: PatternType::Prefixed,
        };
        let star = ResourcePattern {
            name: "*".into(),
            ..lit.clone()
        };
        let f = |pt, name: Option<&str>| AclFilter {
            resource_type: ResourceType::Topic,
            name: name.map(String::from),
            pattern_type: pt,
            principal: None,
            host: None,
            operation: Operation::Any,
            permission: Permission::Any,
        };
        let m = f(PatternType::Match, Some("orders"));
        assert!(m.matches_pattern(&lit) && m.matches_pattern(&pre) && m.matches_pattern(&star));
        let a = f(PatternType::Any, Some("orders"));
        assert!(a.matches_pattern(&lit) && !a.matches_pattern(&pre) && !a.matches_pattern(&star));
        let l = f(PatternType::Literal, None);
        assert!(l.matches_pattern(&lit) && !l.matches_pattern(&pre));
        let p = f(PatternType::Prefixed, Some("ord"));
        assert!(p.matches_pattern(&pre) && !p.matches_pattern(&lit));
        let g = AclFilter {
            resource_type: ResourceType::Group,
            ..f(PatternType::Any, None)
        };
        assert!(!g.matches_pattern(&lit));
    }

    #[test]
    fn entry_applies() {
        let e = AclEntry {
            principal: "User:*".into(),
            host: "10.0.0.1".into(),
            operation: Operation::All,
            permission: Permission::Allow,
        };
        assert!(e.applies("User:bob", "10.0.0.1", Operation::Write));
        assert!(!e.applies("User:bob", "10.0.0.2", Operation::Write));
        assert!(valid_principal("User:alice") && !valid_principal("alice"));
    }
}
