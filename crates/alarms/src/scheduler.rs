//! The scheduler: fires due alarms, on the leader only.
//!
//! It sleeps until the earliest `next_check` in the index and wakes at
//! once when a write is applied (a write may bring an alarm forward) —
//! there is no polling interval. Each round takes a bounded batch of due
//! objects, fairly across owners, plans each with [`crate::plan`] and
//! commits one command per object (invariant 5: intent before action).
//! A restart, or a new leader, resumes from the index; nothing scans
//! every object.
//!
//! It must never send anything: deliveries are the worker's, after the
//! intent is committed.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tocsin_calendar::Instant;
use tocsin_cluster::{Clock, Cluster};
use tocsin_store::{AlarmSettings, Command, DueObject, Outcome, PropName, Rejection};
use tokio_util::sync::CancellationToken;

use crate::config::AlarmConfig;
use crate::metrics::AlarmMetrics;
use crate::plan::{PlanInput, plan_fire};

/// How long to pause when a whole round found only stale plans, so a
/// state that keeps moving cannot make the scheduler spin.
const STALE_ROUND_PAUSE: Duration = Duration::from_millis(20);
/// Firing commands proposed at once.
const FIRES_IN_FLIGHT_MAX: usize = 256;
/// Longest single sleep; the loop re-reads the index at least this often.
const SLEEP_MAX: Duration = Duration::from_secs(60);

pub(crate) struct Scheduler {
    pub(crate) cluster: Cluster,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: AlarmConfig,
    pub(crate) metrics: AlarmMetrics,
}

impl Scheduler {
    pub(crate) async fn run(self, cancel: CancellationToken) {
        let mut applied = self.cluster.applied();
        tracing::info!("alarm scheduler started (this node leads)");
        loop {
            if cancel.is_cancelled() {
                break;
            }
            let now = self.clock.now();
            let batch_max = self.config.scheduler_batch_objects_max;
            let read = self
                .cluster
                .reader()
                .read(|q| q.due_objects(now, batch_max * 4));
            let due = match read {
                Ok(due) => due,
                Err(e) => {
                    tracing::error!(error = %e, "scheduler cannot read the alarm index");
                    pause(&cancel, Duration::from_secs(1)).await;
                    continue;
                }
            };
            if due.is_empty() {
                let wait = self.time_to_next_check(now);
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(wait) => {}
                    changed = applied.changed() => if changed.is_err() { break },
                }
                continue;
            }
            let progressed = self.fire_round(fair_batch(due, batch_max), now).await;
            if !progressed {
                pause(&cancel, STALE_ROUND_PAUSE).await;
            }
        }
        tracing::info!("alarm scheduler stopped");
    }

    fn time_to_next_check(&self, now: Instant) -> Duration {
        match self.cluster.reader().read(|q| q.next_due()) {
            Ok(Some(next)) => {
                let millis = next.since(now).millis().max(1) as u64;
                Duration::from_millis(millis).min(SLEEP_MAX)
            }
            Ok(None) => SLEEP_MAX,
            Err(_) => Duration::from_secs(1),
        }
    }

    /// Plans and commits one batch; true if anything was committed.
    async fn fire_round(&self, batch: Vec<DueObject>, now: Instant) -> bool {
        let commands = match self.plan_batch(&batch, now) {
            Ok(commands) => commands,
            Err(e) => {
                tracing::error!(error = %e, "scheduler cannot plan");
                return false;
            }
        };
        let mut progressed = false;
        let mut pending = propose_all(commands, &self.cluster);
        while let Some((deliveries, skipped, outcome)) = pending.next().await {
            match outcome {
                Ok(Outcome::Applied { .. }) => {
                    progressed = true;
                    self.metrics.fired.inc_by(deliveries);
                    self.metrics.skipped.inc_by(skipped);
                }
                Ok(Outcome::Rejected(Rejection::Stale | Rejection::NotFound)) => {
                    self.metrics.stale_plans.inc();
                }
                Ok(Outcome::Rejected(other)) => tracing::warn!(?other, "firing rejected"),
                Err(e) => {
                    tracing::warn!(error = %e, "firing not committed; the next leader fires it");
                }
            }
        }
        progressed
    }

    fn plan_batch(
        &self,
        batch: &[DueObject],
        now: Instant,
    ) -> Result<Vec<Command>, tocsin_store::StoreError> {
        self.cluster.reader().read(|q| {
            let mut settings: HashMap<String, AlarmSettings> = HashMap::new();
            let mut commands = Vec::with_capacity(batch.len());
            for due in batch {
                let Some(inputs) = q.alarm_inputs(&due.calendar.id, Some(&due.object.id))? else {
                    continue;
                };
                for subject in &inputs.subjects {
                    if !settings.contains_key(&subject.user)
                        && let Some(s) = q.alarm_settings(&subject.user)?
                    {
                        settings.insert(subject.user.clone(), s);
                    }
                }
                let name = q
                    .calendar_prop(&due.calendar.id, &PropName::new("DAV:", "displayname"))?
                    .unwrap_or_else(|| due.calendar.slug.clone());
                let input = PlanInput {
                    object: &due.object,
                    calendar: &due.calendar,
                    calendar_name: &name,
                    inputs: &inputs,
                    settings: &settings,
                    now,
                };
                commands.push(Command::FireAlarms(Box::new(plan_fire(
                    &input,
                    &self.config,
                ))));
            }
            Ok(commands)
        })
    }
}

/// Up to `max` objects, taking owners in turn so one user with many due
/// objects cannot hold back everyone else's alarms.
fn fair_batch(due: Vec<DueObject>, max: usize) -> Vec<DueObject> {
    let mut by_owner: Vec<(String, VecDeque<DueObject>)> = Vec::new();
    for object in due {
        match by_owner
            .iter_mut()
            .find(|(owner, _)| *owner == object.calendar.owner)
        {
            Some((_, queue)) => queue.push_back(object),
            None => by_owner.push((object.calendar.owner.clone(), VecDeque::from([object]))),
        }
    }
    let mut batch = Vec::with_capacity(max);
    while batch.len() < max {
        let mut took = false;
        for (_, queue) in &mut by_owner {
            if batch.len() >= max {
                break;
            }
            if let Some(object) = queue.pop_front() {
                batch.push(object);
                took = true;
            }
        }
        if !took {
            break;
        }
    }
    batch
}

async fn pause(cancel: &CancellationToken, how_long: Duration) {
    tokio::select! {
        () = cancel.cancelled() => {}
        () = tokio::time::sleep(how_long) => {}
    }
}

type Fired = (u64, u64, Result<Outcome, tocsin_cluster::ProposeError>);

/// Proposes every command, at most [`FIRES_IN_FLIGHT_MAX`] at a time
/// (they share log entries and fsyncs), yielding each outcome with its
/// counts of pending and skipped deliveries.
fn propose_all(commands: Vec<Command>, cluster: &Cluster) -> FireStream {
    FireStream {
        waiting: commands.into(),
        running: tokio::task::JoinSet::new(),
        cluster: cluster.clone(),
    }
}

struct FireStream {
    waiting: VecDeque<Command>,
    running: tokio::task::JoinSet<Fired>,
    cluster: Cluster,
}

impl FireStream {
    async fn next(&mut self) -> Option<Fired> {
        while self.running.len() < FIRES_IN_FLIGHT_MAX {
            let Some(command) = self.waiting.pop_front() else {
                break;
            };
            let (pending, skipped) = match &command {
                Command::FireAlarms(fire) => {
                    let skipped = fire
                        .deliveries
                        .iter()
                        .filter(|d| d.skipped.is_some())
                        .count() as u64;
                    (fire.deliveries.len() as u64 - skipped, skipped)
                }
                _ => (0, 0),
            };
            let cluster = self.cluster.clone();
            self.running
                .spawn(async move { (pending, skipped, cluster.propose(command).await) });
        }
        match self.running.join_next().await {
            Some(Ok(fired)) => Some(fired),
            Some(Err(e)) => Some((
                0,
                0,
                Err(tocsin_cluster::ProposeError::Unavailable(e.to_string())),
            )),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tocsin_store::{Calendar, CalendarId, CalendarObject, ObjectId};

    fn due(owner: &str, n: usize) -> DueObject {
        let at = Instant::from_millis(0);
        DueObject {
            object: CalendarObject {
                id: ObjectId(format!("{owner}{n}")),
                calendar_id: CalendarId(owner.into()),
                href: String::new(),
                uid: String::new(),
                kind: "VEVENT".into(),
                ical: String::new(),
                etag: String::new(),
                revision: 0,
                created: at,
                modified: at,
            },
            calendar: Calendar {
                id: CalendarId(owner.into()),
                owner: owner.into(),
                slug: "c".into(),
                components: vec![],
                revision: 0,
                created: at,
                updated: at,
            },
            next_check: at,
        }
    }

    #[test]
    fn a_batch_takes_owners_in_turn() {
        let mut objects: Vec<DueObject> = (0..10).map(|n| due("busy", n)).collect();
        objects.push(due("quiet", 0));
        let batch = fair_batch(objects, 4);
        let ids: Vec<&str> = batch.iter().map(|d| d.object.id.0.as_str()).collect();
        assert_eq!(ids, ["busy0", "quiet0", "busy1", "busy2"]);
    }
}
