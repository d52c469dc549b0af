//! The consumer-group APIs (FindCoordinator, JoinGroup, SyncGroup,
//! Heartbeat, LeaveGroup, DescribeGroups, ListGroups, DeleteGroups,
//! OffsetDelete, OffsetCommit, OffsetFetch): request checks and response
//! shapes per version over `group::Groups`, which holds the state. Long polls
//! (join, sync) and coordinator writes (commits) answer through the returned
//! future, never holding a group's lock.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};

use super::common::{s, Ctx, Pending};
use crate::broker::Broker;
use crate::group::offsets::Committed;
use crate::group::state::{Group, JoinParams, JoinResult, Reply, State, SyncResult};
use crate::group::{coordinator_for, Groups};
use crate::wire::clock::now_ms;
use crate::wire::error as err;

pub(super) fn handles(body: &RequestKind) -> bool {
    matches!(
        body,
        RequestKind::FindCoordinator(_)
            | RequestKind::JoinGroup(_)
            | RequestKind::SyncGroup(_)
            | RequestKind::Heartbeat(_)
            | RequestKind::LeaveGroup(_)
            | RequestKind::DescribeGroups(_)
            | RequestKind::ListGroups(_)
            | RequestKind::DeleteGroups(_)
            | RequestKind::OffsetDelete(_)
            | RequestKind::OffsetCommit(_)
            | RequestKind::OffsetFetch(_)
    )
}

/// Dispatch one group/offset request. Runs in read order; the returned future
/// may wait (join/sync long polls, coordinator writes) without holding locks.
pub(super) fn dispatch(
    b: &Arc<Broker>,
    body: RequestKind,
    version: i16,
    header: &RequestHeader,
    peer: Option<std::net::SocketAddr>,
) -> Pending {
    let g = b.groups.clone();
    let client_id = header
        .client_id
        .as_ref()
        .map(|c| c.to_string())
        .unwrap_or_default();
    let host = peer
        .map(|p| format!("/{}", p.ip()))
        .unwrap_or_else(|| "/unknown".into());
    match body {
        RequestKind::FindCoordinator(r) => {
            // api::dispatch routes FindCoordinator itself (with the listener).
            let resp = find_coordinator(Ctx { b, version }, r, "");
            Box::pin(async move { Some(ResponseKind::FindCoordinator(resp)) })
        }
        RequestKind::JoinGroup(r) => {
            let reply = join_group(&g, r, version, client_id, host);
            Box::pin(async move {
                let res = match reply {
                    Reply::Now(r) => r,
                    Reply::Later(rx) => rx.await.unwrap_or_else(|_| JoinResult {
                        error: err::NOT_COORDINATOR,
                        generation: -1,
                        ..Default::default()
                    }),
                };
                Some(ResponseKind::JoinGroup(join_response(res, version)))
            })
        }
        RequestKind::SyncGroup(r) => {
            let reply = sync_group(&g, r, version);
            Box::pin(async move {
                let res = match reply {
                    Reply::Now(r) => r,
                    Reply::Later(rx) => rx.await.unwrap_or_else(|_| SyncResult {
                        error: err::NOT_COORDINATOR,
                        ..Default::default()
                    }),
                };
                let mut resp = SyncGroupResponse::default()
                    .with_error_code(res.error)
                    .with_assignment(res.assignment);
                if version >= 5 {
                    resp.protocol_type = res.protocol_type.map(|x| s(&x));
                    resp.protocol_name = res.protocol_name.map(|x| s(&x));
                }
                Some(ResponseKind::SyncGroup(resp))
            })
        }
        RequestKind::Heartbeat(r) => {
            let code = heartbeat(&g, r);
            Box::pin(async move {
                Some(ResponseKind::Heartbeat(
                    HeartbeatResponse::default().with_error_code(code),
                ))
            })
        }
        RequestKind::LeaveGroup(r) => {
            let resp = leave_group(&g, r, version);
            Box::pin(async move { Some(ResponseKind::LeaveGroup(resp)) })
        }
        RequestKind::DescribeGroups(r) => {
            let resp = describe_groups(&g, r, version);
            Box::pin(async move { Some(ResponseKind::DescribeGroups(resp)) })
        }
        RequestKind::ListGroups(r) => {
            let resp = list_groups(&g, r, version);
            Box::pin(async move { Some(ResponseKind::ListGroups(resp)) })
        }
        RequestKind::DeleteGroups(r) => {
            Box::pin(async move { Some(ResponseKind::DeleteGroups(delete_groups(&g, r).await)) })
        }
        RequestKind::OffsetDelete(r) => {
            Box::pin(async move { Some(ResponseKind::OffsetDelete(offset_delete(&g, r).await)) })
        }
        RequestKind::OffsetCommit(r) => {
            let b = b.clone();
            let mut fut = Box::pin(async move { offset_commit(&b, &g, r, version).await });
            // Start the commit now, in read order, rather than when the writer
            // gets to its turn: one poll validates it and hands the multi to the
            // coordinator session (which keeps order). Commits pipelined on one
            // connection then share the coordinator's fsyncs instead of paying
            // one round trip each, and still land in the order they were sent.
            let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
            match fut.as_mut().poll(&mut cx) {
                std::task::Poll::Ready(resp) => {
                    Box::pin(async move { Some(ResponseKind::OffsetCommit(resp)) })
                }
                std::task::Poll::Pending => {
                    Box::pin(async move { Some(ResponseKind::OffsetCommit(fut.await)) })
                }
            }
        }
        RequestKind::OffsetFetch(r) => {
            // Read when the writer gets here, i.e. after every earlier request on
            // this connection completed: a fetch sees the commits sent before it.
            let stable = version >= 7 && r.require_stable;
            let b = b.clone();
            Box::pin(async move {
                let group = r.group_id.0.to_string();
                let unstable = match stable {
                    true => Some(super::transactions::unstable_offsets(&b, &r, version).await),
                    false => None,
                };
                let mut resp = offset_fetch(&g, r, version);
                if let Some(u) = unstable {
                    super::transactions::mark_unstable(&mut resp, &group, &u);
                }
                Some(ResponseKind::OffsetFetch(resp))
            })
        }
        _ => Box::pin(async { None }),
    }
}

// ---------------------------------------------------------------- FindCoordinator

pub(super) fn find_coordinator(
    cx: Ctx<'_>,
    r: FindCoordinatorRequest,
    listener: &str,
) -> FindCoordinatorResponse {
    let view = cx.view();
    let keys: Vec<StrBytes> = if cx.version >= 4 {
        r.coordinator_keys.clone()
    } else {
        vec![r.key.clone()]
    };
    let mut coords = Vec::with_capacity(keys.len());
    for key in keys {
        let mut c = find_coordinator_response::Coordinator::default()
            .with_key(key.clone())
            .with_node_id((-1).into())
            .with_host(s(""))
            .with_port(-1);
        let (code, msg) = if r.key_type != 0 && r.key_type != 1 {
            (err::INVALID_REQUEST, "unknown coordinator key type")
        } else if key.is_empty() && r.key_type == 1 {
            (err::INVALID_REQUEST, "empty transactional id")
        } else if key.is_empty() {
            (err::INVALID_GROUP_ID, "empty group id")
        } else {
            match coordinator_for(&view, key.as_str())
                .and_then(|id| view.brokers.get(&id))
                .and_then(|bi| Some((bi.id, bi.address_for(listener)?)))
            {
                Some((id, (host, port))) => {
                    c.node_id = id.into();
                    c.host = s(host);
                    c.port = port as i32;
                    (err::NONE, "")
                }
                None => (err::COORDINATOR_NOT_AVAILABLE, "no live broker"),
            }
        };
        c.error_code = code;
        c.error_message = if code == err::NONE {
            None
        } else {
            Some(s(msg))
        };
        coords.push(c);
    }
    if cx.version >= 4 {
        return FindCoordinatorResponse::default().with_coordinators(coords);
    }
    let c = coords.pop().unwrap_or_default();
    let mut resp = FindCoordinatorResponse::default()
        .with_error_code(c.error_code)
        .with_node_id(c.node_id)
        .with_host(c.host)
        .with_port(c.port);
    resp.error_message = if cx.version >= 1 {
        c.error_message
    } else {
        Some(s(""))
    };
    resp
}

// ---------------------------------------------------------------- Join / Sync / Heartbeat / Leave

pub(super) fn join_group(
    g: &Groups,
    r: JoinGroupRequest,
    version: i16,
    client_id: String,
    host: String,
) -> Reply<JoinResult> {
    let group = r.group_id.0.to_string();
    let member_id = r.member_id.to_string();
    let fail = |code: i16| {
        Reply::Now(JoinResult {
            error: code,
            generation: -1,
            member_id: member_id.clone(),
            ..Default::default()
        })
    };
    let code = g.coordinator_check(&group);
    if code != err::NONE {
        return fail(code);
    }
    if r.session_timeout_ms < g.min_session || r.session_timeout_ms > g.max_session {
        return fail(err::INVALID_SESSION_TIMEOUT);
    }
    let handle = if member_id.is_empty() {
        g.get_or_create(&group)
    } else {
        match g.get(&group) {
            Some(h) => h,
            None => return fail(err::UNKNOWN_MEMBER_ID),
        }
    };
    let session = Duration::from_millis(r.session_timeout_ms.max(0) as u64);
    let rebalance = if version >= 1 {
        Duration::from_millis(r.rebalance_timeout_ms.max(0) as u64)
    } else {
        session
    };
    let params = JoinParams {
        member_id,
        instance_id: r.group_instance_id.as_ref().map(|x| x.to_string()),
        client_id,
        client_host: host,
        session_timeout: session,
        rebalance_timeout: rebalance,
        protocol_type: r.protocol_type.to_string(),
        protocols: r
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        require_known_member_id: version >= 4 && r.group_instance_id.is_none(),
    };
    let reply = handle.g.lock().join(params, Instant::now());
    handle.wake.notify_one();
    reply
}

pub(super) fn join_response(r: JoinResult, version: i16) -> JoinGroupResponse {
    let members = r
        .members
        .into_iter()
        .map(|(id, inst, meta)| {
            let mut m = join_group_response::JoinGroupResponseMember::default()
                .with_member_id(s(&id))
                .with_metadata(meta);
            if version >= 5 {
                m.group_instance_id = inst.map(|x| s(&x));
            }
            m
        })
        .collect();
    let mut resp = JoinGroupResponse::default()
        .with_error_code(r.error)
        .with_generation_id(r.generation)
        .with_leader(s(&r.leader))
        .with_member_id(s(&r.member_id))
        .with_members(members);
    if version >= 7 {
        resp.protocol_type = r.protocol_type.map(|x| s(&x));
        resp.protocol_name = r.protocol_name.map(|x| s(&x));
    } else {
        resp.protocol_name = Some(s(r.protocol_name.as_deref().unwrap_or("")));
    }
    if version >= 9 {
        resp.skip_assignment = r.skip_assignment;
    }
    resp
}

pub(super) fn sync_group(g: &Groups, r: SyncGroupRequest, version: i16) -> Reply<SyncResult> {
    let group = r.group_id.0.to_string();
    let fail = |code: i16| {
        Reply::Now(SyncResult {
            error: code,
            ..Default::default()
        })
    };
    let code = g.coordinator_check(&group);
    if code != err::NONE {
        return fail(code);
    }
    let Some(handle) = g.get(&group) else {
        return fail(err::UNKNOWN_MEMBER_ID);
    };
    let pt = if version >= 5 {
        r.protocol_type.as_ref().map(|x| x.to_string())
    } else {
        None
    };
    let pn = if version >= 5 {
        r.protocol_name.as_ref().map(|x| x.to_string())
    } else {
        None
    };
    let assignments = r
        .assignments
        .into_iter()
        .map(|a| (a.member_id.to_string(), a.assignment))
        .collect();
    let inst = r.group_instance_id.as_ref().map(|x| x.to_string());
    let reply = handle.g.lock().sync(
        r.member_id.as_str(),
        inst.as_deref(),
        r.generation_id,
        pt.as_deref(),
        pn.as_deref(),
        assignments,
        Instant::now(),
    );
    handle.wake.notify_one();
    reply
}

pub(super) fn heartbeat(g: &Groups, r: HeartbeatRequest) -> i16 {
    let group = r.group_id.0.to_string();
    let code = g.coordinator_check(&group);
    if code != err::NONE {
        return code;
    }
    let Some(handle) = g.get(&group) else {
        return err::UNKNOWN_MEMBER_ID;
    };
    let inst = r.group_instance_id.as_ref().map(|x| x.to_string());
    let code = handle.g.lock().heartbeat(
        r.member_id.as_str(),
        inst.as_deref(),
        r.generation_id,
        Instant::now(),
    );
    handle.wake.notify_one();
    code
}

pub(super) fn leave_group(g: &Groups, r: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
    let group = r.group_id.0.to_string();
    let who: Vec<(String, Option<String>)> = if version >= 3 {
        r.members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|x| x.to_string()),
                )
            })
            .collect()
    } else {
        vec![(r.member_id.to_string(), None)]
    };
    let mut top = g.coordinator_check(&group);
    let mut per: Vec<i16> = vec![err::UNKNOWN_MEMBER_ID; who.len()];
    if top == err::NONE {
        match g.get(&group) {
            None => {}
            Some(h) => {
                let mut grp = h.g.lock();
                if grp.state == State::Dead {
                    top = err::COORDINATOR_NOT_AVAILABLE;
                } else {
                    let now = Instant::now();
                    for (i, (m, inst)) in who.iter().enumerate() {
                        per[i] = grp.leave(m, inst.as_deref(), now);
                    }
                }
                drop(grp);
                h.wake.notify_one();
            }
        }
    }
    let mut resp = LeaveGroupResponse::default().with_error_code(top);
    if version >= 3 {
        if top == err::NONE {
            resp.members = who
                .into_iter()
                .zip(per)
                .map(|((m, inst), code)| {
                    leave_group_response::MemberResponse::default()
                        .with_member_id(s(&m))
                        .with_group_instance_id(inst.map(|x| s(&x)))
                        .with_error_code(code)
                })
                .collect();
        }
    } else if top == err::NONE {
        resp.error_code = per.first().copied().unwrap_or(err::NONE);
    }
    resp
}

// ---------------------------------------------------------------- Describe / List / Delete

pub(super) fn describe_groups(
    g: &Groups,
    r: DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let mut out = Vec::with_capacity(r.groups.len());
    for gid in r.groups {
        let name = gid.0.to_string();
        let mut d = describe_groups_response::DescribedGroup::default().with_group_id(gid);
        if version >= 3 {
            d.authorized_operations = i32::MIN;
        }
        let code = g.coordinator_check(&name);
        if code != err::NONE {
            d.error_code = code;
            d.group_state = s("");
            out.push(d);
            continue;
        }
        match g.get(&name) {
            None => {
                d.group_state = s(if g.offsets.has_offsets(&name) {
                    "Empty"
                } else {
                    "Dead"
                });
            }
            Some(h) => {
                let grp = h.g.lock();
                d.group_state = s(grp.state.name());
                d.protocol_type = s(grp.protocol_type.as_deref().unwrap_or(""));
                let stable = grp.state == State::Stable;
                let proto = grp.protocol.clone().unwrap_or_default();
                if stable {
                    d.protocol_data = s(&proto);
                }
                if grp.state != State::Dead {
                    d.members = grp
                        .members
                        .values()
                        .map(|m| {
                            let mut dm = describe_groups_response::DescribedGroupMember::default()
                                .with_member_id(s(&m.id))
                                .with_client_id(s(&m.client_id))
                                .with_client_host(s(&m.client_host));
                            if version >= 4 {
                                dm.group_instance_id = m.instance_id.as_ref().map(|x| s(x));
                            }
                            if stable {
                                dm.member_metadata = m.metadata(&proto);
                                dm.member_assignment = m.assignment.clone();
                            }
                            dm
                        })
                        .collect();
                }
            }
        }
        out.push(d);
    }
    DescribeGroupsResponse::default().with_groups(out)
}

pub(super) fn list_groups(g: &Groups, r: ListGroupsRequest, version: i16) -> ListGroupsResponse {
    let states = lowercase_filter(version >= 4, &r.states_filter);
    let types = lowercase_filter(version >= 5, &r.types_filter);
    let groups = g
        .list()
        .into_iter()
        .filter(|(_, _, st)| states.is_empty() || states.contains(&st.to_lowercase()))
        .filter(|_| types.is_empty() || types.iter().any(|t| t == "classic"))
        .map(|(id, pt, st)| {
            let mut l = list_groups_response::ListedGroup::default()
                .with_group_id(GroupId(s(&id)))
                .with_protocol_type(s(&pt));
            if version >= 4 {
                l.group_state = s(st);
            }
            if version >= 5 {
                l.group_type = s("classic");
            }
            l
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}

/// A ListGroups filter, lowercased; empty (no filter) where the version
/// does not carry it.
fn lowercase_filter(carried: bool, filter: &[StrBytes]) -> Vec<String> {
    if !carried {
        return Vec::new();
    }
    filter
        .iter()
        .map(|x| x.to_string().to_lowercase())
        .collect()
}

pub(super) async fn delete_groups(g: &Arc<Groups>, r: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut results = Vec::new();
    for gid in r.groups_names {
        let name = gid.0.to_string();
        let mut code = g.coordinator_check(&name);
        if code == err::NONE {
            let live = g.get(&name).map(|h| {
                let grp = h.g.lock();
                (grp.state, grp.members.len())
            });
            code = match live {
                Some((State::Empty, _)) | Some((State::Dead, _)) => err::NONE,
                Some(_) => err::NON_EMPTY_GROUP,
                None if g.offsets.has_offsets(&name) => err::NONE,
                None => err::GROUP_ID_NOT_FOUND,
            };
            if code == err::NONE {
                g.remove(&name, err::COORDINATOR_NOT_AVAILABLE);
                if let Err(e) = g.offsets.delete(&name, None).await {
                    tracing::warn!(group = %name, error = %e, "deleting group offsets failed");
                    code = err::COORDINATOR_NOT_AVAILABLE;
                } else {
                    tracing::info!(group = %name, "group deleted");
                }
            }
        }
        results.push(
            delete_groups_response::DeletableGroupResult::default()
                .with_group_id(gid)
                .with_error_code(code),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}

/// Topics a consumer-protocol group's members subscribe to.
pub(super) fn subscribed_topics(grp: &Group) -> Option<BTreeSet<String>> {
    if grp.protocol_type.as_deref() != Some("consumer") {
        return None;
    }
    let proto = grp.protocol.clone()?;
    let mut out = BTreeSet::new();
    for m in grp.members.values() {
        let mut meta: Bytes = m.metadata(&proto);
        if meta.len() < 2 {
            continue;
        }
        let v = i16::from_be_bytes([meta[0], meta[1]]);
        let _ = bytes::Buf::get_i16(&mut meta);
        if let Ok(sub) = ConsumerProtocolSubscription::decode(&mut meta, v.clamp(0, 3)) {
            out.extend(sub.topics.iter().map(|t| t.to_string()));
        }
    }
    Some(out)
}

pub(super) async fn offset_delete(g: &Arc<Groups>, r: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let name = r.group_id.0.to_string();
    let mut top = g.coordinator_check(&name);
    let mut subscribed: BTreeSet<String> = BTreeSet::new();
    if top == err::NONE {
        match g.get(&name) {
            Some(h) => {
                let grp = h.g.lock();
                match grp.state {
                    State::Dead => top = err::GROUP_ID_NOT_FOUND,
                    State::Empty => {}
                    _ => match subscribed_topics(&grp) {
                        Some(t) => subscribed = t,
                        None => top = err::NON_EMPTY_GROUP,
                    },
                }
            }
            None if g.offsets.has_offsets(&name) => {}
            None => top = err::GROUP_ID_NOT_FOUND,
        }
    }
    let mut topics = Vec::new();
    if top == err::NONE {
        let mut victims = Vec::new();
        for t in &r.topics {
            let tn = t.name.0.to_string();
            let mut parts = Vec::new();
            for p in &t.partitions {
                let code = if subscribed.contains(&tn) {
                    err::GROUP_SUBSCRIBED_TO_TOPIC
                } else {
                    victims.push((tn.clone(), p.partition_index));
                    err::NONE
                };
                parts.push(
                    offset_delete_response::OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code),
                );
            }
            topics.push(
                offset_delete_response::OffsetDeleteResponseTopic::default()
                    .with_name(t.name.clone())
                    .with_partitions(parts),
            );
        }
        if let Err(e) = g.offsets.delete(&name, Some(victims)).await {
            tracing::warn!(group = %name, error = %e, "deleting offsets failed");
            top = err::COORDINATOR_NOT_AVAILABLE;
            topics.clear();
        }
    }
    OffsetDeleteResponse::default()
        .with_error_code(top)
        .with_topics(topics)
}

// ---------------------------------------------------------------- Offsets

pub(super) async fn offset_commit(
    b: &Arc<Broker>,
    g: &Arc<Groups>,
    r: OffsetCommitRequest,
    version: i16,
) -> OffsetCommitResponse {
    let name = r.group_id.0.to_string();
    let mut code = g.coordinator_check(&name);
    let inst = if version >= 7 {
        r.group_instance_id.as_ref().map(|x| x.to_string())
    } else {
        None
    };
    if code == err::NONE {
        let generation = r.generation_id_or_member_epoch;
        code = match g.get(&name) {
            Some(h) => {
                let c = h.g.lock().validate_commit(
                    r.member_id.as_str(),
                    inst.as_deref(),
                    generation,
                    Instant::now(),
                );
                h.wake.notify_one();
                c
            }
            None if generation < 0 => err::NONE,
            None => err::ILLEGAL_GENERATION,
        };
    }
    let view = b.cache.view();
    let now = now_ms();
    let mut items = Vec::new();
    // (topic index, partition index, code)
    let mut codes: Vec<Vec<i16>> = Vec::with_capacity(r.topics.len());
    for t in &r.topics {
        let tn = t.name.0.to_string();
        let meta = view.topics.get(&tn);
        let mut tc = Vec::with_capacity(t.partitions.len());
        for p in &t.partitions {
            let c = if code != err::NONE {
                code
            } else if !meta.is_some_and(|m| {
                !m.deleting && m.partitions.iter().any(|x| x.index == p.partition_index)
            }) {
                err::UNKNOWN_TOPIC_OR_PARTITION
            } else if p
                .committed_metadata
                .as_ref()
                .is_some_and(|m| m.len() > g.metadata_max)
            {
                err::OFFSET_METADATA_TOO_LARGE
            } else {
                items.push((
                    tn.clone(),
                    p.partition_index,
                    Committed {
                        offset: p.committed_offset,
                        leader_epoch: if version >= 6 {
                            p.committed_leader_epoch
                        } else {
                            -1
                        },
                        metadata: p
                            .committed_metadata
                            .as_ref()
                            .map(|m| m.to_string())
                            .unwrap_or_default(),
                        timestamp: now,
                    },
                ));
                err::NONE
            };
            tc.push(c);
        }
        codes.push(tc);
    }
    if !items.is_empty() {
        let n = items.len();
        if let Err(e) = g.offsets.commit(&name, items).await {
            tracing::warn!(group = %name, error = %e, "offset commit failed");
            for tc in codes.iter_mut() {
                for c in tc.iter_mut() {
                    if *c == err::NONE {
                        *c = err::COORDINATOR_NOT_AVAILABLE;
                    }
                }
            }
        } else {
            metrics::counter!("kafka_coordinator_group_offset_commits_total").increment(n as u64);
        }
    }
    let topics = r
        .topics
        .iter()
        .zip(codes)
        .map(|(t, tc)| {
            offset_commit_response::OffsetCommitResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(
                    t.partitions
                        .iter()
                        .zip(tc)
                        .map(|(p, c)| {
                            offset_commit_response::OffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(c)
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// One group's fetch: (topic, [(partition, offset, epoch, metadata, code)]).
type FetchRows = Vec<(String, Vec<(i32, i64, i32, String, i16)>)>;

pub(super) fn fetch_group(
    g: &Groups,
    group: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> (i16, FetchRows) {
    let code = g.coordinator_check(group);
    if code != err::NONE {
        let rows = topics
            .unwrap_or_default()
            .into_iter()
            .map(|(t, ps)| {
                (
                    t,
                    ps.into_iter()
                        .map(|p| (p, -1, -1, String::new(), code))
                        .collect(),
                )
            })
            .collect();
        return (code, rows);
    }
    let rows = match topics {
        Some(ts) => ts
            .into_iter()
            .map(|(t, ps)| {
                let parts = ps
                    .into_iter()
                    .map(|p| match g.offsets.get(group, &t, p) {
                        Some(c) => (p, c.offset, c.leader_epoch, c.metadata, err::NONE),
                        None => (p, -1, -1, String::new(), err::NONE),
                    })
                    .collect();
                (t, parts)
            })
            .collect(),
        None => g
            .offsets
            .group_offsets(group)
            .into_iter()
            .map(|(t, ps)| {
                (
                    t,
                    ps.into_iter()
                        .map(|(p, c)| (p, c.offset, c.leader_epoch, c.metadata, err::NONE))
                        .collect(),
                )
            })
            .collect(),
    };
    (err::NONE, rows)
}

pub(super) fn offset_fetch(g: &Groups, r: OffsetFetchRequest, version: i16) -> OffsetFetchResponse {
    if version >= 8 {
        let groups = r
            .groups
            .into_iter()
            .map(|rg| {
                let topics = rg
                    .topics
                    .map(|ts| ts.into_iter().map(|t| (t.name.0.to_string(), t.partition_indexes)).collect());
                let (code, rows) = fetch_group(g, rg.group_id.as_str(), topics);
                let topics = if code != err::NONE {
                    Vec::new()
                } else {
                    rows.into_iter()
                        .map(|(t, ps)| {
                            offset_fetch_response::OffsetFetchResponseTopics::default()
                                .with_name(TopicName(s(&t)))
                                .with_partitions(
                                    ps.into_iter()
                                        .map(|(p, o, e, m, c)| {
                                            offset_fetch_response::OffsetFetchResponsePartitions::default()
                                                .with_partition_index(p)
                                                .with_committed_offset(o)
                                                .with_committed_leader_epoch(e)
                                                .with_metadata(Some(s(&m)))
                                                .with_error_code(c)
                                        })
                                        .collect(),
                                )
                        })
                        .collect()
                };
                offset_fetch_response::OffsetFetchResponseGroup::default()
                    .with_group_id(rg.group_id)
                    .with_topics(topics)
                    .with_error_code(code)
            })
            .collect();
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let topics = r.topics.map(|ts| {
        ts.into_iter()
            .map(|t| (t.name.0.to_string(), t.partition_indexes))
            .collect()
    });
    let (code, rows) = fetch_group(g, r.group_id.as_str(), topics);
    let topics = rows
        .into_iter()
        .map(|(t, ps)| {
            offset_fetch_response::OffsetFetchResponseTopic::default()
                .with_name(TopicName(s(&t)))
                .with_partitions(
                    ps.into_iter()
                        .map(|(p, o, e, m, c)| {
                            let mut x =
                                offset_fetch_response::OffsetFetchResponsePartition::default()
                                    .with_partition_index(p)
                                    .with_committed_offset(o)
                                    .with_metadata(Some(s(&m)))
                                    .with_error_code(c);
                            if version >= 5 {
                                x.committed_leader_epoch = e;
                            }
                            x
                        })
                        .collect(),
                )
        })
        .collect();
    let mut resp = OffsetFetchResponse::default().with_topics(topics);
    if version >= 2 {
        resp.error_code = code;
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_encode_at_every_advertised_version() {
        use kafka_protocol::protocol::Encodable;
        for v in 0..=4i16 {
            let c = find_coordinator_response::Coordinator::default()
                .with_key(s("g"))
                .with_node_id(1.into())
                .with_host(s("h"))
                .with_port(1);
            let mut resp = if v >= 4 {
                FindCoordinatorResponse::default().with_coordinators(vec![c])
            } else {
                FindCoordinatorResponse::default()
                    .with_node_id(1.into())
                    .with_host(s("h"))
                    .with_port(1)
            };
            if (1..4).contains(&v) {
                resp.error_message = None;
            }
            let mut buf = bytes::BytesMut::new();
            resp.encode(&mut buf, v).unwrap();
        }
    }

    #[test]
    fn join_response_encodes_at_every_version() {
        use kafka_protocol::protocol::Encodable;
        for v in 0..=9i16 {
            let r = JoinResult {
                error: 0,
                generation: 1,
                protocol_type: Some("consumer".into()),
                protocol_name: Some("range".into()),
                leader: "a".into(),
                member_id: "a".into(),
                skip_assignment: false,
                members: vec![("a".into(), Some("i".into()), Bytes::from_static(b"m"))],
            };
            let mut buf = bytes::BytesMut::new();
            join_response(r, v).encode(&mut buf, v).unwrap();
            let mut buf = bytes::BytesMut::new();
            join_response(
                JoinResult {
                    error: 79,
                    generation: -1,
                    ..Default::default()
                },
                v,
            )
            .encode(&mut buf, v)
            .unwrap();
        }
    }
}
