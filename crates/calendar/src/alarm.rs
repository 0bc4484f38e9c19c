//! Alarm semantics: which alarms a user has on an object, when they fire,
//! and when the object must next be looked at (`next_check`).
//!
//! Owns: VALARM parsing into `Alarm`, per-user overlays and default alarms,
//! `due_alarms`, `upcoming_alarms`, `next_check` and `DueAlarm`'s
//! idempotency key (DESIGN.md invariant 6).
//! Must never: read a clock (`now` and watermarks are arguments — invariant
//! 2), copy a previously computed next-check value (invariant 4: it is
//! always recomputed from the object itself, the seed thread's bug), or fire
//! an alarm for a cancelled, excluded or declined instance.
//!
//! Rules, each pinned by a test in `tests/alarms.rs`:
//! - RELATED=START/END (END from DTEND, DURATION or DUE); day parts of a
//!   trigger are nominal (calendar days in the event's zone).
//! - An absolute trigger fires once for its component, never per instance.
//! - REPEAT/DURATION add `repeat` more triggers, `repeat_index` 1..=repeat.
//! - ACKNOWLEDGED (RFC 9074) suppresses triggers at or before it.
//! - A snooze alarm (RELATED-TO;RELTYPE=SNOOZE) replaces its parent: the
//!   parent's triggers at or before the snooze's are suppressed.
//! - Alarms are identified by UID, else X-WR-ALARMUID, else a hash of their
//!   content; identical alarms (same instance, trigger, action, recipients)
//!   fire once.
//! - Rule instances closer than `min_instance_interval_secs` to the
//!   previous alarmed rule instance get no alarm (MINUTELY/SECONDLY flood
//!   guard); overrides are explicit data and are never skipped.

use crate::error::CalendarError;
use crate::instance::Instance;
use crate::instant::{Duration, Instant};
use crate::object::{CalendarObject, Comp, ComponentKind, Status, normalise_address};
use crate::value::{DateValue, Dur};
use crate::zone::Zone;
use calcard::icalendar::{
    ICalendarAction, ICalendarComponent, ICalendarComponentType, ICalendarEntry,
    ICalendarParameterName, ICalendarParameterValue, ICalendarProperty, ICalendarRelated,
    ICalendarRelationshipType, ICalendarValue,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// REPEAT values above this are clamped.
pub(crate) const ALARM_REPEATS_MAX: u32 = 1_000;
/// Instances examined by one alarm computation: a runaway guard, far above
/// what the scheduler's windows need (two years of a per-minute rule).
pub(crate) const ALARM_INSTANCES_MAX: usize = 1_000_000;
/// Instances `upcoming_alarms` looks ahead without a time bound (more than
/// a century of a daily series): a series whose instances are all declined
/// or cancelled must not cost a million steps per call.
pub(crate) const UPCOMING_INSTANCES_MAX: usize = 50_000;
/// Default alarms read from one property value.
const DEFAULT_ALARMS_MAX: usize = 16;
/// Slack for nominal-day triggers and DST shifts when bounding searches.
const TRIGGER_SLACK_SECS: i64 = 2 * 86_400;

/// What an alarm does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AlarmAction {
    /// ACTION:DISPLAY
    Display,
    /// ACTION:AUDIO
    Audio,
    /// ACTION:EMAIL
    Email,
}

impl AlarmAction {
    /// The iCalendar name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlarmAction::Display => "DISPLAY",
            AlarmAction::Audio => "AUDIO",
            AlarmAction::Email => "EMAIL",
        }
    }
}

/// When an alarm fires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Trigger {
    /// An offset from the instance's start or end.
    Relative { offset: Dur, related_end: bool },
    /// A fixed time (fires once).
    Absolute(DateValue),
}

/// A parsed VALARM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Alarm {
    pub id: String,
    /// The VALARM's own UID (for snooze links).
    pub uid: Option<String>,
    /// `None`: an action the server does not perform (PROCEDURE, NONE…).
    pub action: Option<AlarmAction>,
    pub trigger: Option<Trigger>,
    pub repeat: u32,
    pub repeat_every: Duration,
    pub attendees: Vec<String>,
    pub acknowledged: Option<DateValue>,
    pub snooze_of: Option<String>,
    pub description: Option<String>,
    pub summary: Option<String>,
    /// X-APPLE-DEFAULT-ALARM:TRUE: a placeholder for the user's defaults.
    pub default_placeholder: bool,
}

fn entry_text(entry: &ICalendarEntry) -> Option<String> {
    match entry.values.first()? {
        ICalendarValue::Text(t) => Some(t.clone()),
        ICalendarValue::Uri(u) => u.as_str().map(str::to_string),
        _ => None,
    }
}

fn parse_trigger(
    entry: &ICalendarEntry,
    date: &dyn Fn(&ICalendarEntry) -> Option<DateValue>,
) -> Option<Trigger> {
    match entry.values.first()? {
        ICalendarValue::Duration(d) => {
            let related_end = entry.parameters(&ICalendarParameterName::Related).any(|p| {
                matches!(p, ICalendarParameterValue::Related(ICalendarRelated::End))
                    || p.as_text().is_some_and(|t| t.eq_ignore_ascii_case("END"))
            });
            Some(Trigger::Relative {
                offset: Dur::from_calcard(d),
                related_end,
            })
        }
        ICalendarValue::PartialDateTime(_) => date(entry).map(Trigger::Absolute),
        _ => None,
    }
}

/// Parses one VALARM. Lenient: an alarm without a usable TRIGGER or ACTION
/// is kept (so filters see it) but never fires.
pub(crate) fn parse_alarm(
    c: &ICalendarComponent,
    date: &dyn Fn(&ICalendarEntry) -> Option<DateValue>,
) -> Result<Alarm, CalendarError> {
    let mut alarm = Alarm {
        id: String::new(),
        uid: None,
        action: None,
        trigger: None,
        repeat: 0,
        repeat_every: Duration::ZERO,
        attendees: Vec::new(),
        acknowledged: None,
        snooze_of: None,
        description: None,
        summary: None,
        default_placeholder: false,
    };
    let mut x_alarm_uid = None;
    for entry in &c.entries {
        match &entry.name {
            ICalendarProperty::Action => {
                alarm.action = match entry.values.first() {
                    Some(ICalendarValue::Action(ICalendarAction::Display)) => {
                        Some(AlarmAction::Display)
                    }
                    Some(ICalendarValue::Action(ICalendarAction::Audio)) => {
                        Some(AlarmAction::Audio)
                    }
                    Some(ICalendarValue::Action(ICalendarAction::Email)) => {
                        Some(AlarmAction::Email)
                    }
                    _ => None,
                };
            }
            ICalendarProperty::Trigger => alarm.trigger = parse_trigger(entry, date),
            ICalendarProperty::Repeat => {
                alarm.repeat = entry
                    .values
                    .first()
                    .and_then(|v| v.as_integer())
                    .unwrap_or(0)
                    .clamp(0, i64::from(ALARM_REPEATS_MAX)) as u32;
            }
            ICalendarProperty::Duration => {
                if let Some(ICalendarValue::Duration(d)) = entry.values.first() {
                    alarm.repeat_every = Dur::from_calcard(d).exact();
                }
            }
            ICalendarProperty::Attendee => alarm.attendees.extend(entry_text(entry)),
            ICalendarProperty::Acknowledged => alarm.acknowledged = date(entry),
            ICalendarProperty::Uid => alarm.uid = entry_text(entry),
            ICalendarProperty::Description => alarm.description = entry_text(entry),
            ICalendarProperty::Summary => alarm.summary = entry_text(entry),
            ICalendarProperty::RelatedTo => {
                let snooze = entry.parameters(&ICalendarParameterName::Reltype).any(|p| {
                    matches!(
                        p,
                        ICalendarParameterValue::Reltype(ICalendarRelationshipType::Snooze)
                    ) || p
                        .as_text()
                        .is_some_and(|t| t.eq_ignore_ascii_case("SNOOZE"))
                });
                if snooze {
                    alarm.snooze_of = entry_text(entry);
                }
            }
            ICalendarProperty::Other(name) if name.eq_ignore_ascii_case("X-WR-ALARMUID") => {
                x_alarm_uid = entry_text(entry)
            }
            ICalendarProperty::Other(name)
                if name.eq_ignore_ascii_case("X-APPLE-DEFAULT-ALARM") =>
            {
                alarm.default_placeholder =
                    entry_text(entry).is_some_and(|t| t.eq_ignore_ascii_case("TRUE"));
            }
            _ => {}
        }
    }
    if alarm.repeat_every <= Duration::ZERO {
        alarm.repeat = 0;
    }
    alarm.id = alarm
        .uid
        .clone()
        .or(x_alarm_uid)
        .unwrap_or_else(|| content_id(&alarm));
    Ok(alarm)
}

/// A stable id from what the alarm does and when: survives re-serialisation
/// and property reordering.
fn content_id(a: &Alarm) -> String {
    let mut attendees = a.attendees.clone();
    attendees.sort();
    let text = format!(
        "{:?}|{:?}|{}|{}|{:?}|{:?}|{}",
        a.action.map(AlarmAction::as_str),
        a.trigger,
        a.repeat,
        a.repeat_every.millis(),
        a.description,
        a.summary,
        attendees.join(",")
    );
    let digest = Sha256::digest(text.as_bytes());
    format!("h-{}", hex::encode(&digest[..12]))
}

/// A user's VALARMs replacing the object's (per component, by RECURRENCE-ID).
#[derive(Clone, Debug)]
pub struct AlarmOverlay {
    zones: Vec<Zone>,
    sets: Vec<(Option<DateValue>, Vec<Alarm>)>,
}

impl AlarmOverlay {
    /// Parses an overlay from a VCALENDAR whose components (VEVENT, VTODO…,
    /// optionally with RECURRENCE-ID) hold the user's VALARMs.
    pub fn parse(text: &str) -> Result<AlarmOverlay, CalendarError> {
        let (zones, sets) = crate::object::parse_alarm_sets(text)?;
        Ok(AlarmOverlay { zones, sets })
    }

    fn alarms_for(&self, obj: &CalendarObject, comp: &Comp, zone: &Zone) -> Option<&[Alarm]> {
        let rid = comp.recurrence_id.map(|r| r.instant(&obj.zones, zone));
        let exact = self
            .sets
            .iter()
            .find(|(r, _)| r.map(|r| r.instant(&self.zones, zone)) == rid);
        let master = || self.sets.iter().find(|(r, _)| r.is_none());
        exact.or_else(master).map(|(_, a)| a.as_slice())
    }
}

/// The user's default alarms (CALDAV:default-alarm-vevent-datetime and
/// -date), applied to components that ask for them: those with
/// `X-JMAP-USEDEFAULTALERTS:TRUE`, VALARMs marked
/// `X-APPLE-DEFAULT-ALARM:TRUE` (which they replace) and, when the user
/// opted in, components with no alarm of their own.
#[derive(Clone, Debug, Default)]
pub struct DefaultAlarms {
    datetime: Vec<Alarm>,
    date: Vec<Alarm>,
    when_none: bool,
}

impl DefaultAlarms {
    /// Parses the two property values (each holds VALARM components; an
    /// empty value means none).
    pub fn parse(
        datetime: Option<&str>,
        date: Option<&str>,
    ) -> Result<DefaultAlarms, CalendarError> {
        Ok(DefaultAlarms {
            datetime: parse_valarms(datetime)?,
            date: parse_valarms(date)?,
            when_none: false,
        })
    }

    /// Also applies the defaults to components with no alarm for this
    /// user (the user's opt-in; clients that keep defaults to themselves
    /// write no marker, so without it their events would stay silent).
    pub fn applied_when_none(self, when_none: bool) -> DefaultAlarms {
        DefaultAlarms { when_none, ..self }
    }
}

fn parse_valarms(text: Option<&str>) -> Result<Vec<Alarm>, CalendarError> {
    let Some(text) = text.filter(|t| !t.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    let mut parser = calcard::Parser::new(text);
    let mut alarms = Vec::new();
    for _ in 0..DEFAULT_ALARMS_MAX {
        match parser.entry() {
            calcard::Entry::ICalendar(cal) => {
                for c in cal
                    .components
                    .iter()
                    .filter(|c| c.component_type == ICalendarComponentType::VAlarm)
                {
                    alarms.push(parse_alarm(c, &|e| {
                        e.values
                            .first()
                            .and_then(|v| v.as_partial_date_time())
                            .and_then(|p| DateValue::from_partial(p, None))
                    })?);
                }
            }
            calcard::Entry::Eof => break,
            _ => {
                return Err(CalendarError::NotICalendar(
                    "default alarm value is not VALARM data".into(),
                ));
            }
        }
    }
    Ok(alarms)
}

/// What one user's alarms depend on besides the object.
#[derive(Clone, Copy, Debug)]
pub struct UserView<'a> {
    /// Principal name.
    pub user: &'a str,
    /// The user's calendar-user addresses ("mailto:a@b"): PARTSTAT=DECLINED
    /// on any of them skips an instance; the first mailto is the default
    /// EMAIL recipient.
    pub addresses: &'a [String],
    /// The calendar's zone for floating and all-day times (UTC when none).
    pub zone: &'a Zone,
    /// Per-user VALARMs replacing the object's.
    pub alarm_overlay: Option<&'a AlarmOverlay>,
    /// Default alarms for components that ask for them.
    pub default_alarms: Option<&'a DefaultAlarms>,
}

/// Bounds of alarm computation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AlarmPolicy {
    /// Instances starting closer than this to the previous alarmed instance
    /// get no alarm.
    pub min_instance_interval_secs: i64,
    /// When nothing is due sooner, look again this far from now.
    pub recheck_horizon_secs: i64,
}

impl Default for AlarmPolicy {
    fn default() -> Self {
        AlarmPolicy {
            min_instance_interval_secs: 60,
            recheck_horizon_secs: 30 * 86_400,
        }
    }
}

/// When an object must next be looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NextCheck {
    /// The instant.
    pub at: Instant,
    /// True when no alarm is due before `at`: a re-check, not a firing.
    pub is_recheck: bool,
}

/// One alarm firing, with its stable identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DueAlarm {
    /// The user it fires for.
    pub user: String,
    /// The object's UID.
    pub uid: String,
    /// RECURRENCE-ID (UTC `…Z` or DATE); `None` for a non-recurring object
    /// or an absolute trigger on the master.
    pub recurrence_id: Option<String>,
    /// UID, X-WR-ALARMUID or content hash of the VALARM.
    pub alarm_id: String,
    /// What to do.
    pub action: AlarmAction,
    /// When.
    pub trigger: Instant,
    /// 0 for the trigger itself, 1..=REPEAT for its repetitions.
    pub repeat_index: u32,
    /// The instance's start.
    pub instance_start: Option<Instant>,
    /// The instance's end.
    pub instance_end: Option<Instant>,
    /// True for an all-day instance.
    pub all_day: bool,
    /// The instance's SUMMARY (the alarm's when the instance has none).
    pub summary: Option<String>,
    /// The alarm's DESCRIPTION, else the instance's.
    pub description: Option<String>,
    /// The instance's LOCATION.
    pub location: Option<String>,
    /// EMAIL recipients: the VALARM's ATTENDEEs, else the user's first
    /// mailto address. Empty for DISPLAY and AUDIO.
    pub recipients: Vec<String>,
}

impl DueAlarm {
    /// Invariant 6: stable across retries, restarts and failover; derived
    /// from (object, user, alarm, recurrence instance, trigger instant,
    /// recipient).
    pub fn idempotency_key(&self, object_id: &str, recipient: &str) -> String {
        let mut h = Sha256::new();
        for part in [
            "tocsin-alarm-v1",
            object_id,
            &self.user,
            &self.alarm_id,
            self.recurrence_id.as_deref().unwrap_or("-"),
            &self.trigger.millis().to_string(),
            recipient,
        ] {
            h.update(part.as_bytes());
            h.update([0u8]);
        }
        hex::encode(&h.finalize()[..16])
    }
}

/// The alarms a user has on one component.
fn alarms_of<'a>(obj: &'a CalendarObject, comp: &'a Comp, view: &UserView<'a>) -> Vec<&'a Alarm> {
    let base: &[Alarm] = match view
        .alarm_overlay
        .and_then(|o| o.alarms_for(obj, comp, view.zone))
    {
        Some(a) => a,
        None => &comp.alarms,
    };
    let opted_in_for_none = base.is_empty() && view.default_alarms.is_some_and(|d| d.when_none);
    let wants_defaults = opted_in_for_none
        || base.iter().any(|a| a.default_placeholder)
        || asks_for_defaults(obj, comp);
    let mut out: Vec<&Alarm> = base.iter().filter(|a| !a.default_placeholder).collect();
    if wants_defaults && let Some(defaults) = view.default_alarms {
        let all_day = comp.anchor().is_some_and(|a| a.is_date());
        out.extend(if all_day {
            defaults.date.iter()
        } else {
            defaults.datetime.iter()
        });
    }
    out
}

fn asks_for_defaults(obj: &CalendarObject, comp: &Comp) -> bool {
    obj.component(comp).entries.iter().any(|e| {
        matches!(&e.name, ICalendarProperty::Other(n) if n.eq_ignore_ascii_case("X-JMAP-USEDEFAULTALERTS"))
            && e.values.first().and_then(|v| v.as_text()).is_some_and(|t| t.eq_ignore_ascii_case("TRUE"))
    })
}

fn declined(comp: &Comp, view: &UserView<'_>) -> bool {
    comp.attendees.iter().any(|a| {
        a.declined
            && view
                .addresses
                .iter()
                .any(|u| normalise_address(u) == a.address)
    })
}

/// How far triggers can lie before (`lead`) and after (`lag`) an instance's start.
#[derive(Clone, Copy, Debug)]
struct Reach {
    lead: Duration,
    lag: Duration,
    any_relative: bool,
}

fn reach(obj: &CalendarObject, view: &UserView<'_>) -> Reach {
    let span = obj.max_span();
    let mut r = Reach {
        lead: Duration::ZERO,
        lag: Duration::ZERO,
        any_relative: false,
    };
    for comp in &obj.comps {
        for a in alarms_of(obj, comp, view) {
            let Some(Trigger::Relative {
                offset,
                related_end,
            }) = a.trigger
            else {
                continue;
            };
            if a.action.is_none() {
                // Never fires: must not make the walk look for it.
                continue;
            }
            r.any_relative = true;
            let off = offset.exact();
            let last = off
                .millis()
                .saturating_add(a.repeat_every.millis().saturating_mul(i64::from(a.repeat)));
            let end_shift = if related_end { span.millis() } else { 0 };
            r.lead = r
                .lead
                .max(Duration::from_millis(off.millis().saturating_neg()));
            r.lag = r
                .lag
                .max(Duration::from_millis(last.saturating_add(end_shift)));
        }
    }
    r.lead = r.lead.saturating_add_secs(TRIGGER_SLACK_SECS);
    r.lag = r.lag.saturating_add_secs(TRIGGER_SLACK_SECS);
    r
}

/// The comp's anchor zone (for nominal-day trigger arithmetic).
fn comp_zone(obj: &CalendarObject, comp: &Comp, zone: &Zone) -> Zone {
    comp.anchor()
        .map_or_else(|| zone.clone(), |a| a.zone(&obj.zones, zone))
}

pub(crate) fn relative_trigger(base: Instant, offset: Dur, zone: &Zone) -> Instant {
    if offset.days == 0 {
        return base.saturating_add(Duration::from_secs(offset.secs));
    }
    let local = zone.to_local(base);
    offset.add_to(local, zone)
}

/// Collects the firings of one instance's relative alarms into `out`.
struct Collector<'o, 'v> {
    obj: &'o CalendarObject,
    view: &'v UserView<'v>,
    out: Vec<DueAlarm>,
}

impl<'o> Collector<'o, '_> {
    fn instance_alarms(&mut self, inst: &Instance, keep: &dyn Fn(Instant) -> bool) {
        let comp = &self.obj.comps[inst.comp];
        let zone = comp_zone(self.obj, comp, self.view.zone);
        let alarms = alarms_of(self.obj, comp, self.view);
        for a in &alarms {
            let Some(Trigger::Relative {
                offset,
                related_end,
            }) = a.trigger
            else {
                continue;
            };
            let base = if related_end { inst.end } else { inst.start };
            let first = relative_trigger(base, offset, &zone);
            self.push_repeats(a, &alarms, comp, Some(inst), first, keep);
        }
    }

    fn absolute_alarms(&mut self, keep: &dyn Fn(Instant) -> bool) {
        for comp in &self.obj.comps {
            if comp.status == Status::Cancelled || declined(comp, self.view) {
                continue;
            }
            let inst = self.component_instance(comp);
            let alarms = alarms_of(self.obj, comp, self.view);
            for a in &alarms {
                let Some(Trigger::Absolute(v)) = a.trigger else {
                    continue;
                };
                let first = v.instant(&self.obj.zones, self.view.zone);
                self.push_repeats(a, &alarms, comp, inst.as_ref(), first, keep);
            }
        }
    }

    /// The instance a component stands for (its own DTSTART), for absolute alarms.
    fn component_instance(&self, comp: &Comp) -> Option<Instance> {
        let idx = self.obj.comps.iter().position(|c| std::ptr::eq(c, comp))?;
        let anchor = comp.anchor()?;
        let zone = anchor.zone(&self.obj.zones, self.view.zone);
        let start = anchor.instant(&self.obj.zones, self.view.zone);
        let rid = comp
            .recurrence_id
            .map(|r| r.instant(&self.obj.zones, self.view.zone));
        Some(Instance {
            start,
            end: crate::instance::instance_end(self.obj, comp, start, anchor.local(), &zone),
            recurrence_id: comp.recurrence_id.zip(rid).map(|(v, r)| {
                if v.is_date() {
                    v.local().format("%Y%m%d").to_string()
                } else {
                    r.to_ical_utc()
                }
            }),
            all_day: anchor.is_date(),
            is_override: comp.recurrence_id.is_some(),
            cancelled: comp.status == Status::Cancelled,
            rid,
            comp: idx,
        })
    }

    fn push_repeats(
        &mut self,
        a: &Alarm,
        siblings: &[&Alarm],
        comp: &Comp,
        inst: Option<&Instance>,
        first: Instant,
        keep: &dyn Fn(Instant) -> bool,
    ) {
        let Some(action) = a.action else { return };
        let acknowledged = a
            .acknowledged
            .map(|v| v.instant(&self.obj.zones, self.view.zone));
        let snoozed_until = snoozed_until(a, siblings, self.obj, self.view.zone);
        for i in 0..=a.repeat.min(ALARM_REPEATS_MAX) {
            let Some(t) = first.checked_add(Duration::from_millis(
                a.repeat_every.millis().saturating_mul(i64::from(i)),
            )) else {
                break;
            };
            if acknowledged.is_some_and(|ack| t <= ack)
                || snoozed_until.is_some_and(|s| t <= s)
                || !keep(t)
            {
                continue;
            }
            self.out.push(self.due(a, action, comp, inst, t, i));
        }
    }

    fn due(
        &self,
        a: &Alarm,
        action: AlarmAction,
        comp: &Comp,
        inst: Option<&Instance>,
        trigger: Instant,
        repeat_index: u32,
    ) -> DueAlarm {
        let recipients = if action == AlarmAction::Email {
            if a.attendees.is_empty() {
                self.view
                    .addresses
                    .iter()
                    .find(|u| u.to_ascii_lowercase().starts_with("mailto:"))
                    .cloned()
                    .into_iter()
                    .collect()
            } else {
                a.attendees.clone()
            }
        } else {
            Vec::new()
        };
        DueAlarm {
            user: self.view.user.to_string(),
            uid: self.obj.uid.clone(),
            recurrence_id: if matches!(a.trigger, Some(Trigger::Absolute(_)))
                && comp.recurrence_id.is_none()
            {
                None
            } else {
                inst.and_then(|i| i.recurrence_id.clone())
            },
            alarm_id: a.id.clone(),
            action,
            trigger,
            repeat_index,
            instance_start: inst.map(|i| i.start),
            instance_end: inst.map(|i| i.end),
            all_day: inst.is_some_and(|i| i.all_day),
            summary: comp.summary.clone().or_else(|| a.summary.clone()),
            description: a
                .description
                .clone()
                .filter(|d| !d.is_empty())
                .or_else(|| comp.description.clone()),
            location: comp.location.clone(),
            recipients,
        }
    }
}

/// The latest trigger of the snooze alarms pointing at `a` (RFC 9074 §7).
fn snoozed_until(
    a: &Alarm,
    siblings: &[&Alarm],
    obj: &CalendarObject,
    zone: &Zone,
) -> Option<Instant> {
    let uid = a.uid.as_deref()?;
    siblings
        .iter()
        .filter(|s| s.snooze_of.as_deref() == Some(uid))
        .filter_map(|s| match s.trigger {
            Some(Trigger::Absolute(v)) => Some(v.instant(&obj.zones, zone)),
            _ => None,
        })
        .max()
}

/// Removes identical firings (same instance, trigger, action, recipients)
/// and sorts by trigger.
fn finish(mut out: Vec<DueAlarm>) -> Vec<DueAlarm> {
    out.sort_by(|a, b| {
        (a.trigger, &a.recurrence_id, a.action, &a.alarm_id).cmp(&(
            b.trigger,
            &b.recurrence_id,
            b.action,
            &b.alarm_id,
        ))
    });
    let mut seen: Vec<(Instant, Option<String>, AlarmAction, Vec<String>)> = Vec::new();
    out.retain(|d| {
        let mut recipients = d.recipients.clone();
        recipients.sort();
        let key = (d.trigger, d.recurrence_id.clone(), d.action, recipients);
        if seen.contains(&key) {
            false
        } else {
            seen.push(key);
            true
        }
    });
    out
}

/// Walks instances that can have triggers in `(after, until]` and collects
/// their relative alarms; `stop` can end the walk early given what was found.
fn walk(
    obj: &CalendarObject,
    view: &UserView<'_>,
    after: Instant,
    until: Option<Instant>,
    policy: &AlarmPolicy,
    collector: &mut Collector<'_, '_>,
    stop: &dyn Fn(&[DueAlarm], Instant) -> bool,
) {
    let r = reach(obj, view);
    if !r.any_relative {
        return;
    }
    let keep = |t: Instant| t > after && until.is_none_or(|u| t <= u);
    let min_gap = Duration::from_secs(policy.min_instance_interval_secs.max(0));
    let mut last_alarmed: Option<Instant> = None;
    for inst in obj
        .instances_from(view.zone, after.saturating_sub(r.lag))
        .take(if until.is_some() {
            ALARM_INSTANCES_MAX
        } else {
            UPCOMING_INSTANCES_MAX
        })
    {
        let earliest = inst.start.saturating_sub(r.lead);
        if until.is_some_and(|u| earliest > u) || stop(&collector.out, earliest) {
            break;
        }
        let comp = &obj.comps[inst.comp];
        if inst.cancelled || declined(comp, view) {
            continue;
        }
        // The flood guard spaces the rule's own instances; an override is
        // explicit data and always counts, and an instance without alarms
        // does not start a new spacing interval.
        if !inst.is_override {
            if last_alarmed.is_some_and(|l| inst.start < l.saturating_add(min_gap)) {
                continue;
            }
            if !alarms_of(obj, comp, view).is_empty() {
                last_alarmed = Some(inst.start);
            }
        }
        collector.instance_alarms(&inst, &keep);
    }
}

fn supports_alarms(obj: &CalendarObject) -> bool {
    matches!(obj.kind, ComponentKind::Event | ComponentKind::Todo)
}

/// Alarms with trigger in `(after, until]`, in trigger order.
///
/// Examines at most `ALARM_INSTANCES_MAX` (1,000,000) instances from
/// `after`: far beyond any lateness window (two years of a per-minute series);
/// past it the earliest alarms are returned.
pub fn due_alarms(
    obj: &CalendarObject,
    view: &UserView<'_>,
    after: Instant,
    until: Instant,
    policy: &AlarmPolicy,
) -> Vec<DueAlarm> {
    if !supports_alarms(obj) || until <= after {
        return Vec::new();
    }
    let mut c = Collector {
        obj,
        view,
        out: Vec::new(),
    };
    let keep = |t: Instant| t > after && t <= until;
    c.absolute_alarms(&keep);
    walk(obj, view, after, Some(until), policy, &mut c, &|_, _| false);
    finish(c.out)
}

/// The next `count` alarms with trigger `> after`, in trigger order
/// (for `tocsin alarms explain` and `alarms upcoming`). Looks at most
/// `UPCOMING_INSTANCES_MAX` (50,000) instances ahead.
pub fn upcoming_alarms(
    obj: &CalendarObject,
    view: &UserView<'_>,
    after: Instant,
    count: usize,
    policy: &AlarmPolicy,
) -> Vec<DueAlarm> {
    upcoming_until(obj, view, after, None, count, policy)
}

fn upcoming_until(
    obj: &CalendarObject,
    view: &UserView<'_>,
    after: Instant,
    until: Option<Instant>,
    count: usize,
    policy: &AlarmPolicy,
) -> Vec<DueAlarm> {
    if !supports_alarms(obj) || count == 0 {
        return Vec::new();
    }
    let mut c = Collector {
        obj,
        view,
        out: Vec::new(),
    };
    let keep = |t: Instant| t > after && until.is_none_or(|u| t <= u);
    c.absolute_alarms(&keep);
    let stop = |found: &[DueAlarm], earliest_next: Instant| {
        if found.len() < count {
            return false;
        }
        let mut triggers: Vec<Instant> = found.iter().map(|d| d.trigger).collect();
        triggers.sort_unstable();
        triggers
            .get(count - 1)
            .is_some_and(|kth| earliest_next > *kth)
    };
    walk(obj, view, after, until, policy, &mut c, &stop);
    let mut out = finish(c.out);
    out.truncate(count);
    out
}

/// Invariant 4: the earliest trigger `> after` over the given users (each
/// with its own `after`), or a re-check at `now + horizon` when nothing is
/// due sooner, or `None` when no alarm can ever fire again. Always computed
/// from the object itself — never copied from older metadata (the seed
/// thread's bug).
pub fn next_check(
    obj: &CalendarObject,
    views: &[(UserView<'_>, Instant)],
    now: Instant,
    policy: &AlarmPolicy,
) -> Option<NextCheck> {
    let horizon = now.saturating_add(Duration::from_secs(policy.recheck_horizon_secs.max(0)));
    let mut earliest: Option<Instant> = None;
    let mut may_fire_later = false;
    for (view, after) in views {
        let limit = earliest.map_or(horizon, |e| e.min(horizon));
        if let Some(first) = upcoming_until(obj, view, *after, Some(limit), 1, policy).first() {
            earliest = Some(earliest.map_or(first.trigger, |e| e.min(first.trigger)));
        } else if !may_fire_later {
            may_fire_later = may_fire_after(obj, view, horizon.max(*after));
        }
    }
    match earliest {
        Some(at) => Some(NextCheck {
            at,
            is_recheck: false,
        }),
        None if may_fire_later => Some(NextCheck {
            at: horizon,
            is_recheck: true,
        }),
        None => None,
    }
}

/// Whether any alarm of `view` could fire after `t`: an absolute trigger
/// later than `t`, or a relative alarm and an instance that has not started
/// by `t - lag`. Conservative (a re-check is always safe) and O(1) in the
/// number of instances, so a series declined forever costs nothing.
fn may_fire_after(obj: &CalendarObject, view: &UserView<'_>, t: Instant) -> bool {
    if !supports_alarms(obj) {
        return false;
    }
    let mut c = Collector {
        obj,
        view,
        out: Vec::new(),
    };
    c.absolute_alarms(&|x| x > t);
    if !c.out.is_empty() {
        return true;
    }
    let r = reach(obj, view);
    r.any_relative
        && obj
            .instances_from(view.zone, t.saturating_sub(r.lag))
            .next()
            .is_some()
}
