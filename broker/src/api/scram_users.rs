//! DescribeUserScramCredentials (key 50) and AlterUserScramCredentials (key
//! 51), KIP-554: the `kafka-configs --entity-type users` job over the wire.
//! Credentials arrive salted (SaltedPassword, never the password) and are
//! stored through `security::credentials` at `/config/users/<user>`; any
//! broker answers. Per-user errors follow Kafka: an unknown mechanism is
//! UNSUPPORTED_SASL_MECHANISM, a bad iteration count or empty salt
//! UNACCEPTABLE_CREDENTIAL, a user named twice DUPLICATE_RESOURCE, deleting
//! what is not there RESOURCE_NOT_FOUND.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use kafka_protocol::messages::*;

use super::common::s;
use crate::broker::Broker;
use crate::security::scram::{ScramCredential, ScramMechanism, MAX_ITERATIONS, MIN_ITERATIONS};
use crate::wire::error as err;

pub(super) async fn describe(
    b: &Arc<Broker>,
    r: DescribeUserScramCredentialsRequest,
) -> DescribeUserScramCredentialsResponse {
    let mut resp = DescribeUserScramCredentialsResponse::default();
    let (names, all) = match &r.users {
        Some(u) if !u.is_empty() => (
            u.iter().map(|n| n.name.to_string()).collect::<Vec<_>>(),
            false,
        ),
        _ => match b.scram.users().await {
            Ok(u) => (u, true),
            Err(e) => {
                resp.error_code = err::UNKNOWN_SERVER_ERROR;
                resp.error_message = Some(s(&e.to_string()));
                return resp;
            }
        },
    };
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for n in &names {
        *counts.entry(n.as_str()).or_default() += 1;
    }
    let mut seen = BTreeSet::new();
    for n in &names {
        if !seen.insert(n.clone()) {
            continue;
        }
        let mut res =
            describe_user_scram_credentials_response::DescribeUserScramCredentialsResult::default()
                .with_user(s(n));
        if counts[n.as_str()] > 1 {
            res.error_code = err::DUPLICATE_RESOURCE;
            res.error_message = Some(s(&format!("Cannot describe SCRAM credentials for the same user twice in a single request: {n}")));
        } else {
            match b.scram.get(n).await {
                Ok(c) if c.is_empty() && !all => {
                    res.error_code = err::RESOURCE_NOT_FOUND;
                    res.error_message = Some(s(&format!(
                        "Attempt to describe a user credential that does not exist: {n}"
                    )));
                }
                Ok(c) => {
                    res.credential_infos = c
                        .iter()
                        .map(|(m, c)| {
                            describe_user_scram_credentials_response::CredentialInfo::default()
                                .with_mechanism(m.code())
                                .with_iterations(c.iterations as i32)
                        })
                        .collect();
                }
                Err(e) => {
                    res.error_code = err::UNKNOWN_SERVER_ERROR;
                    res.error_message = Some(s(&e.to_string()));
                }
            }
        }
        resp.results.push(res);
    }
    resp
}

pub(super) async fn alter(
    b: &Arc<Broker>,
    r: AlterUserScramCredentialsRequest,
) -> AlterUserScramCredentialsResponse {
    // Kafka: a user named more than once (across deletions and upsertions
    // of the same mechanism) fails as a whole.
    let mut per_user: BTreeMap<String, Vec<(i8, bool)>> = BTreeMap::new();
    for d in &r.deletions {
        per_user
            .entry(d.name.to_string())
            .or_default()
            .push((d.mechanism, false));
    }
    for u in &r.upsertions {
        per_user
            .entry(u.name.to_string())
            .or_default()
            .push((u.mechanism, true));
    }
    let mut errors: BTreeMap<String, (i16, String)> = BTreeMap::new();
    for (user, ops) in &per_user {
        let mechs: BTreeSet<i8> = ops.iter().map(|(m, _)| *m).collect();
        if mechs.len() != ops.len() {
            errors.insert(
                user.clone(),
                (
                    err::DUPLICATE_RESOURCE,
                    format!(
                        "A user credential cannot be altered twice in the same request: {user}"
                    ),
                ),
            );
        }
        if user.is_empty() {
            errors.insert(
                user.clone(),
                (
                    err::UNACCEPTABLE_CREDENTIAL,
                    "Username must not be empty".into(),
                ),
            );
        }
    }
    for d in &r.deletions {
        let user = d.name.to_string();
        if errors.contains_key(&user) {
            continue;
        }
        let Some(m) = ScramMechanism::from_code(d.mechanism) else {
            errors.insert(
                user,
                (
                    err::UNSUPPORTED_SASL_MECHANISM,
                    "Unknown SCRAM mechanism".into(),
                ),
            );
            continue;
        };
        match b.scram.get(&user).await {
            Ok(c) if c.contains_key(&m) => {}
            Ok(_) => {
                errors.insert(
                    user.clone(),
                    (
                        err::RESOURCE_NOT_FOUND,
                        format!("Attempt to delete a user credential that does not exist: {user}"),
                    ),
                );
            }
            Err(e) => {
                errors.insert(user, (err::UNKNOWN_SERVER_ERROR, e.to_string()));
            }
        }
    }
    for u in &r.upsertions {
        let user = u.name.to_string();
        if errors.contains_key(&user) {
            continue;
        }
        if ScramMechanism::from_code(u.mechanism).is_none() {
            errors.insert(
                user,
                (
                    err::UNSUPPORTED_SASL_MECHANISM,
                    "Unknown SCRAM mechanism".into(),
                ),
            );
        } else if u.iterations < MIN_ITERATIONS as i32 || u.iterations > MAX_ITERATIONS as i32 {
            errors.insert(
                user,
                (
                    err::UNACCEPTABLE_CREDENTIAL,
                    format!("Iterations must be between {MIN_ITERATIONS} and {MAX_ITERATIONS}"),
                ),
            );
        } else if u.salt.is_empty() || u.salted_password.is_empty() {
            errors.insert(
                user,
                (
                    err::UNACCEPTABLE_CREDENTIAL,
                    "Salt and password must not be empty".into(),
                ),
            );
        }
    }
    // Apply what passed validation.
    for d in &r.deletions {
        let user = d.name.to_string();
        if errors.contains_key(&user) {
            continue;
        }
        if let Some(m) = ScramMechanism::from_code(d.mechanism) {
            if let Err(e) = b.scram.set(&user, m, None).await {
                errors.insert(user, (err::UNKNOWN_SERVER_ERROR, e.to_string()));
            }
        }
    }
    for u in &r.upsertions {
        let user = u.name.to_string();
        if errors.contains_key(&user) {
            continue;
        }
        if let Some(m) = ScramMechanism::from_code(u.mechanism) {
            let cred = ScramCredential::from_salted(
                m,
                &u.salted_password,
                u.salt.to_vec(),
                u.iterations as u32,
            );
            match b.scram.set(&user, m, Some(cred)).await {
                Ok(()) => {
                    tracing::info!(user = %user, mechanism = m.name(), "SCRAM credential set")
                }
                Err(e) => {
                    errors.insert(user, (err::UNKNOWN_SERVER_ERROR, e.to_string()));
                }
            }
        }
    }
    let results = per_user
        .keys()
        .map(|user| {
            let mut r =
                alter_user_scram_credentials_response::AlterUserScramCredentialsResult::default()
                    .with_user(s(user));
            if let Some((code, msg)) = errors.get(user) {
                r.error_code = *code;
                r.error_message = Some(s(msg));
            }
            r
        })
        .collect();
    AlterUserScramCredentialsResponse::default().with_results(results)
}
