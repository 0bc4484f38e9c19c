//! Clients may talk to any node: writes go to the leader, reads wait.
//!
//! Owns what a node does with a client request it cannot answer alone.
//! A write (any method that changes state) on a follower is forwarded,
//! whole, to the leader's client address and the leader's answer is
//! returned as it is. A read on a follower first passes a read barrier:
//! the node waits until it has applied everything the leader had
//! committed when asked, so a client never reads state older than its own
//! last acknowledged write, whichever node it asks. In a cluster of more
//! than one node the leader also confirms its leadership with a quorum
//! before a read, so a leader cut off by a partition cannot serve stale
//! data. Everything is answered with 503 and `Retry-After` while no
//! leader is known. It must never touch the request's meaning.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::Cluster;

/// Marks a request a node forwarded, so it is never forwarded twice.
pub const FORWARDED_HEADER: &str = "x-tocsin-forwarded-by";
/// Longest wait for the leader to answer a forwarded request.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest forwarded body (the leader applies its own, smaller, limits).
const FORWARDED_BODY_BYTES_MAX: usize = 64 << 20;

/// Headers that describe one connection, not the request.
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Whether a method may change state.
fn is_write(method: &Method) -> bool {
    !matches!(
        method.as_str(),
        "GET" | "HEAD" | "OPTIONS" | "PROPFIND" | "REPORT"
    )
}

fn unavailable(why: &str) -> Response {
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        format!("{why}; retry shortly\n"),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// The middleware: apply with `axum::middleware::from_fn_with_state`.
pub async fn route_to_leader(
    State(cluster): State<Cluster>,
    request: Request,
    next: Next,
) -> Response {
    if !cluster.has_peers() {
        return next.run(request).await;
    }
    if is_write(request.method()) {
        if cluster.is_leader() {
            return next.run(request).await;
        }
        if request.headers().contains_key(FORWARDED_HEADER) {
            return unavailable("this node is not the leader either");
        }
        return match cluster.leader() {
            Some((_, leader)) => {
                forward(cluster.http(), request, &leader.api_url, cluster.node_id()).await
            }
            None => unavailable("no leader is elected right now"),
        };
    }
    match cluster.read_barrier().await {
        Ok(()) => next.run(request).await,
        Err(e) => unavailable(&e.to_string()),
    }
}

/// Sends the request to the leader and returns its answer.
async fn forward(
    client: &reqwest::Client,
    request: Request,
    leader_url: &str,
    via: u64,
) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, FORWARDED_BODY_BYTES_MAX).await else {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large to forward\n",
        )
            .into_response();
    };
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let url = format!("{}{path}", leader_url.trim_end_matches('/'));
    let mut outgoing = client
        .request(parts.method.clone(), &url)
        .timeout(FORWARD_TIMEOUT)
        .body(body);
    for (name, value) in &parts.headers {
        if !HOP_BY_HOP.contains(&name.as_str()) && name != header::HOST {
            outgoing = outgoing.header(name, value);
        }
    }
    outgoing = outgoing.header(FORWARDED_HEADER, via.to_string());
    let answer = match outgoing.send().await {
        Ok(answer) => answer,
        Err(e) => return unavailable(&format!("the leader did not answer: {e}")),
    };
    let status = answer.status();
    let headers = answer.headers().clone();
    let bytes = match answer.bytes().await {
        Ok(bytes) => bytes,
        Err(e) => return unavailable(&format!("the leader's answer was cut: {e}")),
    };
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = status;
    for (name, value) in &headers {
        if !HOP_BY_HOP.contains(&name.as_str()) && name != header::CONTENT_LENGTH {
            response.headers_mut().append(name.clone(), value.clone());
        }
    }
    response.headers_mut().insert(
        HeaderName::from_static(FORWARDED_HEADER),
        HeaderValue::from(via),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_and_writes_are_told_apart_by_method() {
        for read in ["GET", "HEAD", "OPTIONS", "PROPFIND", "REPORT"] {
            assert!(
                !is_write(&Method::from_bytes(read.as_bytes()).unwrap()),
                "{read}"
            );
        }
        for write in [
            "PUT",
            "DELETE",
            "MKCALENDAR",
            "MKCOL",
            "PROPPATCH",
            "POST",
            "MOVE",
        ] {
            assert!(
                is_write(&Method::from_bytes(write.as_bytes()).unwrap()),
                "{write}"
            );
        }
    }
}
