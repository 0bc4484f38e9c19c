//! CalDAV and WebDAV over HTTP.
//!
//! [`router`] serves the DAV URL space (see [`path`]) for a [`DavState`]:
//! it authenticates every request (HTTP Basic against argon2id hashes,
//! with a cache of verified credentials), maps the path to a target, and
//! hands the request to one handler per method (`handlers/*.rs`). Reads go
//! to the store's [`tocsin_store::Reader`]; every write is planned here —
//! time, ids, ETag, the object's next alarm — and proposed as one command
//! (invariants 1–4).
//!
//! Architecture invariants:
//! - Only this crate knows XML ([`xml`]); it never writes SQL.
//! - A request without valid credentials gets 401 with
//!   `WWW-Authenticate`, whatever the path (except the RFC 6764 redirect).
//! - Every body is bounded: bytes, XML depth and element count, iCalendar
//!   size and component count; over a limit the client gets the
//!   protocol's error and nothing is stored.
#![deny(missing_docs)]

pub mod auth;
pub mod error;
mod handlers;
pub mod path;
pub mod props;
pub mod sharing;
pub mod xml;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tocsin_calendar::{AlarmPolicy, Limits};
use tocsin_cluster::{Clock, Cluster};
use tocsin_store::Principal;

use crate::auth::CredentialCache;
use crate::error::{DavError, DavResult};
use crate::path::Target;
use crate::xml::XmlLimits;

/// Bounds and policies of the DAV layer.
#[derive(Debug, Clone)]
pub struct DavConfig {
    /// Largest request body accepted (413 above it).
    pub request_body_bytes_max: usize,
    /// Bounds on XML bodies.
    pub xml: XmlLimits,
    /// Bounds on one calendar object.
    pub calendar: Limits,
    /// How far alarm computation looks ahead.
    pub alarm_policy: AlarmPolicy,
    /// Most changes in one sync-collection answer before it is truncated
    /// (507, continue with the returned token).
    pub sync_changes_max: usize,
    /// The Basic authentication realm.
    pub realm: String,
}

impl Default for DavConfig {
    fn default() -> Self {
        DavConfig {
            request_body_bytes_max: 4 << 20,
            xml: XmlLimits::default(),
            calendar: Limits::default(),
            alarm_policy: AlarmPolicy::default(),
            sync_changes_max: 1000,
            realm: "Tocsin".to_owned(),
        }
    }
}

/// What every DAV request shares.
#[derive(Clone)]
pub struct DavState {
    inner: Arc<Inner>,
}

struct Inner {
    cluster: Cluster,
    clock: Arc<dyn Clock>,
    config: DavConfig,
    credentials: CredentialCache,
    passwords: auth::PasswordWorkers,
}

impl DavState {
    /// State over a running node.
    pub fn new(
        cluster: Cluster,
        clock: Arc<dyn Clock>,
        config: DavConfig,
        passwords: auth::PasswordWorkers,
    ) -> Self {
        DavState {
            inner: Arc::new(Inner {
                cluster,
                clock,
                config,
                credentials: CredentialCache::default(),
                passwords,
            }),
        }
    }

    pub(crate) fn cluster(&self) -> &Cluster {
        &self.inner.cluster
    }

    pub(crate) fn reader(&self) -> &tocsin_store::Reader {
        self.inner.cluster.reader()
    }

    pub(crate) fn config(&self) -> &DavConfig {
        &self.inner.config
    }

    pub(crate) fn now(&self) -> tocsin_calendar::Instant {
        self.inner.clock.now()
    }
}

/// The DAV routes: everything the other routes of the server do not take.
pub fn router(state: DavState) -> Router {
    Router::new().fallback(handle).with_state(state)
}

/// A request's headers and its whole body, read once (within bounds)
/// after authentication, so every handler answers with the body consumed
/// and the connection can be reused.
pub(crate) struct DavRequest {
    pub(crate) headers: axum::http::HeaderMap,
    pub(crate) body: axum::body::Bytes,
}

/// An authenticated request, ready for a handler.
pub(crate) struct Ctx {
    pub(crate) state: DavState,
    pub(crate) user: Principal,
}

async fn handle(State(state): State<DavState>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let Some(target) = Target::parse(&path) else {
        return DavError::not_found().into_response();
    };
    if target == Target::WellKnown {
        return redirect_to_dav_root();
    }
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let user = match authenticate(&state, authorization.as_deref()).await {
        Ok(user) => user,
        Err(response) => return drain_then(request.into_body(), &state, response).await,
    };
    let method = request.method().as_str().to_owned();
    let (parts, body) = request.into_parts();
    let body = match read_body(body, body_limit(&state, &method)).await {
        Ok(body) => body,
        Err(e) => return with_close(e.into_response()),
    };
    let request = DavRequest {
        headers: parts.headers,
        body,
    };
    let ctx = Ctx { state, user };
    let result = handlers::dispatch(&ctx, &method, target, &request).await;
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    response.headers_mut().insert(
        header::HeaderName::from_static("dav"),
        HeaderValue::from_static(handlers::DAV_COMPLIANCE),
    );
    response
}

/// RFC 6764: the well-known URI points at the DAV root.
fn redirect_to_dav_root() -> Response {
    let mut response = StatusCode::MOVED_PERMANENTLY.into_response();
    response
        .headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static("/dav/"));
    response
}

fn unauthorized(state: &DavState, message: &str) -> Response {
    let mut response = DavError::new(StatusCode::UNAUTHORIZED, message).into_response();
    let challenge = format!(
        "Basic realm=\"{}\", charset=\"UTF-8\"",
        state.config().realm
    );
    if let Ok(value) = HeaderValue::from_str(&challenge) {
        response
            .headers_mut()
            .insert(header::WWW_AUTHENTICATE, value);
    }
    response
}

/// The principal named by valid Basic credentials, or a 401.
async fn authenticate(
    state: &DavState,
    authorization: Option<&str>,
) -> Result<Principal, Response> {
    let credentials = authorization.and_then(auth::parse_basic);
    let Some((name, password)) = credentials else {
        return Err(unauthorized(state, "authentication required"));
    };
    let principal = state
        .reader()
        .read(|q| q.principal(&name))
        .map_err(|e| DavError::from(e).into_response())?;
    let Some(principal) = principal else {
        return Err(unauthorized(state, "wrong user name or password"));
    };
    let cache = &state.inner.credentials;
    if cache.is_verified(&name, &password, &principal.password_hash) {
        return Ok(principal);
    }
    let verified = state
        .inner
        .passwords
        .verify(password.clone(), principal.password_hash.clone())
        .await;
    if !verified {
        tracing::info!(user = %name, "failed authentication");
        return Err(unauthorized(state, "wrong user name or password"));
    }
    cache.remember(&name, &password, &principal.password_hash);
    Ok(principal)
}

/// The most a request of `method` may carry: PUT bodies may reach the
/// object limit (checked precisely by the handler, which answers
/// max-resource-size), everything else the request limit.
fn body_limit(state: &DavState, method: &str) -> usize {
    let config = state.config();
    if method == "PUT" {
        config
            .request_body_bytes_max
            .max(config.calendar.object_bytes_max)
    } else {
        config.request_body_bytes_max
    }
}

/// Reads the unused body of a refused request (within the request limit)
/// before answering, so the client may reuse the connection; a body over
/// the limit is not read, and the connection is closed instead.
async fn drain_then(body: Body, state: &DavState, response: Response) -> Response {
    match axum::body::to_bytes(body, state.config().request_body_bytes_max).await {
        Ok(_) => response,
        Err(_) => with_close(response),
    }
}

/// Marks a response as the last on its connection (its request body was
/// not read to the end).
fn with_close(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// Reads a request body up to `limit` bytes; 413 beyond it.
pub(crate) async fn read_body(body: Body, limit: usize) -> DavResult<axum::body::Bytes> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        DavError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body larger than {limit} bytes"),
        )
    })
}
