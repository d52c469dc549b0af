//! One member of a consumer group, as `fjord consume --group` runs it: the
//! classic protocol (JoinGroup, SyncGroup, Heartbeat, OffsetFetch,
//! OffsetCommit, LeaveGroup) with the client-side "range" assignor, so it can
//! share a group with Java, librdkafka and kafka-python consumers.
//!
//! Heartbeats run in their own task on their own connection, because a
//! member's Fetch long polls must not delay them past `session.timeout.ms`;
//! the task only raises a flag, and the consuming loop acts on it between
//! polls (commit what it printed, then rejoin), as the Java consumer does in
//! `poll()`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::{ParseResponseErrorCode, ResponseError};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::leave_group_request::MemberIdentity;
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    GroupId, HeartbeatRequest, JoinGroupRequest, LeaveGroupRequest, OffsetCommitRequest,
    OffsetFetchRequest, SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;

use crate::admin::find_coordinator;
use crate::assignor::{
    decode_assignment, decode_subscription, encode_assignment, encode_subscription, range_assign,
    Assignment,
};
use crate::client::{Client, ClientConfig, ClientError, Conn, KafkaError};

type Result<T, E = ClientError> = std::result::Result<T, E>;

/// What the heartbeat task last learnt about our membership.
const HB_OK: u8 = 0;
/// The group is rebalancing (or our generation is stale): rejoin with our id.
const HB_REJOIN: u8 = 1;
/// The coordinator forgot us: rejoin with a fresh member id.
const HB_RESET: u8 = 2;
/// The coordinator moved or died: find it again, then rejoin.
const HB_RELOCATE: u8 = 3;

/// How long a member keeps looking for its coordinator.
const COORDINATOR_PATIENCE: Duration = Duration::from_secs(60);

fn sb(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// What a member does about an error code from the coordinator.
fn member_action(code: i16) -> Option<u8> {
    match code.err() {
        None => None,
        Some(ResponseError::IllegalGeneration | ResponseError::RebalanceInProgress) => {
            Some(HB_REJOIN)
        }
        Some(ResponseError::UnknownMemberId) => Some(HB_RESET),
        // COORDINATOR_LOAD_IN_PROGRESS, _NOT_AVAILABLE, NOT_COORDINATOR, and
        // anything unexpected: ask for the coordinator again.
        Some(_) => Some(HB_RELOCATE),
    }
}

/// Whether `code` says the coordinator is loading, gone or elsewhere.
fn coordinator_moved(code: i16) -> bool {
    matches!(
        code.err(),
        Some(
            ResponseError::CoordinatorLoadInProgress
                | ResponseError::CoordinatorNotAvailable
                | ResponseError::NotCoordinator
        )
    )
}

/// One member of a consumer group (see the module doc).
pub struct GroupMember {
    cfg: ClientConfig,
    group: String,
    topics: Vec<String>,
    member_id: String,
    generation: i32,
    protocol: String,
    coord: Option<String>,
    conn: Option<Conn>,
    flag: Arc<AtomicU8>,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
    session_timeout_ms: i32,
    rebalance_timeout_ms: i32,
    heartbeat_interval: Duration,
}

impl Drop for GroupMember {
    fn drop(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
    }
}

impl GroupMember {
    /// A member of `group` subscribing to `topics` (not joined yet).
    pub fn new(cfg: ClientConfig, group: &str, topics: Vec<String>) -> GroupMember {
        GroupMember {
            cfg,
            group: group.to_string(),
            topics,
            member_id: String::new(),
            generation: -1,
            protocol: "range".into(),
            coord: None,
            conn: None,
            flag: Arc::new(AtomicU8::new(HB_OK)),
            heartbeat: None,
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 30_000,
            heartbeat_interval: Duration::from_millis(1000),
        }
    }

    /// Whether the member must rejoin before consuming on (rebalance, fencing,
    /// coordinator loss): the consuming loop commits what it has, then calls
    /// [`GroupMember::join`] again.
    pub fn needs_rejoin(&self) -> bool {
        self.flag.load(Ordering::SeqCst) != HB_OK
    }

    /// Whether the member holds a generation (so commits and a leave make sense).
    pub fn active(&self) -> bool {
        self.generation >= 0 && !self.member_id.is_empty()
    }

    fn stop_heartbeat(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
    }

    fn relocate(&mut self) {
        self.conn = None;
        self.coord = None;
    }

    fn refused(&self, op: &'static str, code: i16) -> ClientError {
        ClientError::Group {
            op,
            group: self.group.clone(),
            error: KafkaError::new(code, None),
        }
    }

    /// Find the group's coordinator (retrying while none is available) and connect to it.
    async fn coordinator(&mut self, client: &mut Client) -> Result<()> {
        if self.conn.is_some() {
            return Ok(());
        }
        let deadline = Instant::now() + COORDINATOR_PATIENCE;
        loop {
            let patience = deadline.saturating_duration_since(Instant::now());
            let addr = find_coordinator(client, &self.group, patience).await?;
            match Conn::open(&addr, &self.cfg).await {
                Ok(c) => {
                    self.conn = Some(c);
                    self.coord = Some(addr);
                    return Ok(());
                }
                Err(e) if Instant::now() > deadline => {
                    return Err(ClientError::GaveUp {
                        group: self.group.clone(),
                        what: format!("no coordinator ({e})"),
                    })
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }

    /// Join (or rejoin) the group and return the partitions assigned to this
    /// member, by topic. As leader, runs the range assignor for every member.
    pub async fn join(&mut self, client: &mut Client) -> Result<Assignment> {
        self.stop_heartbeat();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if Instant::now() > deadline {
                return Err(ClientError::GaveUp {
                    group: self.group.clone(),
                    what: "could not join in time".into(),
                });
            }
            match self.flag.swap(HB_OK, Ordering::SeqCst) {
                HB_RESET => self.member_id.clear(),
                HB_RELOCATE => self.relocate(),
                _ => {}
            }
            self.coordinator(client).await?;
            let meta = encode_subscription(&self.topics)?;
            let Some(conn) = self.conn.as_mut() else {
                continue;
            };
            let v = conn.pick::<JoinGroupRequest>(7)?;
            let mut req = JoinGroupRequest::default()
                .with_group_id(GroupId(sb(&self.group)))
                .with_session_timeout_ms(self.session_timeout_ms)
                .with_member_id(sb(&self.member_id))
                .with_protocol_type(sb("consumer"))
                .with_protocols(vec![JoinGroupRequestProtocol::default()
                    .with_name(sb(&self.protocol))
                    .with_metadata(meta)]);
            if v >= 1 {
                req.rebalance_timeout_ms = self.rebalance_timeout_ms;
            }
            let wait = Duration::from_millis(self.rebalance_timeout_ms as u64);
            let resp = match conn.call_wait(&req, 7, wait).await {
                Ok(r) => r,
                Err(_) => {
                    self.relocate();
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            match resp.error_code.err() {
                None => {}
                Some(ResponseError::MemberIdRequired) => {
                    // KIP-394: join again with the id handed out.
                    self.member_id = resp.member_id.to_string();
                    continue;
                }
                Some(_) => match member_action(resp.error_code) {
                    Some(HB_RESET) => {
                        self.member_id.clear();
                        continue;
                    }
                    Some(HB_REJOIN) => continue,
                    _ if coordinator_moved(resp.error_code) => {
                        self.relocate();
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                    _ => return Err(self.refused("JoinGroup", resp.error_code)),
                },
            }
            self.member_id = resp.member_id.to_string();
            self.generation = resp.generation_id;
            let assignments = if resp.leader == resp.member_id {
                let members: Vec<(String, Bytes)> = resp
                    .members
                    .iter()
                    .map(|m| (m.member_id.to_string(), m.metadata.clone()))
                    .collect();
                assign(client, &members).await?
            } else {
                Vec::new()
            };
            let Some(conn) = self.conn.as_mut() else {
                continue;
            };
            let sv = conn.pick::<SyncGroupRequest>(5)?;
            let mut sreq = SyncGroupRequest::default()
                .with_group_id(GroupId(sb(&self.group)))
                .with_generation_id(self.generation)
                .with_member_id(sb(&self.member_id))
                .with_assignments(
                    assignments
                        .into_iter()
                        .map(|(m, a)| {
                            SyncGroupRequestAssignment::default()
                                .with_member_id(sb(&m))
                                .with_assignment(a)
                        })
                        .collect(),
                );
            if sv >= 5 {
                sreq.protocol_type = Some(sb("consumer"));
                sreq.protocol_name = resp.protocol_name.clone();
            }
            let sresp = match conn.call_wait(&sreq, 5, wait).await {
                Ok(r) => r,
                Err(_) => {
                    self.relocate();
                    continue;
                }
            };
            if let Some(a) = member_action(sresp.error_code) {
                match a {
                    HB_RESET => self.member_id.clear(),
                    HB_RELOCATE => self.relocate(),
                    _ => {}
                }
                continue;
            }
            let mine = decode_assignment(&sresp.assignment)?;
            self.start_heartbeat().await;
            return Ok(mine);
        }
    }

    async fn start_heartbeat(&mut self) {
        self.stop_heartbeat();
        let Some(addr) = self.coord.clone() else {
            self.flag.store(HB_RELOCATE, Ordering::SeqCst);
            return;
        };
        let cfg = self.cfg.clone();
        let flag = self.flag.clone();
        let group = self.group.clone();
        let member = self.member_id.clone();
        let generation = self.generation;
        let every = self.heartbeat_interval;
        self.heartbeat = Some(tokio::spawn(async move {
            let mut conn = match Conn::open(&addr, &cfg).await {
                Ok(c) => c,
                Err(_) => {
                    flag.store(HB_RELOCATE, Ordering::SeqCst);
                    return;
                }
            };
            loop {
                tokio::time::sleep(every).await;
                let req = HeartbeatRequest::default()
                    .with_group_id(GroupId(sb(&group)))
                    .with_generation_id(generation)
                    .with_member_id(sb(&member));
                let code = match conn.call(&req, 3).await {
                    Ok(r) => r.error_code,
                    Err(_) => ResponseError::NotCoordinator.code(),
                };
                if let Some(a) = member_action(code) {
                    flag.store(a, Ordering::SeqCst);
                    return;
                }
            }
        }));
    }

    /// Committed offsets of `parts` (absent: nothing committed).
    pub async fn committed(
        &mut self,
        client: &mut Client,
        topic: &str,
        parts: &[i32],
    ) -> Result<BTreeMap<i32, i64>> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            self.coordinator(client).await?;
            let Some(conn) = self.conn.as_mut() else {
                continue;
            };
            let req = OffsetFetchRequest::default()
                .with_group_id(GroupId(sb(&self.group)))
                .with_topics(Some(vec![OffsetFetchRequestTopic::default()
                    .with_name(TopicName(sb(topic)))
                    .with_partition_indexes(parts.to_vec())]));
            let resp = match conn.call(&req, 7).await {
                Ok(r) => r,
                Err(_) => {
                    self.relocate();
                    continue;
                }
            };
            let mut code = resp.error_code;
            let mut out = BTreeMap::new();
            for t in &resp.topics {
                for p in &t.partitions {
                    if p.error_code != 0 {
                        code = p.error_code;
                    } else if p.committed_offset >= 0 {
                        out.insert(p.partition_index, p.committed_offset);
                    }
                }
            }
            if code == 0 {
                return Ok(out);
            }
            if !coordinator_moved(code) || Instant::now() >= deadline {
                return Err(self.refused("OffsetFetch", code));
            }
            if code != ResponseError::CoordinatorLoadInProgress.code() {
                self.relocate();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Commit `offsets` (partition → next offset to read) at our generation.
    /// Ok(false): the group refused (a rebalance fenced us); the caller rejoins.
    pub async fn commit(&mut self, topic: &str, offsets: &BTreeMap<i32, i64>) -> Result<bool> {
        if offsets.is_empty() || !self.active() {
            return Ok(true);
        }
        let Some(conn) = self.conn.as_mut() else {
            self.flag.store(HB_RELOCATE, Ordering::SeqCst);
            return Ok(false);
        };
        let req = OffsetCommitRequest::default()
            .with_group_id(GroupId(sb(&self.group)))
            .with_generation_id_or_member_epoch(self.generation)
            .with_member_id(sb(&self.member_id))
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(TopicName(sb(topic)))
                .with_partitions(
                    offsets
                        .iter()
                        .map(|(p, o)| {
                            OffsetCommitRequestPartition::default()
                                .with_partition_index(*p)
                                .with_committed_offset(*o)
                        })
                        .collect(),
                )]);
        let resp = match conn.call(&req, 7).await {
            Ok(r) => r,
            Err(_) => {
                self.relocate();
                self.flag.store(HB_RELOCATE, Ordering::SeqCst);
                return Ok(false);
            }
        };
        for t in &resp.topics {
            for p in &t.partitions {
                if let Some(a) = member_action(p.error_code) {
                    if p.error_code.err() == Some(ResponseError::UnknownTopicOrPartition) {
                        let at = format!("partition {topic}-{}", p.partition_index);
                        return Err(ClientError::Group {
                            op: "OffsetCommit",
                            group: self.group.clone(),
                            error: KafkaError::new(p.error_code, Some(at)),
                        });
                    }
                    self.flag.store(a, Ordering::SeqCst);
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Leave the group (LeaveGroup) so that the others take over at once,
    /// rather than after our session times out.
    pub async fn leave(&mut self) {
        self.stop_heartbeat();
        if !self.active() {
            return;
        }
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        let Ok(v) = conn.pick::<LeaveGroupRequest>(4) else {
            return;
        };
        let mut req = LeaveGroupRequest::default().with_group_id(GroupId(sb(&self.group)));
        if v >= 3 {
            req.members = vec![MemberIdentity::default().with_member_id(sb(&self.member_id))];
        } else {
            req.member_id = sb(&self.member_id);
        }
        let _ = conn.call(&req, 4).await;
        self.generation = -1;
    }
}

/// The leader's work: the range assignor over every member's subscription,
/// with partition counts from Metadata; one encoded assignment per member.
async fn assign(client: &mut Client, members: &[(String, Bytes)]) -> Result<Vec<(String, Bytes)>> {
    let subs: Vec<(String, Vec<String>)> = members
        .iter()
        .map(|(id, meta)| (id.clone(), decode_subscription(meta)))
        .collect();
    let topics: Vec<String> = subs
        .iter()
        .flat_map(|(_, t)| t.iter().cloned())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut parts: BTreeMap<String, Vec<i32>> = BTreeMap::new();
    if !topics.is_empty() {
        for t in client.topics(Some(&topics), false).await? {
            parts.insert(
                t.name.clone(),
                t.partitions.iter().map(|p| p.index).collect(),
            );
        }
    }
    range_assign(&subs, &parts)
        .into_iter()
        .map(|(m, a)| Ok((m, encode_assignment(&a)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_reactions_to_error_codes() {
        let code = |e: ResponseError| e.code();
        assert_eq!(member_action(0), None);
        assert_eq!(
            member_action(code(ResponseError::RebalanceInProgress)),
            Some(HB_REJOIN)
        );
        assert_eq!(
            member_action(code(ResponseError::IllegalGeneration)),
            Some(HB_REJOIN)
        );
        assert_eq!(
            member_action(code(ResponseError::UnknownMemberId)),
            Some(HB_RESET)
        );
        assert_eq!(
            member_action(code(ResponseError::NotCoordinator)),
            Some(HB_RELOCATE)
        );
        assert_eq!(member_action(999), Some(HB_RELOCATE));
        assert!(coordinator_moved(14) && coordinator_moved(15) && coordinator_moved(16));
        assert!(!coordinator_moved(25));
    }
}
