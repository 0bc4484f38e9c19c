//! Which cluster and node a data directory belongs to.
//!
//! Owns `node.json`, written once when a data directory is first used. A
//! node started on a data directory of another cluster, or as another
//! node, is refused before any file is opened for writing. It must never
//! rewrite an existing identity.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::types::NodeId;

/// The identity recorded in a data directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The cluster's name; every node of a cluster shares it.
    pub cluster: String,
    /// This node's id.
    pub node_id: NodeId,
}

/// Why a data directory cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// It belongs to another cluster.
    #[error(
        "{path}: this data directory belongs to cluster {found:?}, not {expected:?}; refusing to use it"
    )]
    OtherCluster {
        /// The identity file.
        path: PathBuf,
        /// The cluster it names.
        found: String,
        /// The cluster this node was started for.
        expected: String,
    },
    /// It belongs to another node of the cluster.
    #[error(
        "{path}: this data directory belongs to node {found}, not node {expected}; refusing to use it"
    )]
    OtherNode {
        /// The identity file.
        path: PathBuf,
        /// The node it names.
        found: NodeId,
        /// The node this process was started as.
        expected: NodeId,
    },
    /// It cannot be read or written.
    #[error("{path}: {detail}")]
    Unreadable {
        /// The identity file.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
}

fn identity_path(data_dir: &Path) -> PathBuf {
    data_dir.join("node.json")
}

/// Reads the recorded identity, if any.
pub fn read_identity(data_dir: &Path) -> Result<Option<Identity>, IdentityError> {
    let path = identity_path(data_dir);
    match std::fs::read(&path) {
        Ok(bytes) => {
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| IdentityError::Unreadable {
                    path,
                    detail: format!("not a Tocsin node identity: {e}"),
                })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(IdentityError::Unreadable {
            path,
            detail: e.to_string(),
        }),
    }
}

/// Checks a recorded identity against the expected one; `Ok(false)` when
/// nothing is recorded yet.
pub fn check_identity(data_dir: &Path, expected: &Identity) -> Result<bool, IdentityError> {
    let Some(found) = read_identity(data_dir)? else {
        return Ok(false);
    };
    let path = identity_path(data_dir);
    if found.cluster != expected.cluster {
        return Err(IdentityError::OtherCluster {
            path,
            found: found.cluster,
            expected: expected.cluster.clone(),
        });
    }
    if found.node_id != expected.node_id {
        return Err(IdentityError::OtherNode {
            path,
            found: found.node_id,
            expected: expected.node_id,
        });
    }
    Ok(true)
}

/// Records the identity of a new data directory.
pub fn write_identity(data_dir: &Path, identity: &Identity) -> Result<(), IdentityError> {
    let path = identity_path(data_dir);
    let bytes = serde_json::to_vec_pretty(identity).map_err(|e| IdentityError::Unreadable {
        path: path.clone(),
        detail: e.to_string(),
    })?;
    std::fs::write(&path, bytes).map_err(|e| IdentityError::Unreadable {
        path,
        detail: e.to_string(),
    })
}
