//! The delivery worker: sends committed outbox entries, on the leader only.
//!
//! It takes pending entries whose attempt is due (earliest first), sends
//! each on its channel with its idempotency key (invariant 6), and commits
//! what happened: delivered; retry at a later time (exponential backoff,
//! bounded attempts); or failed for good. A result commits in the
//! background while the next sends start; its key stays in flight until
//! then, so no entry is sent again before its result is in the store.
//! Only entries already in the store are sent, so nothing goes out that a
//! failover could forget (invariant 5). A node that stops leading stops taking entries; a send
//! already under way may finish, and then its result cannot be committed —
//! the new leader sends it again under the same key.
//!
//! It must never plan alarms or touch the index: that is the scheduler's.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tocsin_calendar::Instant;
use tocsin_cluster::{Clock, Cluster};
use tocsin_store::{Command, DeliveryResult, OutboxEntry, RecordDelivery};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::channels::SendOutcome;
use crate::channels::email::EmailSender;
use crate::channels::webhook::WebhookSender;
use crate::config::AlarmConfig;
use crate::metrics::AlarmMetrics;
use crate::payload::AlarmPayload;

/// Longest single wait; the loop re-reads the outbox at least this often.
const SLEEP_MAX: Duration = Duration::from_secs(60);
/// The refill batch is this fraction of `deliveries_in_flight_max`.
const DELIVERY_REFILL_DIVISOR: usize = 8;
/// Results being committed at once; past it, no new sends start.
const RECORDS_IN_FLIGHT_MAX: usize = 4_096;

/// What every send shares.
#[derive(Clone)]
pub(crate) struct Senders {
    pub(crate) webhook: WebhookSender,
    pub(crate) email: Option<EmailSender>,
}

/// What the worker has under way: sends (at most
/// `deliveries_in_flight_max`), results being committed (at most
/// [`RECORDS_IN_FLIGHT_MAX`]), and the keys of both.
#[derive(Default)]
struct InFlight {
    sending: JoinSet<RecordDelivery>,
    recording: JoinSet<String>,
    keys: HashSet<String>,
}

pub(crate) struct DeliveryWorker {
    pub(crate) cluster: Cluster,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: AlarmConfig,
    pub(crate) metrics: AlarmMetrics,
    pub(crate) senders: Senders,
}

impl DeliveryWorker {
    pub(crate) async fn run(self, cancel: CancellationToken) {
        let this = Arc::new(self);
        let mut applied = this.cluster.applied();
        let mut work = InFlight::default();
        loop {
            if cancel.is_cancelled() {
                break;
            }
            this.start_due(&mut work);
            let wait = this.time_to_next_attempt(&work);
            tokio::select! {
                () = cancel.cancelled() => break,
                sent = work.sending.join_next(), if !work.sending.is_empty() => {
                    if let Some(Ok(record)) = sent {
                        this.start_recording(record, &mut work);
                    }
                }
                recorded = work.recording.join_next(), if !work.recording.is_empty() => {
                    if let Some(Ok(key)) = recorded {
                        work.keys.remove(&key);
                    }
                }
                () = tokio::time::sleep(wait) => {}
                changed = applied.changed() => if changed.is_err() { break },
            }
        }
        // Sends and records under way are left to finish: their results
        // may no longer commit, and the next leader sends those entries
        // again, same key.
        work.sending.detach_all();
        work.recording.detach_all();
    }

    fn start_due(self: &Arc<Self>, work: &mut InFlight) {
        if !self.worth_refilling(work) {
            return;
        }
        let room = self.config.deliveries_in_flight_max - work.sending.len();
        let now = self.clock.now();
        let fresh = self.cluster.reader().read(|q| {
            let keys = q.pending_delivery_keys(now, room + work.keys.len())?;
            let mut fresh = Vec::with_capacity(room);
            for key in keys.iter().filter(|k| !work.keys.contains(*k)).take(room) {
                fresh.extend(q.outbox_entry(key)?);
            }
            Ok(fresh)
        });
        let fresh = match fresh {
            Ok(fresh) => fresh,
            Err(e) => {
                tracing::error!(error = %e, "delivery worker cannot read the outbox");
                return;
            }
        };
        for entry in fresh {
            work.keys.insert(entry.key.clone());
            let worker = self.clone();
            work.sending
                .spawn(async move { worker.send_and_judge(entry).await });
        }
    }

    /// Commits a send's result in the background: the next send does not
    /// wait for it, and its key stays in flight until it is committed, so
    /// the entry (still pending in the store until then) is not sent twice.
    fn start_recording(&self, record: RecordDelivery, work: &mut InFlight) {
        let cluster = self.cluster.clone();
        work.recording.spawn(async move {
            let key = record.key.clone();
            if let Err(e) = cluster.propose(Command::RecordDelivery(record)).await {
                tracing::warn!(%key, error = %e, "delivery result not committed; the entry stays pending");
            }
            key
        });
    }

    fn worth_refilling(&self, work: &InFlight) -> bool {
        worth_refilling(
            work.sending.len(),
            work.recording.len(),
            self.config.deliveries_in_flight_max,
        )
    }

    fn time_to_next_attempt(&self, work: &InFlight) -> Duration {
        if !self.worth_refilling(work) {
            // Full enough: a completion wakes the loop.
            return SLEEP_MAX;
        }
        let now = self.clock.now();
        match self.cluster.reader().read(|q| q.next_delivery_due()) {
            Ok(Some(next)) if next > now => {
                Duration::from_millis(next.since(now).millis() as u64).min(SLEEP_MAX)
            }
            // Due now but all in flight: wait for one to finish.
            Ok(Some(_)) if !work.keys.is_empty() => SLEEP_MAX,
            Ok(Some(_)) => Duration::from_millis(1),
            Ok(None) => SLEEP_MAX,
            Err(_) => Duration::from_secs(1),
        }
    }

    /// Sends one entry and decides what to record: delivered, a retry at
    /// a later time, or failed for good.
    async fn send_and_judge(&self, entry: OutboxEntry) -> RecordDelivery {
        let outcome = self.send(&entry).await;
        let now = self.clock.now();
        let attempts = entry.attempts + 1;
        let result = match outcome {
            SendOutcome::Delivered => {
                self.metrics.delivered.inc();
                self.metrics
                    .lateness_seconds
                    .observe(lateness(now, entry.trigger));
                DeliveryResult::Delivered
            }
            SendOutcome::Transient(error) if attempts < self.config.delivery_attempts_max => {
                self.metrics.retried.inc();
                let delay = self.config.retry_delay(attempts);
                tracing::warn!(key = %entry.key, channel = %entry.channel, %error, attempts, "alarm delivery failed; will retry");
                DeliveryResult::Retry {
                    next_attempt: now.saturating_add(tocsin_calendar::Duration::from_millis(
                        delay.as_millis() as i64,
                    )),
                    error,
                }
            }
            SendOutcome::Transient(error) => {
                self.metrics.failed.inc();
                tracing::error!(key = %entry.key, channel = %entry.channel, %error, attempts, "alarm delivery given up");
                DeliveryResult::Failed {
                    error: format!("gave up after {attempts} attempts: {error}"),
                }
            }
            SendOutcome::Permanent(error) => {
                self.metrics.failed.inc();
                tracing::error!(key = %entry.key, channel = %entry.channel, %error, "alarm delivery refused");
                DeliveryResult::Failed { error }
            }
        };
        RecordDelivery {
            key: entry.key,
            result,
            at: now,
        }
    }

    async fn send(&self, entry: &OutboxEntry) -> SendOutcome {
        let payload: AlarmPayload = match serde_json::from_str(&entry.payload) {
            Ok(p) => p,
            Err(e) => return SendOutcome::Permanent(format!("unreadable outbox payload: {e}")),
        };
        let late = lateness(self.clock.now(), entry.trigger);
        match entry.channel.as_str() {
            "log" => crate::channels::log::send(&payload, late),
            "webhook" => {
                let secret = self.webhook_secret(&entry.user, &entry.recipient);
                let body = payload.to_json_with_lateness(late);
                self.senders
                    .webhook
                    .send(
                        &entry.recipient,
                        body,
                        &entry.key,
                        secret.as_deref(),
                        self.cluster.node_id(),
                    )
                    .await
            }
            "email" => match &self.senders.email {
                Some(email) => email.send(&payload, &entry.recipient, late).await,
                None => SendOutcome::Transient("no SMTP relay is configured".into()),
            },
            other => SendOutcome::Permanent(format!("unknown channel {other:?}")),
        }
    }

    /// The signing secret of the webhook at `url`: the user's own, or the
    /// server's. Secrets live in settings, never in the outbox.
    fn webhook_secret(&self, user: &str, url: &str) -> Option<String> {
        let own = self
            .cluster
            .reader()
            .read(|q| q.alarm_settings(user))
            .ok()
            .flatten()
            .filter(|s| s.webhook_url.as_deref() == Some(url))
            .and_then(|s| s.webhook_secret);
        own.or_else(|| {
            self.config
                .webhook
                .as_ref()
                .filter(|w| w.url == url)
                .and_then(|w| w.secret.clone())
        })
    }
}

/// Whether to read the outbox for more sends: when nothing is being sent,
/// or when a batch of send slots is free — in a burst the worker refills
/// in batches instead of re-reading the outbox after every completion —
/// and never while [`RECORDS_IN_FLIGHT_MAX`] results wait to commit.
fn worth_refilling(sending: usize, recording: usize, sending_max: usize) -> bool {
    if recording >= RECORDS_IN_FLIGHT_MAX {
        return false;
    }
    let refill_min = (sending_max / DELIVERY_REFILL_DIVISOR).max(1);
    sending == 0 || (sending < sending_max && sending_max - sending >= refill_min)
}

/// Seconds from `trigger` to `now` (never negative).
fn lateness(now: Instant, trigger: Instant) -> f64 {
    now.since(trigger).millis().max(0) as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::{RECORDS_IN_FLIGHT_MAX, worth_refilling};

    #[test]
    fn an_idle_worker_always_reads_the_outbox() {
        assert!(worth_refilling(0, 0, 128));
        assert!(worth_refilling(0, 0, 1));
    }

    #[test]
    fn a_busy_worker_refills_in_batches_not_after_every_completion() {
        assert!(
            !worth_refilling(127, 0, 128),
            "one free slot is not a batch"
        );
        assert!(!worth_refilling(113, 0, 128));
        assert!(worth_refilling(112, 0, 128), "16 free slots are");
        assert!(!worth_refilling(128, 0, 128), "full");
    }

    #[test]
    fn a_tiny_limit_still_refills() {
        assert!(worth_refilling(1, 0, 2));
        assert!(!worth_refilling(2, 0, 2));
    }

    #[test]
    fn results_waiting_to_commit_hold_back_new_sends() {
        assert!(worth_refilling(0, RECORDS_IN_FLIGHT_MAX - 1, 128));
        assert!(!worth_refilling(0, RECORDS_IN_FLIGHT_MAX, 128));
    }
}
