//! The admin API: users and status over HTTP, for the CLI and for scripts.
//!
//! Owns `/admin/…` on the main port, guarded by a bearer token. Each
//! change is planned here — the password hashed with a fresh salt, ids and
//! timestamps taken — and proposed as one command (invariants 1 and 2).
//! It must never write the store directly, and never return a password
//! or its hash.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use tocsin_cluster::{Clock, Cluster, NodeStatus, ProposeError, new_id};
use tocsin_store::{
    CalendarId, Command, Counts, CreateCalendar, CreateUser, Outcome, PropName, Rejection,
};

/// What the admin handlers share.
#[derive(Clone)]
pub struct AdminState {
    /// The node.
    pub cluster: Cluster,
    /// Time for planning commands.
    pub clock: Arc<dyn Clock>,
    /// The bearer token the CLI presents.
    pub token: Arc<str>,
    /// How alarms are computed, for `alarms upcoming`.
    pub alarm_policy: tocsin_calendar::AlarmPolicy,
    /// Where passwords are hashed.
    pub passwords: tocsin_dav::auth::PasswordWorkers,
}

/// The admin routes.
pub fn routes(state: AdminState) -> Router {
    Router::new()
        .route("/admin/status", get(status))
        .route("/admin/users", get(list_users).post(add_user))
        .route("/admin/users/{name}", axum::routing::delete(remove_user))
        .route("/admin/users/{name}/password", put(set_password))
        .route("/admin/users/{name}/alarms", put(set_alarm_settings))
        .route("/admin/alarms/upcoming", get(upcoming))
        .route("/admin/alarms/log", get(delivery_log))
        .route("/admin/shares", axum::routing::post(share))
        .route("/admin/cluster/init", axum::routing::post(cluster_init))
        .route(
            "/admin/cluster/nodes",
            axum::routing::post(cluster_add_node),
        )
        .route(
            "/admin/cluster/nodes/{id}",
            axum::routing::delete(cluster_remove_node),
        )
        .route("/admin/cluster/status", get(cluster_status))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            require_token,
        ))
        .with_state(state)
}

/// Every admin route needs the token; checked before any extractor reads
/// the request's body.
async fn require_token(
    State(state): State<AdminState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    match authorised(&state, request.headers()) {
        Ok(()) => next.run(request).await,
        Err(refused) => refused.into_response(),
    }
}

/// A user as the admin API shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct UserView {
    /// Login name.
    pub name: String,
    /// Shown by clients.
    pub display_name: Option<String>,
    /// Calendar-user addresses.
    pub addresses: Vec<String>,
}

/// `POST /admin/users`.
#[derive(Debug, Serialize, Deserialize)]
pub struct NewUser {
    /// Login name.
    pub name: String,
    /// Password in clear (hashed before it goes anywhere).
    pub password: String,
    /// Shown by clients.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Email addresses (`a@b` or `mailto:a@b`).
    #[serde(default)]
    pub emails: Vec<String>,
}

/// `PUT /admin/users/{name}/password`.
#[derive(Debug, Serialize, Deserialize)]
pub struct NewPassword {
    /// Password in clear.
    pub password: String,
}

/// `PUT /admin/users/{name}/alarms`.
#[derive(Debug, Serialize, Deserialize)]
pub struct AlarmSettingsView {
    /// Channels: `log`, `webhook`, `email`.
    pub channels: Vec<String>,
    /// The user's own webhook.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// Its signing secret (never returned).
    #[serde(default, skip_serializing)]
    pub webhook_secret: Option<String>,
}

/// `?user=…&count=…` of the alarm views.
#[derive(Debug, Deserialize)]
pub struct AlarmQuery {
    user: Option<String>,
    count: Option<usize>,
}

/// Most entries one alarm view returns.
const ALARM_VIEW_ENTRIES_MAX: usize = 1000;
/// Channels a user may choose.
const CHANNELS: [&str; 3] = ["log", "webhook", "email"];

/// `POST /admin/shares`.
#[derive(Debug, Serialize, Deserialize)]
pub struct ShareRequest {
    /// The calendar's owner.
    pub owner: String,
    /// The calendar's URL segment in the owner's home.
    pub calendar: String,
    /// The user to share with (name, `mailto:` address or principal URL).
    pub sharee: String,
    /// `read`, `read-write`, or `none` to stop sharing.
    pub access: String,
}

/// A cluster member, as the admin API names it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MemberView {
    /// Node id.
    pub id: u64,
    /// Where peers reach it.
    pub raft_addr: String,
    /// Its client URL.
    pub api_url: String,
}

/// One row of `GET /admin/cluster/status`.
#[derive(Debug, Serialize, Deserialize)]
pub struct MemberStatusView {
    /// The member.
    pub member: MemberView,
    /// Its own account of itself, or why it did not answer.
    pub status: Result<NodeStatus, String>,
    /// Entries behind the leader's last log entry (from the leader's view).
    pub lag: Option<u64>,
}

/// `GET /admin/status`.
#[derive(Debug, Serialize, Deserialize)]
pub struct StatusView {
    /// Tocsin's version.
    pub version: String,
    /// This node's raft state.
    pub node: NodeStatus,
    /// Row counts.
    pub counts: Counts,
    /// The state digest (equal on nodes that applied the same log).
    pub digest: String,
}

/// Longest accepted user name; it appears in URLs.
const USER_NAME_BYTES_MAX: usize = 64;
/// Password length bounds.
const PASSWORD_BYTES_MIN: usize = 1;
const PASSWORD_BYTES_MAX: usize = 1024;

/// An admin API failure: a status and a message for the CLI to print.
struct AdminError {
    status: StatusCode,
    message: String,
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}

fn failure(status: StatusCode, message: impl Into<String>) -> AdminError {
    AdminError {
        status,
        message: message.into(),
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    failure(status, message).into_response()
}

fn authorised(state: &AdminState, headers: &HeaderMap) -> Result<(), AdminError> {
    let presented = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        Some(token) if token.as_bytes() == state.token.as_bytes() => Ok(()),
        _ => Err(failure(
            StatusCode::UNAUTHORIZED,
            "admin token missing or wrong",
        )),
    }
}

fn store_error(e: tocsin_store::StoreError) -> Response {
    error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

fn propose_error(e: ProposeError) -> Response {
    match e {
        ProposeError::NotLeader { leader } => error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("this node is not the leader (leader: {leader:?})"),
        ),
        ProposeError::Unavailable(m) => error(StatusCode::SERVICE_UNAVAILABLE, m),
    }
}

/// Whether `name` may be a login name: it is also a URL segment.
pub fn valid_user_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= USER_NAME_BYTES_MAX
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn valid_password(password: &str) -> Result<(), AdminError> {
    if (PASSWORD_BYTES_MIN..=PASSWORD_BYTES_MAX).contains(&password.len()) {
        Ok(())
    } else {
        Err(failure(
            StatusCode::BAD_REQUEST,
            format!("a password has {PASSWORD_BYTES_MIN} to {PASSWORD_BYTES_MAX} bytes"),
        ))
    }
}

fn mailto(email: &str) -> Result<String, AdminError> {
    let address = email.trim().trim_start_matches("mailto:");
    let plausible = address.split_once('@').is_some_and(|(local, domain)| {
        !local.is_empty() && !domain.is_empty() && !address.contains(char::is_whitespace)
    });
    if plausible {
        Ok(format!("mailto:{address}"))
    } else {
        Err(failure(
            StatusCode::BAD_REQUEST,
            format!("not an email address: {email:?}"),
        ))
    }
}

async fn hash(state: &AdminState, password: String) -> Result<String, AdminError> {
    state
        .passwords
        .hash(password)
        .await
        .map_err(|e| failure(StatusCode::INTERNAL_SERVER_ERROR, e))
}

async fn status(State(state): State<AdminState>) -> Response {
    let node = state.cluster.status().await;
    let read = state
        .cluster
        .reader()
        .read(|q| Ok((q.counts()?, q.digest()?)));
    match read {
        Ok((counts, digest)) => Json(StatusView {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            node,
            counts,
            digest,
        })
        .into_response(),
        Err(e) => store_error(e),
    }
}

async fn list_users(State(state): State<AdminState>) -> Response {
    match state.cluster.reader().read(|q| q.principals()) {
        Ok(principals) => Json(
            principals
                .into_iter()
                .map(|p| UserView {
                    name: p.name,
                    display_name: p.display_name,
                    addresses: p.addresses,
                })
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Err(e) => store_error(e),
    }
}

/// A new user gets one calendar, so a client pointed at the server finds
/// somewhere to put events.
fn first_calendar(owner: &str, at: tocsin_calendar::Instant) -> CreateCalendar {
    CreateCalendar {
        id: CalendarId(new_id()),
        owner: owner.to_owned(),
        slug: "calendar".to_owned(),
        components: vec![
            "VEVENT".to_owned(),
            "VTODO".to_owned(),
            "VJOURNAL".to_owned(),
        ],
        props: vec![(PropName::new("DAV:", "displayname"), "Calendar".to_owned())],
        at,
    }
}

async fn add_user(State(state): State<AdminState>, Json(new): Json<NewUser>) -> Response {
    if !valid_user_name(&new.name) {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "invalid user name {:?}: use 1-{USER_NAME_BYTES_MAX} letters, digits, '.', '_' or '-'",
                new.name
            ),
        );
    }
    if let Err(r) = valid_password(&new.password) {
        return r.into_response();
    }
    let addresses = match new
        .emails
        .iter()
        .map(|e| mailto(e))
        .collect::<Result<Vec<_>, _>>()
    {
        Ok(a) => a,
        Err(r) => return r.into_response(),
    };
    let password_hash = match hash(&state, new.password).await {
        Ok(h) => h,
        Err(r) => return r.into_response(),
    };
    let at = state.clock.now();
    let command = Command::CreateUser(CreateUser {
        default_calendar: Some(first_calendar(&new.name, at)),
        name: new.name.clone(),
        password_hash,
        display_name: new.display_name,
        addresses,
        at,
    });
    match state.cluster.propose(command).await {
        Ok(Outcome::Applied { .. }) => (
            StatusCode::CREATED,
            Json(serde_json::json!({ "name": new.name })),
        )
            .into_response(),
        Ok(Outcome::Rejected(Rejection::AlreadyExists)) => error(
            StatusCode::CONFLICT,
            format!("user {:?} already exists", new.name),
        ),
        Ok(Outcome::Rejected(other)) => error(StatusCode::CONFLICT, format!("{other:?}")),
        Err(e) => propose_error(e),
    }
}

async fn set_password(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    Json(new): Json<NewPassword>,
) -> Response {
    if let Err(r) = valid_password(&new.password) {
        return r.into_response();
    }
    let password_hash = match hash(&state, new.password).await {
        Ok(h) => h,
        Err(r) => return r.into_response(),
    };
    let command = Command::SetPassword {
        name: name.clone(),
        password_hash,
        at: state.clock.now(),
    };
    match state.cluster.propose(command).await {
        Ok(Outcome::Applied { .. }) => StatusCode::NO_CONTENT.into_response(),
        Ok(Outcome::Rejected(_)) => error(StatusCode::NOT_FOUND, format!("no user {name:?}")),
        Err(e) => propose_error(e),
    }
}

async fn remove_user(State(state): State<AdminState>, Path(name): Path<String>) -> Response {
    let command = Command::RemoveUser {
        name: name.clone(),
        at: state.clock.now(),
    };
    match state.cluster.propose(command).await {
        Ok(Outcome::Applied { .. }) => StatusCode::NO_CONTENT.into_response(),
        Ok(Outcome::Rejected(_)) => error(StatusCode::NOT_FOUND, format!("no user {name:?}")),
        Err(e) => propose_error(e),
    }
}

async fn set_alarm_settings(
    State(state): State<AdminState>,
    Path(name): Path<String>,
    Json(settings): Json<AlarmSettingsView>,
) -> Response {
    if let Some(bad) = settings
        .channels
        .iter()
        .find(|c| !CHANNELS.contains(&c.as_str()))
    {
        return error(
            StatusCode::BAD_REQUEST,
            format!("unknown channel {bad:?}; use log, webhook or email"),
        );
    }
    if let Some(url) = &settings.webhook_url
        && !(url.starts_with("http://") || url.starts_with("https://"))
    {
        return error(
            StatusCode::BAD_REQUEST,
            format!("webhook URL must start with http:// or https:// (got {url:?})"),
        );
    }
    let command = Command::SetAlarmSettings(tocsin_store::AlarmSettings {
        user: name.clone(),
        channels: settings.channels,
        webhook_url: settings.webhook_url,
        webhook_secret: settings.webhook_secret,
    });
    match state.cluster.propose(command).await {
        Ok(Outcome::Applied { .. }) => StatusCode::NO_CONTENT.into_response(),
        Ok(Outcome::Rejected(_)) => error(StatusCode::NOT_FOUND, format!("no user {name:?}")),
        Err(e) => propose_error(e),
    }
}

async fn upcoming(
    State(state): State<AdminState>,
    axum::extract::Query(query): axum::extract::Query<AlarmQuery>,
) -> Response {
    let count = query.count.unwrap_or(20).min(ALARM_VIEW_ENTRIES_MAX);
    let now = state.clock.now();
    let reader = state.cluster.reader().clone();
    let policy = state.alarm_policy;
    let user = query.user.clone();
    let found = tokio::task::spawn_blocking(move || {
        tocsin_alarms::inspect::upcoming(&reader, user.as_deref(), now, count, &policy)
    })
    .await;
    match found {
        Ok(Ok(alarms)) => Json(alarms).into_response(),
        Ok(Err(e)) => store_error(e),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

async fn delivery_log(
    State(state): State<AdminState>,
    axum::extract::Query(query): axum::extract::Query<AlarmQuery>,
) -> Response {
    let count = query.count.unwrap_or(50).min(ALARM_VIEW_ENTRIES_MAX);
    match state
        .cluster
        .reader()
        .read(|q| q.outbox_log(query.user.as_deref(), count))
    {
        Ok(entries) => Json(entries).into_response(),
        Err(e) => store_error(e),
    }
}

async fn share(State(state): State<AdminState>, Json(request): Json<ShareRequest>) -> Response {
    let access = match request.access.as_str() {
        "read" => Some(tocsin_store::ShareAccess::Read),
        "read-write" => Some(tocsin_store::ShareAccess::ReadWrite),
        "none" => None,
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("access must be read, read-write or none (got {other:?})"),
            );
        }
    };
    let now = state.clock.now();
    let planned = state.cluster.reader().read(|q| {
        let Some(calendar) = q.calendar_by_slug(&request.owner, &request.calendar)? else {
            return Ok(Err(format!(
                "{} has no calendar {:?}",
                request.owner, request.calendar
            )));
        };
        Ok(tocsin_dav::sharing::resolve_sharee(q, &request.sharee)
            .and_then(|sharee| {
                tocsin_dav::sharing::plan_share(q, &calendar.id, &sharee, access, now)
            })
            .map_err(|e| e.to_string()))
    });
    let command = match planned {
        Ok(Ok(command)) => command,
        Ok(Err(message)) => return error(StatusCode::NOT_FOUND, message),
        Err(e) => return store_error(e),
    };
    match state.cluster.propose(command).await {
        Ok(Outcome::Applied { .. }) => StatusCode::NO_CONTENT.into_response(),
        Ok(Outcome::Rejected(Rejection::NotFound)) if access.is_none() => {
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(Outcome::Rejected(other)) => error(StatusCode::CONFLICT, format!("{other:?}")),
        Err(e) => propose_error(e),
    }
}

fn member_info(member: &MemberView) -> tocsin_cluster::NodeInfo {
    tocsin_cluster::NodeInfo {
        raft_addr: member.raft_addr.clone(),
        api_url: member.api_url.clone(),
    }
}

async fn cluster_init(
    State(state): State<AdminState>,
    Json(members): Json<Vec<MemberView>>,
) -> Response {
    let members = members.iter().map(|m| (m.id, member_info(m))).collect();
    match state.cluster.initialize(members).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => error(StatusCode::CONFLICT, e.to_string()),
    }
}

async fn cluster_add_node(
    State(state): State<AdminState>,
    Json(member): Json<MemberView>,
) -> Response {
    match state
        .cluster
        .add_node(member.id, member_info(&member))
        .await
    {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => propose_error(e),
    }
}

async fn cluster_remove_node(State(state): State<AdminState>, Path(id): Path<u64>) -> Response {
    match state.cluster.remove_node(id).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => propose_error(e),
    }
}

async fn cluster_status(State(state): State<AdminState>) -> Response {
    let statuses = state.cluster.cluster_status().await;
    let leader_last = statuses
        .iter()
        .filter_map(|(_, _, s)| s.as_ref().ok())
        .find(|s| s.role == "leader")
        .and_then(|s| s.last_log_index);
    let rows: Vec<MemberStatusView> = statuses
        .into_iter()
        .map(|(id, node, status)| {
            let lag = match (&status, leader_last) {
                (Ok(s), Some(last)) => Some(last.saturating_sub(s.applied_index.unwrap_or(0))),
                _ => None,
            };
            MemberStatusView {
                member: MemberView {
                    id,
                    raft_addr: node.raft_addr,
                    api_url: node.api_url,
                },
                status,
                lag,
            }
        })
        .collect();
    Json(rows).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_are_url_safe() {
        assert!(valid_user_name("alice"));
        assert!(valid_user_name("a.b_c-9"));
        assert!(!valid_user_name(""));
        assert!(!valid_user_name(".hidden"));
        assert!(!valid_user_name("a/b"));
        assert!(!valid_user_name("a b"));
        assert!(!valid_user_name(&"x".repeat(65)));
    }

    #[test]
    fn emails_become_mailto_uris() {
        assert_eq!(mailto("a@b.c").ok(), Some("mailto:a@b.c".to_owned()));
        assert_eq!(mailto("mailto:a@b.c").ok(), Some("mailto:a@b.c".to_owned()));
        assert!(mailto("nope").is_err());
        assert!(mailto("a b@c").is_err());
    }
}
