//! Tocsin's calendar core: parse and normalise iCalendar, expand recurrences
//! (RRULE, RDATE, EXDATE, overrides, time zones), evaluate CalDAV filters and
//! compute alarm instants and `next_check`.
//!
//! Architecture invariant: the calendar core knows nothing of SQLite, HTTP,
//! openraft or the clock. "Now" is always an argument; it reads no
//! environment and no file.
//!
//! The main types are [`CalendarObject`] (one calendar object resource),
//! [`Zone`], [`Instant`], the filter data ([`CompFilter`]…) and the alarm
//! functions [`due_alarms`], [`upcoming_alarms`] and [`next_check`].
//!
//! ```
//! use tocsin_calendar::*;
//! let text = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:x\r\n\
//! DTSTART:20261204T100000Z\r\nDTEND:20261204T110000Z\r\nBEGIN:VALARM\r\n\
//! ACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
//! let obj = CalendarObject::parse(text, &Limits::default()).unwrap();
//! let zone = Zone::utc();
//! let view = UserView { user: "alice", addresses: &[], zone: &zone, alarm_overlay: None, default_alarms: None };
//! let now = Instant::parse_rfc3339("2026-12-01T00:00:00Z").unwrap();
//! let next = next_check(&obj, &[(view, now)], now, &AlarmPolicy::default()).unwrap();
//! assert_eq!(next.at.to_rfc3339(), "2026-12-04T09:45:00Z");
//! ```
#![deny(missing_docs)]

mod alarm;
mod error;
mod expand;
mod filter;
mod instance;
mod instant;
mod object;
mod peruser;
mod rrule;
mod value;
mod zone;

pub use alarm::{
    AlarmAction, AlarmOverlay, AlarmPolicy, DefaultAlarms, DueAlarm, NextCheck, UserView,
    due_alarms, next_check, upcoming_alarms,
};
pub use error::{CalendarError, Precondition};
pub use expand::{BusyKind, BusyPeriod, EXPAND_INSTANCES_MAX};
pub use filter::{Collation, CompFilter, ParamFilter, PropFilter, TextMatch};
pub use instance::Instance;
pub use instant::{Duration, Instant};
pub use object::{CalendarObject, ComponentKind, Limits};
pub use peruser::{merge_per_user, split_per_user, strip_per_user};
pub use zone::Zone;

/// Half-open `[start, end)`; `None` is unbounded on that side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TimeRange {
    /// Inclusive start; `None` = since forever.
    pub start: Option<Instant>,
    /// Exclusive end; `None` = forever.
    pub end: Option<Instant>,
}

impl TimeRange {
    /// RFC 4791 §9.9 overlap of an instance `[start, end)` with the range;
    /// a zero-length instance overlaps when `start <= s < end`.
    pub fn overlaps(&self, start: Instant, end: Instant) -> bool {
        let starts_before_end = self.end.is_none_or(|e| start < e);
        let ends_after_start = match self.start {
            None => true,
            Some(s) if end > start => end > s,
            Some(s) => start >= s,
        };
        starts_before_end && ends_after_start
    }

    /// `start <= t < end`.
    pub fn contains(&self, t: Instant) -> bool {
        self.start.is_none_or(|s| t >= s) && self.end.is_none_or(|e| t < e)
    }
}
