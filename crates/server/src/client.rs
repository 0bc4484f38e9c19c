//! The CLI side of the admin API: `tocsin user …` and `tocsin status`.
//!
//! Owns finding the running server (its data directory, or `--server` and
//! `--token`), reading passwords (prompted twice, or one line from
//! standard input for scripts), and printing answers. It must never open
//! the data files itself: every change goes through the server, so it
//! works while the server runs and follows the one write path.

use std::io::BufRead;

use anyhow::{Context, bail};
use reqwest::Method;
use serde::de::DeserializeOwned;

use crate::admin::{AlarmSettingsView, NewPassword, NewUser, StatusView, UserView};
use crate::cli::AdminArgs;
use crate::serve::read_admin_endpoint;

struct AdminClient {
    http: reqwest::Client,
    url: String,
    token: String,
}

impl AdminClient {
    fn connect(args: &AdminArgs) -> anyhow::Result<AdminClient> {
        let (url, token) = match (&args.server, &args.token) {
            (Some(url), Some(token)) => (url.clone(), token.clone()),
            (server, token) => {
                let endpoint = read_admin_endpoint(&args.data)?;
                (
                    server.clone().unwrap_or(endpoint.url),
                    token.clone().unwrap_or(endpoint.token),
                )
            }
        };
        Ok(AdminClient {
            http: reqwest::Client::new(),
            url: url.trim_end_matches('/').to_owned(),
            token,
        })
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<reqwest::Response> {
        let response = request
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| {
                format!(
                    "cannot reach the server at {} (is `tocsin serve` running?)",
                    self.url
                )
            })?;
        if response.status().is_success() {
            return Ok(response);
        }
        let status = response.status();
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let message = body["error"].as_str().unwrap_or("no detail").to_owned();
        bail!("{message} (HTTP {status})")
    }

    /// A request to the server at `path` (which starts with `/admin`).
    fn to(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.url))
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let response = self.send(self.to(Method::GET, path)).await?;
        response
            .json()
            .await
            .context("unexpected answer from the server")
    }
}

/// Reads a password: one line from standard input, or a prompt (twice).
fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .context("cannot read the password from standard input")?;
        let password = line.trim_end_matches(['\n', '\r']).to_owned();
        anyhow::ensure!(!password.is_empty(), "empty password on standard input");
        return Ok(password);
    }
    let first = rpassword::prompt_password("Password: ").context("cannot read the password")?;
    let second =
        rpassword::prompt_password("Password (again): ").context("cannot read the password")?;
    anyhow::ensure!(first == second, "the passwords differ");
    anyhow::ensure!(!first.is_empty(), "empty password");
    Ok(first)
}

/// `tocsin user add`.
pub async fn add_user(
    admin: &AdminArgs,
    name: String,
    password_stdin: bool,
    emails: Vec<String>,
    display_name: Option<String>,
) -> anyhow::Result<()> {
    let client = AdminClient::connect(admin)?;
    let password = read_password(password_stdin)?;
    let body = NewUser {
        name: name.clone(),
        password,
        display_name,
        emails,
    };
    client
        .send(client.to(Method::POST, "/admin/users").json(&body))
        .await?;
    println!(
        "created user {name}; their calendars are at {}/",
        client.url
    );
    Ok(())
}

/// `tocsin user list`.
pub async fn list_users(admin: &AdminArgs, json: bool) -> anyhow::Result<()> {
    let client = AdminClient::connect(admin)?;
    let users: Vec<UserView> = client.get("/admin/users").await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&users)?);
        return Ok(());
    }
    if users.is_empty() {
        println!("no users yet; create one with `tocsin user add NAME`");
    }
    for user in users {
        let addresses = user.addresses.join(", ");
        println!(
            "{}\t{}\t{}",
            user.name,
            user.display_name.unwrap_or_default(),
            addresses
        );
    }
    Ok(())
}

/// `tocsin user passwd`.
pub async fn set_password(
    admin: &AdminArgs,
    name: String,
    password_stdin: bool,
) -> anyhow::Result<()> {
    let client = AdminClient::connect(admin)?;
    let password = read_password(password_stdin)?;
    client
        .send(
            client
                .to(Method::PUT, &format!("/admin/users/{name}/password"))
                .json(&NewPassword { password }),
        )
        .await?;
    println!("password changed for {name}");
    Ok(())
}

/// `tocsin user remove`.
pub async fn remove_user(admin: &AdminArgs, name: String) -> anyhow::Result<()> {
    let client = AdminClient::connect(admin)?;
    client
        .send(client.to(Method::DELETE, &format!("/admin/users/{name}")))
        .await?;
    println!("removed user {name} and everything they owned");
    Ok(())
}

/// `tocsin status`.
pub async fn status(admin: &AdminArgs, json: bool) -> anyhow::Result<()> {
    let client = AdminClient::connect(admin)?;
    let status: StatusView = client.get("/admin/status").await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
        return Ok(());
    }
    let node = &status.node;
    let show = |v: Option<u64>| v.map_or("-".to_owned(), |v| v.to_string());
    println!(
        "tocsin {} node {} — {}",
        status.version, node.node_id, node.role
    );
    println!(
        "  term {}  leader {}",
        node.term,
        node.leader.map_or("none".to_owned(), |l| l.to_string())
    );
    println!(
        "  log: last {}  committed {}  applied {}  purged {}",
        show(node.last_log_index),
        show(node.commit_index),
        show(node.applied_index),
        show(node.purged_index)
    );
    let c = &status.counts;
    println!(
        "  {} users, {} calendars, {} objects, {} alarm-index rows, {} deliveries pending",
        c.users, c.calendars, c.objects, c.alarm_index, c.outbox_pending
    );
    println!("  state digest {}", status.digest);
    if node.voters.len() > 1 {
        println!();
        print_members(
            &client
                .get::<Vec<crate::admin::MemberStatusView>>("/admin/cluster/status")
                .await?,
        );
    }
    Ok(())
}

fn print_members(rows: &[crate::admin::MemberStatusView]) {
    let show = |v: Option<u64>| v.map_or("-".to_owned(), |v| v.to_string());
    println!("node  role       term  commit   applied  lag  address");
    for row in rows {
        match &row.status {
            Ok(s) => println!(
                "{:<5} {:<10} {:<5} {:<8} {:<8} {:<4} {}",
                row.member.id,
                s.role,
                s.term,
                show(s.commit_index),
                show(s.applied_index),
                show(row.lag),
                row.member.api_url
            ),
            Err(e) => println!(
                "{:<5} unreachable ({e})  {}",
                row.member.id, row.member.api_url
            ),
        }
    }
}

/// `tocsin user alarms`.
pub async fn set_alarm_settings(
    admin: &AdminArgs,
    name: String,
    channels: Vec<String>,
    webhook_url: Option<String>,
    webhook_secret: Option<String>,
) -> anyhow::Result<()> {
    let client = AdminClient::connect(admin)?;
    let body = AlarmSettingsView {
        channels: channels.clone(),
        webhook_url,
        webhook_secret,
    };
    let body = serde_json::json!({
        "channels": body.channels,
        "webhook_url": body.webhook_url,
        "webhook_secret": body.webhook_secret,
    });
    client
        .send(
            client
                .to(Method::PUT, &format!("/admin/users/{name}/alarms"))
                .json(&body),
        )
        .await?;
    println!("{name}'s alarms go to: {}", channels.join(", "));
    Ok(())
}

fn query_string(user: &Option<String>, count: usize) -> String {
    match user {
        Some(user) => format!("?user={user}&count={count}"),
        None => format!("?count={count}"),
    }
}

/// `tocsin alarms upcoming`.
pub async fn upcoming(
    admin: &AdminArgs,
    user: Option<String>,
    count: usize,
    json: bool,
) -> anyhow::Result<()> {
    let client = AdminClient::connect(admin)?;
    let alarms: Vec<tocsin_alarms::inspect::UpcomingAlarm> = client
        .get(&format!(
            "/admin/alarms/upcoming{}",
            query_string(&user, count)
        ))
        .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&alarms)?);
        return Ok(());
    }
    if alarms.is_empty() {
        println!("no upcoming alarms");
    }
    for a in alarms {
        println!(
            "{}  {}  {}  {}  {}",
            a.trigger,
            a.user,
            a.action,
            a.summary.unwrap_or_else(|| "(no title)".into()),
            a.recurrence_id
                .map(|r| format!("instance {r}"))
                .unwrap_or_default()
        );
    }
    Ok(())
}

/// `tocsin alarms log`.
pub async fn delivery_log(
    admin: &AdminArgs,
    user: Option<String>,
    count: usize,
    json: bool,
) -> anyhow::Result<()> {
    let client = AdminClient::connect(admin)?;
    let entries: Vec<tocsin_store::OutboxEntry> = client
        .get(&format!("/admin/alarms/log{}", query_string(&user, count)))
        .await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&entries)?);
        return Ok(());
    }
    if entries.is_empty() {
        println!("no alarm has fired yet");
    }
    for e in entries {
        let late = e.updated.since(e.trigger).millis() as f64 / 1000.0;
        let detail = e.last_error.unwrap_or_default();
        println!(
            "{}  {:9}  {}  {} -> {}  attempts {}  {}",
            e.trigger.to_rfc3339(),
            e.state,
            e.user,
            e.channel,
            e.recipient,
            e.attempts,
            if e.state == "delivered" {
                format!("late {late:.3}s")
            } else {
                detail
            }
        );
    }
    Ok(())
}

fn member_of(peer: &crate::config::PeerConfig) -> crate::admin::MemberView {
    crate::admin::MemberView {
        id: peer.id,
        raft_addr: peer.raft_addr.clone(),
        api_url: peer.api_url(),
    }
}

/// `tocsin cluster init`.
pub async fn cluster_init(admin: &AdminArgs, peers: &[String]) -> anyhow::Result<()> {
    let client = AdminClient::connect(admin)?;
    let members = peers
        .iter()
        .map(|p| crate::config::PeerConfig::parse(p).map(|p| member_of(&p)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    client
        .send(
            client
                .to(Method::POST, "/admin/cluster/init")
                .json(&members),
        )
        .await?;
    println!("cluster initialised with {} members", members.len());
    Ok(())
}

/// `tocsin cluster add-node`.
pub async fn cluster_add_node(
    admin: &AdminArgs,
    id: u64,
    raft_addr: String,
    api_url: Option<String>,
) -> anyhow::Result<()> {
    let client = AdminClient::connect(admin)?;
    let member = member_of(&crate::config::PeerConfig {
        id,
        raft_addr,
        api_url,
    });
    client
        .send(
            client
                .to(Method::POST, "/admin/cluster/nodes")
                .json(&member),
        )
        .await?;
    println!("node {id} added; it has caught up and now votes");
    Ok(())
}

/// `tocsin cluster remove-node`.
pub async fn cluster_remove_node(admin: &AdminArgs, id: u64) -> anyhow::Result<()> {
    let client = AdminClient::connect(admin)?;
    client
        .send(client.to(Method::DELETE, &format!("/admin/cluster/nodes/{id}")))
        .await?;
    println!("node {id} removed from the cluster");
    Ok(())
}

/// `tocsin cluster status`.
pub async fn cluster_status(admin: &AdminArgs, json: bool) -> anyhow::Result<()> {
    let client = AdminClient::connect(admin)?;
    let rows: Vec<crate::admin::MemberStatusView> = client.get("/admin/cluster/status").await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    print_members(&rows);
    Ok(())
}

/// `tocsin share`.
pub async fn share(
    admin: &AdminArgs,
    calendar: &str,
    sharee: String,
    access: String,
) -> anyhow::Result<()> {
    let (owner, slug) = calendar
        .split_once('/')
        .ok_or_else(|| anyhow::anyhow!("name the calendar as OWNER/CALENDAR (got {calendar:?})"))?;
    let client = AdminClient::connect(admin)?;
    let body = crate::admin::ShareRequest {
        owner: owner.to_owned(),
        calendar: slug.to_owned(),
        sharee: sharee.clone(),
        access: access.clone(),
    };
    client
        .send(client.to(Method::POST, "/admin/shares").json(&body))
        .await?;
    if access == "none" {
        println!("{calendar} is no longer shared with {sharee}");
    } else {
        println!("{calendar} is shared with {sharee} ({access})");
    }
    Ok(())
}
