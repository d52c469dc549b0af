//! Every ACL of the cluster, in memory, indexed for the decision: literal
//! patterns by (type, name), prefixed patterns by (type, prefix) so that a
//! resource name finds its prefixes with one hash lookup per character
//! boundary. The coordinator watch (`store`) replaces a pattern's entries
//! whenever its znode changes; decisions only read. A pattern with no
//! entries is not kept, so "no ACL found" is an empty lookup.

use std::collections::HashMap;

use parking_lot::RwLock;

use super::model::*;

/// Patterns of one pattern type: resource type → name → entries (nested
/// so a lookup borrows the name, no allocation per decision).
type ByName = HashMap<ResourceType, HashMap<String, Vec<AclEntry>>>;

#[derive(Default)]
struct Index {
    literal: ByName,
    prefixed: ByName,
    /// The longest prefix stored per type (bounds the prefix walk).
    longest_prefix: HashMap<ResourceType, usize>,
}

impl Index {
    fn map(&mut self, pt: PatternType) -> Option<&mut ByName> {
        match pt {
            PatternType::Literal => Some(&mut self.literal),
            PatternType::Prefixed => Some(&mut self.prefixed),
            _ => None,
        }
    }
    fn put(&mut self, p: &ResourcePattern, entries: Vec<AclEntry>) {
        let Some(map) = self.map(p.pattern_type) else {
            return;
        };
        let names = map.entry(p.resource_type).or_default();
        if entries.is_empty() {
            names.remove(&p.name);
        } else {
            names.insert(p.name.clone(), entries);
        }
        if p.pattern_type == PatternType::Prefixed {
            let longest = self
                .prefixed
                .get(&p.resource_type)
                .and_then(|m| m.keys().map(String::len).max())
                .unwrap_or(0);
            self.longest_prefix.insert(p.resource_type, longest);
        }
    }
}

/// The shared ACL cache.
#[derive(Default)]
pub struct AclCache {
    index: RwLock<Index>,
}

impl AclCache {
    pub fn new() -> AclCache {
        AclCache::default()
    }

    /// Set a pattern's entries (empty: the pattern is gone).
    pub fn put(&self, p: &ResourcePattern, entries: Vec<AclEntry>) {
        self.index.write().put(p, entries);
    }

    /// Replace everything (a full load after (re)connecting).
    pub fn replace_all(&self, all: Vec<(ResourcePattern, Vec<AclEntry>)>) {
        let mut fresh = Index::default();
        for (p, entries) in all {
            fresh.put(&p, entries);
        }
        *self.index.write() = fresh;
    }

    /// A pattern's entries (empty if none).
    pub fn get(&self, p: &ResourcePattern) -> Vec<AclEntry> {
        let ix = self.index.read();
        let map = match p.pattern_type {
            PatternType::Literal => &ix.literal,
            PatternType::Prefixed => &ix.prefixed,
            _ => return Vec::new(),
        };
        map.get(&p.resource_type)
            .and_then(|m| m.get(&p.name))
            .cloned()
            .unwrap_or_default()
    }

    /// Every stored pattern with its entries (DescribeAcls, DeleteAcls).
    pub fn all(&self) -> Vec<(ResourcePattern, Vec<AclEntry>)> {
        let ix = self.index.read();
        let mut out = Vec::new();
        for (pt, map) in [
            (PatternType::Literal, &ix.literal),
            (PatternType::Prefixed, &ix.prefixed),
        ] {
            for (t, names) in map {
                for (n, v) in names {
                    out.push((
                        ResourcePattern {
                            resource_type: *t,
                            name: n.clone(),
                            pattern_type: pt,
                        },
                        v.clone(),
                    ));
                }
            }
        }
        out.sort();
        out
    }

    /// Number of entries cached (for logs and the benchmark).
    pub fn len(&self) -> usize {
        let ix = self.index.read();
        ix.literal
            .values()
            .chain(ix.prefixed.values())
            .flat_map(|m| m.values())
            .map(Vec::len)
            .sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Call `f` with every entry that could speak for resource (`t`, `name`):
    /// its literal pattern, the literal wildcard `*`, and every stored
    /// prefix of `name`. Returns whether any pattern matched at all.
    pub fn for_matching(&self, t: ResourceType, name: &str, mut f: impl FnMut(&AclEntry)) -> bool {
        let ix = self.index.read();
        let mut any = false;
        let mut visit = |v: Option<&Vec<AclEntry>>| {
            if let Some(v) = v {
                any = true;
                v.iter().for_each(&mut f);
            }
        };
        if let Some(lit) = ix.literal.get(&t) {
            visit(lit.get(name));
            if name != WILDCARD_RESOURCE {
                visit(lit.get(WILDCARD_RESOURCE));
            }
        }
        let longest = ix.longest_prefix.get(&t).copied().unwrap_or(0);
        if let (Some(pre), true) = (ix.prefixed.get(&t), longest > 0) {
            for (i, _) in name.char_indices().skip(1).chain([(name.len(), ' ')]) {
                if i > longest {
                    break;
                }
                visit(pre.get(&name[..i]));
            }
        }
        any
    }

    /// Every entry of resource type `t` with its pattern (authorize by type).
    pub fn for_type(&self, t: ResourceType, mut f: impl FnMut(PatternType, &str, &AclEntry)) {
        let ix = self.index.read();
        for (pt, map) in [
            (PatternType::Literal, &ix.literal),
            (PatternType::Prefixed, &ix.prefixed),
        ] {
            for (n, v) in map.get(&t).into_iter().flatten() {
                v.iter().for_each(|e| f(pt, n, e));
            }
        }
    }
}
