//! Node-to-node transport: openraft's RPCs over HTTP.
//!
//! Owns both ends of the raft RPCs: the client openraft calls to reach a
//! peer ([`Network`]) and the axum routes a node serves to its peers
//! ([`raft_routes`]). Every request carries a token derived from the
//! cluster secret; a request without the right token — a stray client or
//! a node of another cluster — is refused with 403 before openraft sees
//! it. It must never carry client (CalDAV) traffic.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::types::{NodeId, NodeInfo, Raft, TypeConfig};

/// The header carrying the cluster token.
pub const CLUSTER_TOKEN_HEADER: &str = "x-tocsin-cluster-token";
/// The header naming the node a peer request comes from (for logs, and for
/// fault-injecting proxies in tests).
pub const NODE_HEADER: &str = "x-tocsin-node";

/// Longest wait for a peer to answer one RPC (openraft passes shorter
/// deadlines for heartbeats).
const RPC_TIMEOUT_MAX: Duration = Duration::from_secs(10);

/// The token peers present: a hash of the secret, so the secret itself
/// never travels.
pub fn cluster_token(secret: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"tocsin-cluster-token\0");
    hasher.update(secret.as_bytes());
    hex::encode(hasher.finalize())
}

/// Creates a [`Network`] per peer.
#[derive(Clone)]
pub struct NetworkFactory {
    http: reqwest::Client,
    token: Arc<str>,
    from: NodeId,
}

impl NetworkFactory {
    /// A factory whose clients present `token`, as node `from`.
    pub fn new(token: &str, from: NodeId) -> Self {
        let http = reqwest::Client::builder()
            .timeout(RPC_TIMEOUT_MAX)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .unwrap_or_default();
        NetworkFactory {
            http,
            token: token.into(),
            from,
        }
    }
}

impl RaftNetworkFactory<TypeConfig> for NetworkFactory {
    type Network = Network;

    async fn new_client(&mut self, target: NodeId, node: &NodeInfo) -> Network {
        Network {
            http: self.http.clone(),
            token: self.token.clone(),
            from: self.from,
            target,
            base: format!("http://{}/raft", node.raft_addr),
        }
    }
}

/// The RPC client for one peer.
pub struct Network {
    http: reqwest::Client,
    token: Arc<str>,
    from: NodeId,
    target: NodeId,
    base: String,
}

type RpcResult<T, E> = Result<T, RPCError<NodeId, NodeInfo, RaftError<NodeId, E>>>;

impl Network {
    async fn call<Req, Resp, E>(
        &self,
        path: &str,
        request: &Req,
        option: &RPCOption,
    ) -> RpcResult<Resp, E>
    where
        Req: Serialize,
        Resp: DeserializeOwned,
        E: std::error::Error + DeserializeOwned,
    {
        let response = self
            .http
            .post(format!("{}/{path}", self.base))
            .header(CLUSTER_TOKEN_HEADER, &*self.token)
            .header(NODE_HEADER, self.from.to_string())
            .timeout(option.hard_ttl().min(RPC_TIMEOUT_MAX))
            .json(request)
            .send()
            .await
            .map_err(|e| {
                if e.is_connect() {
                    RPCError::Unreachable(Unreachable::new(&e))
                } else {
                    RPCError::Network(NetworkError::new(&e))
                }
            })?;
        if !response.status().is_success() {
            // A peer (or something in between) that refuses is unreachable
            // for now: openraft then backs off instead of retrying at once.
            let refusal = std::io::Error::other(format!("peer answered {}", response.status()));
            return Err(RPCError::Unreachable(Unreachable::new(&refusal)));
        }
        let result: Result<Resp, RaftError<NodeId, E>> = response
            .json()
            .await
            .map_err(|e| RPCError::Network(NetworkError::new(&e)))?;
        result.map_err(|e| RPCError::RemoteError(RemoteError::new(self.target, e)))
    }
}

impl RaftNetwork<TypeConfig> for Network {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<AppendEntriesResponse<NodeId>, openraft::error::Infallible> {
        self.call("append", &rpc, &option).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> RpcResult<InstallSnapshotResponse<NodeId>, InstallSnapshotError> {
        self.call("snapshot", &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> RpcResult<VoteResponse<NodeId>, openraft::error::Infallible> {
        self.call("vote", &rpc, &option).await
    }
}

#[derive(Clone)]
struct RaftState {
    raft: Raft,
    cluster: crate::Cluster,
    token: Arc<str>,
}

/// The routes a node serves to its peers, under `/raft/`.
pub(crate) fn raft_routes(cluster: crate::Cluster, raft: Raft, token: &str) -> Router {
    Router::new()
        .route("/raft/append", post(append))
        .route("/raft/vote", post(vote))
        .route("/raft/snapshot", post(snapshot))
        .route("/raft/read-index", post(read_index))
        .route("/raft/status", axum::routing::get(status))
        .with_state(RaftState {
            raft,
            cluster,
            token: token.into(),
        })
}

/// The leader's committed index, confirmed by a quorum, for a follower's
/// read barrier.
async fn read_index(State(state): State<RaftState>, headers: HeaderMap) -> Response {
    if !authorised(&state, &headers) {
        return refused();
    }
    if !state.cluster.is_leader() {
        return (StatusCode::MISDIRECTED_REQUEST, "not the leader\n").into_response();
    }
    match state.cluster.linearizable_index().await {
        Ok(index) => Json(index).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

/// This node's status, for `tocsin cluster status` on another node.
async fn status(State(state): State<RaftState>, headers: HeaderMap) -> Response {
    if !authorised(&state, &headers) {
        return refused();
    }
    Json(state.cluster.status().await).into_response()
}

/// Longest wait for a peer's read index or status.
const PEER_QUERY_TIMEOUT: Duration = Duration::from_secs(3);

fn peer_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(PEER_QUERY_TIMEOUT)
        .build()
        .unwrap_or_default()
}

/// Asks the leader for its read index.
pub(crate) async fn read_index_of(
    leader: &NodeInfo,
    token: &str,
    from: NodeId,
) -> Result<u64, crate::ProposeError> {
    let unavailable = |e: &dyn std::fmt::Display| {
        crate::ProposeError::Unavailable(format!("read index from the leader: {e}"))
    };
    let response = peer_client()
        .post(format!("http://{}/raft/read-index", leader.raft_addr))
        .header(CLUSTER_TOKEN_HEADER, token)
        .header(NODE_HEADER, from.to_string())
        .send()
        .await
        .map_err(|e| unavailable(&e))?;
    if !response.status().is_success() {
        return Err(unavailable(&response.status()));
    }
    response.json::<u64>().await.map_err(|e| unavailable(&e))
}

/// A peer's status.
pub(crate) async fn status_of(
    node: &NodeInfo,
    token: &str,
    from: NodeId,
) -> Result<crate::NodeStatus, String> {
    let response = peer_client()
        .get(format!("http://{}/raft/status", node.raft_addr))
        .header(CLUSTER_TOKEN_HEADER, token)
        .header(NODE_HEADER, from.to_string())
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !response.status().is_success() {
        return Err(format!("answered {}", response.status()));
    }
    response.json().await.map_err(|e| e.to_string())
}

fn authorised(state: &RaftState, headers: &HeaderMap) -> bool {
    headers
        .get(CLUSTER_TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.as_bytes() == state.token.as_bytes())
}

fn refused() -> Response {
    (StatusCode::FORBIDDEN, "not a member of this cluster\n").into_response()
}

async fn append(
    State(state): State<RaftState>,
    headers: HeaderMap,
    Json(rpc): Json<AppendEntriesRequest<TypeConfig>>,
) -> Response {
    if !authorised(&state, &headers) {
        return refused();
    }
    Json(state.raft.append_entries(rpc).await).into_response()
}

async fn vote(
    State(state): State<RaftState>,
    headers: HeaderMap,
    Json(rpc): Json<VoteRequest<NodeId>>,
) -> Response {
    if !authorised(&state, &headers) {
        return refused();
    }
    Json(state.raft.vote(rpc).await).into_response()
}

async fn snapshot(
    State(state): State<RaftState>,
    headers: HeaderMap,
    Json(rpc): Json<InstallSnapshotRequest<TypeConfig>>,
) -> Response {
    if !authorised(&state, &headers) {
        return refused();
    }
    Json(state.raft.install_snapshot(rpc).await).into_response()
}
