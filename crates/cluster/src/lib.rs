//! The cluster: consensus on openraft, and the one way to write.
//!
//! [`Cluster`] runs a raft node over the store: [`Cluster::propose`] puts a
//! [`Command`] in the replicated log and returns its [`Outcome`] once it is
//! committed and applied on this node. A single node is a cluster of one
//! with a quorum of one: the same code path as three.
//!
//! Modules: `log_store` (the durable log, group commit), `state_machine`
//! (applies entries to the store, snapshots), `network` (peer RPCs over
//! HTTP with the cluster token), `identity` (which cluster and node a data
//! directory belongs to), `metrics`.
//!
//! Architecture invariants:
//! - Nothing but committed entries reaches the store (invariant 1).
//! - Whether this node leads is openraft's answer, exposed as
//!   [`Cluster::leadership`]; no configuration sets it (invariant 9).
//! - This crate never interprets commands: it only orders and delivers them.
#![deny(missing_docs)]
// openraft's storage traits fix the error type; it is large, and boxing it
// would only move the allocation to every conversion.
#![allow(clippy::result_large_err)]

mod clock;
mod identity;
mod log_store;
mod metrics;
mod network;
mod proposer;
pub mod routing;
mod state_machine;
mod types;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant as StdInstant;

use openraft::error::RaftError;
use openraft::{ServerState, SnapshotPolicy};
use serde::{Deserialize, Serialize};
use tocsin_store::{Command, Outcome, Reader, Store};
use tokio::sync::watch;

pub use clock::{Clock, ManualClock, SystemClock, new_id};
pub use identity::{Identity, IdentityError, read_identity};
pub use log_store::{LogOpenError, LogStore};
pub use metrics::ClusterMetrics;
pub use network::{CLUSTER_TOKEN_HEADER, NODE_HEADER, cluster_token};
pub use types::{NodeId, NodeInfo, TypeConfig};

/// How a node starts.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// The data directory (state, log, snapshots, identity).
    pub data_dir: PathBuf,
    /// The cluster's name, recorded in the data directory.
    pub cluster: String,
    /// This node's id.
    pub node_id: NodeId,
    /// This node's addresses.
    pub node: NodeInfo,
    /// The shared secret peers authenticate with.
    pub secret: String,
    /// The members to initialise with when the log is empty; empty means
    /// "wait to be added by a running cluster".
    pub initial_members: BTreeMap<NodeId, NodeInfo>,
    /// Leader heartbeat period.
    pub heartbeat_ms: u64,
    /// Election timeout range.
    pub election_timeout_ms: (u64, u64),
    /// Build a snapshot (and purge the log) after this many entries.
    pub snapshot_after_entries: u64,
    /// Entries kept in the log behind the latest snapshot, so a follower a
    /// little behind catches up from the log rather than a snapshot.
    pub entries_kept_after_snapshot: u64,
}

impl ClusterConfig {
    /// A single node that is its own cluster: the embedded default.
    pub fn single_node(data_dir: PathBuf, node: NodeInfo) -> Self {
        let initial_members = BTreeMap::from([(1, node.clone())]);
        ClusterConfig {
            data_dir,
            cluster: "tocsin".to_owned(),
            node_id: 1,
            node,
            secret: String::new(),
            initial_members,
            heartbeat_ms: 100,
            election_timeout_ms: (300, 600),
            snapshot_after_entries: 10_000,
            entries_kept_after_snapshot: 1_000,
        }
    }
}

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// The data directory belongs to another cluster or node.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The state database cannot be used.
    #[error(transparent)]
    Store(#[from] tocsin_store::StoreError),
    /// The raft log cannot be used.
    #[error(transparent)]
    Log(#[from] LogOpenError),
    /// Anything else at start-up.
    #[error("{0}")]
    Start(String),
}

/// Why a proposal did not produce an outcome.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProposeError {
    /// This node is not the leader; the leader is given when known.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader's id and addresses, if known.
        leader: Option<(NodeId, NodeInfo)>,
    },
    /// The node is shutting down or failed; nothing was committed by this call.
    #[error("consensus unavailable: {0}")]
    Unavailable(String),
}

/// A node's view of itself, for `tocsin status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// This node's id.
    pub node_id: NodeId,
    /// `leader`, `follower`, `candidate` or `learner`.
    pub role: String,
    /// The current term.
    pub term: u64,
    /// The leader, if known.
    pub leader: Option<NodeId>,
    /// The last committed log index known here.
    pub commit_index: Option<u64>,
    /// The last log index applied to the state.
    pub applied_index: Option<u64>,
    /// The last log index present.
    pub last_log_index: Option<u64>,
    /// The last purged index (entries before it are in a snapshot).
    pub purged_index: Option<u64>,
    /// The voters.
    pub voters: Vec<NodeId>,
    /// Per follower (on the leader): the last index known replicated.
    pub replication: BTreeMap<NodeId, Option<u64>>,
}

/// A running node.
#[derive(Clone)]
pub struct Cluster {
    raft: types::Raft,
    reader: Reader,
    metrics: ClusterMetrics,
    config: Arc<ClusterConfig>,
    leadership: watch::Receiver<bool>,
    applied: watch::Receiver<u64>,
    proposals: tokio::sync::mpsc::Sender<proposer::Proposal>,
    http: reqwest::Client,
}

impl Cluster {
    /// Opens the data directory and starts the node. Every check that can
    /// refuse the directory runs before anything in it is written.
    pub async fn start(
        config: ClusterConfig,
        metrics: ClusterMetrics,
    ) -> Result<Cluster, ClusterError> {
        let identity = Identity {
            cluster: config.cluster.clone(),
            node_id: config.node_id,
        };
        let data_dir = config.data_dir.clone();
        let known = identity::check_identity(&data_dir, &identity)?;
        let state_path = data_dir.join("state.db");
        let log_path = data_dir.join("raft-log.db");
        Store::verify(&state_path)?;
        LogStore::verify(&log_path)?;
        std::fs::create_dir_all(&data_dir)
            .map_err(|e| ClusterError::Start(format!("{}: {e}", data_dir.display())))?;
        let state_machine = state_machine::StateMachine::open(&data_dir, metrics.clone())
            .map_err(ClusterError::Start)?;
        let reader = state_machine.reader();
        let log_store = LogStore::open(&log_path, metrics.clone())?;
        if !known {
            identity::write_identity(&data_dir, &identity)?;
        }
        let raft_config = openraft::Config {
            cluster_name: config.cluster.clone(),
            heartbeat_interval: config.heartbeat_ms,
            election_timeout_min: config.election_timeout_ms.0,
            election_timeout_max: config.election_timeout_ms.1,
            snapshot_policy: SnapshotPolicy::LogsSinceLast(config.snapshot_after_entries),
            max_in_snapshot_log_to_keep: config.entries_kept_after_snapshot,
            ..Default::default()
        }
        .validate()
        .map_err(|e| ClusterError::Start(format!("raft configuration: {e}")))?;
        let network = network::NetworkFactory::new(&cluster_token(&config.secret), config.node_id);
        let raft = types::Raft::new(
            config.node_id,
            Arc::new(raft_config),
            network,
            log_store,
            state_machine,
        )
        .await
        .map_err(|e| ClusterError::Start(format!("raft: {e}")))?;
        initialise_if_new(&raft, &config).await?;
        let (leadership, applied) = watch_raft(&raft, &metrics);
        let proposals = proposer::start(raft.clone());
        Ok(Cluster {
            http: reqwest::Client::new(),
            proposals,
            applied,
            raft,
            reader,
            metrics,
            config: Arc::new(config),
            leadership,
        })
    }

    /// Commits `command` and returns its outcome once applied here.
    /// Concurrent proposals are committed together (group commit).
    ///
    /// A leader that cannot reach a quorum (cut off from its peers) cannot
    /// commit; after [`PROPOSE_TIMEOUT`] the caller gets `Unavailable`. The
    /// command may still commit later if the leader regains its quorum, so
    /// such an answer means "unknown", never "not done".
    pub async fn propose(&self, command: Command) -> Result<Outcome, ProposeError> {
        let started = StdInstant::now();
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.proposals
            .send(proposer::Proposal { command, reply })
            .await
            .map_err(|_| ProposeError::Unavailable("the node is shutting down".into()))?;
        let result = match tokio::time::timeout(PROPOSE_TIMEOUT, answer).await {
            Ok(answer) => answer.unwrap_or_else(|_| {
                Err(ProposeError::Unavailable(
                    "the node is shutting down".into(),
                ))
            }),
            Err(_) => Err(ProposeError::Unavailable(format!(
                "not committed within {} s (no quorum reachable?)",
                PROPOSE_TIMEOUT.as_secs()
            ))),
        };
        self.metrics
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        result
    }

    /// The leader this node knows of, with its addresses.
    pub fn leader(&self) -> Option<(NodeId, NodeInfo)> {
        let metrics = self.raft.metrics().borrow().clone();
        let id = metrics.current_leader?;
        let node = metrics
            .membership_config
            .membership()
            .get_node(&id)?
            .clone();
        Some((id, node))
    }

    /// Whether this node is the leader right now.
    pub fn is_leader(&self) -> bool {
        *self.leadership.borrow()
    }

    /// The members (voters and learners) with their addresses.
    pub fn members(&self) -> BTreeMap<NodeId, NodeInfo> {
        let metrics = self.raft.metrics().borrow().clone();
        metrics
            .membership_config
            .membership()
            .nodes()
            .map(|(id, node)| (*id, node.clone()))
            .collect()
    }

    /// Whether the cluster has more than one voter (reads then need a
    /// barrier; a cluster of one is always up to date).
    pub fn has_peers(&self) -> bool {
        let metrics = self.raft.metrics().borrow().clone();
        metrics.membership_config.membership().voter_ids().count() > 1
    }

    /// Waits until this node has applied everything the leader had
    /// committed when asked: a read after it sees every write any client
    /// saw acknowledged before the call. On the leader this confirms
    /// leadership with a quorum first (a leader cut off from its peers
    /// must not answer reads from an old state).
    pub async fn read_barrier(&self) -> Result<(), ProposeError> {
        let index = if self.is_leader() {
            self.linearizable_index().await?
        } else {
            let (_, leader) = self
                .leader()
                .ok_or_else(|| ProposeError::Unavailable("no leader known".into()))?;
            network::read_index_of(
                &leader,
                &cluster_token(&self.config.secret),
                self.config.node_id,
            )
            .await?
        };
        let mut applied = self.applied.clone();
        let caught_up =
            tokio::time::timeout(READ_BARRIER_TIMEOUT, applied.wait_for(|a| *a >= index)).await;
        match caught_up {
            Ok(Ok(_)) => Ok(()),
            _ => Err(ProposeError::Unavailable(format!(
                "this node did not catch up to log index {index} within {} s",
                READ_BARRIER_TIMEOUT.as_secs()
            ))),
        }
    }

    /// The leader's committed index, confirmed with a quorum.
    pub(crate) async fn linearizable_index(&self) -> Result<u64, ProposeError> {
        match tokio::time::timeout(READ_BARRIER_TIMEOUT, self.raft.ensure_linearizable()).await {
            Ok(Ok(log_id)) => Ok(log_id.map_or(0, |l| l.index)),
            Ok(Err(e)) => Err(ProposeError::Unavailable(e.to_string())),
            Err(_) => Err(ProposeError::Unavailable(
                "leadership not confirmed by a quorum in time".into(),
            )),
        }
    }

    /// The HTTP client for requests to other nodes (connections reused).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Starts a cluster on a node that has none yet (`tocsin cluster init`).
    pub async fn initialize(
        &self,
        members: BTreeMap<NodeId, NodeInfo>,
    ) -> Result<(), ProposeError> {
        self.raft
            .initialize(members)
            .await
            .map_err(|e| ProposeError::Unavailable(e.to_string()))
    }

    /// Adds a node: first as a learner that catches up (by snapshot if it
    /// is far behind or empty), then as a voter.
    pub async fn add_node(&self, id: NodeId, node: NodeInfo) -> Result<(), ProposeError> {
        membership_result(self.raft.add_learner(id, node, true).await)?;
        membership_result(
            self.raft
                .change_membership(
                    openraft::ChangeMembers::AddVoterIds(BTreeSet::from([id])),
                    false,
                )
                .await,
        )
    }

    /// Removes a node from the cluster.
    pub async fn remove_node(&self, id: NodeId) -> Result<(), ProposeError> {
        membership_result(
            self.raft
                .change_membership(
                    openraft::ChangeMembers::RemoveVoters(BTreeSet::from([id])),
                    false,
                )
                .await,
        )
    }

    /// Reads of the state as applied on this node.
    pub fn reader(&self) -> &Reader {
        &self.reader
    }

    /// True while this node is the leader; changes as openraft decides
    /// (invariant 9).
    pub fn leadership(&self) -> watch::Receiver<bool> {
        self.leadership.clone()
    }

    /// The last log index applied here; changes after every applied batch,
    /// so a reader can wait for a write to become visible, and the
    /// scheduler wakes when a write may have brought an alarm forward.
    pub fn applied(&self) -> watch::Receiver<u64> {
        self.applied.clone()
    }

    /// This node's id.
    pub fn node_id(&self) -> NodeId {
        self.config.node_id
    }

    /// The routes peers call (raft RPCs), to be served on the raft address.
    pub fn peer_routes(&self) -> axum::Router {
        network::raft_routes(
            self.clone(),
            self.raft.clone(),
            &cluster_token(&self.config.secret),
        )
    }

    /// Every member's status, asked of each (a member that does not answer
    /// is listed with its error).
    pub async fn cluster_status(&self) -> Vec<(NodeId, NodeInfo, Result<NodeStatus, String>)> {
        let token = cluster_token(&self.config.secret);
        let mut statuses = Vec::new();
        for (id, node) in self.members() {
            let status = if id == self.config.node_id {
                Ok(self.status().await)
            } else {
                network::status_of(&node, &token, self.config.node_id).await
            };
            statuses.push((id, node, status));
        }
        statuses
    }

    /// Role, term and log positions of this node.
    pub async fn status(&self) -> NodeStatus {
        let metrics = self.raft.metrics().borrow().clone();
        let commit_index = self
            .raft
            .with_raft_state(|state| state.committed.map(|c| c.index))
            .await
            .ok()
            .flatten();
        let voters = metrics.membership_config.membership().voter_ids().collect();
        let replication = metrics
            .replication
            .as_ref()
            .map(|r| {
                r.iter()
                    .map(|(id, log)| (*id, log.map(|l| l.index)))
                    .collect()
            })
            .unwrap_or_default();
        NodeStatus {
            node_id: metrics.id,
            role: role_name(metrics.state).to_owned(),
            term: metrics.current_term,
            leader: metrics.current_leader,
            commit_index,
            applied_index: metrics.last_applied.map(|l| l.index),
            last_log_index: metrics.last_log_index,
            purged_index: metrics.purged.map(|l| l.index),
            voters,
            replication,
        }
    }

    /// Stops the node; in-flight proposals fail.
    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft shutdown");
        }
    }

    /// Builds a snapshot now (and lets openraft purge the log before it).
    pub async fn trigger_snapshot(&self) -> Result<(), ProposeError> {
        self.raft
            .trigger()
            .snapshot()
            .await
            .map_err(|e| ProposeError::Unavailable(e.to_string()))
    }
}

/// Longest wait for a proposal to commit.
pub const PROPOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Longest wait for a read barrier (leader confirmation, catching up).
pub const READ_BARRIER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

fn membership_result<T>(
    result: Result<T, RaftError<NodeId, openraft::error::ClientWriteError<NodeId, NodeInfo>>>,
) -> Result<(), ProposeError> {
    match result {
        Ok(_) => Ok(()),
        Err(RaftError::APIError(openraft::error::ClientWriteError::ForwardToLeader(f))) => {
            Err(ProposeError::NotLeader {
                leader: f.leader_id.zip(f.leader_node),
            })
        }
        Err(e) => Err(ProposeError::Unavailable(e.to_string())),
    }
}

fn role_name(state: ServerState) -> &'static str {
    match state {
        ServerState::Leader => "leader",
        ServerState::Follower => "follower",
        ServerState::Candidate => "candidate",
        ServerState::Learner => "learner",
        ServerState::Shutdown => "shutdown",
    }
}

async fn initialise_if_new(raft: &types::Raft, config: &ClusterConfig) -> Result<(), ClusterError> {
    let initialised = raft
        .is_initialized()
        .await
        .map_err(|e| ClusterError::Start(e.to_string()))?;
    if initialised || config.initial_members.is_empty() {
        return Ok(());
    }
    let is_first_member = config.initial_members.keys().next() == Some(&config.node_id);
    if !is_first_member {
        // Only the lowest id initialises; the others learn the membership
        // from it, so two nodes never start two clusters.
        return Ok(());
    }
    match raft.initialize(config.initial_members.clone()).await {
        Ok(()) => Ok(()),
        Err(RaftError::APIError(e)) => {
            tracing::info!(reason = %e, "cluster already initialised");
            Ok(())
        }
        Err(RaftError::Fatal(e)) => Err(ClusterError::Start(e.to_string())),
    }
}

/// Follows openraft's metrics into a leadership flag, the applied index and
/// the metrics gauges.
fn watch_raft(
    raft: &types::Raft,
    metrics: &ClusterMetrics,
) -> (watch::Receiver<bool>, watch::Receiver<u64>) {
    let (tx, rx) = watch::channel(false);
    let (applied_tx, applied_rx) = watch::channel(0u64);
    let mut raft_metrics = raft.metrics();
    let metrics = metrics.clone();
    tokio::spawn(async move {
        loop {
            let snapshot = raft_metrics.borrow_and_update().clone();
            let leading = snapshot.state == ServerState::Leader;
            metrics.term.set(snapshot.current_term as i64);
            metrics.is_leader.set(i64::from(leading));
            let last = snapshot.last_log_index.unwrap_or(0);
            let purged = snapshot.purged.map_or(0, |p| p.index);
            metrics.log_entries.set(last.saturating_sub(purged) as i64);
            metrics.last_log_index.set(last as i64);
            metrics.replication_lag.clear();
            if let Some(replication) = &snapshot.replication {
                for (node, matched) in replication {
                    let behind = last.saturating_sub(matched.map_or(0, |m| m.index));
                    metrics
                        .replication_lag
                        .get_or_create(&vec![("node".to_owned(), node.to_string())])
                        .set(behind as i64);
                }
            }
            tx.send_if_modified(|current| {
                let changed = *current != leading;
                *current = leading;
                changed
            });
            let applied = snapshot.last_applied.map_or(0, |l| l.index);
            applied_tx.send_if_modified(|current| {
                let changed = *current != applied;
                *current = applied;
                changed
            });
            if raft_metrics.changed().await.is_err() {
                break;
            }
        }
    });
    (rx, applied_rx)
}

/// The voters of a membership, for display.
pub fn voter_set(members: &BTreeMap<NodeId, NodeInfo>) -> BTreeSet<NodeId> {
    members.keys().copied().collect()
}
