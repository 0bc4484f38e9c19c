//! The command line: what `tocsin` accepts.
//!
//! Owns the clap definitions only; `main.rs` dispatches, the other modules
//! do the work. Every flag that mirrors a config option also reads a
//! `TOCSIN_…` environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::LogFormat;

/// A CalDAV server whose alarms ring once, on time, whatever fails.
#[derive(Debug, Parser)]
#[command(name = "tocsin", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (a single node with its data under ./data by default).
    Serve(ServeArgs),
    /// Manage users on a running server.
    #[command(subcommand)]
    User(UserCommand),
    /// Look at alarms: what is coming, what was delivered, why one rings.
    #[command(subcommand)]
    Alarms(AlarmsCommand),
    /// Share a calendar with another user (or stop sharing it).
    Share {
        /// The calendar, as OWNER/CALENDAR (its URL segment).
        calendar: String,
        /// The user to share it with (name or email address).
        #[arg(long = "with")]
        sharee: String,
        /// read, read-write, or none to stop sharing.
        #[arg(long, default_value = "read-write")]
        access: String,
        /// How to reach the server.
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Manage the cluster's members.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Show the node's role, term, log positions and counts.
    Status {
        /// How to reach the server.
        #[command(flatten)]
        admin: AdminArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// `tocsin serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// A TOML configuration file (see tocsin.example.toml).
    #[arg(long, env = "TOCSIN_CONFIG")]
    pub config: Option<PathBuf>,
    /// Directory holding this node's state.
    #[arg(long, env = "TOCSIN_DATA")]
    pub data: Option<PathBuf>,
    /// Address for CalDAV, the admin API and metrics.
    #[arg(long, env = "TOCSIN_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Log format.
    #[arg(long, env = "TOCSIN_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormat>,
    /// A webhook every alarm is POSTed to (JSON).
    #[arg(long, env = "TOCSIN_WEBHOOK_URL")]
    pub webhook_url: Option<String>,
    /// An SMTP relay alarm emails go through (smtp://host:port).
    #[arg(long, env = "TOCSIN_SMTP_URL")]
    pub smtp_url: Option<String>,
    /// This node's id in its cluster.
    #[arg(long, env = "TOCSIN_NODE_ID")]
    pub node_id: Option<u64>,
    /// The cluster's name (every node uses the same).
    #[arg(long, env = "TOCSIN_CLUSTER_NAME")]
    pub cluster_name: Option<String>,
    /// The secret nodes of the cluster share.
    #[arg(long, env = "TOCSIN_CLUSTER_SECRET", hide_env_values = true)]
    pub cluster_secret: Option<String>,
    /// The address peers reach this node at (default: --listen).
    #[arg(long, env = "TOCSIN_RAFT_ADDR")]
    pub raft_addr: Option<String>,
    /// An initial member, ID=RAFT_ADDR[,API_URL]; repeat for each (this node included).
    #[arg(long = "peer")]
    pub peers: Vec<String>,
    /// Start empty and wait to be added to a running cluster.
    #[arg(long)]
    pub join: bool,
}

/// `tocsin cluster …`.
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Start a cluster on nodes started with --join.
    Init {
        /// A member, ID=RAFT_ADDR[,API_URL]; repeat for each.
        #[arg(long = "peer", required = true)]
        peers: Vec<String>,
        /// How to reach the server.
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Add a node (started with --join); it catches up, then votes.
    AddNode {
        /// Its node id.
        id: u64,
        /// Where its peers reach it.
        raft_addr: String,
        /// Its client URL (default http://RAFT_ADDR).
        #[arg(long)]
        api_url: Option<String>,
        /// How to reach the server.
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Remove a node from the cluster.
    RemoveNode {
        /// Its node id.
        id: u64,
        /// How to reach the server.
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Every node's role, term, commit and applied index, and lag.
    Status {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// How to reach the server.
        #[command(flatten)]
        admin: AdminArgs,
    },
}

/// `tocsin alarms …`.
#[derive(Debug, Subcommand)]
pub enum AlarmsCommand {
    /// The next alarms that will fire.
    Upcoming {
        /// Only this user's.
        #[arg(long)]
        user: Option<String>,
        /// How many.
        #[arg(long, default_value_t = 20)]
        count: usize,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// How to reach the server.
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// The delivery log: alarms delivered, retried, failed, skipped.
    Log {
        /// Only this user's.
        #[arg(long)]
        user: Option<String>,
        /// How many entries.
        #[arg(long, default_value_t = 50)]
        count: usize,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        /// How to reach the server.
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Explain when an iCalendar file's alarms will ring (no server needed).
    Explain {
        /// The .ics file (one calendar object).
        file: PathBuf,
        /// "Now", as RFC 3339 (default: the current time).
        #[arg(long)]
        now: Option<String>,
        /// The calendar's time zone, for floating and all-day times (default UTC).
        #[arg(long)]
        zone: Option<String>,
        /// How many alarms to show.
        #[arg(long, default_value_t = 10)]
        count: usize,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// How the CLI reaches a running server's admin API.
#[derive(Debug, Args, Clone)]
pub struct AdminArgs {
    /// The server's data directory, where it leaves its admin URL and token.
    #[arg(long, env = "TOCSIN_DATA", default_value = "./data")]
    pub data: PathBuf,
    /// The server's URL (instead of reading it from the data directory).
    #[arg(long, env = "TOCSIN_SERVER")]
    pub server: Option<String>,
    /// The admin token (instead of reading it from the data directory).
    #[arg(long, env = "TOCSIN_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// `tocsin user …`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user (with a first calendar).
    Add {
        /// Login name: letters, digits, '.', '_' or '-'.
        name: String,
        /// Read the password from standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
        /// An email address of the user (repeatable); alarms by email go there.
        #[arg(long = "email")]
        emails: Vec<String>,
        /// The name clients show.
        #[arg(long)]
        display_name: Option<String>,
        /// How to reach the server.
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// List users.
    List {
        /// How to reach the server.
        #[command(flatten)]
        admin: AdminArgs,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Change a user's password.
    Passwd {
        /// Login name.
        name: String,
        /// Read the password from standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
        /// How to reach the server.
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Choose where a user's alarms go.
    Alarms {
        /// Login name.
        name: String,
        /// Channels, comma-separated: log, webhook, email.
        #[arg(long, value_delimiter = ',')]
        channels: Vec<String>,
        /// The user's own webhook (instead of the server's).
        #[arg(long)]
        webhook_url: Option<String>,
        /// The secret signing the user's webhook deliveries.
        #[arg(long)]
        webhook_secret: Option<String>,
        /// How to reach the server.
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Remove a user and everything they own.
    Remove {
        /// Login name.
        name: String,
        /// How to reach the server.
        #[command(flatten)]
        admin: AdminArgs,
    },
}
