//! `tocsin serve`: wiring the parts into one running node.
//!
//! Owns start-up order and shutdown: bind the port first (so a busy port
//! fails before the data directory is touched), start the node, serve
//! HTTP, and on SIGINT/SIGTERM stop accepting, then stop consensus. It
//! must never hold logic of its own beyond wiring.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum_server::tls_rustls::RustlsConfig;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use tocsin_calendar::Limits;
use tocsin_cluster::{Cluster, ClusterConfig, ClusterMetrics, NodeInfo, SystemClock, new_id};
use tocsin_dav::xml::XmlLimits;
use tocsin_dav::{DavConfig, DavState};

use crate::admin::{self, AdminState};
use crate::config::Config;
use crate::telemetry;

/// Where the CLI finds a running server: written to `<data>/admin.json`.
#[derive(Debug, Serialize, Deserialize)]
pub struct AdminEndpoint {
    /// The server's base URL.
    pub url: String,
    /// The admin bearer token.
    pub token: String,
}

/// The file name of [`AdminEndpoint`] in the data directory.
pub const ADMIN_FILE: &str = "admin.json";

/// Runs the server until a signal stops it.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let listen = listener.local_addr().context("listening address")?;
    let mut config = config;
    config.listen = listen;
    let tls = match config.tls.files() {
        Some((cert, key)) => Some(RustlsConfig::from_pem_file(cert, key).await.with_context(
            || {
                format!(
                    "cannot load the TLS certificate {} and key {}",
                    cert.display(),
                    key.display()
                )
            },
        )?),
        None => None,
    };

    let metrics = ClusterMetrics::default();
    let cluster = Cluster::start(cluster_config(&config), metrics.clone())
        .await
        .context("cannot start the node")?;
    let token = admin_token(&config)?;
    write_admin_endpoint(&config.data, &config.client_url(), &token)?;

    let mut registry = Registry::with_prefix("tocsin");
    metrics.register(&mut registry);
    let alarm_metrics = tocsin_alarms::AlarmMetrics::default();
    alarm_metrics.register(&mut registry);
    let alarms = tocsin_alarms::start(
        cluster.clone(),
        Arc::new(SystemClock),
        config.alarms.engine_config(),
        alarm_metrics,
    )
    .context("cannot start the alarm engine")?;
    let passwords =
        tocsin_dav::auth::PasswordWorkers::start().context("cannot start the password threads")?;
    let app = app(
        cluster.clone(),
        Arc::new(registry),
        token,
        &config,
        passwords,
    );

    print_banner(&config);
    serve_http(listener, app, tls).await?;
    tracing::info!("shutting down");
    alarms.stop().await;
    cluster.shutdown().await;
    Ok(())
}

/// Serves until SIGINT/SIGTERM: plain HTTP, or HTTPS with rustls.
async fn serve_http(
    listener: tokio::net::TcpListener,
    app: Router,
    tls: Option<RustlsConfig>,
) -> anyhow::Result<()> {
    let Some(tls) = tls else {
        return axum::serve(listener, app)
            .with_graceful_shutdown(shutdown_signal())
            .await
            .context("HTTP server failed");
    };
    let handle = axum_server::Handle::new();
    let stopping = handle.clone();
    tokio::spawn(async move {
        shutdown_signal().await;
        stopping.graceful_shutdown(Some(SHUTDOWN_GRACE));
    });
    let listener = listener.into_std().context("listening socket")?;
    axum_server::from_tcp_rustls(listener, tls)
        .context("HTTPS listener")?
        .handle(handle)
        .serve(app.into_make_service())
        .await
        .context("HTTPS server failed")
}

/// How long open connections get to finish at shutdown.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

fn cluster_config(config: &Config) -> ClusterConfig {
    let section = &config.cluster;
    let node = NodeInfo {
        raft_addr: section
            .raft_addr
            .clone()
            .unwrap_or_else(|| config.listen.to_string()),
        api_url: config.client_url(),
    };
    let mut cluster = ClusterConfig::single_node(config.data.clone(), node.clone());
    cluster.cluster = section.name.clone();
    cluster.node_id = section.node_id;
    cluster.secret = section.secret.clone().unwrap_or_default();
    cluster.initial_members = if section.join {
        std::collections::BTreeMap::new()
    } else if section.peers.is_empty() {
        std::collections::BTreeMap::from([(section.node_id, node)])
    } else {
        section
            .peers
            .iter()
            .map(|p| {
                let info = NodeInfo {
                    raft_addr: p.raft_addr.clone(),
                    api_url: p.api_url(),
                };
                (p.id, info)
            })
            .collect()
    };
    cluster.heartbeat_ms = config.raft.heartbeat_ms;
    cluster.election_timeout_ms = (
        config.raft.election_timeout_min_ms,
        config.raft.election_timeout_max_ms,
    );
    cluster.snapshot_after_entries = config.raft.snapshot_after_entries;
    cluster.entries_kept_after_snapshot = config.raft.entries_kept_after_snapshot;
    cluster
}

/// The configured admin token; in a cluster, one derived from the cluster
/// secret (the same on every node, so an admin request forwarded to the
/// leader is accepted there); otherwise the one kept in the data
/// directory, or a new one.
fn admin_token(config: &Config) -> anyhow::Result<String> {
    if let Some(token) = &config.admin_token {
        return Ok(token.clone());
    }
    if let Some(secret) = config.cluster.secret.as_deref().filter(|s| !s.is_empty()) {
        return Ok(tocsin_cluster::cluster_token(&format!("admin\0{secret}")));
    }
    match read_admin_endpoint(&config.data) {
        Ok(endpoint) => Ok(endpoint.token),
        Err(_) => Ok(new_id()),
    }
}

/// Reads the endpoint a server left in `data_dir`.
pub fn read_admin_endpoint(data_dir: &Path) -> anyhow::Result<AdminEndpoint> {
    let path = data_dir.join(ADMIN_FILE);
    let bytes = std::fs::read(&path).with_context(|| {
        format!(
            "cannot read {} (is `tocsin serve` running with this data directory?)",
            path.display()
        )
    })?;
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{} is not an admin endpoint file", path.display()))
}

fn write_admin_endpoint(data_dir: &Path, url: &str, token: &str) -> anyhow::Result<()> {
    let path = data_dir.join(ADMIN_FILE);
    let endpoint = AdminEndpoint {
        url: url.to_owned(),
        token: token.to_owned(),
    };
    let bytes = serde_json::to_vec_pretty(&endpoint)?;
    write_private(&path, &bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// Writes a file only its owner can read: it holds the admin token.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

#[derive(Clone)]
struct OpsState {
    cluster: Cluster,
    registry: telemetry::SharedRegistry,
}

fn dav_config(config: &Config) -> DavConfig {
    let limits = &config.limits;
    DavConfig {
        request_body_bytes_max: limits.request_body_bytes_max,
        xml: XmlLimits {
            depth_max: limits.xml_depth_max,
            elements_max: limits.xml_elements_max,
        },
        calendar: Limits {
            object_bytes_max: limits.object_bytes_max,
            components_max: limits.object_components_max,
            properties_max: limits.object_properties_max,
        },
        sync_changes_max: limits.sync_changes_max,
        alarm_policy: config.alarms.policy(),
        ..DavConfig::default()
    }
}

fn app(
    cluster: Cluster,
    registry: telemetry::SharedRegistry,
    token: String,
    config: &Config,
    passwords: tocsin_dav::auth::PasswordWorkers,
) -> Router {
    let admin = admin::routes(AdminState {
        cluster: cluster.clone(),
        clock: Arc::new(SystemClock),
        token: token.into(),
        alarm_policy: config.alarms.policy(),
        passwords: passwords.clone(),
    });
    let ops = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .with_state(OpsState {
            cluster: cluster.clone(),
            registry,
        });
    let routed = axum::middleware::from_fn_with_state(
        cluster.clone(),
        tocsin_cluster::routing::route_to_leader,
    );
    let admin = admin.layer(routed.clone());
    let dav = tocsin_dav::router(DavState::new(
        cluster.clone(),
        Arc::new(SystemClock),
        dav_config(config),
        passwords,
    ));
    Router::new()
        .merge(ops)
        .merge(admin)
        .merge(cluster.peer_routes())
        .merge(dav.layer(routed))
}

/// Ready when the node knows a leader and has applied what it knows is
/// committed.
async fn ready(State(state): State<OpsState>) -> impl IntoResponse {
    let status = state.cluster.status().await;
    let caught_up = status.applied_index >= status.commit_index;
    if status.leader.is_some() && caught_up {
        (StatusCode::OK, "ready\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no leader yet or still applying\n",
        )
    }
}

async fn metrics(State(state): State<OpsState>) -> axum::response::Response {
    telemetry::render(&state.registry)
}

fn print_banner(config: &Config) {
    let url = config.client_url();
    let alarms = alarm_routes(config);
    let data = config.data.display();
    println!(
        "Tocsin {version} is running: a single node, data in {data}\n\
         \n\
         \x20 Calendar clients:  point them at {url}/ with a user's name and password\n\
         \x20                    (Thunderbird, Apple Calendar, DAVx5 find the calendars from there).\n\
         \x20 First user:        tocsin user add alice --data {data}\n\
         \x20 Alarms:            {alarms}\n\
         \x20 Health, metrics:   {url}/healthz  {url}/metrics   (tocsin status --data {data})\n",
        version = env!("CARGO_PKG_VERSION"),
    );
}

/// How alarms will reach people, in one line for the banner.
fn alarm_routes(config: &Config) -> String {
    let mut routes = vec!["written to this log".to_owned()];
    if let Some(url) = &config.alarms.webhook_url {
        routes.push(format!("POSTed to {url}"));
    }
    if let Some(url) = &config.alarms.smtp_url {
        routes.push(format!("mailed through {url}"));
    }
    let setup = if routes.len() == 1 {
        " (add --webhook-url or --smtp-url to send them further)"
    } else {
        ""
    };
    format!("every alarm is {}{setup}.", routes.join(", "))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
