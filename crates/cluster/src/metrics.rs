//! The cluster's Prometheus metrics: the write path, measured.
//!
//! Owns the counters and histograms of proposals, log flushes (fsyncs)
//! and state-machine applies. Cheap to clone; every clone records into the
//! same series. It must never decide anything: it only observes.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Latency buckets from 50 µs to about 3 s.
fn latency_buckets() -> impl Iterator<Item = f64> {
    exponential_buckets(0.000_05, 2.0, 16)
}

/// The write path's metrics.
#[derive(Clone)]
pub struct ClusterMetrics {
    /// Commands applied to the state machine.
    pub commands_applied: Counter,
    /// Time to apply one batch of committed entries.
    pub apply_seconds: Histogram,
    /// Time from proposing a command to its applied outcome.
    pub commit_seconds: Histogram,
    /// Log flushes (one fsync each).
    pub log_flushes: Counter,
    /// Jobs (appends, votes, truncations) written by log flushes.
    pub log_flush_jobs: Counter,
    /// Time of one log flush.
    pub log_flush_seconds: Histogram,
    /// Entries in the log (after the last purge).
    pub log_entries: Gauge,
    /// The raft term.
    pub term: Gauge,
    /// 1 while this node is the leader.
    pub is_leader: Gauge,
    /// The last log index applied to the state machine.
    pub applied_index: Gauge,
    /// The last log index present in the log.
    pub last_log_index: Gauge,
    /// On the leader: entries each follower is behind the leader's log.
    pub replication_lag: Family<Vec<(String, String)>, Gauge>,
}

impl Default for ClusterMetrics {
    fn default() -> Self {
        ClusterMetrics {
            commands_applied: Counter::default(),
            apply_seconds: Histogram::new(latency_buckets()),
            commit_seconds: Histogram::new(latency_buckets()),
            log_flushes: Counter::default(),
            log_flush_jobs: Counter::default(),
            log_flush_seconds: Histogram::new(latency_buckets()),
            log_entries: Gauge::default(),
            term: Gauge::default(),
            is_leader: Gauge::default(),
            applied_index: Gauge::default(),
            last_log_index: Gauge::default(),
            replication_lag: Family::default(),
        }
    }
}

impl ClusterMetrics {
    /// Registers every series under `registry`.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "commands_applied",
            "Commands applied to the state machine",
            self.commands_applied.clone(),
        );
        registry.register(
            "apply_seconds",
            "Time to apply one batch of committed entries",
            self.apply_seconds.clone(),
        );
        registry.register(
            "commit_seconds",
            "Time from proposing a command to its applied outcome",
            self.commit_seconds.clone(),
        );
        registry.register(
            "log_flushes",
            "Raft log flushes (one fsync each)",
            self.log_flushes.clone(),
        );
        registry.register(
            "log_flush_jobs",
            "Appends, votes and truncations written by log flushes",
            self.log_flush_jobs.clone(),
        );
        registry.register(
            "log_flush_seconds",
            "Time of one raft log flush",
            self.log_flush_seconds.clone(),
        );
        registry.register(
            "raft_log_entries",
            "Entries in the raft log after the last purge",
            self.log_entries.clone(),
        );
        registry.register("raft_term", "The current raft term", self.term.clone());
        registry.register(
            "raft_is_leader",
            "1 while this node is the leader",
            self.is_leader.clone(),
        );
        registry.register(
            "raft_applied_index",
            "The last log index applied",
            self.applied_index.clone(),
        );
        registry.register(
            "raft_last_log_index",
            "The last log index present",
            self.last_log_index.clone(),
        );
        registry.register(
            "raft_replication_lag_entries",
            "On the leader: log entries each follower is behind",
            self.replication_lag.clone(),
        );
    }

    pub(crate) fn observe_log_flush(&self, took: Duration, jobs: usize) {
        self.log_flushes.inc();
        self.log_flush_jobs.inc_by(jobs as u64);
        self.log_flush_seconds.observe(took.as_secs_f64());
    }
}
