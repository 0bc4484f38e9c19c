//! `tocsin`: the binary. Glue only — the command line, configuration,
//! logging and metrics wiring; every behaviour lives in a library crate.
#![deny(missing_docs)]

mod admin;
mod cli;
mod client;
mod config;
mod explain;
mod serve;
mod telemetry;

use clap::Parser;

use crate::cli::{AlarmsCommand, Cli, ClusterCommand, Command, UserCommand};
use crate::config::{Config, Overrides};

fn main() -> std::process::ExitCode {
    keep_large_allocations_out_of_the_heap();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return usage_error(e),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return fail(anyhow::anyhow!("cannot start the runtime: {e}")),
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}

/// glibc raises its mmap threshold each time a large block is freed, so
/// that later blocks of that size stay in the heap and are never given
/// back: every argon2 password check (19 MiB) then left 19 MiB resident
/// for good. A fixed threshold (glibc's default, 128 KiB) keeps large
/// blocks in mmap, returned to the system when freed.
fn keep_large_allocations_out_of_the_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes an allocator tunable; it is called once,
    // before any thread is started.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Help and version go out as clap writes them; a usage error becomes one
/// line naming the problem.
fn usage_error(error: clap::Error) -> std::process::ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        let _ = error.print();
        return std::process::ExitCode::SUCCESS;
    }
    let rendered = error.render().to_string();
    let first_line = rendered.lines().next().unwrap_or("invalid arguments");
    let problem = first_line.trim_start_matches("error: ");
    eprintln!("tocsin: error: {problem} (see `tocsin --help`)");
    std::process::ExitCode::from(2)
}

/// One line on standard error naming the problem, and a failing status.
fn fail(error: anyhow::Error) -> std::process::ExitCode {
    eprintln!("tocsin: error: {error:#}");
    std::process::ExitCode::FAILURE
}

async fn dispatch(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => {
            let peers = args
                .peers
                .iter()
                .map(|p| config::PeerConfig::parse(p))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let overrides = Overrides {
                listen: args.listen,
                data: args.data,
                log_format: args.log_format,
                webhook_url: args.webhook_url,
                smtp_url: args.smtp_url,
                node_id: args.node_id,
                cluster_name: args.cluster_name,
                cluster_secret: args.cluster_secret,
                raft_addr: args.raft_addr,
                peers,
                join: args.join,
            };
            let config = Config::load(args.config.as_deref(), &overrides)?;
            telemetry::init_logging(config.log_format);
            serve::run(config).await
        }
        Command::User(UserCommand::Add {
            name,
            password_stdin,
            emails,
            display_name,
            admin,
        }) => client::add_user(&admin, name, password_stdin, emails, display_name).await,
        Command::User(UserCommand::List { admin, json }) => client::list_users(&admin, json).await,
        Command::User(UserCommand::Passwd {
            name,
            password_stdin,
            admin,
        }) => client::set_password(&admin, name, password_stdin).await,
        Command::User(UserCommand::Remove { name, admin }) => {
            client::remove_user(&admin, name).await
        }
        Command::User(UserCommand::Alarms {
            name,
            channels,
            webhook_url,
            webhook_secret,
            admin,
        }) => client::set_alarm_settings(&admin, name, channels, webhook_url, webhook_secret).await,
        Command::Alarms(AlarmsCommand::Upcoming {
            user,
            count,
            json,
            admin,
        }) => client::upcoming(&admin, user, count, json).await,
        Command::Alarms(AlarmsCommand::Log {
            user,
            count,
            json,
            admin,
        }) => client::delivery_log(&admin, user, count, json).await,
        Command::Alarms(AlarmsCommand::Explain {
            file,
            now,
            zone,
            count,
            json,
        }) => explain::run(&file, now.as_deref(), zone.as_deref(), count, json),
        Command::Status { admin, json } => client::status(&admin, json).await,
        Command::Share {
            calendar,
            sharee,
            access,
            admin,
        } => client::share(&admin, &calendar, sharee, access).await,
        Command::Cluster(ClusterCommand::Init { peers, admin }) => {
            client::cluster_init(&admin, &peers).await
        }
        Command::Cluster(ClusterCommand::AddNode {
            id,
            raft_addr,
            api_url,
            admin,
        }) => client::cluster_add_node(&admin, id, raft_addr, api_url).await,
        Command::Cluster(ClusterCommand::RemoveNode { id, admin }) => {
            client::cluster_remove_node(&admin, id).await
        }
        Command::Cluster(ClusterCommand::Status { json, admin }) => {
            client::cluster_status(&admin, json).await
        }
    }
}
