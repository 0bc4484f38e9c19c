//! Tocsin's benchmark programs (issue 6's CalDAV workload against the
//! peers, issue 4's alarm timing). A measuring tool, not part of the
//! server: it starts `tocsin serve` (and the peers) on 127.0.0.1 with
//! free ports, drives them, reads their memory from /proc, and stops them
//! by PID. How to run each suite: `bench/README.md`.
//!
//!     tocsin_bench dav [--peers DIR]      # suite 1
//!     tocsin_bench alarms-lateness        # suite 2.1
//!     tocsin_bench alarms-burst           # suite 2.2
//!     tocsin_bench alarms-index           # suite 2.3

mod alarms;
mod dav;
mod util;
mod workload;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Tocsin benchmarks: CalDAV workload against peers, alarm timing")]
struct Cli {
    #[command(subcommand)]
    suite: Suite,
}

#[derive(Subcommand)]
enum Suite {
    /// CalDAV workload (issue 6) against Tocsin, Xandikos, Radicale, Cyrus.
    Dav(dav::DavArgs),
    /// Lateness of alarms spread over one minute (issue 4).
    AlarmsLateness(alarms::TimedArgs),
    /// A burst of alarms due in the same second (issue 4).
    AlarmsBurst(alarms::TimedArgs),
    /// Memory and next-due time with a large alarm index (issue 4).
    AlarmsIndex(alarms::IndexArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().suite {
        Suite::Dav(args) => dav::run(args),
        Suite::AlarmsLateness(args) => alarms::lateness(args),
        Suite::AlarmsBurst(args) => alarms::burst(args),
        Suite::AlarmsIndex(args) => alarms::index(args),
    }
}
