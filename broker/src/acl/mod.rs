//! ACLs as Kafka's AclAuthorizer (issue 16; docs/architecture.md → ACLs):
//! on when `authorizer.class.name` names one of Kafka's authorizers.
//!
//! * `model` — resource types, operations (with Kafka's implications),
//!   permissions, patterns, entries, filters;
//! * `codec` — Kafka's ZooKeeper layout and JSON (`/kafka-acl/...`,
//!   `/kafka-acl-extended/prefixed/...`, change notifications);
//! * `cache` — every ACL in memory, indexed for the decision;
//! * `authorizer` — the decision (super users, DENY wins, implications,
//!   `allow.everyone.if.no.acl.found`), a cache lookup;
//! * `store` — writes (coordinator or memory) and the watch that keeps
//!   every broker's cache current.
//!
//! `broker` wires `Acls` when the authorizer is on; `api` asks it.

pub mod authorizer;
pub mod cache;
pub mod codec;
pub mod model;
pub mod store;

use std::sync::Arc;

pub use authorizer::{AclSettings, Authorizer, Caller};
pub use model::{Operation, ResourceType};

/// The authorizer and where its ACLs are written.
pub struct Acls {
    pub authorizer: Authorizer,
    pub store: Box<dyn store::AclStore>,
}

impl Acls {
    /// Build for a broker: in the coordinator when `sessions` is Some (and
    /// start the watch that feeds the cache), else in memory.
    pub fn start(
        settings: AclSettings,
        sessions: Option<tokio::sync::watch::Receiver<fjord_zk::client::ZkClient>>,
        shutdown: tokio::sync::watch::Receiver<bool>,
    ) -> Arc<Acls> {
        let cache = Arc::new(cache::AclCache::new());
        let store: Box<dyn store::AclStore> = match sessions {
            Some(s) => {
                tokio::spawn(store::watch_task(cache.clone(), s.clone(), shutdown));
                Box::new(store::ZkAclStore::new(s, cache.clone()))
            }
            None => Box::new(store::MemAclStore::new(cache.clone())),
        };
        Arc::new(Acls {
            authorizer: Authorizer::new(settings, cache),
            store,
        })
    }
}
