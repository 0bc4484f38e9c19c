//! Time zones: IANA zones (chrono-tz) and VTIMEZONE rule sets evaluated from
//! their own STANDARD/DAYLIGHT observances.
//!
//! Owns: `Zone`, TZID → IANA mapping (including `/mozilla.org/…/Europe/Berlin`
//! style prefixes and Windows names, through calcard's table), UTC ↔ local
//! conversion with RFC 5545's rules for DST gaps (a nonexistent local time is
//! read with the offset before the gap, i.e. shifted forward by the gap) and
//! overlaps (the first occurrence).
//! Must never: fall back to UTC (or any default zone) for a VTIMEZONE it
//! cannot map to an IANA name — that is calcard's pitfall (b) in issue 3,
//! fixed here by evaluating the VTIMEZONE's observances ourselves.

use crate::error::CalendarError;
use crate::instant::Instant;
use crate::rrule::{Rule, RuleIter, Until};
use calcard::icalendar::{
    ICalendarComponent, ICalendarComponentType, ICalendarProperty, ICalendarValue,
};
use chrono::{NaiveDateTime, Offset, TimeDelta, TimeZone};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// Seconds around a local time in which a zone is assumed to change its
/// offset at most once (the widest jump on record is a skipped day).
const TRANSITION_WINDOW_SECS: i64 = 2 * 86_400;
/// Observance onsets examined per offset lookup in a VTIMEZONE rule set.
const OBSERVANCE_ONSETS_MAX: usize = 1_000;

/// A resolved time zone: IANA (chrono-tz) or the rules of a VTIMEZONE that
/// maps to no IANA name.
#[derive(Clone)]
pub struct Zone {
    inner: ZoneInner,
}

#[derive(Clone)]
enum ZoneInner {
    Utc,
    Iana(chrono_tz::Tz),
    Rules(Arc<RuleSet>),
}

/// A VTIMEZONE's observances.
#[derive(Debug)]
struct RuleSet {
    tzid: String,
    /// Invariant: never empty.
    observances: Vec<Observance>,
}

#[derive(Debug)]
struct Observance {
    /// Local onset, in the offset in force before it (TZOFFSETFROM).
    dtstart: NaiveDateTime,
    offset_from_secs: i32,
    offset_to_secs: i32,
    rule: Option<Rule>,
    rdates: Vec<NaiveDateTime>,
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Zone({})", self.name())
    }
}

impl PartialEq for Zone {
    fn eq(&self, other: &Zone) -> bool {
        match (&self.inner, &other.inner) {
            (ZoneInner::Utc, ZoneInner::Utc) => true,
            (ZoneInner::Iana(a), ZoneInner::Iana(b)) => a == b,
            (ZoneInner::Rules(a), ZoneInner::Rules(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Zone {
    /// UTC.
    pub fn utc() -> Zone {
        Zone {
            inner: ZoneInner::Utc,
        }
    }

    /// The IANA zone for `name`, also accepting the aliases real clients
    /// send: `/mozilla.org/20050126_1/Europe/Berlin`, `/softwarestudio.org/…`,
    /// Windows names ("W. Europe Standard Time"). `None` when unknown.
    pub fn iana(name: &str) -> Option<Zone> {
        if let Ok(tz) = chrono_tz::Tz::from_str(name) {
            return Some(Zone::from_tz(tz));
        }
        match calcard::common::timezone::Tz::from_str(name) {
            Ok(calcard::common::timezone::Tz::Tz(tz)) => Some(Zone::from_tz(tz)),
            _ => None,
        }
    }

    fn from_tz(tz: chrono_tz::Tz) -> Zone {
        if tz == chrono_tz::UTC || tz == chrono_tz::Etc::UTC {
            Zone::utc()
        } else {
            Zone {
                inner: ZoneInner::Iana(tz),
            }
        }
    }

    /// The zone of a CALDAV:calendar-timezone property value: a VCALENDAR
    /// holding one VTIMEZONE.
    pub fn from_calendar_timezone(text: &str) -> Result<Zone, CalendarError> {
        let calcard::Entry::ICalendar(cal) = calcard::Parser::new(text).entry() else {
            return Err(CalendarError::NotICalendar(
                "calendar-timezone is not an iCalendar object".into(),
            ));
        };
        let mut zones = cal
            .components
            .iter()
            .filter(|c| c.component_type == ICalendarComponentType::VTimezone);
        let (Some(vtz), None) = (zones.next(), zones.next()) else {
            return Err(CalendarError::NotSingleObject(
                "calendar-timezone must hold exactly one VTIMEZONE".into(),
            ));
        };
        Zone::from_vtimezone(&cal, vtz)
    }

    /// Resolves a VTIMEZONE: its TZID (or X-LIC-LOCATION) when that names an
    /// IANA zone, else its own observance rules.
    pub(crate) fn from_vtimezone(
        cal: &calcard::icalendar::ICalendar,
        vtz: &ICalendarComponent,
    ) -> Result<Zone, CalendarError> {
        let tzid = text_property(vtz, &ICalendarProperty::Tzid)
            .ok_or_else(|| CalendarError::InvalidData("VTIMEZONE without TZID".into()))?;
        if let Some(zone) = Zone::iana(tzid) {
            return Ok(zone);
        }
        if let Some((_, calcard::common::timezone::Tz::Tz(tz))) = vtz.timezone() {
            return Ok(Zone::from_tz(tz));
        }
        let mut observances = Vec::new();
        for id in &vtz.component_ids {
            let Some(obs) = cal.components.get(*id as usize) else {
                continue;
            };
            if matches!(
                obs.component_type,
                ICalendarComponentType::Standard | ICalendarComponentType::Daylight
            ) {
                observances.push(Observance::parse(obs, tzid)?);
            }
        }
        if observances.is_empty() {
            return Err(CalendarError::InvalidData(format!(
                "VTIMEZONE {tzid} has no STANDARD or DAYLIGHT"
            )));
        }
        observances.sort_by_key(|o| o.dtstart);
        Ok(Zone {
            inner: ZoneInner::Rules(Arc::new(RuleSet {
                tzid: tzid.to_string(),
                observances,
            })),
        })
    }

    /// The zone's name: "UTC", the IANA name, or the VTIMEZONE's TZID.
    pub fn name(&self) -> &str {
        match &self.inner {
            ZoneInner::Utc => "UTC",
            ZoneInner::Iana(tz) => tz.name(),
            ZoneInner::Rules(rules) => &rules.tzid,
        }
    }

    /// True for UTC.
    pub fn is_utc(&self) -> bool {
        matches!(self.inner, ZoneInner::Utc)
    }

    /// The offset from UTC (seconds east) in force at `utc`.
    pub fn offset_at(&self, utc: NaiveDateTime) -> i32 {
        match &self.inner {
            ZoneInner::Utc => 0,
            ZoneInner::Iana(tz) => tz.offset_from_utc_datetime(&utc).fix().local_minus_utc(),
            ZoneInner::Rules(rules) => rules.offset_at(utc),
        }
    }

    /// The local wall-clock time at `t`.
    pub fn to_local(&self, t: Instant) -> NaiveDateTime {
        let utc = t.to_naive_utc().unwrap_or_default();
        utc + TimeDelta::seconds(i64::from(self.offset_at(utc)))
    }

    /// The instant of local wall-clock time `local` (RFC 5545 §3.3.5: a time
    /// in a DST gap is read with the offset before the gap; a time in an
    /// overlap is the first occurrence).
    pub fn to_instant(&self, local: NaiveDateTime) -> Instant {
        if self.is_utc() {
            return Instant::from_naive_utc(local);
        }
        let window = TimeDelta::seconds(TRANSITION_WINDOW_SECS);
        let before = self.offset_at(local - window);
        let after = self.offset_at(local + window);
        let utc_with = |offset: i32| local - TimeDelta::seconds(i64::from(offset));
        if before == after && self.offset_at(utc_with(before)) == before {
            return Instant::from_naive_utc(utc_with(before));
        }
        let valid = |offset: i32| self.offset_at(utc_with(offset)) == offset;
        let chosen = match (valid(before), valid(after)) {
            (true, true) => utc_with(before).min(utc_with(after)),
            (true, false) => utc_with(before),
            (false, true) => utc_with(after),
            (false, false) => utc_with(before),
        };
        Instant::from_naive_utc(chosen)
    }
}

fn text_property<'c>(c: &'c ICalendarComponent, name: &ICalendarProperty) -> Option<&'c str> {
    c.property(name)
        .and_then(|e| e.values.first())
        .and_then(|v| v.as_text())
}

fn offset_property(
    c: &ICalendarComponent,
    name: &ICalendarProperty,
    tzid: &str,
) -> Result<i32, CalendarError> {
    let value = c.property(name).and_then(|e| e.values.first());
    if let Some(ICalendarValue::PartialDateTime(p)) = value {
        let secs =
            i32::from(p.tz_hour.unwrap_or(0)) * 3600 + i32::from(p.tz_minute.unwrap_or(0)) * 60;
        return Ok(if p.tz_minus { -secs } else { secs });
    }
    Err(CalendarError::InvalidData(format!(
        "VTIMEZONE {tzid}: missing or invalid {}",
        name.as_str()
    )))
}

impl Observance {
    fn parse(c: &ICalendarComponent, tzid: &str) -> Result<Observance, CalendarError> {
        let offset_from_secs = offset_property(c, &ICalendarProperty::Tzoffsetfrom, tzid)?;
        let offset_to_secs = offset_property(c, &ICalendarProperty::Tzoffsetto, tzid)?;
        let dtstart = c
            .property(&ICalendarProperty::Dtstart)
            .and_then(|e| e.values.first())
            .and_then(|v| v.as_partial_date_time())
            .and_then(|p| p.to_date_time())
            .map(|d| d.date_time)
            .ok_or_else(|| {
                CalendarError::InvalidData(format!("VTIMEZONE {tzid}: observance without DTSTART"))
            })?;
        let mut rule = None;
        let mut rdates = Vec::new();
        for entry in &c.entries {
            match (&entry.name, entry.values.first()) {
                (ICalendarProperty::Rrule, Some(ICalendarValue::RecurrenceRule(r))) => {
                    let until = r.until.as_ref().and_then(|u| u.to_date_time()).map(|u| {
                        if u.offset.is_some() {
                            Until::Utc(u.date_time)
                        } else {
                            Until::Local(u.date_time)
                        }
                    });
                    rule = Some(Rule::from_calcard(r, until).map_err(|e| {
                        CalendarError::InvalidData(format!("VTIMEZONE {tzid}: {e}"))
                    })?);
                }
                (ICalendarProperty::Rdate, _) => {
                    rdates.extend(entry.values.iter().filter_map(|v| match v {
                        ICalendarValue::PartialDateTime(p) => p.to_date_time().map(|d| d.date_time),
                        ICalendarValue::Period(calcard::icalendar::ICalendarPeriod::Range {
                            start,
                            ..
                        })
                        | ICalendarValue::Period(calcard::icalendar::ICalendarPeriod::Duration {
                            start,
                            ..
                        }) => start.to_date_time().map(|d| d.date_time),
                        _ => None,
                    }));
                }
                _ => {}
            }
        }
        rdates.sort_unstable();
        Ok(Observance {
            dtstart,
            offset_from_secs,
            offset_to_secs,
            rule,
            rdates,
        })
    }

    /// UNTIL in this observance's local time (onsets are local in TZOFFSETFROM).
    fn until_local(&self) -> Option<NaiveDateTime> {
        match self.rule.as_ref()?.until? {
            Until::Utc(u) => Some(u + TimeDelta::seconds(i64::from(self.offset_from_secs))),
            Until::Local(u) => Some(u),
            Until::Date(d) => d.and_hms_opt(23, 59, 59),
        }
    }

    /// The latest onset whose local time (in TZOFFSETFROM) is at or before `local`.
    fn last_onset_at_or_before(&self, local: NaiveDateTime) -> Option<NaiveDateTime> {
        if local < self.dtstart {
            return None;
        }
        let mut best = Some(self.dtstart);
        if let Some(i) = self.rdates.partition_point(|d| *d <= local).checked_sub(1) {
            best = best.max(self.rdates.get(i).copied());
        }
        if let Some(rule) = &self.rule {
            let until = self.until_local();
            let horizon = until.map_or(local, |u| u.min(local));
            let from = horizon - TimeDelta::days(400).min(horizon - self.dtstart);
            for onset in RuleIter::new(rule, self.dtstart, until, from).take(OBSERVANCE_ONSETS_MAX)
            {
                if onset > local {
                    break;
                }
                best = best.max(Some(onset));
            }
        }
        best
    }
}

impl RuleSet {
    fn offset_at(&self, utc: NaiveDateTime) -> i32 {
        let mut best: Option<(NaiveDateTime, i32)> = None;
        for obs in &self.observances {
            let local = utc + TimeDelta::seconds(i64::from(obs.offset_from_secs));
            if let Some(onset) = obs.last_onset_at_or_before(local) {
                let onset_utc = onset - TimeDelta::seconds(i64::from(obs.offset_from_secs));
                if best.is_none_or(|(b, _)| onset_utc > b) {
                    best = Some((onset_utc, obs.offset_to_secs));
                }
            }
        }
        match best {
            Some((_, offset)) => offset,
            // Before the first onset the zone observed its TZOFFSETFROM.
            None => self.observances.first().map_or(0, |o| o.offset_from_secs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").expect("local")
    }

    #[test]
    fn dst_gap_shifts_forward_by_the_gap() {
        let berlin = Zone::iana("Europe/Berlin").expect("zone");
        // 2026-03-29 02:30 does not exist in Berlin: read with +01:00.
        assert_eq!(
            berlin.to_instant(local("2026-03-29T02:30:00")).to_rfc3339(),
            "2026-03-29T01:30:00Z"
        );
    }

    #[test]
    fn dst_overlap_takes_first_occurrence() {
        let berlin = Zone::iana("Europe/Berlin").expect("zone");
        // 2026-10-25 02:30 happens twice: the first is still +02:00.
        assert_eq!(
            berlin.to_instant(local("2026-10-25T02:30:00")).to_rfc3339(),
            "2026-10-25T00:30:00Z"
        );
    }

    #[test]
    fn mozilla_and_windows_tzids_map_to_iana() {
        assert_eq!(
            Zone::iana("/mozilla.org/20050126_1/Europe/Berlin").map(|z| z.name().to_string()),
            Some("Europe/Berlin".into())
        );
        assert_eq!(
            Zone::iana("W. Europe Standard Time").map(|z| z.name().to_string()),
            Some("Europe/Berlin".into())
        );
        assert!(Zone::iana("Nowhere/Atlantis").is_none());
    }

    #[test]
    fn unknown_vtimezone_is_evaluated_from_its_rules_not_utc() {
        let text = "BEGIN:VCALENDAR\r\nBEGIN:VTIMEZONE\r\nTZID:Custom Central\r\n\
BEGIN:STANDARD\r\nDTSTART:19701025T030000\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\n\
BEGIN:DAYLIGHT\r\nDTSTART:19700329T020000\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\n\
END:VTIMEZONE\r\nEND:VCALENDAR\r\n";
        let zone = Zone::from_calendar_timezone(text).expect("zone");
        assert_eq!(zone.name(), "Custom Central");
        assert_eq!(
            zone.to_instant(local("2026-07-01T12:00:00")).to_rfc3339(),
            "2026-07-01T10:00:00Z"
        );
        assert_eq!(
            zone.to_instant(local("2026-12-01T12:00:00")).to_rfc3339(),
            "2026-12-01T11:00:00Z"
        );
        assert_eq!(
            zone.to_instant(local("2026-03-29T02:30:00")).to_rfc3339(),
            "2026-03-29T01:30:00Z"
        );
        assert_eq!(
            zone.to_instant(local("2026-10-25T02:30:00")).to_rfc3339(),
            "2026-10-25T00:30:00Z"
        );
    }
}
