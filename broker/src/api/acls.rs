//! CreateAcls, DescribeAcls, DeleteAcls (KIP-140, KIP-290 pattern types):
//! validate each binding or filter as Kafka does, then read the cache or
//! write through the ACL store (`acl::store`). With no authorizer every
//! call answers SECURITY_DISABLED, as Kafka's brokers do. Who may call
//! them (ALTER / DESCRIBE on the cluster) is checked in `authz`.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

use super::common::s;
use crate::acl::model::*;
use crate::acl::Acls;
use crate::broker::Broker;
use crate::wire::error as err;

const DISABLED: &str = "No Authorizer is configured on the broker";

fn acls(b: &Broker) -> Option<&Arc<Acls>> {
    b.acls.as_ref()
}

/// A creation as a (pattern, entry), or Kafka's error for it.
fn binding(c: &AclCreation) -> Result<(ResourcePattern, AclEntry), (i16, String)> {
    let bad = |m: &str| Err((err::INVALID_REQUEST, m.to_string()));
    let Some(t) = ResourceType::from_code(c.resource_type).filter(|t| *t != ResourceType::Any)
    else {
        return bad("Invalid resource type");
    };
    let pt = match PatternType::from_code(c.resource_pattern_type) {
        Some(p @ (PatternType::Literal | PatternType::Prefixed)) => p,
        _ => return bad("Invalid pattern type: only LITERAL and PREFIXED ACLs may be created"),
    };
    let Some(op) = Operation::from_code(c.operation).filter(|o| *o != Operation::Any) else {
        return bad("Invalid operation");
    };
    let Some(perm) = Permission::from_code(c.permission_type).filter(|p| *p != Permission::Any)
    else {
        return bad("Invalid permission type");
    };
    let name = c.resource_name.to_string();
    if name.is_empty() || name.contains('/') {
        return bad("Invalid resource name");
    }
    if t == ResourceType::Cluster && name != CLUSTER_NAME {
        return bad("The only valid name for the CLUSTER resource is kafka-cluster");
    }
    if pt == PatternType::Prefixed && name == WILDCARD_RESOURCE {
        return bad("A PREFIXED pattern may not be the wildcard");
    }
    if !valid_principal(c.principal.as_str()) {
        return bad("Invalid principal: expected Type:name");
    }
    Ok((
        ResourcePattern {
            resource_type: t,
            name,
            pattern_type: pt,
        },
        AclEntry {
            principal: c.principal.to_string(),
            host: c.host.to_string(),
            operation: op,
            permission: perm,
        },
    ))
}

pub(super) async fn create_acls(b: &Arc<Broker>, r: CreateAclsRequest) -> CreateAclsResponse {
    let Some(a) = acls(b) else {
        return CreateAclsResponse::default().with_results(
            r.creations
                .iter()
                .map(|_| {
                    AclCreationResult::default()
                        .with_error_code(err::SECURITY_DISABLED)
                        .with_error_message(Some(s(DISABLED)))
                })
                .collect(),
        );
    };
    // Validate all, then write each pattern once with its new entries.
    let parsed: Vec<_> = r.creations.iter().map(binding).collect();
    let mut by_pattern: BTreeMap<ResourcePattern, Vec<AclEntry>> = BTreeMap::new();
    for (p, e) in parsed.iter().flatten() {
        by_pattern.entry(p.clone()).or_default().push(e.clone());
    }
    let mut failed: BTreeMap<ResourcePattern, String> = BTreeMap::new();
    for (p, entries) in &by_pattern {
        if let Err(e) = a.store.add(p, entries).await {
            tracing::warn!(pattern = ?p, error = %e, "CreateAcls failed");
            failed.insert(p.clone(), e.to_string());
        }
    }
    let results = parsed
        .into_iter()
        .map(|x| match x {
            Err((code, m)) => AclCreationResult::default()
                .with_error_code(code)
                .with_error_message(Some(s(&m))),
            Ok((p, _)) => match failed.get(&p) {
                Some(m) => AclCreationResult::default()
                    .with_error_code(err::UNKNOWN_SERVER_ERROR)
                    .with_error_message(Some(s(m))),
                None => AclCreationResult::default(),
            },
        })
        .collect();
    CreateAclsResponse::default().with_results(results)
}

/// A DescribeAcls/DeleteAcls filter from its wire fields.
#[allow(clippy::too_many_arguments)]
fn filter(
    resource_type: i8,
    name: &Option<StrBytes>,
    pattern_type: i8,
    principal: &Option<StrBytes>,
    host: &Option<StrBytes>,
    operation: i8,
    permission: i8,
) -> Result<AclFilter, String> {
    Ok(AclFilter {
        resource_type: ResourceType::from_code(resource_type).ok_or("Invalid resource type")?,
        name: name.as_ref().map(|n| n.to_string()),
        pattern_type: PatternType::from_code(pattern_type).ok_or("Invalid pattern type")?,
        principal: principal.as_ref().map(|p| p.to_string()),
        host: host.as_ref().map(|h| h.to_string()),
        operation: Operation::from_code(operation).ok_or("Invalid operation")?,
        permission: Permission::from_code(permission).ok_or("Invalid permission type")?,
    })
}

/// Every stored (pattern, entry) a filter matches.
fn matching(a: &Acls, f: &AclFilter) -> Vec<(ResourcePattern, Vec<AclEntry>)> {
    a.authorizer
        .cache()
        .all()
        .into_iter()
        .filter(|(p, _)| f.matches_pattern(p))
        .map(|(p, es)| {
            let es: Vec<_> = es.into_iter().filter(|e| f.matches_entry(e)).collect();
            (p, es)
        })
        .filter(|(_, es)| !es.is_empty())
        .collect()
}

pub(super) fn describe_acls(b: &Arc<Broker>, r: DescribeAclsRequest) -> DescribeAclsResponse {
    let Some(a) = acls(b) else {
        return DescribeAclsResponse::default()
            .with_error_code(err::SECURITY_DISABLED)
            .with_error_message(Some(s(DISABLED)));
    };
    let f = match filter(
        r.resource_type_filter,
        &r.resource_name_filter,
        r.pattern_type_filter,
        &r.principal_filter,
        &r.host_filter,
        r.operation,
        r.permission_type,
    ) {
        Ok(f) => f,
        Err(m) => {
            return DescribeAclsResponse::default()
                .with_error_code(err::INVALID_REQUEST)
                .with_error_message(Some(s(&m)))
        }
    };
    let resources = matching(a, &f)
        .into_iter()
        .map(|(p, es)| {
            DescribeAclsResource::default()
                .with_resource_type(p.resource_type.code())
                .with_resource_name(s(&p.name))
                .with_pattern_type(p.pattern_type.code())
                .with_acls(
                    es.iter()
                        .map(|e| {
                            AclDescription::default()
                                .with_principal(s(&e.principal))
                                .with_host(s(&e.host))
                                .with_operation(e.operation.code())
                                .with_permission_type(e.permission.code())
                        })
                        .collect(),
                )
        })
        .collect();
    DescribeAclsResponse::default().with_resources(resources)
}

pub(super) async fn delete_acls(b: &Arc<Broker>, r: DeleteAclsRequest) -> DeleteAclsResponse {
    let Some(a) = acls(b) else {
        return DeleteAclsResponse::default().with_filter_results(
            r.filters
                .iter()
                .map(|_| {
                    DeleteAclsFilterResult::default()
                        .with_error_code(err::SECURITY_DISABLED)
                        .with_error_message(Some(s(DISABLED)))
                })
                .collect(),
        );
    };
    let mut out = Vec::with_capacity(r.filters.len());
    for fl in &r.filters {
        let f = match filter(
            fl.resource_type_filter,
            &fl.resource_name_filter,
            fl.pattern_type_filter,
            &fl.principal_filter,
            &fl.host_filter,
            fl.operation,
            fl.permission_type,
        ) {
            Ok(f) => f,
            Err(m) => {
                out.push(
                    DeleteAclsFilterResult::default()
                        .with_error_code(err::INVALID_REQUEST)
                        .with_error_message(Some(s(&m))),
                );
                continue;
            }
        };
        let mut matched = Vec::new();
        for (p, es) in matching(a, &f) {
            let res = a.store.remove(&p, &es).await;
            let (code, msg) = match &res {
                Ok(()) => (err::NONE, None),
                Err(e) => (err::UNKNOWN_SERVER_ERROR, Some(s(&e.to_string()))),
            };
            matched.extend(es.iter().map(|e| {
                DeleteAclsMatchingAcl::default()
                    .with_error_code(code)
                    .with_error_message(msg.clone())
                    .with_resource_type(p.resource_type.code())
                    .with_resource_name(s(&p.name))
                    .with_pattern_type(p.pattern_type.code())
                    .with_principal(s(&e.principal))
                    .with_host(s(&e.host))
                    .with_operation(e.operation.code())
                    .with_permission_type(e.permission.code())
            }));
        }
        out.push(DeleteAclsFilterResult::default().with_matching_acls(matched));
    }
    DeleteAclsResponse::default().with_filter_results(out)
}
