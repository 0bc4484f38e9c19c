//! Instants and durations: the two newtypes every time computation in the
//! calendar core is expressed in.
//!
//! Owns: `Instant` (milliseconds since the Unix epoch, UTC) and `Duration`
//! (signed milliseconds), their RFC 3339 text form and checked arithmetic.
//! Must never: read the clock. "Now" is always an argument (DESIGN.md
//! invariant 2: what depends on the clock is computed by the leader and
//! carried in the command).

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Milliseconds since the Unix epoch, UTC.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Instant(i64);

/// A signed length of time in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Duration(i64);

const MILLIS_PER_SECOND: i64 = 1000;

impl Duration {
    /// The empty duration.
    pub const ZERO: Duration = Duration(0);

    /// A duration of `millis` milliseconds.
    pub const fn from_millis(millis: i64) -> Self {
        Duration(millis)
    }

    /// A duration of `secs` seconds (saturating).
    pub const fn from_secs(secs: i64) -> Self {
        Duration(secs.saturating_mul(MILLIS_PER_SECOND))
    }

    /// The length in milliseconds.
    pub const fn millis(self) -> i64 {
        self.0
    }

    /// The length in whole seconds (rounded toward negative infinity).
    pub const fn secs(self) -> i64 {
        self.0.div_euclid(MILLIS_PER_SECOND)
    }

    /// `self - other`, saturating.
    pub fn saturating_sub(self, other: Duration) -> Duration {
        Duration(self.0.saturating_sub(other.0))
    }

    /// `self + secs` seconds, saturating.
    pub fn saturating_add_secs(self, secs: i64) -> Duration {
        Duration(
            self.0
                .saturating_add(secs.saturating_mul(MILLIS_PER_SECOND)),
        )
    }
}

impl Instant {
    /// The Unix epoch.
    pub const EPOCH: Instant = Instant(0);
    /// The earliest instant the crate computes with (year 0001).
    pub const MIN: Instant = Instant(-62_135_596_800_000);
    /// The latest instant the crate computes with (end of year 9999: iCalendar
    /// writes four-digit years).
    pub const MAX: Instant = Instant(253_402_300_799_000);

    /// The instant `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: i64) -> Self {
        Instant(millis)
    }

    /// The instant `secs` seconds after the epoch (saturating).
    pub const fn from_secs(secs: i64) -> Self {
        Instant(secs.saturating_mul(MILLIS_PER_SECOND))
    }

    /// Milliseconds since the epoch.
    pub const fn millis(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch (rounded toward negative infinity).
    pub const fn secs(self) -> i64 {
        self.0.div_euclid(MILLIS_PER_SECOND)
    }

    /// `self + d`, or `None` on overflow.
    pub fn checked_add(self, d: Duration) -> Option<Instant> {
        self.0.checked_add(d.0).map(Instant)
    }

    /// `self - d`, or `None` on overflow.
    pub fn checked_sub(self, d: Duration) -> Option<Instant> {
        self.0.checked_sub(d.0).map(Instant)
    }

    /// `self + d`, clamped to the representable range.
    pub fn saturating_add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(d.0))
    }

    /// `self - d`, clamped to the representable range.
    pub fn saturating_sub(self, d: Duration) -> Instant {
        Instant(self.0.saturating_sub(d.0))
    }

    /// The duration from `earlier` to `self` (saturating).
    pub fn since(self, earlier: Instant) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }

    /// RFC 3339 in UTC: `2026-12-04T10:00:00Z`, with milliseconds only when
    /// they are not zero.
    pub fn to_rfc3339(self) -> String {
        match self.to_chrono() {
            Some(dt) => {
                let format = if self.0.rem_euclid(MILLIS_PER_SECOND) == 0 {
                    SecondsFormat::Secs
                } else {
                    SecondsFormat::Millis
                };
                dt.to_rfc3339_opts(format, true)
            }
            None => format!("@{}ms", self.0),
        }
    }

    /// Parses RFC 3339 text (any offset); `None` when it is not RFC 3339.
    pub fn parse_rfc3339(text: &str) -> Option<Instant> {
        DateTime::parse_from_rfc3339(text.trim())
            .ok()
            .map(|dt| Instant(dt.timestamp_millis()))
    }

    /// iCalendar UTC DATE-TIME text: `20261204T100000Z` (seconds precision).
    pub fn to_ical_utc(self) -> String {
        match self.to_chrono() {
            Some(dt) => dt.format("%Y%m%dT%H%M%SZ").to_string(),
            None => "19700101T000000Z".to_string(),
        }
    }

    pub(crate) fn to_chrono(self) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp_millis(self.0)
    }

    pub(crate) fn to_naive_utc(self) -> Option<NaiveDateTime> {
        self.to_chrono().map(|dt| dt.naive_utc())
    }

    pub(crate) fn from_naive_utc(naive: NaiveDateTime) -> Instant {
        Instant(naive.and_utc().timestamp_millis())
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_omits_zero_milliseconds() {
        let t = Instant::parse_rfc3339("2026-12-04T10:00:00Z").expect("valid");
        assert_eq!(t.to_rfc3339(), "2026-12-04T10:00:00Z");
        assert_eq!(
            Instant::from_millis(t.millis() + 5).to_rfc3339(),
            "2026-12-04T10:00:00.005Z"
        );
    }

    #[test]
    fn rfc3339_parse_honours_offset() {
        let t = Instant::parse_rfc3339("2026-12-04T11:00:00+01:00").expect("valid");
        assert_eq!(t.to_rfc3339(), "2026-12-04T10:00:00Z");
        assert_eq!(Instant::parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn checked_add_reports_overflow() {
        assert_eq!(
            Instant::from_millis(i64::MAX).checked_add(Duration::from_millis(1)),
            None
        );
        assert_eq!(
            Instant::from_secs(10).checked_add(Duration::from_secs(5)),
            Some(Instant::from_secs(15))
        );
    }
}
