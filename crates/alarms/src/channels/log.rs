//! The `log` channel: one line on the server's output per alarm, so a new
//! user sees alarms fire with no setup at all.

use crate::payload::AlarmPayload;

use super::SendOutcome;

/// Writes the alarm as one log line.
pub fn send(payload: &AlarmPayload, late_seconds: f64) -> SendOutcome {
    tracing::info!(
        target: "tocsin::alarm",
        user = %payload.user,
        calendar = %payload.calendar.name,
        uid = %payload.uid,
        recurrence_id = payload.recurrence_id.as_deref().unwrap_or("-"),
        action = %payload.action,
        trigger = %payload.trigger,
        late_seconds = late_seconds,
        key = %payload.idempotency_key,
        "ALARM {}",
        payload.headline()
    );
    SendOutcome::Delivered
}
