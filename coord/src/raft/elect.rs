//! Elections: when this member campaigns for leadership, and whether it
//! backs another member's campaign (pre-vote). openraft's own election timer
//! is off (`enable_elect: false`); this module triggers elections instead:
//!
//! - at once when the leader's process is gone: the peer connection it sent
//!   AppendEntries on closed (EOF or reset) and its peer port refuses a new
//!   connection — the kernel says so the moment a process dies;
//! - after a randomized election timeout without hearing from a leader, for
//!   a leader that hangs without closing anything (SIGSTOP, a partition).
//!
//! Every campaign starts with a pre-vote: voters forming a majority must say
//! they have no live leader (none heard within the election timeout, or its
//! connection closed) and that the candidate's log is at least as up to
//! date as theirs. A member that was only cut off never raises the term, so
//! it cannot depose a healthy leader when it is back. openraft's leader
//! lease (its `election_timeout_max`, kept just above the heartbeat) still
//! makes a voter reject a real vote for a while after it last heard from the
//! old leader; voters say how long in their pre-vote answer and the
//! candidate waits that out rather than failing an election.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use fjord_proto::raft as pb;
use openraft::ServerState;
use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::log::LogStore;
use super::net::Peers;
use super::types::{opt_log_id_from_pb, opt_log_id_to_pb, NodeId, Raft};

/// Election timings, from tickTime (`Config::raft_timing`).
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// The leader's heartbeat interval.
    pub heartbeat: Duration,
    /// A follower that heard nothing from a leader for a random time in
    /// `timeout_min..timeout_max` campaigns.
    pub timeout_min: Duration,
    pub timeout_max: Duration,
    /// openraft's leader lease: how long after an AppendEntries a voter
    /// rejects real votes.
    pub lease: Duration,
}

struct State {
    /// Last time a leader's AppendEntries was accepted here, this member
    /// granted a vote, led, or started: the election timeout runs from it.
    last_contact: Instant,
    /// Last accepted AppendEntries: openraft's lease runs from it.
    last_append: Instant,
    /// A leader's AppendEntries was accepted since this process started.
    heard_any: bool,
    /// A leader whose peer connection (the [`LinkId`]) closed and whose
    /// port refused a new one: evidence it is gone, so no need to wait for
    /// a timeout.
    gone: Option<(NodeId, LinkId)>,
    /// This member is running a campaign.
    campaigning: bool,
    /// Last time this member backed another's pre-vote: it then holds back
    /// its own campaign for a while, as Raft's voters reset their timer.
    backed: Option<Instant>,
}

/// Names one accepted peer connection, so that requests still in flight
/// on a leader's closed connection are told apart from those of the same
/// member restarted (a new connection).
pub type LinkId = u64;

/// Decides when this member campaigns and answers other members' pre-votes.
pub struct Elector {
    my_id: NodeId,
    timing: Timing,
    log: LogStore,
    /// This member's openraft (its view of the leader; the election).
    raft: Raft,
    /// The links pre-votes and probes go over.
    peers: Arc<Peers>,
    state: Mutex<State>,
    wake: Notify,
}

/// How a campaign ended.
enum Outcome {
    /// A leader is known (this member or another).
    Settled,
    /// Voters forming a majority would not back it.
    Refused,
    /// The election was held but no leader came out of it (split vote).
    Split,
}

fn random_between(lo: Duration, hi: Duration) -> Duration {
    if hi <= lo {
        return lo;
    }
    Duration::from_micros(rand::random_range(
        lo.as_micros() as u64..hi.as_micros() as u64,
    ))
}

impl Elector {
    pub fn new(
        my_id: NodeId,
        timing: Timing,
        log: LogStore,
        raft: Raft,
        peers: Arc<Peers>,
    ) -> Elector {
        let now = Instant::now();
        Elector {
            my_id,
            timing,
            log,
            raft,
            peers,
            state: Mutex::new(State {
                last_contact: now,
                last_append: now,
                heard_any: false,
                gone: None,
                campaigning: false,
                backed: None,
            }),
            wake: Notify::new(),
        }
    }

    /// `leader`'s AppendEntries (or snapshot chunk), sent on `link`, was
    /// accepted here: a leader is alive, unless that is the closed link of
    /// the leader known gone (its last requests can still be processed
    /// after the connection closed). The same member on a new link has
    /// restarted, and may lead again (openraft restarts a leader whose
    /// vote was committed as leader).
    pub fn heard_from_leader(&self, leader: NodeId, link: LinkId) {
        let mut s = self.state.lock();
        if s.gone == Some((leader, link)) {
            return;
        }
        let now = Instant::now();
        s.last_contact = now;
        s.last_append = now;
        s.heard_any = true;
        s.gone = None;
    }

    /// The leader openraft names now.
    fn leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    /// Whether a leader's AppendEntries (or snapshot chunk) was taken here
    /// within `d`, and that leader is not known gone. A follower cut off
    /// from the leader and the quorum never campaigns (its pre-votes are
    /// refused), so openraft keeps naming the old leader: this is what
    /// tells the guard it has been cut off.
    pub fn heard_leader_within(&self, d: Duration) -> bool {
        let s = self.state.lock();
        s.heard_any && s.gone.is_none() && s.last_append.elapsed() < d
    }

    /// This member granted a real vote: that candidate gets time to win.
    pub fn granted_vote(&self) {
        let mut s = self.state.lock();
        s.last_contact = Instant::now();
        s.gone = None;
    }

    /// The peer connection `from` sent AppendEntries on has ended. When
    /// `from` is the current leader and its peer port now refuses a
    /// connection, its process is gone: campaign without waiting for the
    /// election timeout. A leader that is alive (it only dropped that
    /// connection) accepts the probe; but so, for a moment, can a dying
    /// process's listener, and a loaded host can be slow to answer, so a
    /// probe that finds no evidence is repeated until another leader is
    /// known or the election timeout would decide anyway.
    pub fn link_closed(self: &Arc<Self>, from: NodeId, link: LinkId) {
        if from == self.my_id || self.leader() != Some(from) {
            return;
        }
        let me = self.clone();
        tokio::spawn(async move {
            let until = Instant::now() + me.timing.timeout_min;
            loop {
                match me.peers.probe(from, me.timing.heartbeat).await {
                    Ok(()) => {
                        if me.leader() != Some(from) || Instant::now() >= until {
                            tracing::debug!(
                                leader = from,
                                "leader's peer connection closed; it accepts a new one"
                            );
                            return;
                        }
                        tokio::time::sleep(me.timing.heartbeat / 2).await;
                    }
                    Err(e) => {
                        if me.leader() != Some(from) {
                            return;
                        }
                        tracing::info!(leader = from, error = %e, "the leader's peer connection closed and a new one is refused: campaigning now");
                        me.state.lock().gone = Some((from, link));
                        me.wake.notify_one();
                        return;
                    }
                }
            }
        });
    }

    /// This member's answer to `from`'s pre-vote.
    pub fn pre_vote(&self, from: NodeId, req: &pb::PreVoteReq) -> pb::PreVoteResp {
        let (state, leader) = {
            let m = self.raft.metrics();
            let m = m.borrow();
            (m.state, m.current_leader)
        };
        let theirs = opt_log_id_from_pb(&req.last);
        let mine = self.log.last_log_id();
        let mut s = self.state.lock();
        let now = Instant::now();
        let refused = if state == ServerState::Leader {
            Some("this member leads")
        } else if leader.is_some()
            && s.gone.is_none()
            && now.duration_since(s.last_contact) < self.timing.timeout_min
        {
            Some("a live leader")
        } else if theirs < mine {
            Some("the candidate's log is behind")
        } else if s.campaigning && theirs == mine && self.my_id < from {
            // Two members campaigning at once: the lower id goes on.
            Some("campaigning itself")
        } else {
            None
        };
        if refused.is_none() {
            s.backed = Some(now);
        }
        let lease = (s.last_append + self.timing.lease).saturating_duration_since(now);
        tracing::debug!(
            candidate = from,
            ?refused,
            lease_ms = lease.as_millis() as u64,
            "pre-vote"
        );
        pb::PreVoteResp {
            granted: refused.is_none(),
            lease_ms: lease.as_millis() as u64,
        }
    }

    /// The voter sets (two during a joint reconfiguration) when this member
    /// may campaign: an initialized voter that does not lead.
    fn voter_sets(&self) -> Option<Vec<BTreeSet<NodeId>>> {
        let m = self.raft.metrics();
        let m = m.borrow();
        if m.state == ServerState::Leader {
            return None;
        }
        let sets = m.membership_config.membership().get_joint_config().clone();
        sets.iter().any(|s| s.contains(&self.my_id)).then_some(sets)
    }

    /// One campaign: pre-vote, wait out the voters' lease, elect, and wait
    /// (briefly) for a leader to come out of it.
    async fn campaign(&self, sets: &[BTreeSet<NodeId>]) -> Outcome {
        let started = Instant::now();
        let others: BTreeSet<NodeId> = sets
            .iter()
            .flatten()
            .copied()
            .filter(|id| *id != self.my_id)
            .collect();
        let req = pb::PreVoteReq {
            last: opt_log_id_to_pb(&self.log.last_log_id()),
        };
        let answers = futures_util::future::join_all(others.iter().map(|id| async move {
            (
                *id,
                self.peers.pre_vote(*id, req, self.timing.heartbeat).await,
            )
        }))
        .await;
        let mut backers = BTreeSet::from([self.my_id]);
        let mut lease = Duration::ZERO;
        for (id, answer) in answers {
            match answer {
                Ok(a) if a.granted => {
                    backers.insert(id);
                    lease = lease.max(Duration::from_millis(a.lease_ms));
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(member = id, error = %e, "no pre-vote answer"),
            }
        }
        let majority = sets
            .iter()
            .all(|s| s.iter().filter(|id| backers.contains(id)).count() * 2 > s.len());
        if !majority {
            return Outcome::Refused;
        }
        let contact = self.state.lock().last_contact;
        if !lease.is_zero() {
            tokio::time::sleep(lease + Duration::from_millis(5)).await;
        }
        {
            let s = self.state.lock();
            if s.last_contact != contact {
                // A leader turned up (or this member voted) meanwhile.
                return Outcome::Settled;
            }
            if s.backed.is_some_and(|b| b >= started) {
                // Another candidate (with a log at least as long) asked
                // meanwhile and this member backed it: let it win.
                return Outcome::Refused;
            }
        }
        tracing::info!(member = self.my_id, backers = ?backers, "pre-vote won; starting an election");
        // Until the election is under way the metrics still name the old
        // leader: wait for a leader of a later term.
        let term = self.raft.metrics().borrow().current_term;
        if self.raft.trigger().elect().await.is_err() {
            return Outcome::Split;
        }
        let window = random_between(self.timing.heartbeat, self.timing.heartbeat * 2);
        let settled = self
            .raft
            .wait(Some(window))
            .metrics(
                move |m| m.current_term > term && m.current_leader.is_some(),
                "a leader after the election",
            )
            .await
            .is_ok();
        if settled {
            Outcome::Settled
        } else {
            Outcome::Split
        }
    }

    /// This member's place among the voters left when `gone` is gone, by
    /// id: the first campaigns at once, the others a little later, so two
    /// members rarely split the vote.
    fn rank(&self, sets: &[BTreeSet<NodeId>], gone: NodeId) -> u32 {
        sets.iter()
            .flatten()
            .copied()
            .collect::<BTreeSet<NodeId>>()
            .into_iter()
            .filter(|id| *id != gone && *id < self.my_id)
            .count() as u32
    }
}

/// Runs elections for this member (see the module doc): wakes on evidence
/// that the leader is gone, or polls for the election timeout.
pub async fn run(me: Arc<Elector>) {
    let t = me.timing;
    let mut timeout = random_between(t.timeout_min, t.timeout_max);
    // This member's own next campaign waits until then (after one that
    // failed), apart from what it heard from leaders, which its answers to
    // other members' pre-votes go by.
    let mut not_before = Instant::now();
    let mut told = false;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(t.heartbeat / 4) => {}
            _ = me.wake.notified() => {}
        }
        let Some(sets) = me.voter_sets() else {
            // Leading (or not a voter): the timeout starts afresh after.
            me.state.lock().last_contact = Instant::now();
            continue;
        };
        let (gone, quiet, backed) = {
            let s = me.state.lock();
            (s.gone, s.last_contact.elapsed(), s.backed)
        };
        if backed.is_some_and(|b| b.elapsed() < t.lease + t.heartbeat * 2) {
            continue; // another member's campaign goes first
        }
        if gone.is_none() && quiet < timeout {
            told = false;
            continue;
        }
        if gone.is_none() && Instant::now() < not_before {
            continue;
        }
        if let Some((g, _)) = gone {
            let stagger = t.heartbeat / 2 * me.rank(&sets, g)
                + random_between(t.heartbeat / 40, t.heartbeat / 8);
            tokio::time::sleep(stagger).await;
            if me.state.lock().gone.is_none() {
                continue;
            }
        } else if !told {
            tracing::info!(
                member = me.my_id,
                quiet_ms = quiet.as_millis() as u64,
                "no leader heard within the election timeout; campaigning"
            );
            told = true;
        }
        me.state.lock().campaigning = true;
        let outcome = me.campaign(&sets).await;
        me.state.lock().campaigning = false;
        timeout = random_between(t.timeout_min, t.timeout_max);
        let pause = match outcome {
            Outcome::Settled => Duration::ZERO,
            // The others may not have seen the leader go yet, or one with a
            // longer log campaigns: try again soon.
            Outcome::Refused => random_between(t.heartbeat / 4, t.heartbeat * 3 / 2),
            Outcome::Split => {
                tracing::info!(
                    member = me.my_id,
                    "no leader came out of the election; retrying soon"
                );
                random_between(t.heartbeat / 2, t.heartbeat * 3 / 2)
            }
        };
        not_before = Instant::now() + pause;
    }
}
