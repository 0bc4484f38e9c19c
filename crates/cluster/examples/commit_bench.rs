//! Benchmark: committed small commands per second on one node, fsync on.
//!
//! `cargo run --release -p tocsin-cluster --example commit_bench [-- SECONDS]`
//!
//! For 1, 16 and 64 concurrent proposers, proposes `Noop` commands of 100
//! bytes for SECONDS (default 5) each and prints commands/s, fsyncs per
//! command and the commit latency. The data directory is created under
//! the current directory (`./bench-data-*`), so the disk measured is the
//! one you run it on, and removed afterwards.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tocsin_cluster::{Cluster, ClusterConfig, ClusterMetrics, NodeInfo};
use tocsin_store::Command;

const PROPOSER_COUNTS: [usize; 3] = [1, 16, 64];
const PADDING_BYTES: usize = 100;

#[tokio::main]
async fn main() {
    let seconds: u64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    let dir = std::env::current_dir()
        .expect("cwd")
        .join(format!("bench-data-{}", std::process::id()));
    let metrics = ClusterMetrics::default();
    let node = NodeInfo {
        raft_addr: "127.0.0.1:1".into(),
        api_url: "http://127.0.0.1:1".into(),
    };
    let mut config = ClusterConfig::single_node(dir.clone(), node);
    config.snapshot_after_entries = 100_000;
    let cluster = Cluster::start(config, metrics.clone())
        .await
        .expect("start");
    let mut leadership = cluster.leadership();
    leadership.wait_for(|l| *l).await.expect("leader");

    println!("| proposers | commands/s | fsyncs/command | commit latency ms |");
    println!("|---:|---:|---:|---:|");
    for proposers in PROPOSER_COUNTS {
        let flushes_before = metrics.log_flushes.get();
        let done = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let latency_ns = Arc::new(AtomicU64::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..proposers {
            let (cluster, done, stop, latency_ns) = (
                cluster.clone(),
                done.clone(),
                stop.clone(),
                latency_ns.clone(),
            );
            tasks.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let command = Command::Noop {
                        padding: "x".repeat(PADDING_BYTES),
                    };
                    cluster.propose(command).await.expect("propose");
                    latency_ns.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        tokio::time::sleep(Duration::from_secs(seconds)).await;
        stop.store(true, Ordering::Relaxed);
        for task in tasks {
            task.await.expect("proposer");
        }
        let elapsed = started.elapsed().as_secs_f64();
        let commands = done.load(Ordering::Relaxed);
        let flushes = metrics.log_flushes.get() - flushes_before;
        let mean_ms = latency_ns.load(Ordering::Relaxed) as f64 / commands.max(1) as f64 / 1e6;
        println!(
            "| {proposers} | {:.0} | {:.3} | {mean_ms:.2} (mean) |",
            commands as f64 / elapsed,
            flushes as f64 / commands.max(1) as f64
        );
    }
    cluster.shutdown().await;
    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}
