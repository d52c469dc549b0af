//! One consumer group's state machine (classic protocol), modelled on Kafka's
//! GroupCoordinator/GroupMetadata: Empty → PreparingRebalance →
//! CompletingRebalance → Stable (→ Dead when deleted or moved away).
//!
//! Everything here is synchronous and runs under the group's mutex: long-polling
//! JoinGroup/SyncGroup callers get a oneshot receiver and await it after the lock
//! is released. Time is passed in (`now`) so the logic is testable; the group's
//! timer task calls [`Group::tick`] at [`Group::next_deadline`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use indexmap::IndexMap;
use tokio::sync::oneshot;

use crate::wire::error as err;

/// How long a brand-new member may wait in a join without heartbeating (Kafka's
/// NewMemberJoinTimeoutMs).
const NEW_MEMBER_JOIN_TIMEOUT: Duration = Duration::from_secs(300);

/// The group states, named as Kafka prints them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl State {
    /// The state name DescribeGroups/ListGroups report.
    pub fn name(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
            State::Dead => "Dead",
        }
    }
}

/// What a JoinGroup caller eventually receives.
#[derive(Debug, Clone, Default)]
pub struct JoinResult {
    pub error: i16,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    pub skip_assignment: bool,
    /// (member id, group instance id, metadata for the chosen protocol); leader only.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinResult {
    fn error(member_id: &str, error: i16) -> JoinResult {
        JoinResult {
            error,
            generation: -1,
            member_id: member_id.to_string(),
            ..Default::default()
        }
    }
}

/// What a SyncGroup caller eventually receives.
#[derive(Debug, Clone, Default)]
pub struct SyncResult {
    pub error: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    fn error(error: i16) -> SyncResult {
        SyncResult {
            error,
            ..Default::default()
        }
    }
}

/// A reply that is either ready now or arrives later through a oneshot.
pub enum Reply<T> {
    Now(T),
    Later(oneshot::Receiver<T>),
}

/// One member of the group.
#[derive(Debug)]
pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    /// (protocol name, metadata), in the member's preference order.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    join: Option<oneshot::Sender<JoinResult>>,
    sync: Option<oneshot::Sender<SyncResult>>,
    joined_at: Instant,
    heartbeat_deadline: Instant,
    is_new: bool,
}

impl Member {
    /// Metadata this member sent for `protocol` (empty if none).
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    fn same_protocols(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }
}

/// A join request's parameters, already validated for the group.
#[derive(Debug, Clone)]
pub struct JoinParams {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+ without an instance id: hand out an id first (KIP-394).
    pub require_known_member_id: bool,
}

/// Group-wide timing knobs (broker config).
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub initial_rebalance_delay: Duration,
    /// The least time an empty group's first join phase stays open, even with
    /// `group.initial.rebalance.delay.ms=0`, and by how much each new member
    /// extends it (as the initial delay does). Consumers started together reach
    /// the coordinator a few milliseconds apart; without this the first one's
    /// generation completes alone and the others are rebalanced in only when
    /// its next heartbeat (heartbeat.interval.ms, 3 s by default) reports the
    /// rebalance.
    pub first_join_window: Duration,
}

struct InitialDelay {
    deadline: Instant,
    remaining: Duration,
}

/// One group.
pub struct Group {
    pub id: String,
    pub state: State,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub generation: i32,
    pub leader: Option<String>,
    pub members: IndexMap<String, Member>,
    static_members: HashMap<String, String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, valid until the deadline.
    pending: HashMap<String, Instant>,
    rebalance_deadline: Option<Instant>,
    initial_delay: Option<InitialDelay>,
    new_member_added: bool,
    timing: Timing,
}

fn new_member_id(client_id: &str) -> String {
    format!("{}-{}", client_id, uuid::Uuid::new_v4())
}

impl Group {
    /// A fresh Empty group.
    pub fn new(id: &str, timing: Timing) -> Group {
        Group {
            id: id.to_string(),
            state: State::Empty,
            protocol_type: None,
            protocol: None,
            generation: 0,
            leader: None,
            members: IndexMap::new(),
            static_members: HashMap::new(),
            pending: HashMap::new(),
            rebalance_deadline: None,
            initial_delay: None,
            new_member_added: false,
            timing,
        }
    }

    /// Whether `member_id` belongs to the group.
    pub fn has(&self, member_id: &str) -> bool {
        self.members.contains_key(member_id)
    }

    /// A static member whose instance id now maps to another member id is fenced.
    pub fn is_fenced(&self, member_id: &str, instance_id: Option<&str>) -> bool {
        match instance_id {
            Some(i) => self.static_members.get(i).is_some_and(|m| m != member_id),
            None => false,
        }
    }

    /// The initial delay of an empty group's first join phase.
    fn initial_delay(&self) -> Duration {
        self.timing
            .initial_rebalance_delay
            .max(self.timing.first_join_window)
    }

    fn max_rebalance_timeout(&self) -> Duration {
        self.members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or(Duration::ZERO)
    }

    fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.state == State::Empty || self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols.iter().any(|(p, _)| {
                self.members
                    .values()
                    .filter(|m| m.protocols.iter().any(|(n, _)| n == p))
                    .count()
                    == self.members.len()
            })
    }

    /// The protocol every member supports, chosen by members' first preferences.
    fn select_protocol(&self) -> Option<String> {
        let candidates: Vec<&String> = self
            .members
            .values()
            .next()?
            .protocols
            .iter()
            .map(|(n, _)| n)
            .filter(|n| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(x, _)| x == *n))
            })
            .collect();
        let mut votes: IndexMap<&String, usize> = candidates.iter().map(|c| (*c, 0)).collect();
        for m in self.members.values() {
            if let Some((n, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(&n)) {
                if let Some(v) = votes.get_mut(n) {
                    *v += 1;
                }
            }
        }
        let mut best: Option<(&String, usize)> = None;
        for (n, v) in votes {
            if best.is_none_or(|(_, bv)| v > bv) {
                best = Some((n, v));
            }
        }
        best.map(|(n, _)| n.clone())
    }

    /// JoinGroup. Validation of coordinator and session timeout is the caller's.
    pub fn join(&mut self, p: JoinParams, now: Instant) -> Reply<JoinResult> {
        if self.state == State::Dead {
            return Reply::Now(JoinResult::error(
                &p.member_id,
                err::COORDINATOR_NOT_AVAILABLE,
            ));
        }
        if !self.supports_protocols(&p.protocol_type, &p.protocols) {
            return Reply::Now(JoinResult::error(
                &p.member_id,
                err::INCONSISTENT_GROUP_PROTOCOL,
            ));
        }
        if p.member_id.is_empty() {
            return self.join_unknown(p, now);
        }
        // A known (or pending) member id.
        if let Some(inst) = &p.instance_id {
            if self
                .static_members
                .get(inst)
                .is_some_and(|m| *m != p.member_id)
            {
                return Reply::Now(JoinResult::error(&p.member_id, err::FENCED_INSTANCE_ID));
            }
        }
        if self.pending.remove(&p.member_id).is_some() {
            let id = p.member_id.clone();
            return self.add_member_and_rebalance(p, id, now);
        }
        if !self.members.contains_key(&p.member_id) {
            return Reply::Now(JoinResult::error(&p.member_id, err::UNKNOWN_MEMBER_ID));
        }
        match self.state {
            State::PreparingRebalance => self.update_member_and_rebalance(p, now),
            State::CompletingRebalance => {
                let same = self
                    .members
                    .get(&p.member_id)
                    .is_some_and(|m| m.same_protocols(&p.protocols));
                if same {
                    // The member missed the join response: send the current one again.
                    let r = self.current_join_result(&p.member_id);
                    if let Some(m) = self.members.get_mut(&p.member_id) {
                        m.heartbeat_deadline = now + m.session_timeout;
                    }
                    Reply::Now(r)
                } else {
                    self.update_member_and_rebalance(p, now)
                }
            }
            State::Stable => {
                let is_leader = self.leader.as_deref() == Some(p.member_id.as_str());
                let same = self
                    .members
                    .get(&p.member_id)
                    .is_some_and(|m| m.same_protocols(&p.protocols));
                if is_leader || !same {
                    self.update_member_and_rebalance(p, now)
                } else {
                    if let Some(m) = self.members.get_mut(&p.member_id) {
                        m.heartbeat_deadline = now + m.session_timeout;
                    }
                    Reply::Now(JoinResult {
                        error: err::NONE,
                        generation: self.generation,
                        protocol_type: self.protocol_type.clone(),
                        protocol_name: self.protocol.clone(),
                        leader: self.leader.clone().unwrap_or_default(),
                        member_id: p.member_id,
                        skip_assignment: false,
                        members: Vec::new(),
                    })
                }
            }
            State::Empty | State::Dead => {
                Reply::Now(JoinResult::error(&p.member_id, err::UNKNOWN_MEMBER_ID))
            }
        }
    }

    fn join_unknown(&mut self, p: JoinParams, now: Instant) -> Reply<JoinResult> {
        let new_id = new_member_id(&p.client_id);
        if let Some(inst) = p.instance_id.clone() {
            if let Some(old) = self.static_members.get(&inst).cloned() {
                if self.members.contains_key(&old) {
                    let same = self.members.get(&old).is_some_and(|m| {
                        m.protocol_type == p.protocol_type && m.same_protocols(&p.protocols)
                    });
                    self.replace_static_member(&inst, &old, &new_id);
                    if self.state == State::Stable && same {
                        // Static rejoin with unchanged metadata: no rebalance (KIP-345).
                        if let Some(m) = self.members.get_mut(&new_id) {
                            m.heartbeat_deadline = now + m.session_timeout;
                            m.client_id = p.client_id.clone();
                            m.client_host = p.client_host.clone();
                        }
                        let is_leader = self.leader.as_deref() == Some(new_id.as_str());
                        let mut r = self.current_join_result(&new_id);
                        if !is_leader {
                            r.members.clear();
                        }
                        r.skip_assignment = is_leader;
                        return Reply::Now(r);
                    }
                    let mut p = p;
                    p.member_id = new_id;
                    return self.update_member_and_rebalance(p, now);
                }
            }
            return self.add_member_and_rebalance(p, new_id, now);
        }
        if p.require_known_member_id {
            if self.state == State::PreparingRebalance && self.generation == 0 {
                // A member on its way in: keep the first join phase open for it.
                self.new_member_added = true;
            }
            let deadline = now + p.session_timeout;
            self.pending.insert(new_id.clone(), deadline);
            return Reply::Now(JoinResult::error(&new_id, err::MEMBER_ID_REQUIRED));
        }
        self.add_member_and_rebalance(p, new_id, now)
    }

    fn replace_static_member(&mut self, inst: &str, old: &str, new: &str) {
        if let Some(mut m) = self.members.shift_remove(old) {
            if let Some(tx) = m.join.take() {
                let _ = tx.send(JoinResult::error(old, err::FENCED_INSTANCE_ID));
            }
            if let Some(tx) = m.sync.take() {
                let _ = tx.send(SyncResult::error(err::FENCED_INSTANCE_ID));
            }
            m.id = new.to_string();
            self.members.insert(new.to_string(), m);
        }
        if self.leader.as_deref() == Some(old) {
            self.leader = Some(new.to_string());
        }
        self.static_members
            .insert(inst.to_string(), new.to_string());
    }

    fn add_member_and_rebalance(
        &mut self,
        p: JoinParams,
        id: String,
        now: Instant,
    ) -> Reply<JoinResult> {
        let (tx, rx) = oneshot::channel();
        let m = Member {
            id: id.clone(),
            instance_id: p.instance_id.clone(),
            client_id: p.client_id,
            client_host: p.client_host,
            session_timeout: p.session_timeout,
            rebalance_timeout: p.rebalance_timeout,
            protocol_type: p.protocol_type.clone(),
            protocols: p.protocols,
            assignment: Bytes::new(),
            join: Some(tx),
            sync: None,
            joined_at: now,
            heartbeat_deadline: now + p.session_timeout,
            is_new: true,
        };
        if self.members.is_empty() {
            self.protocol_type = Some(p.protocol_type);
        }
        if let Some(inst) = &p.instance_id {
            self.static_members.insert(inst.clone(), id.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(id.clone());
        }
        self.members.insert(id, m);
        if self.state == State::PreparingRebalance && self.generation == 0 {
            self.new_member_added = true;
        }
        self.maybe_prepare_rebalance(now);
        Reply::Later(rx)
    }

    fn update_member_and_rebalance(&mut self, p: JoinParams, now: Instant) -> Reply<JoinResult> {
        let (tx, rx) = oneshot::channel();
        if let Some(m) = self.members.get_mut(&p.member_id) {
            if let Some(old) = m.join.take() {
                let _ = old.send(JoinResult::error(&p.member_id, err::REBALANCE_IN_PROGRESS));
            }
            m.protocols = p.protocols;
            m.protocol_type = p.protocol_type;
            m.session_timeout = p.session_timeout;
            m.rebalance_timeout = p.rebalance_timeout;
            m.client_id = p.client_id;
            m.client_host = p.client_host;
            m.join = Some(tx);
            m.joined_at = now;
        }
        self.maybe_prepare_rebalance(now);
        Reply::Later(rx)
    }

    fn maybe_prepare_rebalance(&mut self, now: Instant) {
        match self.state {
            State::Stable | State::CompletingRebalance | State::Empty => {
                self.prepare_rebalance(now)
            }
            State::PreparingRebalance => self.try_complete_join(now),
            State::Dead => {}
        }
    }

    fn prepare_rebalance(&mut self, now: Instant) {
        if self.state == State::CompletingRebalance {
            self.reset_assignments(err::REBALANCE_IN_PROGRESS);
        }
        let timeout = self.max_rebalance_timeout();
        if self.state == State::Empty {
            let delay = self.initial_delay();
            self.initial_delay = Some(InitialDelay {
                deadline: now + delay,
                remaining: timeout.saturating_sub(delay),
            });
            self.new_member_added = false;
            self.rebalance_deadline = None;
            self.state = State::PreparingRebalance;
            if delay.is_zero() {
                self.initial_delay = None;
                self.rebalance_deadline = Some(now + timeout);
                self.try_complete_join(now);
            }
        } else {
            self.initial_delay = None;
            self.rebalance_deadline = Some(now + timeout);
            self.state = State::PreparingRebalance;
            self.try_complete_join(now);
        }
    }

    fn reset_assignments(&mut self, error: i16) {
        for m in self.members.values_mut() {
            m.assignment = Bytes::new();
            if let Some(tx) = m.sync.take() {
                let _ = tx.send(SyncResult::error(error));
            }
        }
    }

    fn all_joined(&self) -> bool {
        self.pending.is_empty() && self.members.values().all(|m| m.join.is_some())
    }

    fn try_complete_join(&mut self, now: Instant) {
        if self.state == State::PreparingRebalance
            && self.initial_delay.is_none()
            && self.all_joined()
        {
            self.complete_join(now);
        }
    }

    fn complete_join(&mut self, now: Instant) {
        self.rebalance_deadline = None;
        self.initial_delay = None;
        // Members that did not rejoin in time leave the group.
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            tracing::info!(group = %self.id, member = %id, "member did not rejoin in time; removed");
            self.remove_member_raw(&id);
        }
        self.pending.clear();
        if self.state == State::Dead {
            return;
        }
        if self
            .leader
            .as_ref()
            .is_none_or(|l| !self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.generation += 1;
        if self.members.is_empty() {
            self.protocol = None;
            self.state = State::Empty;
            tracing::info!(group = %self.id, generation = self.generation, "group is empty");
            return;
        }
        self.protocol = self.select_protocol();
        self.state = State::CompletingRebalance;
        tracing::info!(group = %self.id, generation = self.generation, members = self.members.len(),
            protocol = ?self.protocol, "rebalance: join phase complete");
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let r = self.current_join_result(&id);
            if let Some(m) = self.members.get_mut(&id) {
                m.is_new = false;
                m.heartbeat_deadline = now + m.session_timeout;
                if let Some(tx) = m.join.take() {
                    let _ = tx.send(r);
                }
            }
        }
    }

    /// The join answer for `member_id` at the current generation (members for the leader).
    fn current_join_result(&self, member_id: &str) -> JoinResult {
        let proto = self.protocol.clone().unwrap_or_default();
        let is_leader = self.leader.as_deref() == Some(member_id);
        JoinResult {
            error: err::NONE,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            skip_assignment: false,
            members: if is_leader {
                self.members
                    .values()
                    .map(|m| (m.id.clone(), m.instance_id.clone(), m.metadata(&proto)))
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    /// Remove without triggering anything (waiters get UNKNOWN_MEMBER_ID).
    fn remove_member_raw(&mut self, id: &str) {
        if let Some(mut m) = self.members.shift_remove(id) {
            if let Some(tx) = m.join.take() {
                let _ = tx.send(JoinResult::error(id, err::UNKNOWN_MEMBER_ID));
            }
            if let Some(tx) = m.sync.take() {
                let _ = tx.send(SyncResult::error(err::UNKNOWN_MEMBER_ID));
            }
            if let Some(inst) = &m.instance_id {
                if self.static_members.get(inst).is_some_and(|x| x == id) {
                    self.static_members.remove(inst);
                }
            }
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = self.members.keys().next().cloned();
        }
    }

    /// A member leaves (LeaveGroup) or expires: rebalance the rest.
    pub fn remove_member(&mut self, id: &str, now: Instant) {
        self.remove_member_raw(id);
        match self.state {
            State::Stable | State::CompletingRebalance => self.prepare_rebalance(now),
            State::PreparingRebalance => self.try_complete_join(now),
            State::Empty | State::Dead => {}
        }
    }

    /// LeaveGroup for one identity; returns the per-member error.
    pub fn leave(&mut self, member_id: &str, instance_id: Option<&str>, now: Instant) -> i16 {
        let id = match instance_id {
            Some(inst) => match self.static_members.get(inst) {
                None => return err::UNKNOWN_MEMBER_ID,
                Some(m) if !member_id.is_empty() && m != member_id => {
                    return err::FENCED_INSTANCE_ID
                }
                Some(m) => m.clone(),
            },
            None => member_id.to_string(),
        };
        if self.pending.remove(&id).is_some() {
            self.try_complete_join(now);
            return err::NONE;
        }
        if !self.members.contains_key(&id) {
            return err::UNKNOWN_MEMBER_ID;
        }
        tracing::info!(group = %self.id, member = %id, "member left the group");
        self.remove_member(&id, now);
        err::NONE
    }

    /// SyncGroup (arguments mirror the request's fields one to one).
    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> Reply<SyncResult> {
        if self.state == State::Dead {
            return Reply::Now(SyncResult::error(err::COORDINATOR_NOT_AVAILABLE));
        }
        if !self.members.contains_key(member_id) {
            return Reply::Now(SyncResult::error(err::UNKNOWN_MEMBER_ID));
        }
        if self.is_fenced(member_id, instance_id) {
            return Reply::Now(SyncResult::error(err::FENCED_INSTANCE_ID));
        }
        if generation != self.generation {
            return Reply::Now(SyncResult::error(err::ILLEGAL_GENERATION));
        }
        if protocol_type.is_some_and(|t| Some(t) != self.protocol_type.as_deref())
            || protocol_name.is_some_and(|n| Some(n) != self.protocol.as_deref())
        {
            return Reply::Now(SyncResult::error(err::INCONSISTENT_GROUP_PROTOCOL));
        }
        match self.state {
            State::Empty => Reply::Now(SyncResult::error(err::UNKNOWN_MEMBER_ID)),
            State::PreparingRebalance => Reply::Now(SyncResult::error(err::REBALANCE_IN_PROGRESS)),
            State::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(m) = self.members.get_mut(member_id) {
                    if let Some(old) = m.sync.take() {
                        let _ = old.send(SyncResult::error(err::REBALANCE_IN_PROGRESS));
                    }
                    m.sync = Some(tx);
                    m.heartbeat_deadline = now + m.session_timeout;
                }
                if self.leader.as_deref() == Some(member_id) {
                    let mut by_id: HashMap<String, Bytes> = assignments.into_iter().collect();
                    for m in self.members.values_mut() {
                        m.assignment = by_id.remove(&m.id).unwrap_or_default();
                    }
                    self.state = State::Stable;
                    tracing::info!(group = %self.id, generation = self.generation, "group is stable");
                    let pt = self.protocol_type.clone();
                    let pn = self.protocol.clone();
                    for m in self.members.values_mut() {
                        if let Some(tx) = m.sync.take() {
                            let _ = tx.send(SyncResult {
                                error: err::NONE,
                                protocol_type: pt.clone(),
                                protocol_name: pn.clone(),
                                assignment: m.assignment.clone(),
                            });
                        }
                        m.heartbeat_deadline = now + m.session_timeout;
                    }
                }
                Reply::Later(rx)
            }
            State::Stable => {
                let pt = self.protocol_type.clone();
                let pn = self.protocol.clone();
                match self.members.get_mut(member_id) {
                    Some(m) => {
                        m.heartbeat_deadline = now + m.session_timeout;
                        Reply::Now(SyncResult {
                            error: err::NONE,
                            protocol_type: pt,
                            protocol_name: pn,
                            assignment: m.assignment.clone(),
                        })
                    }
                    None => Reply::Now(SyncResult::error(err::UNKNOWN_MEMBER_ID)),
                }
            }
            State::Dead => Reply::Now(SyncResult::error(err::COORDINATOR_NOT_AVAILABLE)),
        }
    }

    /// Heartbeat: keeps the member alive and tells it about rebalances.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> i16 {
        if self.state == State::Dead {
            return err::COORDINATOR_NOT_AVAILABLE;
        }
        if self.is_fenced(member_id, instance_id) {
            return err::FENCED_INSTANCE_ID;
        }
        if self.state == State::Empty || !self.members.contains_key(member_id) {
            return err::UNKNOWN_MEMBER_ID;
        }
        if generation != self.generation {
            return err::ILLEGAL_GENERATION;
        }
        if let Some(m) = self.members.get_mut(member_id) {
            m.heartbeat_deadline = now + m.session_timeout;
        }
        match self.state {
            State::PreparingRebalance => err::REBALANCE_IN_PROGRESS,
            _ => err::NONE,
        }
    }

    /// OffsetCommit's group check (Kafka's doCommitOffsets): NONE means commit.
    pub fn validate_commit(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> i16 {
        if self.state == State::Dead {
            return err::COORDINATOR_NOT_AVAILABLE;
        }
        if self.is_fenced(member_id, instance_id) {
            return err::FENCED_INSTANCE_ID;
        }
        if generation < 0 && self.state == State::Empty {
            return err::NONE;
        }
        if !self.members.contains_key(member_id) {
            return err::UNKNOWN_MEMBER_ID;
        }
        if generation != self.generation {
            return err::ILLEGAL_GENERATION;
        }
        match self.state {
            State::CompletingRebalance => err::REBALANCE_IN_PROGRESS,
            _ => {
                if let Some(m) = self.members.get_mut(member_id) {
                    m.heartbeat_deadline = now + m.session_timeout;
                }
                err::NONE
            }
        }
    }

    /// Mark dead (deleted or moved to another coordinator); waiters get `error`.
    pub fn kill(&mut self, error: i16) {
        for m in self.members.values_mut() {
            if let Some(tx) = m.join.take() {
                let _ = tx.send(JoinResult::error(&m.id, error));
            }
            if let Some(tx) = m.sync.take() {
                let _ = tx.send(SyncResult::error(error));
            }
        }
        self.members.clear();
        self.static_members.clear();
        self.pending.clear();
        self.state = State::Dead;
        self.rebalance_deadline = None;
        self.initial_delay = None;
    }

    /// When [`Group::tick`] next has work to do.
    pub fn next_deadline(&self) -> Option<Instant> {
        let mut next: Option<Instant> = None;
        let mut at = |t: Instant| {
            if next.is_none_or(|n| t < n) {
                next = Some(t);
            }
        };
        if let Some(d) = &self.initial_delay {
            at(d.deadline);
        }
        if let Some(d) = self.rebalance_deadline {
            at(d);
        }
        for d in self.pending.values() {
            at(*d);
        }
        for m in self.members.values() {
            if m.join.is_some() {
                if m.is_new {
                    at(m.joined_at + NEW_MEMBER_JOIN_TIMEOUT);
                }
            } else if m.sync.is_none() {
                at(m.heartbeat_deadline);
            }
        }
        next
    }

    /// Expire sessions, pending ids and rebalance timers due at `now`.
    pub fn tick(&mut self, now: Instant) {
        if self.state == State::Dead {
            return;
        }
        let expired_pending: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, d)| **d <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired_pending {
            self.pending.remove(&id);
        }
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                if m.join.is_some() {
                    m.is_new && m.joined_at + NEW_MEMBER_JOIN_TIMEOUT <= now
                } else {
                    m.sync.is_none() && m.heartbeat_deadline <= now
                }
            })
            .map(|m| m.id.clone())
            .collect();
        for id in expired {
            tracing::info!(group = %self.id, member = %id, "member session expired");
            self.remove_member(&id, now);
        }
        if let Some(d) = &self.initial_delay {
            if d.deadline <= now {
                let delay = self.initial_delay();
                if self.new_member_added && !d.remaining.is_zero() {
                    let step = delay.min(d.remaining);
                    let remaining = d.remaining.saturating_sub(delay);
                    self.initial_delay = Some(InitialDelay {
                        deadline: now + step,
                        remaining,
                    });
                    self.new_member_added = false;
                } else {
                    self.initial_delay = None;
                    self.complete_join(now);
                }
            }
        }
        if self.rebalance_deadline.is_some_and(|d| d <= now)
            && self.state == State::PreparingRebalance
        {
            self.complete_join(now);
        }
        self.try_complete_join(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(member: &str, v4: bool) -> JoinParams {
        JoinParams {
            member_id: member.to_string(),
            instance_id: None,
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            session_timeout: Duration::from_secs(10),
            rebalance_timeout: Duration::from_secs(30),
            protocol_type: "consumer".into(),
            protocols: vec![("range".into(), Bytes::from_static(b"m"))],
            require_known_member_id: v4,
        }
    }

    fn now_join(r: Reply<JoinResult>) -> JoinResult {
        match r {
            Reply::Now(r) => r,
            Reply::Later(mut rx) => rx.try_recv().expect("join completed"),
        }
    }

    fn timing(ms: u64) -> Timing {
        Timing {
            initial_rebalance_delay: Duration::from_millis(ms),
            first_join_window: Duration::ZERO,
        }
    }

    #[test]
    fn single_member_joins_and_syncs() {
        let t = Instant::now();
        let mut g = Group::new("g", timing(0));
        let r = now_join(g.join(params("", true), t));
        assert_eq!(r.error, err::MEMBER_ID_REQUIRED);
        let id = r.member_id.clone();
        let r = now_join(g.join(params(&id, true), t));
        assert_eq!(r.error, err::NONE);
        assert_eq!(r.generation, 1);
        assert_eq!(r.leader, id);
        assert_eq!(r.members.len(), 1);
        assert_eq!(g.state, State::CompletingRebalance);
        let s = match g.sync(
            &id,
            None,
            1,
            None,
            None,
            vec![(id.clone(), Bytes::from_static(b"a"))],
            t,
        ) {
            Reply::Later(mut rx) => rx.try_recv().unwrap(),
            Reply::Now(r) => r,
        };
        assert_eq!(s.error, err::NONE);
        assert_eq!(&s.assignment[..], b"a");
        assert_eq!(g.state, State::Stable);
        assert_eq!(g.heartbeat(&id, None, 1, t), err::NONE);
        assert_eq!(g.heartbeat(&id, None, 0, t), err::ILLEGAL_GENERATION);
        assert_eq!(g.heartbeat("x", None, 1, t), err::UNKNOWN_MEMBER_ID);
    }

    #[test]
    fn second_member_triggers_rebalance_and_expiry_removes() {
        let t = Instant::now();
        let mut g = Group::new("g", timing(0));
        let a = now_join(g.join(params("", false), t)).member_id;
        let _ = g.sync(&a, None, 1, None, None, vec![], t);
        assert_eq!(g.state, State::Stable);
        let rb = g.join(params("", false), t);
        assert_eq!(g.state, State::PreparingRebalance);
        assert_eq!(g.heartbeat(&a, None, 1, t), err::REBALANCE_IN_PROGRESS);
        let ra = g.join(params(&a, false), t);
        let (ra, rb) = (now_join(ra), now_join(rb));
        assert_eq!(ra.generation, 2);
        assert_eq!(rb.generation, 2);
        assert_eq!(ra.members.len() + rb.members.len(), 2);
        // b never syncs nor heartbeats; a syncs as leader.
        let leader = ra.leader.clone();
        let _ = g.sync(&leader, None, 2, None, None, vec![], t);
        assert_eq!(g.state, State::Stable);
        let later = t + Duration::from_secs(11);
        let other = if leader == a {
            rb.member_id.clone()
        } else {
            a.clone()
        };
        g.heartbeat(&leader, None, 2, t + Duration::from_secs(9));
        g.tick(later);
        assert!(!g.has(&other));
        assert_eq!(g.state, State::PreparingRebalance);
    }

    #[test]
    fn initial_delay_waits() {
        let t = Instant::now();
        let mut g = Group::new("g", timing(3000));
        let r = g.join(params("", false), t);
        g.tick(t + Duration::from_secs(1));
        let Reply::Later(mut rx) = r else { panic!() };
        assert!(rx.try_recv().is_err());
        g.tick(t + Duration::from_secs(3));
        assert_eq!(rx.try_recv().unwrap().generation, 1);
    }

    #[test]
    fn first_join_window_waits_for_members_arriving_together() {
        let t = Instant::now();
        let mut g = Group::new(
            "g",
            Timing {
                initial_rebalance_delay: Duration::ZERO,
                first_join_window: Duration::from_millis(100),
            },
        );
        let a = g.join(params("", false), t);
        let b = g.join(params("", false), t + Duration::from_millis(80));
        // b arrived inside the window: the phase is extended past t + 100 ms.
        g.tick(t + Duration::from_millis(100));
        let (Reply::Later(mut a), Reply::Later(mut b)) = (a, b) else {
            panic!()
        };
        assert!(a.try_recv().is_err());
        g.tick(t + Duration::from_millis(200));
        let (ra, rb) = (a.try_recv().unwrap(), b.try_recv().unwrap());
        assert_eq!((ra.generation, rb.generation), (1, 1));
        assert_eq!(ra.members.len() + rb.members.len(), 2);
    }

    #[test]
    fn leave_and_commit_checks() {
        let t = Instant::now();
        let mut g = Group::new("g", timing(0));
        assert_eq!(g.validate_commit("", None, -1, t), err::NONE);
        let a = now_join(g.join(params("", false), t)).member_id;
        assert_eq!(
            g.validate_commit(&a, None, 1, t),
            err::REBALANCE_IN_PROGRESS
        );
        let _ = g.sync(&a, None, 1, None, None, vec![], t);
        assert_eq!(g.validate_commit(&a, None, 1, t), err::NONE);
        assert_eq!(g.validate_commit("", None, -1, t), err::UNKNOWN_MEMBER_ID);
        assert_eq!(g.leave(&a, None, t), err::NONE);
        assert_eq!(g.state, State::Empty);
        assert_eq!(g.generation, 2);
        assert_eq!(g.leave(&a, None, t), err::UNKNOWN_MEMBER_ID);
    }

    #[test]
    fn static_member_rejoin_keeps_assignment() {
        let t = Instant::now();
        let mut g = Group::new("g", timing(0));
        let mut p = params("", true);
        p.instance_id = Some("i1".into());
        let a = now_join(g.join(p.clone(), t)).member_id;
        let _ = g.sync(
            &a,
            None,
            1,
            None,
            None,
            vec![(a.clone(), Bytes::from_static(b"x"))],
            t,
        );
        let r = now_join(g.join(p, t));
        assert_eq!(r.error, err::NONE);
        assert_ne!(r.member_id, a);
        assert_eq!(g.state, State::Stable);
        assert_eq!(g.heartbeat(&a, Some("i1"), 1, t), err::FENCED_INSTANCE_ID);
    }
}
