//! What a delivery carries: the alarm document, computed when it fires.
//!
//! Owns the JSON document the webhook receives (and the email is written
//! from). It is computed by the leader at firing time and kept in the
//! outbox, so a retry after a failover sends the same document with the
//! same idempotency key (invariant 6); only `late_seconds` is added when
//! it is sent. It must never depend on the receiver.

use serde::{Deserialize, Serialize};

/// The calendar an alarm belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarRef {
    /// The calendar's id.
    pub id: String,
    /// Its display name.
    pub name: String,
}

/// One alarm, as delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlarmPayload {
    /// The user it fires for.
    pub user: String,
    /// The calendar.
    pub calendar: CalendarRef,
    /// The object's name in the calendar.
    pub href: String,
    /// The iCalendar UID.
    pub uid: String,
    /// The instance's RECURRENCE-ID; null when not recurring.
    pub recurrence_id: Option<String>,
    /// SUMMARY.
    pub summary: Option<String>,
    /// DESCRIPTION (the alarm's, else the event's).
    pub description: Option<String>,
    /// LOCATION.
    pub location: Option<String>,
    /// The instance's start (RFC 3339, UTC).
    pub start: Option<String>,
    /// The instance's end (RFC 3339, UTC).
    pub end: Option<String>,
    /// The start in the calendar's zone, for people (`2026-12-10 11:00`).
    pub start_local: Option<String>,
    /// True for an all-day instance.
    pub all_day: bool,
    /// The calendar's time zone.
    pub time_zone: String,
    /// DISPLAY, AUDIO, EMAIL, …
    pub action: String,
    /// The trigger instant (RFC 3339, UTC).
    pub trigger: String,
    /// The VALARM's identity.
    pub alarm_id: String,
    /// The delivery's idempotency key.
    pub idempotency_key: String,
}

impl AlarmPayload {
    /// The document sent, with how late it is at sending time.
    pub fn to_json_with_lateness(&self, late_seconds: f64) -> String {
        let mut value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let Some(map) = value.as_object_mut() {
            map.insert(
                "late_seconds".into(),
                serde_json::json!((late_seconds * 1000.0).round() / 1000.0),
            );
        }
        value.to_string()
    }

    /// A one-line description for logs and email subjects.
    pub fn headline(&self) -> String {
        let what = self.summary.as_deref().unwrap_or("(no title)");
        match &self.start_local {
            Some(when) => format!("{what} at {when}"),
            None => what.to_owned(),
        }
    }
}
