//! The scheduler: fires due alarms, on the leader only.
//!
//! It sleeps until the earliest `next_check` in the index and wakes at
//! once when a write is applied (a write may bring an alarm forward) —
//! there is no polling interval. Each round takes a bounded batch of due
//! objects, fairly across owners, plans each with [`crate::plan`] and
//! commits one command per object (invariant 5: intent before action).
//! The next round is planned while the last one commits, and skips the
//! objects the last one holds.
//! A restart, or a new leader, resumes from the index; nothing scans
//! every object.
//!
//! It must never send anything: deliveries are the worker's, after the
//! intent is committed.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tocsin_calendar::Instant;
use tocsin_cluster::{Clock, Cluster};
use tocsin_store::{
    AlarmSettings, Calendar, CalendarId, Command, DueObject, ObjectId, Outcome, PropName, Rejection,
};
use tokio_util::sync::CancellationToken;

use crate::config::AlarmConfig;
use crate::metrics::AlarmMetrics;
use crate::plan::{PlanInput, plan_fire};

/// How long to pause when a whole round found only stale plans, so a
/// state that keeps moving cannot make the scheduler spin.
const STALE_ROUND_PAUSE: Duration = Duration::from_millis(20);
/// Firing commands proposed at once, per round.
const FIRES_IN_FLIGHT_MAX: usize = 256;
/// Due objects read per round, in batches: the round takes owners in turn
/// among the earliest this many batches.
const FAIRNESS_WINDOW_BATCHES: usize = 2;
/// Rounds under way at once: while one commits, the next is planned.
const ROUNDS_IN_FLIGHT_MAX: usize = 2;
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
        let mut rounds = Rounds::default();
        tracing::info!("alarm scheduler started (this node leads)");
        loop {
            if cancel.is_cancelled() {
                break;
            }
            if rounds.is_full() {
                self.finish_one(&mut rounds, &cancel).await;
                continue;
            }
            let now = self.clock.now();
            let batch = match self.next_batch(now, &rounds.objects) {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::error!(error = %e, "scheduler cannot read the alarm index");
                    pause(&cancel, Duration::from_secs(1)).await;
                    continue;
                }
            };
            if !batch.is_empty() {
                self.start_round(batch, now, &mut rounds).await;
                continue;
            }
            if !rounds.is_empty() {
                // Everything due is already being fired.
                self.finish_one(&mut rounds, &cancel).await;
                continue;
            }
            let wait = self.time_to_next_check(now);
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(wait) => {}
                changed = applied.changed() => if changed.is_err() { break },
            }
        }
        // Firings under way may still commit; their objects are not
        // planned again here, and a plan that lost the race is rejected
        // as stale by its compare-and-swap.
        rounds.running.detach_all();
        tracing::info!("alarm scheduler stopped");
    }

    /// Up to a batch of due objects, none of them in a round under way.
    fn next_batch(
        &self,
        now: Instant,
        in_flight: &HashSet<ObjectId>,
    ) -> Result<Vec<DueObject>, tocsin_store::StoreError> {
        let batch_max = self.config.scheduler_batch_objects_max;
        let due = self
            .cluster
            .reader()
            .read(|q| q.due_objects(now, batch_max * FAIRNESS_WINDOW_BATCHES + in_flight.len()))?;
        Ok(fair_batch(not_in_flight(due, in_flight), batch_max))
    }

    /// Plans a batch and proposes its commands in the background, so the
    /// next batch is planned while this one commits.
    async fn start_round(&self, batch: Vec<DueObject>, now: Instant, rounds: &mut Rounds) {
        let ids: Vec<ObjectId> = batch.iter().map(|d| d.object_id.clone()).collect();
        let commands = match self.plan_off_the_runtime(batch, now).await {
            Ok(commands) => commands,
            Err(e) => {
                tracing::error!(error = %e, "scheduler cannot plan");
                return;
            }
        };
        rounds.objects.extend(ids.iter().cloned());
        let cluster = self.cluster.clone();
        let metrics = self.metrics.clone();
        rounds
            .running
            .spawn(async move { (commit_round(commands, &cluster, &metrics).await, ids) });
    }

    /// Waits for one round to end and forgets its objects; pauses after a
    /// round that committed nothing, so a state that keeps moving cannot
    /// make the scheduler spin.
    async fn finish_one(&self, rounds: &mut Rounds, cancel: &CancellationToken) {
        let finished = tokio::select! {
            () = cancel.cancelled() => return,
            finished = rounds.running.join_next() => finished,
        };
        let Some(Ok((progressed, ids))) = finished else {
            return;
        };
        for id in &ids {
            rounds.objects.remove(id);
        }
        if !progressed {
            pause(cancel, STALE_ROUND_PAUSE).await;
        }
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

    /// Planning a batch reads SQLite and expands recurrences for a few
    /// milliseconds per hundred objects; on a blocking thread it does not
    /// hold up HTTP requests and deliveries sharing the runtime.
    async fn plan_off_the_runtime(
        &self,
        batch: Vec<DueObject>,
        now: Instant,
    ) -> Result<Vec<Command>, String> {
        let cluster = self.cluster.clone();
        let config = self.config.clone();
        tokio::task::spawn_blocking(move || plan_batch(&cluster, &config, &batch, now))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| e.to_string())
    }
}

/// The rounds under way: at most [`ROUNDS_IN_FLIGHT_MAX`], and the
/// objects they hold.
#[derive(Default)]
struct Rounds {
    running: tokio::task::JoinSet<(bool, Vec<ObjectId>)>,
    objects: HashSet<ObjectId>,
}

impl Rounds {
    fn is_full(&self) -> bool {
        self.running.len() >= ROUNDS_IN_FLIGHT_MAX
    }

    fn is_empty(&self) -> bool {
        self.running.is_empty()
    }
}

/// Proposes one round's commands; true if any was committed.
async fn commit_round(commands: Vec<Command>, cluster: &Cluster, metrics: &AlarmMetrics) -> bool {
    let mut progressed = false;
    let mut pending = propose_all(commands, cluster);
    while let Some((deliveries, skipped, outcome)) = pending.next().await {
        match outcome {
            Ok(Outcome::Applied { .. }) => {
                progressed = true;
                metrics.fired.inc_by(deliveries);
                metrics.skipped.inc_by(skipped);
            }
            Ok(Outcome::Rejected(Rejection::Stale | Rejection::NotFound)) => {
                metrics.stale_plans.inc();
            }
            Ok(Outcome::Rejected(other)) => tracing::warn!(?other, "firing rejected"),
            Err(e) => {
                tracing::warn!(error = %e, "firing not committed; the next leader fires it");
            }
        }
    }
    progressed
}

/// Loads each chosen object (an object deleted since the index was read
/// is passed over: its index row went with it) and plans it.
fn plan_batch(
    cluster: &Cluster,
    config: &AlarmConfig,
    batch: &[DueObject],
    now: Instant,
) -> Result<Vec<Command>, tocsin_store::StoreError> {
    cluster.reader().read(|q| {
        let mut settings: HashMap<String, AlarmSettings> = HashMap::new();
        let mut calendars: HashMap<CalendarId, (Calendar, String)> = HashMap::new();
        let mut commands = Vec::with_capacity(batch.len());
        for due in batch {
            let Some(object) = q.object_by_id(&due.object_id)? else {
                continue;
            };
            if !calendars.contains_key(&due.calendar_id) {
                let Some(named) = calendar_and_name(q, &due.calendar_id)? else {
                    continue;
                };
                calendars.insert(due.calendar_id.clone(), named);
            }
            let Some((calendar, name)) = calendars.get(&due.calendar_id) else {
                continue;
            };
            let Some(inputs) = q.alarm_inputs(&calendar.id, Some(&object.id))? else {
                continue;
            };
            for subject in &inputs.subjects {
                if !settings.contains_key(&subject.user)
                    && let Some(s) = q.alarm_settings(&subject.user)?
                {
                    settings.insert(subject.user.clone(), s);
                }
            }
            let input = PlanInput {
                object: &object,
                calendar,
                calendar_name: name,
                inputs: &inputs,
                settings: &settings,
                now,
            };
            commands.push(Command::FireAlarms(Box::new(plan_fire(&input, config))));
        }
        Ok(commands)
    })
}

/// A calendar with the name alarms show for it: its display name, else
/// its URL segment.
fn calendar_and_name(
    q: &tocsin_store::Query<'_>,
    id: &CalendarId,
) -> Result<Option<(Calendar, String)>, tocsin_store::StoreError> {
    let Some(calendar) = q.calendar(id)? else {
        return Ok(None);
    };
    let name = q
        .calendar_prop(id, &PropName::new("DAV:", "displayname"))?
        .unwrap_or_else(|| calendar.slug.clone());
    Ok(Some((calendar, name)))
}

/// The due objects no round under way holds: a round's objects are due
/// until its firings commit, and planning them twice would only make
/// stale plans.
fn not_in_flight(due: Vec<DueObject>, in_flight: &HashSet<ObjectId>) -> Vec<DueObject> {
    due.into_iter()
        .filter(|d| !in_flight.contains(&d.object_id))
        .collect()
}

/// Up to `max` objects, taking owners in turn so one user with many due
/// objects cannot hold back everyone else's alarms.
fn fair_batch(due: Vec<DueObject>, max: usize) -> Vec<DueObject> {
    let mut by_owner: Vec<(String, VecDeque<DueObject>)> = Vec::new();
    for object in due {
        match by_owner
            .iter_mut()
            .find(|(owner, _)| *owner == object.owner)
        {
            Some((_, queue)) => queue.push_back(object),
            None => by_owner.push((object.owner.clone(), VecDeque::from([object]))),
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

    fn due(owner: &str, n: usize) -> DueObject {
        DueObject {
            object_id: ObjectId(format!("{owner}{n}")),
            calendar_id: CalendarId(owner.into()),
            owner: owner.into(),
            next_check: Instant::from_millis(0),
        }
    }

    #[test]
    fn a_batch_takes_owners_in_turn() {
        let mut objects: Vec<DueObject> = (0..10).map(|n| due("busy", n)).collect();
        objects.push(due("quiet", 0));
        let batch = fair_batch(objects, 4);
        let ids: Vec<&str> = batch.iter().map(|d| d.object_id.0.as_str()).collect();
        assert_eq!(ids, ["busy0", "quiet0", "busy1", "busy2"]);
    }

    #[test]
    fn objects_of_a_round_under_way_are_not_planned_again() {
        let due_now: Vec<DueObject> = (0..4).map(|n| due("a", n)).collect();
        let in_flight: HashSet<ObjectId> = [ObjectId("a1".into()), ObjectId("a3".into())].into();
        let waiting = not_in_flight(due_now, &in_flight);
        let ids: Vec<&str> = waiting.iter().map(|d| d.object_id.0.as_str()).collect();
        assert_eq!(ids, ["a0", "a2"]);
    }
}
