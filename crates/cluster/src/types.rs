//! The openraft type configuration: what a log entry, a node and a
//! response are in Tocsin.
//!
//! Owns the mapping of Tocsin's types onto openraft's generic parameters.
//! It must never hold behaviour: storage, network and the node handle
//! live in their own modules.

use std::fmt;

use serde::{Deserialize, Serialize};
use tocsin_store::{Envelope, Outcome};

/// A node's id in the cluster.
pub type NodeId = u64;

/// How to reach a node: its raft (peer) address and its client API address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// `host:port` where peers send raft RPCs.
    pub raft_addr: String,
    /// Base URL where clients reach the node (CalDAV, admin API).
    pub api_url: String,
}

impl fmt::Display for NodeInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.raft_addr, self.api_url)
    }
}

/// The answer to one log entry: the store's outcome for each of its
/// commands, in order; empty for blank and membership entries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Response(pub Vec<Outcome>);

openraft::declare_raft_types!(
    /// Tocsin's openraft configuration.
    pub TypeConfig:
        D = Envelope,
        R = Response,
        NodeId = NodeId,
        Node = NodeInfo,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = tokio::fs::File,
        AsyncRuntime = openraft::TokioRuntime,
);

/// A log entry.
pub type Entry = openraft::Entry<TypeConfig>;
/// A log id.
pub type LogId = openraft::LogId<NodeId>;
/// A vote.
pub type Vote = openraft::Vote<NodeId>;
/// The membership as stored with the state.
pub type StoredMembership = openraft::StoredMembership<NodeId, NodeInfo>;
/// Storage errors as openraft wants them.
pub type StorageError = openraft::StorageError<NodeId>;
/// The raft handle.
pub type Raft = openraft::Raft<TypeConfig>;
