//! Reads for the alarm engine: the index, the outbox, users' channels.
//!
//! Owns the SQL the scheduler and the delivery workers read with. Every
//! query here is bounded by a limit from the caller and answered from an
//! index (`alarm_index_by_time`, `alarm_outbox_pending`), so finding the
//! next due object stays O(log n) however many objects there are.

use rusqlite::{OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};
use tocsin_calendar::Instant;

use crate::StoreError;
use crate::command::AlarmSettings;
use crate::model::{CalendarId, ObjectId};
use crate::query::Query;

/// One outbox entry: a delivery planned, sent, failed or skipped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// The idempotency key.
    pub key: String,
    /// The object whose alarm it is.
    pub object_id: ObjectId,
    /// The user it fired for.
    pub user: String,
    /// `log`, `webhook` or `email`.
    pub channel: String,
    /// Where it goes.
    pub recipient: String,
    /// The alarm's trigger.
    pub trigger: Instant,
    /// When the leader fired it.
    pub fired: Instant,
    /// `pending`, `delivered`, `failed`, `skipped` or `cancelled`.
    pub state: String,
    /// Attempts so far.
    pub attempts: u32,
    /// When the next attempt is due (pending only).
    pub next_attempt: Option<Instant>,
    /// The last failure, or why it was skipped or cancelled.
    pub last_error: Option<String>,
    /// What is sent (JSON).
    pub payload: String,
    /// When the entry last changed (for a delivered entry: when it was delivered).
    pub updated: Instant,
}

const OUTBOX_COLUMNS: &str = "key, object_id, user, channel, recipient, trigger_ms, fired_ms, state, attempts, next_attempt_ms, last_error, payload, updated_ms";

fn outbox_from_row(r: &Row) -> rusqlite::Result<OutboxEntry> {
    Ok(OutboxEntry {
        key: r.get(0)?,
        object_id: ObjectId(r.get(1)?),
        user: r.get(2)?,
        channel: r.get(3)?,
        recipient: r.get(4)?,
        trigger: Instant::from_millis(r.get(5)?),
        fired: Instant::from_millis(r.get(6)?),
        state: r.get(7)?,
        attempts: r.get::<_, i64>(8)? as u32,
        next_attempt: r.get::<_, Option<i64>>(9)?.map(Instant::from_millis),
        last_error: r.get(10)?,
        payload: r.get(11)?,
        updated: Instant::from_millis(r.get(12)?),
    })
}

/// An object whose index row is due: what the scheduler needs to choose
/// a fair batch, without the object's text (it loads that only for the
/// objects it plans).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueObject {
    /// The object.
    pub object_id: ObjectId,
    /// Its calendar.
    pub calendar_id: CalendarId,
    /// The calendar's owner.
    pub owner: String,
    /// Its index row.
    pub next_check: Instant,
}

impl Query<'_> {
    /// The earliest `next_check` in the index.
    pub fn next_due(&self) -> Result<Option<Instant>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached("SELECT next_check_ms FROM alarm_index ORDER BY next_check_ms LIMIT 1")?
            .query_row([], |r| r.get::<_, i64>(0))
            .optional()?
            .map(Instant::from_millis))
    }

    /// Objects whose `next_check` is at or before `now`, earliest first,
    /// at most `limit`.
    pub fn due_objects(&self, now: Instant, limit: usize) -> Result<Vec<DueObject>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT i.object_id, o.calendar_id, c.owner, i.next_check_ms FROM alarm_index i
             JOIN objects o ON o.id = i.object_id JOIN calendars c ON c.id = o.calendar_id
             WHERE i.next_check_ms <= ?1
             ORDER BY i.next_check_ms, i.object_id LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![now.millis(), limit as i64], |r| {
            Ok(DueObject {
                object_id: ObjectId(r.get(0)?),
                calendar_id: CalendarId(r.get(1)?),
                owner: r.get(2)?,
                next_check: Instant::from_millis(r.get(3)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Index rows of one owner's objects (or everyone's), earliest first.
    pub fn index_rows(
        &self,
        owner: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(ObjectId, Instant)>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT i.object_id, i.next_check_ms FROM alarm_index i
             JOIN objects o ON o.id = i.object_id JOIN calendars c ON c.id = o.calendar_id
             WHERE ?1 IS NULL OR c.owner = ?1 OR EXISTS (SELECT 1 FROM per_user_data p WHERE p.object_id = i.object_id AND p.user = ?1)
             ORDER BY i.next_check_ms LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![owner, limit as i64], |r| {
            Ok((ObjectId(r.get(0)?), Instant::from_millis(r.get(1)?)))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The earliest attempt due among pending deliveries.
    pub fn next_delivery_due(&self) -> Result<Option<Instant>, StoreError> {
        Ok(self
            .conn()
            .prepare_cached(
                "SELECT next_attempt_ms FROM alarm_outbox WHERE state = 'pending' ORDER BY next_attempt_ms LIMIT 1",
            )?
            .query_row([], |r| r.get::<_, Option<i64>>(0))
            .optional()?
            .flatten()
            .map(Instant::from_millis))
    }

    /// Pending deliveries due at or before `now`, earliest first.
    pub fn pending_deliveries(
        &self,
        now: Instant,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let sql = format!(
            "SELECT {OUTBOX_COLUMNS} FROM alarm_outbox WHERE state = 'pending' AND next_attempt_ms <= ?1
             ORDER BY next_attempt_ms, key LIMIT ?2"
        );
        let mut stmt = self.conn().prepare_cached(&sql)?;
        let rows = stmt.query_map(params![now.millis(), limit as i64], outbox_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The keys of pending deliveries due at or before `now`, earliest
    /// first: read from the covering index alone, so a worker that already
    /// has most of them in flight pays nothing for their payloads.
    pub fn pending_delivery_keys(
        &self,
        now: Instant,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let mut stmt = self.conn().prepare_cached(
            "SELECT key FROM alarm_outbox WHERE state = 'pending' AND next_attempt_ms <= ?1
             ORDER BY next_attempt_ms, key LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![now.millis(), limit as i64], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One outbox entry.
    pub fn outbox_entry(&self, key: &str) -> Result<Option<OutboxEntry>, StoreError> {
        let sql = format!("SELECT {OUTBOX_COLUMNS} FROM alarm_outbox WHERE key = ?1");
        Ok(self
            .conn()
            .prepare_cached(&sql)?
            .query_row([key], outbox_from_row)
            .optional()?)
    }

    /// The delivery log, the most recently fired first.
    pub fn outbox_log(
        &self,
        user: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let limit = limit as i64;
        let entries = match user {
            Some(user) => {
                let sql = format!(
                    "SELECT {OUTBOX_COLUMNS} FROM alarm_outbox WHERE user = ?1
                     ORDER BY fired_ms DESC, key LIMIT ?2"
                );
                let mut stmt = self.conn().prepare_cached(&sql)?;
                let rows = stmt.query_map(params![user, limit], outbox_from_row)?;
                rows.collect::<Result<_, _>>()?
            }
            None => {
                let sql = format!(
                    "SELECT {OUTBOX_COLUMNS} FROM alarm_outbox ORDER BY fired_ms DESC, key LIMIT ?1"
                );
                let mut stmt = self.conn().prepare_cached(&sql)?;
                let rows = stmt.query_map(params![limit], outbox_from_row)?;
                rows.collect::<Result<_, _>>()?
            }
        };
        Ok(entries)
    }

    /// A user's alarm channels, if they set any.
    pub fn alarm_settings(&self, user: &str) -> Result<Option<AlarmSettings>, StoreError> {
        let raw: Option<(String, Option<String>, Option<String>)> = self
            .conn()
            .prepare_cached(
                "SELECT channels, webhook_url, webhook_secret FROM alarm_settings WHERE user = ?1",
            )?
            .query_row([user], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .optional()?;
        raw.map(|(channels, webhook_url, webhook_secret)| {
            Ok(AlarmSettings {
                user: user.to_owned(),
                channels: serde_json::from_str(&channels)
                    .map_err(|e| StoreError::corrupt("alarm_settings", e))?,
                webhook_url,
                webhook_secret,
            })
        })
        .transpose()
    }
}
