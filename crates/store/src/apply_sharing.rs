//! `apply` for sharing: shares, per-user parts and per-user properties.
//!
//! Owns what sharing changes in the state, under the same rules as
//! `apply.rs` (deterministic, one command per change, rejections leave
//! nothing behind). A user's part of an object (their alarms,
//! transparency, acknowledgements, snoozes) lives in `per_user_data`,
//! beside the shared text; a change to it moves only that user's
//! revision, so other users see no change (no new ETag, no sync entry).
//!
//! The first share of a calendar splits every object's per-user parts —
//! until then, the owner's — out of the shared text, with the calendar
//! core's pure `split_per_user`: a function of the stored text alone, so
//! it is as deterministic as the rest of `apply` (invariant 2) and needs
//! no plan from the leader; alarms are unchanged by it, so the index rows
//! stay as they are.

use rusqlite::{Connection as Transaction, OptionalExtension, params};
use tocsin_calendar::Instant;

use crate::StoreError;
use crate::apply::{
    ApplyResult, applied, calendar_owner, cancel_pending_outbox, rejected, replan_covers_calendar,
    touch_calendar, write_index_row,
};
use crate::cached::CachedExec;
use crate::command::{ObjectReplan, Rejection, ShareCalendar, etag_of};
use crate::model::{CalendarId, PropName};

/// A user's part of an object, if they have one.
pub(crate) fn per_user_part(
    tx: &Transaction,
    object_id: &str,
    user: &str,
) -> Result<Option<String>, StoreError> {
    Ok(tx
        .row_cached(
            "SELECT data FROM per_user_data WHERE object_id = ?1 AND user = ?2",
            params![object_id, user],
            |r| r.get(0),
        )
        .optional()?)
}

fn bump_user_revision(
    tx: &Transaction,
    calendar_id: &CalendarId,
    user: &str,
    rev: i64,
) -> Result<(), StoreError> {
    tx.exec_cached(
        "INSERT OR REPLACE INTO user_calendar_revisions (calendar_id, user, revision) VALUES (?1, ?2, ?3)",
        params![calendar_id.0, user, rev],
    )?;
    Ok(())
}

/// Stores a user's part of an object (only that user's view changes).
pub(crate) fn write_per_user_part(
    tx: &Transaction,
    rev: i64,
    calendar_id: &CalendarId,
    object_id: &str,
    user: &str,
    part: &str,
) -> Result<(), StoreError> {
    let unchanged = per_user_part(tx, object_id, user)?.is_some_and(|p| p == part);
    if unchanged {
        return Ok(());
    }
    tx.exec_cached(
        "INSERT OR REPLACE INTO per_user_data (object_id, user, data, revision) VALUES (?1, ?2, ?3, ?4)",
        params![object_id, user, part, rev],
    )?;
    bump_user_revision(tx, calendar_id, user, rev)
}

fn principal_exists(tx: &Transaction, name: &str) -> Result<bool, StoreError> {
    Ok(tx
        .row_cached("SELECT 1 FROM principals WHERE name = ?1", [name], |_| {
            Ok(())
        })
        .optional()?
        .is_some())
}

fn slug_taken(tx: &Transaction, user: &str, slug: &str) -> Result<bool, StoreError> {
    Ok(tx
        .row_cached(
            "SELECT 1 FROM calendars WHERE owner = ?1 AND slug = ?2
             UNION ALL SELECT 1 FROM shares WHERE sharee = ?1 AND slug = ?2",
            params![user, slug],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

pub(crate) fn share_calendar(tx: &Transaction, rev: i64, share: &ShareCalendar) -> ApplyResult {
    let Some(owner) = calendar_owner(tx, &share.calendar_id)? else {
        return rejected(Rejection::NotFound);
    };
    if share.sharee == owner || !principal_exists(tx, &share.sharee)? {
        return rejected(Rejection::NotFound);
    }
    let updated = tx.exec_cached(
        "UPDATE shares SET access = ?3 WHERE calendar_id = ?1 AND sharee = ?2",
        params![share.calendar_id.0, share.sharee, share.access.as_str()],
    )?;
    if updated == 0 {
        if slug_taken(tx, &share.sharee, &share.slug)? {
            return rejected(Rejection::AlreadyExists);
        }
        let first_share = tx
            .row_cached(
                "SELECT 1 FROM shares WHERE calendar_id = ?1",
                [&share.calendar_id.0],
                |_| Ok(()),
            )
            .optional()?
            .is_none();
        tx.exec_cached(
            "INSERT INTO shares (calendar_id, sharee, access, slug, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                share.calendar_id.0,
                share.sharee,
                share.access.as_str(),
                share.slug,
                share.at.millis()
            ],
        )?;
        if first_share {
            split_owner_parts(tx, rev, &share.calendar_id, &owner)?;
        }
    }
    touch_calendar(tx, &share.calendar_id, rev, share.at)?;
    Ok(applied(rev, updated == 0))
}

/// Moves the owner's alarms and transparency out of every object's shared
/// text into the owner's per-user part, so a sharee never sees or hears
/// them (an owner's alarm never goes to a sharee).
fn split_owner_parts(
    tx: &Transaction,
    rev: i64,
    calendar_id: &CalendarId,
    owner: &str,
) -> Result<(), StoreError> {
    let objects: Vec<(String, String)> = {
        let mut stmt = tx.prepare_cached(
            "SELECT id, ical FROM objects WHERE calendar_id = ?1
             AND id NOT IN (SELECT object_id FROM per_user_data WHERE user = ?2) ORDER BY id",
        )?;
        let rows = stmt.query_map(params![calendar_id.0, owner], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })?;
        rows.collect::<Result<_, _>>()?
    };
    for (id, ical) in objects {
        let Some((shared, part)) = tocsin_calendar::split_per_user(&ical) else {
            continue;
        };
        if shared == ical {
            continue;
        }
        tx.exec_cached(
            "UPDATE objects SET ical = ?1, etag = ?2, revision = ?3 WHERE id = ?4",
            params![shared, etag_of(&shared), rev, id],
        )?;
        write_per_user_part(tx, rev, calendar_id, &id, owner, &part)?;
    }
    Ok(())
}

pub(crate) fn revoke_share(
    tx: &Transaction,
    rev: i64,
    calendar_id: &CalendarId,
    sharee: &str,
    at: Instant,
) -> ApplyResult {
    let removed = tx.exec_cached(
        "DELETE FROM shares WHERE calendar_id = ?1 AND sharee = ?2",
        params![calendar_id.0, sharee],
    )?;
    if removed == 0 {
        return rejected(Rejection::NotFound);
    }
    const OBJECTS: &str = "SELECT id FROM objects WHERE calendar_id = ?1";
    for table in ["per_user_data", "alarm_watermarks"] {
        tx.exec_cached(
            &format!("DELETE FROM {table} WHERE user = ?2 AND object_id IN ({OBJECTS})"),
            params![calendar_id.0, sharee],
        )?;
    }
    for table in ["user_calendar_props", "user_calendar_revisions"] {
        tx.exec_cached(
            &format!("DELETE FROM {table} WHERE calendar_id = ?1 AND user = ?2"),
            params![calendar_id.0, sharee],
        )?;
    }
    cancel_pending_outbox(
        tx,
        &format!("user = ?2 AND object_id IN ({OBJECTS})"),
        &[&calendar_id.0, sharee],
        "share revoked",
        at,
    )?;
    touch_calendar(tx, calendar_id, rev, at)?;
    Ok(applied(rev, false))
}

/// Users with default alarms on a calendar: their alarms may ring for any
/// of its objects, so each object keeps a watermark for them.
pub(crate) fn users_with_default_alarms(
    tx: &Transaction,
    calendar_id: &CalendarId,
) -> Result<Vec<String>, StoreError> {
    let mut stmt = tx.prepare_cached(
        "SELECT DISTINCT user FROM user_calendar_props WHERE calendar_id = ?1
         AND namespace = 'urn:ietf:params:xml:ns:caldav'
         AND name IN ('default-alarm-vevent-datetime', 'default-alarm-vevent-date') ORDER BY user",
    )?;
    let rows = stmt.query_map([&calendar_id.0], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn patch_user_calendar(
    tx: &Transaction,
    rev: i64,
    calendar_id: &CalendarId,
    user: &str,
    set: &[(PropName, String)],
    remove: &[PropName],
    replan: &[ObjectReplan],
    at: Instant,
) -> ApplyResult {
    let Some(owner) = calendar_owner(tx, calendar_id)? else {
        return rejected(Rejection::NotFound);
    };
    let shared_with_user = tx
        .row_cached(
            "SELECT 1 FROM shares WHERE calendar_id = ?1 AND sharee = ?2",
            params![calendar_id.0, user],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if user != owner && !shared_with_user {
        return rejected(Rejection::NotFound);
    }
    if !replan.is_empty() {
        if !replan_covers_calendar(tx, calendar_id, replan)? {
            return rejected(Rejection::Stale);
        }
        for object in replan {
            write_index_row(tx, &object.object_id.0, object.next_check)?;
        }
    }
    for (name, value) in set {
        tx.exec_cached(
            "INSERT OR REPLACE INTO user_calendar_props (calendar_id, user, namespace, name, value) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![calendar_id.0, user, name.namespace, name.name, value],
        )?;
    }
    for name in remove {
        tx.exec_cached(
            "DELETE FROM user_calendar_props WHERE calendar_id = ?1 AND user = ?2 AND namespace = ?3 AND name = ?4",
            params![calendar_id.0, user, name.namespace, name.name],
        )?;
    }
    // A user who now has default alarms starts hearing them from now on:
    // every object gets a watermark for them (invariant 7), so nothing
    // before this moment rings.
    if users_with_default_alarms(tx, calendar_id)?
        .iter()
        .any(|u| u == user)
    {
        tx.exec_cached(
            "INSERT OR IGNORE INTO alarm_watermarks (object_id, user, handled_until_ms)
             SELECT id, ?2, ?3 FROM objects WHERE calendar_id = ?1",
            params![calendar_id.0, user, at.millis()],
        )?;
    }
    bump_user_revision(tx, calendar_id, user, rev)?;
    Ok(applied(rev, false))
}
