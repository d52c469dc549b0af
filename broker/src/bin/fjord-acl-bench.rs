//! Per-decision cost of the authorizer (scripts/bench-acl.sh): a cache of
//! N ACLs (default 10,000: literal topic ACLs for many users, prefixed
//! topic families, group ACLs, one DENY), then timed loops of decisions of
//! each kind — a literal ALLOW, a DESCRIBE implied by READ, a prefixed
//! match, a DENY beating an ALLOW, and a resource with no ACL — reported in
//! nanoseconds per decision. Usage: fjord-acl-bench [acls] [decisions]

use std::sync::Arc;
use std::time::Instant;

use fjord_broker::acl::authorizer::{AclSettings, Authorizer, Caller};
use fjord_broker::acl::cache::AclCache;
use fjord_broker::acl::model::*;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let loops: usize = args
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let cache = Arc::new(AclCache::new());
    let entry = |p: &str, op, perm| AclEntry {
        principal: p.to_string(),
        host: "*".to_string(),
        operation: op,
        permission: perm,
    };
    let pat = |t, name: String, pt| ResourcePattern {
        resource_type: t,
        name,
        pattern_type: pt,
    };
    let (lit, pre, grp) = (n * 8 / 10, n / 10, n - n * 8 / 10 - n / 10);
    for i in 0..lit {
        cache.put(
            &pat(
                ResourceType::Topic,
                format!("topic-{i}"),
                PatternType::Literal,
            ),
            vec![entry(
                &format!("User:u{}", i % 500),
                Operation::Write,
                Permission::Allow,
            )],
        );
    }
    for i in 0..pre {
        cache.put(
            &pat(
                ResourceType::Topic,
                format!("fam{i}-"),
                PatternType::Prefixed,
            ),
            vec![entry(
                &format!("User:u{}", i % 500),
                Operation::Read,
                Permission::Allow,
            )],
        );
    }
    for i in 0..grp {
        cache.put(
            &pat(
                ResourceType::Group,
                format!("group-{i}"),
                PatternType::Literal,
            ),
            vec![entry(
                &format!("User:u{}", i % 500),
                Operation::Read,
                Permission::Allow,
            )],
        );
    }
    cache.put(
        &pat(ResourceType::Topic, "topic-7".into(), PatternType::Literal),
        vec![
            entry("User:u7", Operation::Write, Permission::Allow),
            entry("User:u7", Operation::Read, Permission::Deny),
            entry("User:u7", Operation::Read, Permission::Allow),
        ],
    );
    let a = Authorizer::new(AclSettings::default(), cache.clone());
    let who = |p: &str| Caller {
        principal: Arc::from(p),
        host: "10.1.2.3".into(),
    };
    let cases: [(&str, Caller, Operation, ResourceType, &str, bool); 5] = [
        (
            "literal ALLOW (WRITE topic)",
            who("User:u42"),
            Operation::Write,
            ResourceType::Topic,
            "topic-42",
            true,
        ),
        (
            "implied DESCRIBE (by READ)",
            who("User:u7"),
            Operation::Describe,
            ResourceType::Topic,
            "topic-7",
            true,
        ),
        (
            "prefixed ALLOW (READ fam3-x)",
            who("User:u3"),
            Operation::Read,
            ResourceType::Topic,
            "fam3-events-2026",
            true,
        ),
        (
            "DENY beats ALLOW",
            who("User:u7"),
            Operation::Read,
            ResourceType::Topic,
            "topic-7",
            false,
        ),
        (
            "no ACL for the resource",
            who("User:u1"),
            Operation::Write,
            ResourceType::Topic,
            "unlisted-topic",
            false,
        ),
    ];
    println!("acl-bench: {} ACL entries cached", cache.len());
    for (label, c, op, t, name, expect) in &cases {
        assert_eq!(a.authorize(c, *op, *t, name), *expect, "{label}");
        let t0 = Instant::now();
        let mut yes = 0usize;
        for _ in 0..loops {
            yes +=
                a.authorize(std::hint::black_box(c), *op, *t, std::hint::black_box(name)) as usize;
        }
        let ns = t0.elapsed().as_nanos() as f64 / loops as f64;
        std::hint::black_box(yes);
        println!("acl-bench: decision {label:<30} {ns:7.1} ns ({loops} decisions)");
    }
}
