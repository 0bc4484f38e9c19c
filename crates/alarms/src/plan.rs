//! Planning one object's firing: which alarms are due, for whom, on which
//! channels, and where the index and watermarks move.
//!
//! Owns turning a due object into one [`FireAlarms`] command (invariants
//! 3–8): for each user, the alarms in (watermark, now] become deliveries —
//! one per channel and recipient, each with its idempotency key — or, if
//! overdue beyond the lateness window, skipped records with the reason;
//! the watermarks move to `now`; `next_check` is recomputed from the
//! object. Pure: the caller reads the store and the clock, and commits.

use std::collections::HashMap;

use tocsin_calendar::{CalendarObject as ParsedObject, DueAlarm, Instant, Limits, UserView};
use tocsin_store::{
    AlarmInputs, AlarmSettings, Calendar, CalendarObject, FireAlarms, NewDelivery, WatermarkAdvance,
};

use crate::config::AlarmConfig;
use crate::payload::{AlarmPayload, CalendarRef};

/// What planning needs beyond the configuration.
pub struct PlanInput<'a> {
    /// The object, as stored.
    pub object: &'a CalendarObject,
    /// Its calendar.
    pub calendar: &'a Calendar,
    /// The calendar's display name.
    pub calendar_name: &'a str,
    /// Zone and users (with watermarks and overlays).
    pub inputs: &'a AlarmInputs,
    /// Users' channel choices.
    pub settings: &'a HashMap<String, AlarmSettings>,
    /// The leader's now.
    pub now: Instant,
}

/// Limits for re-reading stored objects: they were validated when
/// written, under limits an operator may since have lowered.
fn stored_object_limits() -> Limits {
    Limits {
        object_bytes_max: usize::MAX,
        components_max: usize::MAX,
        properties_max: usize::MAX,
    }
}

/// Plans the firing of one due object.
pub fn plan_fire(input: &PlanInput<'_>, config: &AlarmConfig) -> FireAlarms {
    let now = input.now;
    let watermarks = input
        .inputs
        .subjects
        .iter()
        .map(|s| WatermarkAdvance {
            user: s.user.clone(),
            from: s.watermark,
            to: s.watermark.map_or(now, |w| w.max(now)),
        })
        .collect();
    let Ok(parsed) = ParsedObject::parse(&input.object.ical, &stored_object_limits()) else {
        tracing::error!(object = %input.object.id, "a stored object no longer parses; its alarms are dropped from the index");
        return fire(input, watermarks, Vec::new(), None);
    };
    let mut deliveries = Vec::new();
    for subject in &input.inputs.subjects {
        let view = UserView {
            user: &subject.user,
            addresses: &subject.addresses,
            zone: &input.inputs.zone,
            alarm_overlay: subject.overlay.as_ref(),
            default_alarms: subject.defaults.as_ref(),
        };
        let after = subject.watermark.unwrap_or(now);
        for due in tocsin_calendar::due_alarms(&parsed, &view, after, now, &config.policy) {
            deliveries.extend(deliveries_of(input, config, &subject.addresses, &due));
        }
    }
    let moved = AlarmInputs {
        zone: input.inputs.zone.clone(),
        zone_fingerprint: input.inputs.zone_fingerprint.clone(),
        subjects: input
            .inputs
            .subjects
            .iter()
            .map(|s| tocsin_store::AlarmSubject {
                watermark: Some(s.watermark.map_or(now, |w| w.max(now))),
                ..s.clone()
            })
            .collect(),
    };
    let next_check = moved.next_check(&parsed, now, &config.policy).map(|n| n.at);
    fire(input, watermarks, deliveries, next_check)
}

fn fire(
    input: &PlanInput<'_>,
    watermarks: Vec<WatermarkAdvance>,
    deliveries: Vec<NewDelivery>,
    next_check: Option<Instant>,
) -> FireAlarms {
    FireAlarms {
        object_id: input.object.id.clone(),
        expected_etag: input.object.etag.clone(),
        watermarks,
        deliveries,
        next_check,
        at: input.now,
    }
}

/// The channels a user's alarm goes to: their choice, else the server's
/// default; an EMAIL alarm always includes email.
fn channels_for(
    config: &AlarmConfig,
    settings: Option<&AlarmSettings>,
    due: &DueAlarm,
) -> Vec<String> {
    let mut channels: Vec<String> = settings
        .map(|s| s.channels.clone())
        .unwrap_or_else(|| config.default_channels.clone());
    if due.action == tocsin_calendar::AlarmAction::Email && !channels.iter().any(|c| c == "email") {
        channels.push("email".to_owned());
    }
    channels.dedup();
    channels
}

/// Whom an email goes to: the alarm's attendees for an EMAIL alarm, but
/// only the user's own addresses unless the operator allows others.
fn email_recipients(config: &AlarmConfig, addresses: &[String], due: &DueAlarm) -> Vec<String> {
    let own = |a: &String| addresses.iter().any(|mine| mine.eq_ignore_ascii_case(a));
    let mut recipients: Vec<String> = if due.action == tocsin_calendar::AlarmAction::Email {
        due.recipients
            .iter()
            .filter(|r| config.email_other_recipients || own(r))
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    if recipients.is_empty()
        && let Some(first) = addresses.iter().find(|a| a.starts_with("mailto:"))
    {
        recipients.push(first.clone());
    }
    recipients
}

fn deliveries_of(
    input: &PlanInput<'_>,
    config: &AlarmConfig,
    addresses: &[String],
    due: &DueAlarm,
) -> Vec<NewDelivery> {
    let settings = input.settings.get(&due.user);
    let mut targets: Vec<(String, String)> = Vec::new();
    for channel in channels_for(config, settings, due) {
        match channel.as_str() {
            "log" => targets.push((channel, "log".to_owned())),
            "webhook" => {
                let url = settings
                    .and_then(|s| s.webhook_url.clone())
                    .or_else(|| config.webhook.as_ref().map(|w| w.url.clone()));
                if let Some(url) = url {
                    targets.push((channel, url));
                }
            }
            "email" if config.smtp.is_some() => {
                for recipient in email_recipients(config, addresses, due) {
                    targets.push((channel.clone(), recipient));
                }
            }
            _ => {}
        }
    }
    let overdue = input.now.since(due.trigger);
    let late_beyond_window = overdue.millis() > config.lateness_window.as_millis() as i64;
    targets
        .into_iter()
        .map(|(channel, recipient)| {
            let key = due.idempotency_key(&input.object.id.0, &format!("{channel}:{recipient}"));
            let payload = payload_of(input, due, &key);
            NewDelivery {
                skipped: late_beyond_window.then(|| {
                    format!(
                        "overdue by {}s, beyond the lateness window of {}s",
                        overdue.millis() / 1000,
                        config.lateness_window.as_secs()
                    )
                }),
                key,
                user: due.user.clone(),
                channel,
                recipient,
                trigger: due.trigger,
                payload: serde_json::to_string(&payload).unwrap_or_default(),
            }
        })
        .collect()
}

fn payload_of(input: &PlanInput<'_>, due: &DueAlarm, key: &str) -> AlarmPayload {
    let zone = &input.inputs.zone;
    AlarmPayload {
        user: due.user.clone(),
        calendar: CalendarRef {
            id: input.calendar.id.0.clone(),
            name: input.calendar_name.to_owned(),
        },
        href: input.object.href.clone(),
        uid: due.uid.clone(),
        recurrence_id: due.recurrence_id.clone(),
        summary: due.summary.clone(),
        description: due.description.clone(),
        location: due.location.clone(),
        start: due.instance_start.map(Instant::to_rfc3339),
        end: due.instance_end.map(Instant::to_rfc3339),
        start_local: due.instance_start.map(|s| {
            let local = zone.to_local(s);
            if due.all_day {
                local.format("%Y-%m-%d").to_string()
            } else {
                local.format("%Y-%m-%d %H:%M").to_string()
            }
        }),
        all_day: due.all_day,
        time_zone: zone.name().to_owned(),
        action: due.action.as_str().to_owned(),
        trigger: due.trigger.to_rfc3339(),
        alarm_id: due.alarm_id.clone(),
        idempotency_key: key.to_owned(),
    }
}
