//! The alarm engine: the leader's scheduler and delivery workers.
//!
//! [`start`] runs a supervisor that follows the cluster's leadership
//! (invariant 9): while this node leads, a [`scheduler`] fires due alarms
//! by committing outbox entries (invariant 5) and a [`delivery`] worker
//! sends them — to the log, a webhook or email ([`channels`]) — with
//! their idempotency keys (invariant 6), committing each result. When the
//! node stops leading both stop; the next leader resumes from the
//! replicated index and outbox.
//!
//! Architecture invariants:
//! - Nothing here writes except through `Cluster::propose`; nothing is
//!   sent that is not committed first.
//! - Role follows leadership, never configuration.
//! - Planning ([`plan`]) is pure: the same state and `now` give the same
//!   command.
#![deny(missing_docs)]

pub mod channels;
pub mod config;
mod delivery;
pub mod inspect;
pub mod metrics;
pub mod payload;
pub mod plan;
mod scheduler;

use std::sync::Arc;

use tocsin_cluster::{Clock, Cluster};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use config::{AlarmConfig, SmtpConfig, WebhookConfig};
pub use metrics::AlarmMetrics;

use crate::channels::email::{EmailConfigError, EmailSender};
use crate::channels::webhook::WebhookSender;
use crate::delivery::{DeliveryWorker, Senders};
use crate::scheduler::Scheduler;

/// Why the alarm engine cannot start.
#[derive(Debug, thiserror::Error)]
pub enum AlarmError {
    /// The SMTP settings are unusable.
    #[error(transparent)]
    Email(#[from] EmailConfigError),
}

/// The running engine; dropping it does not stop it, [`AlarmEngine::stop`] does.
pub struct AlarmEngine {
    cancel: CancellationToken,
    supervisor: JoinHandle<()>,
}

impl AlarmEngine {
    /// Stops the scheduler and the workers.
    pub async fn stop(self) {
        self.cancel.cancel();
        let _ = self.supervisor.await;
    }
}

/// Starts the engine on `cluster`; it fires only while the node leads.
pub fn start(
    cluster: Cluster,
    clock: Arc<dyn Clock>,
    config: AlarmConfig,
    metrics: AlarmMetrics,
) -> Result<AlarmEngine, AlarmError> {
    let email = match &config.smtp {
        Some(smtp) => Some(EmailSender::new(
            &smtp.url,
            &smtp.from,
            config.webhook_timeout,
        )?),
        None => None,
    };
    let senders = Senders {
        webhook: WebhookSender::new(config.webhook_timeout),
        email,
    };
    let cancel = CancellationToken::new();
    let supervisor = tokio::spawn(supervise(
        cluster,
        clock,
        config,
        metrics,
        senders,
        cancel.clone(),
    ));
    Ok(AlarmEngine { cancel, supervisor })
}

/// Runs the scheduler and the worker for each term of leadership.
async fn supervise(
    cluster: Cluster,
    clock: Arc<dyn Clock>,
    config: AlarmConfig,
    metrics: AlarmMetrics,
    senders: Senders,
    cancel: CancellationToken,
) {
    let mut leadership = cluster.leadership();
    loop {
        tokio::select! {
            () = cancel.cancelled() => return,
            leading = leadership.wait_for(|leading| *leading) => if leading.is_err() { return },
        }
        let term = cancel.child_token();
        let scheduler = Scheduler {
            cluster: cluster.clone(),
            clock: clock.clone(),
            config: config.clone(),
            metrics: metrics.clone(),
        };
        let worker = DeliveryWorker {
            cluster: cluster.clone(),
            clock: clock.clone(),
            config: config.clone(),
            metrics: metrics.clone(),
            senders: senders.clone(),
        };
        let scheduling = tokio::spawn(scheduler.run(term.clone()));
        let delivering = tokio::spawn(worker.run(term.clone()));
        tokio::select! {
            () = cancel.cancelled() => {}
            _ = leadership.wait_for(|leading| !*leading) => {
                tracing::info!("this node no longer leads: alarms stop here");
            }
        }
        term.cancel();
        let _ = scheduling.await;
        let _ = delivering.await;
        if cancel.is_cancelled() {
            return;
        }
    }
}
