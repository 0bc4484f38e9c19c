//! The configuration: file, environment and flags, merged.
//!
//! Owns every option `tocsin serve` takes, its default, and its meaning
//! (the doc comment of each field is the documentation; `tocsin.example.toml`
//! repeats it and a test keeps the two in step). Precedence: a flag or its
//! environment variable, then the file, then the default. It must never
//! start anything: it only describes.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Everything `tocsin serve` can be told.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address for CalDAV, the admin API, `/metrics` and health checks.
    pub listen: SocketAddr,
    /// Directory holding this node's state (created if absent).
    pub data: PathBuf,
    /// The URL clients use to reach this server, when it differs from
    /// `http://<listen>` (behind a reverse proxy, say).
    pub public_url: Option<String>,
    /// `text` or `json`.
    pub log_format: LogFormat,
    /// Bearer token for the admin API; generated and kept in
    /// `<data>/admin.json` when unset.
    pub admin_token: Option<String>,
    /// HTTPS: certificate and key (PEM). Without them Tocsin serves plain
    /// HTTP, for loopback or behind a reverse proxy.
    pub tls: TlsConfig,
    /// Bounds on what clients may send.
    pub limits: LimitsConfig,
    /// How alarms fire and reach people.
    pub alarms: AlarmsConfig,
    /// Which cluster this node belongs to, and its peers.
    pub cluster: ClusterSection,
    /// Consensus settings.
    pub raft: RaftConfig,
}

/// A member of the cluster, as the config names it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// Its node id.
    pub id: u64,
    /// `host:port` where its peers reach it (raft traffic).
    pub raft_addr: String,
    /// Its client URL (writes sent to a follower are forwarded there);
    /// default `http://<raft_addr>`.
    pub api_url: Option<String>,
}

impl PeerConfig {
    /// Parses `ID=RAFT_ADDR[,API_URL]` (the `--peer` flag).
    pub fn parse(text: &str) -> anyhow::Result<PeerConfig> {
        let (id, rest) = text
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--peer {text:?}: expected ID=RAFT_ADDR[,API_URL]"))?;
        let id: u64 = id
            .trim()
            .parse()
            .map_err(|_| anyhow::anyhow!("--peer {text:?}: {id:?} is not a node id"))?;
        let (raft_addr, api_url) = match rest.split_once(',') {
            Some((addr, url)) => (addr.trim().to_owned(), Some(url.trim().to_owned())),
            None => (rest.trim().to_owned(), None),
        };
        Ok(PeerConfig {
            id,
            raft_addr,
            api_url,
        })
    }

    /// Its client URL.
    pub fn api_url(&self) -> String {
        self.api_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", self.raft_addr))
    }
}

/// Cluster membership of this node.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSection {
    /// The cluster's name; every node of a cluster uses the same, and a
    /// data directory records it.
    pub name: String,
    /// This node's id.
    pub node_id: u64,
    /// The shared secret peers authenticate with (required with peers).
    pub secret: Option<String>,
    /// The address peers reach this node at; default: `listen`.
    pub raft_addr: Option<String>,
    /// The initial members (this node included) when the cluster is new;
    /// empty: a single node.
    pub peers: Vec<PeerConfig>,
    /// Start without initialising anything: wait to be added to a running
    /// cluster (`tocsin cluster add-node`).
    pub join: bool,
}

impl Default for ClusterSection {
    fn default() -> Self {
        ClusterSection {
            name: "tocsin".to_owned(),
            node_id: 1,
            secret: None,
            raft_addr: None,
            peers: Vec::new(),
            join: false,
        }
    }
}

/// HTTPS settings.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, PEM.
    pub cert: Option<PathBuf>,
    /// The private key, PEM.
    pub key: Option<PathBuf>,
}

impl TlsConfig {
    /// Both files, when HTTPS is on.
    pub fn files(&self) -> Option<(&Path, &Path)> {
        self.cert.as_deref().zip(self.key.as_deref())
    }
}

/// How alarms fire and reach people.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlarmsConfig {
    /// An alarm overdue by more than this after downtime is recorded as
    /// skipped rather than delivered late.
    pub lateness_window_secs: u64,
    /// Instances closer together than this get no alarm (guards against
    /// MINUTELY/SECONDLY floods).
    pub min_instance_interval_secs: u64,
    /// When nothing is due sooner, an object is looked at again after this.
    pub recheck_horizon_days: u64,
    /// Attempts per delivery before it is given up.
    pub delivery_attempts_max: u32,
    /// First retry delay, doubled per attempt.
    pub retry_delay_initial_secs: u64,
    /// Longest retry delay.
    pub retry_delay_max_secs: u64,
    /// Timeout of one webhook request or SMTP exchange.
    pub send_timeout_ms: u64,
    /// The server-wide webhook alarms are POSTed to (none: no webhook).
    pub webhook_url: Option<String>,
    /// Secret for the webhook's HMAC-SHA256 signature header.
    pub webhook_secret: Option<String>,
    /// The SMTP relay alarm emails go through (none: no email).
    pub smtp_url: Option<String>,
    /// The From address of alarm emails.
    pub smtp_from: String,
    /// Whether EMAIL alarms may go to addresses other than the user's own.
    pub email_other_recipients: bool,
}

impl Default for AlarmsConfig {
    fn default() -> Self {
        AlarmsConfig {
            lateness_window_secs: 7200,
            min_instance_interval_secs: 60,
            recheck_horizon_days: 30,
            delivery_attempts_max: 8,
            retry_delay_initial_secs: 5,
            retry_delay_max_secs: 600,
            send_timeout_ms: 5000,
            webhook_url: None,
            webhook_secret: None,
            smtp_url: None,
            smtp_from: "Tocsin <tocsin@localhost>".to_owned(),
            email_other_recipients: false,
        }
    }
}

/// Bounds on requests; over a bound a client gets the protocol's error
/// (413, 400, or 403 with CALDAV:max-resource-size) and nothing is stored.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body, in bytes.
    pub request_body_bytes_max: usize,
    /// Largest calendar object, in bytes.
    pub object_bytes_max: usize,
    /// Most components in one calendar object (VEVENTs, VALARMs, VTIMEZONEs…).
    pub object_components_max: usize,
    /// Most properties in one calendar object.
    pub object_properties_max: usize,
    /// Deepest XML nesting in a request body.
    pub xml_depth_max: usize,
    /// Most XML elements in a request body.
    pub xml_elements_max: usize,
    /// Most changes in one sync-collection answer (the client continues
    /// from the returned token).
    pub sync_changes_max: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            request_body_bytes_max: 4 << 20,
            object_bytes_max: 1 << 20,
            object_components_max: 1000,
            object_properties_max: 10_000,
            xml_depth_max: 64,
            xml_elements_max: 100_000,
            sync_changes_max: 1000,
        }
    }
}

/// Consensus settings; the defaults suit a single node and a LAN cluster.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RaftConfig {
    /// Leader heartbeat period, in milliseconds.
    pub heartbeat_ms: u64,
    /// Shortest election timeout, in milliseconds.
    pub election_timeout_min_ms: u64,
    /// Longest election timeout, in milliseconds.
    pub election_timeout_max_ms: u64,
    /// Take a snapshot and compact the log after this many entries.
    pub snapshot_after_entries: u64,
    /// Entries kept in the log behind the latest snapshot.
    pub entries_kept_after_snapshot: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data: PathBuf::from("./data"),
            public_url: None,
            log_format: LogFormat::Text,
            admin_token: None,
            tls: TlsConfig::default(),
            cluster: ClusterSection::default(),
            limits: LimitsConfig::default(),
            alarms: AlarmsConfig::default(),
            raft: RaftConfig::default(),
        }
    }
}

impl Default for RaftConfig {
    fn default() -> Self {
        RaftConfig {
            heartbeat_ms: 100,
            election_timeout_min_ms: 300,
            election_timeout_max_ms: 600,
            snapshot_after_entries: 10_000,
            entries_kept_after_snapshot: 1_000,
        }
    }
}

/// Values given on the command line or in the environment; they win.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--listen` / `TOCSIN_LISTEN`.
    pub listen: Option<SocketAddr>,
    /// `--data` / `TOCSIN_DATA`.
    pub data: Option<PathBuf>,
    /// `--log-format` / `TOCSIN_LOG_FORMAT`.
    pub log_format: Option<LogFormat>,
    /// `--webhook-url` / `TOCSIN_WEBHOOK_URL`.
    pub webhook_url: Option<String>,
    /// `--smtp-url` / `TOCSIN_SMTP_URL`.
    pub smtp_url: Option<String>,
    /// `--node-id`.
    pub node_id: Option<u64>,
    /// `--cluster-name`.
    pub cluster_name: Option<String>,
    /// `--cluster-secret` / `TOCSIN_CLUSTER_SECRET`.
    pub cluster_secret: Option<String>,
    /// `--raft-addr`.
    pub raft_addr: Option<String>,
    /// `--peer` (repeatable).
    pub peers: Vec<PeerConfig>,
    /// `--join`.
    pub join: bool,
}

impl Config {
    /// Reads `path` (if given), then applies `overrides`.
    pub fn load(path: Option<&Path>, overrides: &Overrides) -> anyhow::Result<Config> {
        let mut config = match path {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(listen) = overrides.listen {
            config.listen = listen;
        }
        if let Some(data) = &overrides.data {
            config.data = data.clone();
        }
        if let Some(format) = overrides.log_format {
            config.log_format = format;
        }
        if let Some(url) = &overrides.webhook_url {
            config.alarms.webhook_url = Some(url.clone());
        }
        if let Some(url) = &overrides.smtp_url {
            config.alarms.smtp_url = Some(url.clone());
        }
        let cluster = &mut config.cluster;
        if let Some(id) = overrides.node_id {
            cluster.node_id = id;
        }
        if let Some(name) = &overrides.cluster_name {
            cluster.name = name.clone();
        }
        if let Some(secret) = &overrides.cluster_secret {
            cluster.secret = Some(secret.clone());
        }
        if let Some(addr) = &overrides.raft_addr {
            cluster.raft_addr = Some(addr.clone());
        }
        if !overrides.peers.is_empty() {
            cluster.peers = overrides.peers.clone();
        }
        if overrides.join {
            cluster.join = true;
        }
        config.validate()?;
        Ok(config)
    }

    fn from_file(path: &Path) -> anyhow::Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read config file {}", path.display()))?;
        Config::from_toml(&text).with_context(|| format!("invalid config file {}", path.display()))
    }

    /// Parses a TOML document; unknown keys are errors, missing ones default.
    pub fn from_toml(text: &str) -> anyhow::Result<Config> {
        toml::from_str(text).map_err(|e| {
            anyhow::anyhow!("{}", e.message().trim()).context(location(text, e.span()))
        })
    }

    fn validate(&self) -> anyhow::Result<()> {
        let raft = &self.raft;
        anyhow::ensure!(
            raft.heartbeat_ms > 0 && raft.election_timeout_min_ms > raft.heartbeat_ms,
            "raft.election_timeout_min_ms ({}) must be greater than raft.heartbeat_ms ({})",
            raft.election_timeout_min_ms,
            raft.heartbeat_ms
        );
        anyhow::ensure!(
            raft.election_timeout_max_ms > raft.election_timeout_min_ms,
            "raft.election_timeout_max_ms must be greater than raft.election_timeout_min_ms"
        );
        anyhow::ensure!(
            raft.snapshot_after_entries > 0,
            "raft.snapshot_after_entries must be positive"
        );
        let cluster = &self.cluster;
        anyhow::ensure!(cluster.node_id > 0, "cluster.node_id must be positive");
        let multi_node = !cluster.peers.is_empty() || cluster.join;
        anyhow::ensure!(
            !multi_node || cluster.secret.as_deref().is_some_and(|s| !s.is_empty()),
            "a cluster of several nodes needs cluster.secret (or --cluster-secret)"
        );
        if !cluster.peers.is_empty() {
            anyhow::ensure!(
                cluster.peers.iter().any(|p| p.id == cluster.node_id),
                "cluster.peers must include this node (id {})",
                cluster.node_id
            );
            anyhow::ensure!(
                !cluster.join,
                "--join and --peer exclude each other: a joining node has no peers to start with"
            );
        }
        anyhow::ensure!(
            self.tls.cert.is_some() == self.tls.key.is_some(),
            "tls.cert and tls.key go together: give both or neither"
        );
        let alarms = &self.alarms;
        anyhow::ensure!(
            alarms.delivery_attempts_max > 0,
            "alarms.delivery_attempts_max must be positive"
        );
        anyhow::ensure!(
            alarms.recheck_horizon_days > 0,
            "alarms.recheck_horizon_days must be positive"
        );
        anyhow::ensure!(
            alarms.send_timeout_ms > 0,
            "alarms.send_timeout_ms must be positive"
        );
        if let Some(url) = &alarms.webhook_url {
            anyhow::ensure!(
                url.starts_with("http://") || url.starts_with("https://"),
                "alarms.webhook_url must start with http:// or https:// (got {url:?})"
            );
        }
        if let Some(url) = &alarms.smtp_url {
            anyhow::ensure!(
                url.starts_with("smtp://") || url.starts_with("smtps://"),
                "alarms.smtp_url must start with smtp:// or smtps:// (got {url:?})"
            );
        }
        if let Some(url) = &self.public_url {
            anyhow::ensure!(
                url.starts_with("http://") || url.starts_with("https://"),
                "public_url must start with http:// or https:// (got {url:?})"
            );
        }
        Ok(())
    }

    /// The base URL clients should use.
    pub fn client_url(&self) -> String {
        let scheme = if self.tls.files().is_some() {
            "https"
        } else {
            "http"
        };
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_owned(),
            None => format!("{scheme}://{}", self.listen),
        }
    }
}

fn location(text: &str, span: Option<std::ops::Range<usize>>) -> String {
    let Some(span) = span else {
        return "config".to_owned();
    };
    let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
    format!("line {line}")
}

impl AlarmsConfig {
    /// The alarm engine's settings.
    pub fn engine_config(&self) -> tocsin_alarms::AlarmConfig {
        use std::time::Duration;
        let mut default_channels = vec!["log".to_owned()];
        if self.webhook_url.is_some() {
            default_channels.push("webhook".to_owned());
        }
        if self.smtp_url.is_some() {
            default_channels.push("email".to_owned());
        }
        tocsin_alarms::AlarmConfig {
            policy: self.policy(),
            lateness_window: Duration::from_secs(self.lateness_window_secs),
            default_channels,
            webhook: self
                .webhook_url
                .as_ref()
                .map(|url| tocsin_alarms::WebhookConfig {
                    url: url.clone(),
                    secret: self.webhook_secret.clone(),
                }),
            smtp: self.smtp_url.as_ref().map(|url| tocsin_alarms::SmtpConfig {
                url: url.clone(),
                from: self.smtp_from.clone(),
            }),
            email_other_recipients: self.email_other_recipients,
            delivery_attempts_max: self.delivery_attempts_max,
            retry_delay_initial: Duration::from_secs(self.retry_delay_initial_secs),
            retry_delay_max: Duration::from_secs(self.retry_delay_max_secs),
            webhook_timeout: Duration::from_millis(self.send_timeout_ms),
            ..tocsin_alarms::AlarmConfig::default()
        }
    }

    /// The calendar core's alarm policy.
    pub fn policy(&self) -> tocsin_calendar::AlarmPolicy {
        tocsin_calendar::AlarmPolicy {
            min_instance_interval_secs: self.min_instance_interval_secs as i64,
            recheck_horizon_secs: (self.recheck_horizon_days * 86_400) as i64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_gives_the_defaults() {
        assert_eq!(Config::from_toml("").unwrap(), Config::default());
    }

    #[test]
    fn the_example_file_parses_to_the_defaults() {
        // The example documents every option with its default value.
        let example = include_str!("../../../tocsin.example.toml");
        assert_eq!(Config::from_toml(example).unwrap(), Config::default());
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_it() {
        let err = Config::from_toml("listne = \"127.0.0.1:1\"").unwrap_err();
        assert!(format!("{err:#}").contains("listne"), "{err:#}");
    }

    #[test]
    fn overrides_win_over_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9000\"\ndata = \"/x\"\n").unwrap();
        let overrides = Overrides {
            listen: Some("127.0.0.1:9100".parse().unwrap()),
            ..Overrides::default()
        };
        let config = Config::load(Some(&path), &overrides).unwrap();
        assert_eq!(config.listen.port(), 9100);
        assert_eq!(config.data, PathBuf::from("/x"));
    }

    #[test]
    fn inconsistent_timeouts_are_refused() {
        let mut config = Config::default();
        config.raft.election_timeout_min_ms = 50;
        assert!(config.validate().is_err());
    }
}
