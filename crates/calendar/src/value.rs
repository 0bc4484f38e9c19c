//! Typed date, date-time and duration values read from calcard's entries.
//!
//! Owns: `DateValue` (DATE, floating, UTC or zoned DATE-TIME), `Dur` (an
//! RFC 5545 duration with its nominal day part kept apart from its exact
//! time part) and their resolution to instants in a zone.
//! Must never: guess a zone — floating and DATE values are resolved in the
//! zone the caller passes (the calendar's, UTC when none).

use crate::instant::{Duration, Instant};
use crate::zone::Zone;
use calcard::common::PartialDateTime;
use calcard::icalendar::{
    ICalendarDuration, ICalendarEntry, ICalendarParameterName, ICalendarValue,
};
use chrono::{Days, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta};

/// A DATE or DATE-TIME value as written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DateValue {
    /// VALUE=DATE: all-day, in the calendar's zone.
    Date(NaiveDate),
    /// A DATE-TIME without zone: wall-clock time in the calendar's zone.
    Floating(NaiveDateTime),
    /// `…Z` (or an explicit offset, normalised to UTC).
    Utc(NaiveDateTime),
    /// TZID=…: index into the object's zone table.
    Zoned(NaiveDateTime, usize),
}

impl DateValue {
    /// Local wall-clock time (midnight for a DATE).
    pub(crate) fn local(&self) -> NaiveDateTime {
        match self {
            DateValue::Date(d) => d.and_time(NaiveTime::MIN),
            DateValue::Floating(t) | DateValue::Utc(t) | DateValue::Zoned(t, _) => *t,
        }
    }

    /// A zoned value as UTC, so that it can outlive the object's zone table
    /// (alarm triggers of overlays and defaults).
    pub(crate) fn pinned(self, zones: &[Zone]) -> DateValue {
        match self {
            DateValue::Zoned(t, i) => match zones.get(i) {
                Some(z) => z.to_instant(t).to_naive_utc().map_or(self, DateValue::Utc),
                None => DateValue::Floating(t),
            },
            other => other,
        }
    }

    pub(crate) fn is_date(&self) -> bool {
        matches!(self, DateValue::Date(_))
    }

    pub(crate) fn is_floating_or_date(&self) -> bool {
        matches!(self, DateValue::Date(_) | DateValue::Floating(_))
    }

    /// The zone this value's wall-clock time is read in.
    pub(crate) fn zone(&self, zones: &[Zone], calendar_zone: &Zone) -> Zone {
        match self {
            DateValue::Utc(_) => Zone::utc(),
            DateValue::Zoned(_, i) => zones
                .get(*i)
                .cloned()
                .unwrap_or_else(|| calendar_zone.clone()),
            DateValue::Date(_) | DateValue::Floating(_) => calendar_zone.clone(),
        }
    }

    /// The instant, floating and DATE values read in `calendar_zone`.
    pub(crate) fn instant(&self, zones: &[Zone], calendar_zone: &Zone) -> Instant {
        match self {
            DateValue::Utc(t) => Instant::from_naive_utc(*t),
            _ => self.zone(zones, calendar_zone).to_instant(self.local()),
        }
    }

    /// Reads one calcard value, with the entry's TZID resolved by `zone_index`.
    pub(crate) fn from_partial(
        p: &PartialDateTime,
        tzid_index: Option<usize>,
    ) -> Option<DateValue> {
        let dt = p.to_date_time()?;
        if p.hour.is_none() {
            return Some(DateValue::Date(dt.date_time.date()));
        }
        if let Some(offset) = dt.offset {
            let utc = dt.date_time - TimeDelta::seconds(i64::from(offset.local_minus_utc()));
            return Some(DateValue::Utc(utc));
        }
        Some(match tzid_index {
            Some(i) => DateValue::Zoned(dt.date_time, i),
            None => DateValue::Floating(dt.date_time),
        })
    }
}

/// The TZID parameter of an entry.
pub(crate) fn tzid_of(entry: &ICalendarEntry) -> Option<&str> {
    entry
        .parameters(&ICalendarParameterName::Tzid)
        .find_map(|v| v.as_text())
}

/// An RFC 5545 duration: weeks and days are nominal (calendar days, DST
/// aware), hours/minutes/seconds exact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct Dur {
    pub days: i64,
    pub secs: i64,
}

impl Dur {
    pub(crate) fn from_calcard(d: &ICalendarDuration) -> Dur {
        let days = i64::from(d.weeks) * 7 + i64::from(d.days);
        let secs = i64::from(d.hours) * 3600 + i64::from(d.minutes) * 60 + i64::from(d.seconds);
        if d.neg {
            Dur {
                days: -days,
                secs: -secs,
            }
        } else {
            Dur { days, secs }
        }
    }

    /// As an exact duration (a day taken as 24 h), for bounds and triggers.
    pub(crate) fn exact(&self) -> Duration {
        Duration::from_secs(self.days.saturating_mul(86_400).saturating_add(self.secs))
    }

    /// `local + self` in `zone`: days on the wall clock, then exact seconds.
    pub(crate) fn add_to(&self, local: NaiveDateTime, zone: &Zone) -> Instant {
        let shifted = if self.days >= 0 {
            local.checked_add_days(Days::new(self.days.unsigned_abs()))
        } else {
            local.checked_sub_days(Days::new(self.days.unsigned_abs()))
        };
        let base = zone.to_instant(shifted.unwrap_or(local));
        base.saturating_add(Duration::from_secs(self.secs))
    }
}

/// The first value of an entry as a duration.
pub(crate) fn duration_of(entry: &ICalendarEntry) -> Option<Dur> {
    match entry.values.first()? {
        ICalendarValue::Duration(d) => Some(Dur::from_calcard(d)),
        _ => None,
    }
}
