//! Looking at alarms without firing them: what is coming up for a user,
//! and why an object's reminder will (or will not) ring.
//!
//! Owns the read-only views behind `tocsin alarms upcoming` and `tocsin
//! alarms explain`. Both compute with exactly the code the scheduler uses
//! (the calendar core through [`tocsin_store::AlarmInputs`]), so what they
//! show is what will fire. They never write.

use serde::{Deserialize, Serialize};
use tocsin_calendar::{
    AlarmPolicy, CalendarError, CalendarObject as ParsedObject, Instant, Limits, UserView, Zone,
};
use tocsin_store::{AlarmInputs, AlarmSubject, Reader, StoreError};

/// One alarm that will fire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UpcomingAlarm {
    /// When (RFC 3339, UTC).
    pub trigger: String,
    /// For whom.
    pub user: String,
    /// The object's name in its calendar.
    pub href: String,
    /// The iCalendar UID.
    pub uid: String,
    /// The instance, when recurring.
    pub recurrence_id: Option<String>,
    /// The VALARM's identity.
    pub alarm_id: String,
    /// DISPLAY, AUDIO, EMAIL…
    pub action: String,
    /// The instance's SUMMARY.
    pub summary: Option<String>,
}

/// Index rows looked at per upcoming-alarms request, beyond the count asked for.
const INDEX_ROWS_PER_REQUEST_MAX: usize = 1000;

/// The next `count` alarms of `user` (or of everyone), earliest first.
pub fn upcoming(
    reader: &Reader,
    user: Option<&str>,
    now: Instant,
    count: usize,
    policy: &AlarmPolicy,
) -> Result<Vec<UpcomingAlarm>, StoreError> {
    let limits = Limits {
        object_bytes_max: usize::MAX,
        components_max: usize::MAX,
        properties_max: usize::MAX,
    };
    reader.read(|q| {
        let rows = q.index_rows(user, count.clamp(1, INDEX_ROWS_PER_REQUEST_MAX))?;
        let mut found = Vec::new();
        for (object_id, _) in rows {
            let Some(object) = q.object_by_id(&object_id)? else {
                continue;
            };
            let Ok(parsed) = ParsedObject::parse(&object.ical, &limits) else {
                continue;
            };
            let Some(inputs) = q.alarm_inputs(&object.calendar_id, Some(&object.id))? else {
                continue;
            };
            for subject in inputs
                .subjects
                .iter()
                .filter(|s| user.is_none_or(|u| u == s.user))
            {
                let view = view_of(&inputs, subject);
                let after = subject.watermark.unwrap_or(now);
                for due in tocsin_calendar::upcoming_alarms(&parsed, &view, after, count, policy) {
                    found.push(UpcomingAlarm {
                        trigger: due.trigger.to_rfc3339(),
                        user: due.user.clone(),
                        href: object.href.clone(),
                        uid: due.uid.clone(),
                        recurrence_id: due.recurrence_id.clone(),
                        alarm_id: due.alarm_id.clone(),
                        action: due.action.as_str().to_owned(),
                        summary: due.summary.clone(),
                    });
                }
            }
        }
        found.sort_by(|a, b| a.trigger.cmp(&b.trigger).then(a.uid.cmp(&b.uid)));
        found.truncate(count);
        Ok(found)
    })
}

fn view_of<'a>(inputs: &'a AlarmInputs, subject: &'a AlarmSubject) -> UserView<'a> {
    UserView {
        user: &subject.user,
        addresses: &subject.addresses,
        zone: &inputs.zone,
        alarm_overlay: subject.overlay.as_ref(),
        default_alarms: subject.defaults.as_ref(),
    }
}

/// The answer of `tocsin alarms explain`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    /// The object's `next_check` as the index would hold it (RFC 3339), or
    /// null when no alarm can fire again.
    pub next_check: Option<String>,
    /// Whether `next_check` is only a re-check (nothing due before it).
    pub next_check_is_recheck: bool,
    /// The next alarms, earliest first.
    pub alarms: Vec<ExplainedAlarm>,
}

/// One alarm in an explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExplainedAlarm {
    /// The iCalendar UID.
    pub uid: String,
    /// The instance (UTC `…Z` or a DATE), null when not recurring.
    pub recurrence_id: Option<String>,
    /// The VALARM's identity.
    pub alarm_id: String,
    /// DISPLAY, AUDIO, EMAIL…
    pub action: String,
    /// When (RFC 3339, UTC).
    pub trigger: String,
    /// When, in the zone given.
    pub trigger_local: String,
    /// The instance's SUMMARY.
    pub summary: Option<String>,
}

/// Explains `text` as a new object stored at `now` in a calendar of `zone`.
pub fn explain(
    text: &str,
    now: Instant,
    zone: Zone,
    count: usize,
    policy: &AlarmPolicy,
) -> Result<Explanation, CalendarError> {
    let parsed = ParsedObject::parse(text, &Limits::default())?;
    let inputs = AlarmInputs {
        zone,
        zone_fingerprint: String::new(),
        subjects: vec![AlarmSubject {
            user: "explain".to_owned(),
            addresses: Vec::new(),
            watermark: None,
            overlay: None,
            defaults: None,
        }],
    };
    let next = inputs.next_check(&parsed, now, policy);
    let view = view_of(&inputs, &inputs.subjects[0]);
    let alarms = tocsin_calendar::upcoming_alarms(&parsed, &view, now, count, policy)
        .into_iter()
        .map(|due| ExplainedAlarm {
            trigger_local: inputs
                .zone
                .to_local(due.trigger)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string(),
            uid: due.uid,
            recurrence_id: due.recurrence_id,
            alarm_id: due.alarm_id,
            action: due.action.as_str().to_owned(),
            trigger: due.trigger.to_rfc3339(),
            summary: due.summary,
        })
        .collect();
    Ok(Explanation {
        next_check: next.map(|n| n.at.to_rfc3339()),
        next_check_is_recheck: next.is_some_and(|n| n.is_recheck),
        alarms,
    })
}
