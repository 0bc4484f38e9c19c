//! `apply`: the one function that writes durable state (invariant 1).
//!
//! Owns the meaning of every [`Command`] as SQL inside the caller's
//! transaction. It must stay deterministic (invariant 2): it reads no
//! clock, no randomness, no environment — only the command, the log index
//! it is applied at, and the rows already in the database. Everything an
//! object implies (its index row, watermark, tombstone, pending outbox
//! entries) changes in the same call as the object (invariant 3).
//!
//! Every command runs in its own savepoint: a command that ends in a
//! rejection leaves nothing behind, even if it wrote before finding out.
//! A command must never fail with a SQL error for a reason the state could
//! explain (a taken id, a missing owner): such a failure would stop the
//! node, so each is checked first and answered with a [`Rejection`].

use rusqlite::{Connection as Transaction, OptionalExtension, params};
use tocsin_calendar::Instant;

use crate::StoreError;
use crate::cached::CachedExec;
use crate::command::{
    AlarmSettings, Command, CreateCalendar, CreateUser, DeliveryResult, FireAlarms, Outcome,
    Precondition, PutObject, RecordDelivery, Rejection,
};
use crate::command::{ObjectReplan, zone_fingerprint};
use crate::model::{CalendarId, PropName};
use crate::planning::calendar_timezone_prop;

pub(crate) type ApplyResult = Result<Outcome, StoreError>;

/// Applies one command at log index `revision`.
pub(crate) fn apply_command(tx: &Transaction, revision: u64, command: &Command) -> ApplyResult {
    let rev = revision_sql(revision)?;
    match command {
        Command::CreateUser(user) => create_user(tx, rev, user),
        Command::SetPassword {
            name,
            password_hash,
            at,
        } => update_principal(tx, rev, name, "password_hash", password_hash, *at),
        Command::SetAddresses {
            name,
            addresses,
            at,
        } => {
            let json = encode_list(addresses);
            update_principal(tx, rev, name, "addresses", &json, *at)
        }
        Command::RemoveUser { name, at } => remove_user(tx, rev, name, *at),
        Command::CreateCalendar(calendar) => create_calendar(tx, rev, calendar),
        Command::PatchCalendar {
            id,
            set,
            remove,
            replan,
            at,
        } => patch_calendar(tx, rev, id, set, remove, replan, *at),
        Command::DeleteCalendar { id, at } => delete_calendar(tx, rev, id, *at),
        Command::PutObject(put) => put_object(tx, rev, put),
        Command::DeleteObject {
            calendar_id,
            href,
            if_match,
            as_user,
            at,
        } => delete_object(
            tx,
            rev,
            calendar_id,
            href,
            if_match.as_deref(),
            as_user,
            *at,
        ),
        Command::FireAlarms(fire) => fire_alarms(tx, rev, fire),
        Command::RecordDelivery(record) => record_delivery(tx, rev, record),
        Command::SetAlarmSettings(settings) => set_alarm_settings(tx, rev, settings),
        Command::ShareCalendar(share) => crate::apply_sharing::share_calendar(tx, rev, share),
        Command::RevokeShare {
            calendar_id,
            sharee,
            at,
        } => crate::apply_sharing::revoke_share(tx, rev, calendar_id, sharee, *at),
        Command::PatchUserCalendar {
            calendar_id,
            user,
            set,
            remove,
            replan,
            at,
        } => crate::apply_sharing::patch_user_calendar(
            tx,
            rev,
            calendar_id,
            user,
            set,
            remove,
            replan,
            *at,
        ),
        Command::Noop { .. } => Ok(applied(rev, false)),
    }
}

/// Log indexes are stored as SQLite integers; one past `i64::MAX` cannot be.
fn revision_sql(revision: u64) -> Result<i64, StoreError> {
    i64::try_from(revision).map_err(|_| StoreError::corrupt("raft log", "log index beyond i64"))
}

pub(crate) fn applied(rev: i64, created: bool) -> Outcome {
    Outcome::Applied {
        revision: rev as u64,
        created,
    }
}

pub(crate) fn rejected(rejection: Rejection) -> ApplyResult {
    Ok(Outcome::Rejected(rejection))
}

pub(crate) fn encode_list(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
}

fn create_user(tx: &Transaction, rev: i64, user: &CreateUser) -> ApplyResult {
    let inserted = tx.exec_cached(
        "INSERT OR IGNORE INTO principals (name, password_hash, display_name, addresses, created_ms, updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        params![
            user.name,
            user.password_hash,
            user.display_name,
            encode_list(&user.addresses),
            user.at.millis()
        ],
    )?;
    if inserted == 0 {
        return rejected(Rejection::AlreadyExists);
    }
    if let Some(calendar) = &user.default_calendar {
        if calendar_conflicts(tx, calendar)? {
            return rejected(Rejection::AlreadyExists);
        }
        insert_calendar(tx, rev, calendar)?;
    }
    Ok(applied(rev, true))
}

fn update_principal(
    tx: &Transaction,
    rev: i64,
    name: &str,
    column: &'static str,
    value: &str,
    at: Instant,
) -> ApplyResult {
    let sql = format!("UPDATE principals SET {column} = ?1, updated_ms = ?2 WHERE name = ?3");
    let updated = tx.exec_cached(&sql, params![value, at.millis(), name])?;
    if updated == 0 {
        return rejected(Rejection::NotFound);
    }
    Ok(applied(rev, false))
}

fn remove_user(tx: &Transaction, rev: i64, name: &str, at: Instant) -> ApplyResult {
    let calendars: Vec<String> = {
        let mut stmt = tx.prepare_cached("SELECT id FROM calendars WHERE owner = ?1")?;
        let rows = stmt.query_map([name], |r| r.get(0))?;
        rows.collect::<Result<_, _>>()?
    };
    for id in &calendars {
        delete_calendar_rows(tx, &CalendarId(id.clone()), at)?;
    }
    tx.exec_cached("DELETE FROM per_user_data WHERE user = ?1", [name])?;
    tx.exec_cached("DELETE FROM alarm_watermarks WHERE user = ?1", [name])?;
    tx.exec_cached("DELETE FROM alarm_settings WHERE user = ?1", [name])?;
    tx.exec_cached("DELETE FROM shares WHERE sharee = ?1", [name])?;
    tx.exec_cached("DELETE FROM user_calendar_props WHERE user = ?1", [name])?;
    tx.exec_cached(
        "DELETE FROM user_calendar_revisions WHERE user = ?1",
        [name],
    )?;
    cancel_pending_outbox(tx, "user = ?1", &[name], "user removed", at)?;
    let removed = tx.exec_cached("DELETE FROM principals WHERE name = ?1", [name])?;
    if removed == 0 {
        return rejected(Rejection::NotFound);
    }
    Ok(applied(rev, false))
}

fn create_calendar(tx: &Transaction, rev: i64, calendar: &CreateCalendar) -> ApplyResult {
    let owner_exists: bool = tx
        .row_cached(
            "SELECT 1 FROM principals WHERE name = ?1",
            [&calendar.owner],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if !owner_exists {
        return rejected(Rejection::NotFound);
    }
    if calendar_conflicts(tx, calendar)? {
        return rejected(Rejection::AlreadyExists);
    }
    insert_calendar(tx, rev, calendar)?;
    Ok(applied(rev, true))
}

/// A calendar's slug is taken in its owner's home, or its planned id is in use.
fn calendar_conflicts(tx: &Transaction, calendar: &CreateCalendar) -> Result<bool, StoreError> {
    Ok(tx
        .row_cached(
            "SELECT 1 FROM calendars WHERE (owner = ?1 AND slug = ?2) OR id = ?3",
            params![calendar.owner, calendar.slug, calendar.id.0],
            |_| Ok(()),
        )
        .optional()?
        .is_some())
}

fn insert_calendar(
    tx: &Transaction,
    rev: i64,
    calendar: &CreateCalendar,
) -> Result<(), StoreError> {
    tx.exec_cached(
        "INSERT INTO calendars (id, owner, slug, components, revision, created_ms, updated_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
        params![
            calendar.id.0,
            calendar.owner,
            calendar.slug,
            encode_list(&calendar.components),
            rev,
            calendar.at.millis()
        ],
    )?;
    for (name, value) in &calendar.props {
        set_prop(tx, &calendar.id, name, value)?;
    }
    Ok(())
}

fn set_prop(
    tx: &Transaction,
    id: &CalendarId,
    name: &PropName,
    value: &str,
) -> Result<(), StoreError> {
    tx.exec_cached(
        "INSERT OR REPLACE INTO calendar_props (calendar_id, namespace, name, value) VALUES (?1, ?2, ?3, ?4)",
        params![id.0, name.namespace, name.name, value],
    )?;
    Ok(())
}

pub(crate) fn calendar_owner(
    tx: &Transaction,
    id: &CalendarId,
) -> Result<Option<String>, StoreError> {
    Ok(tx
        .row_cached("SELECT owner FROM calendars WHERE id = ?1", [&id.0], |r| {
            r.get(0)
        })
        .optional()?)
}

pub(crate) fn touch_calendar(
    tx: &Transaction,
    id: &CalendarId,
    rev: i64,
    at: Instant,
) -> Result<(), StoreError> {
    tx.exec_cached(
        "UPDATE calendars SET revision = ?1, updated_ms = ?2 WHERE id = ?3",
        params![rev, at.millis(), id.0],
    )?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn patch_calendar(
    tx: &Transaction,
    rev: i64,
    id: &CalendarId,
    set: &[(PropName, String)],
    remove: &[PropName],
    replan: &[ObjectReplan],
    at: Instant,
) -> ApplyResult {
    if calendar_owner(tx, id)?.is_none() {
        return rejected(Rejection::NotFound);
    }
    let zone = calendar_timezone_prop();
    let zone_changes = set.iter().any(|(n, _)| *n == zone) || remove.contains(&zone);
    if zone_changes {
        if !replan_covers_calendar(tx, id, replan)? {
            return rejected(Rejection::Stale);
        }
        for object in replan {
            write_index_row(tx, &object.object_id.0, object.next_check)?;
        }
    }
    for (name, value) in set {
        set_prop(tx, id, name, value)?;
    }
    for name in remove {
        tx.exec_cached(
            "DELETE FROM calendar_props WHERE calendar_id = ?1 AND namespace = ?2 AND name = ?3",
            params![id.0, name.namespace, name.name],
        )?;
    }
    touch_calendar(tx, id, rev, at)?;
    Ok(applied(rev, false))
}

/// Whether `replan` holds every object of the calendar, each at its
/// current ETag: only then was every index row computed in the new zone.
pub(crate) fn replan_covers_calendar(
    tx: &Transaction,
    id: &CalendarId,
    replan: &[ObjectReplan],
) -> Result<bool, StoreError> {
    let count: i64 = tx.row_cached(
        "SELECT count(*) FROM objects WHERE calendar_id = ?1",
        [&id.0],
        |r| r.get(0),
    )?;
    if count as usize != replan.len() {
        return Ok(false);
    }
    for object in replan {
        let current: Option<String> = tx
            .row_cached(
                "SELECT etag FROM objects WHERE id = ?1 AND calendar_id = ?2",
                params![object.object_id.0, id.0],
                |r| r.get(0),
            )
            .optional()?;
        if current.as_deref() != Some(object.etag.as_str()) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// The fingerprint of a calendar's current time zone.
fn current_zone_fingerprint(tx: &Transaction, id: &CalendarId) -> Result<String, StoreError> {
    let zone = calendar_timezone_prop();
    let text: Option<String> = tx
        .row_cached(
            "SELECT value FROM calendar_props WHERE calendar_id = ?1 AND namespace = ?2 AND name = ?3",
            params![id.0, zone.namespace, zone.name],
            |r| r.get(0),
        )
        .optional()?;
    Ok(zone_fingerprint(text.as_deref()))
}

fn delete_calendar(tx: &Transaction, rev: i64, id: &CalendarId, at: Instant) -> ApplyResult {
    if calendar_owner(tx, id)?.is_none() {
        return rejected(Rejection::NotFound);
    }
    delete_calendar_rows(tx, id, at)?;
    Ok(applied(rev, false))
}

/// Removes a calendar with every row derived from its objects (invariant 3).
fn delete_calendar_rows(tx: &Transaction, id: &CalendarId, at: Instant) -> Result<(), StoreError> {
    const OBJECTS_OF_CALENDAR: &str = "SELECT id FROM objects WHERE calendar_id = ?1";
    for table in ["per_user_data", "alarm_index", "alarm_watermarks"] {
        tx.exec_cached(
            &format!("DELETE FROM {table} WHERE object_id IN ({OBJECTS_OF_CALENDAR})"),
            [&id.0],
        )?;
    }
    cancel_pending_outbox(
        tx,
        &format!("object_id IN ({OBJECTS_OF_CALENDAR})"),
        &[&id.0],
        "calendar deleted",
        at,
    )?;
    for table in ["shares", "user_calendar_props", "user_calendar_revisions"] {
        tx.exec_cached(
            &format!("DELETE FROM {table} WHERE calendar_id = ?1"),
            [&id.0],
        )?;
    }
    tx.exec_cached("DELETE FROM objects WHERE calendar_id = ?1", [&id.0])?;
    tx.exec_cached("DELETE FROM tombstones WHERE calendar_id = ?1", [&id.0])?;
    tx.exec_cached("DELETE FROM sync_horizons WHERE calendar_id = ?1", [&id.0])?;
    tx.exec_cached("DELETE FROM calendar_props WHERE calendar_id = ?1", [&id.0])?;
    tx.exec_cached("DELETE FROM calendars WHERE id = ?1", [&id.0])?;
    Ok(())
}

/// Pending deliveries of something that no longer exists are cancelled,
/// with the reason, never silently dropped (invariant 8).
/// `filter` names its arguments `?1`, `?2`, … in the order of `args`.
pub(crate) fn cancel_pending_outbox(
    tx: &Transaction,
    filter: &str,
    args: &[&str],
    reason: &str,
    at: Instant,
) -> Result<(), StoreError> {
    let (reason_at, updated_at) = (args.len() + 1, args.len() + 2);
    let mut bound: Vec<&dyn rusqlite::ToSql> =
        args.iter().map(|a| a as &dyn rusqlite::ToSql).collect();
    let at_ms = at.millis();
    bound.push(&reason);
    bound.push(&at_ms);
    tx.exec_cached(
        &format!(
            "UPDATE alarm_outbox SET state = 'cancelled', last_error = ?{reason_at}, updated_ms = ?{updated_at}, next_attempt_ms = NULL
             WHERE state = 'pending' AND {filter}"
        ),
        bound.as_slice(),
    )?;
    Ok(())
}

pub(crate) struct ExistingObject {
    pub(crate) id: String,
    pub(crate) etag: String,
}

pub(crate) fn existing_object(
    tx: &Transaction,
    calendar_id: &CalendarId,
    href: &str,
) -> Result<Option<ExistingObject>, StoreError> {
    Ok(tx
        .row_cached(
            "SELECT id, etag FROM objects WHERE calendar_id = ?1 AND href = ?2",
            params![calendar_id.0, href],
            |r| {
                Ok(ExistingObject {
                    id: r.get(0)?,
                    etag: r.get(1)?,
                })
            },
        )
        .optional()?)
}

pub(crate) fn precondition_holds(
    precondition: &Precondition,
    existing: Option<&ExistingObject>,
) -> bool {
    match precondition {
        Precondition::None => true,
        Precondition::IfMatch(etag) => existing.is_some_and(|e| &e.etag == etag),
        Precondition::IfNoneMatch => existing.is_none(),
        Precondition::IfExists => existing.is_some(),
    }
}

fn put_object(tx: &Transaction, rev: i64, put: &PutObject) -> ApplyResult {
    let Some(owner) = calendar_owner(tx, &put.calendar_id)? else {
        return rejected(Rejection::NotFound);
    };
    let writer = if put.as_user.is_empty() {
        owner.clone()
    } else {
        put.as_user.clone()
    };
    let existing = existing_object(tx, &put.calendar_id, &put.href)?;
    // Preconditions compare with what the writer sees: their own view.
    let writer_view = match &existing {
        Some(e) => {
            let part = crate::apply_sharing::per_user_part(tx, &e.id, &writer)?;
            Some(ExistingObject {
                id: e.id.clone(),
                etag: crate::command::view_etag(&e.etag, part.as_deref()),
            })
        }
        None => None,
    };
    if !precondition_holds(&put.precondition, writer_view.as_ref()) {
        return rejected(Rejection::PreconditionFailed);
    }
    if current_zone_fingerprint(tx, &put.calendar_id)? != put.zone_fingerprint {
        return rejected(Rejection::Stale);
    }
    let uid_holder: Option<String> = tx
        .row_cached(
            "SELECT href FROM objects WHERE calendar_id = ?1 AND uid = ?2 AND href != ?3",
            params![put.calendar_id.0, put.uid, put.href],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(href) = uid_holder {
        return rejected(Rejection::UidConflict { href });
    }
    let start = put.bounds.start.map(Instant::millis);
    let end = put.bounds.end.map(Instant::millis);
    // A write that changes only the writer's own part (their alarms) leaves
    // the shared object, its ETag and revision as other users see them.
    let shared_changed = existing.as_ref().is_none_or(|e| e.etag != put.etag);
    let object_id = match &existing {
        Some(e) if !shared_changed => e.id.clone(),
        Some(e) => {
            tx.exec_cached(
                "UPDATE objects SET uid = ?1, kind = ?2, ical = ?3, etag = ?4, revision = ?5,
                 start_ms = ?6, end_ms = ?7, modified_ms = ?8 WHERE id = ?9",
                params![
                    put.uid,
                    put.kind,
                    put.ical,
                    put.etag,
                    rev,
                    start,
                    end,
                    put.at.millis(),
                    e.id
                ],
            )?;
            e.id.clone()
        }
        None => {
            if object_id_taken(tx, &put.new_object_id.0)? {
                return rejected(Rejection::AlreadyExists);
            }
            tx.exec_cached(
                "INSERT INTO objects (id, calendar_id, href, uid, kind, ical, etag, revision, start_ms, end_ms, created_ms, modified_ms)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
                params![
                    put.new_object_id.0,
                    put.calendar_id.0,
                    put.href,
                    put.uid,
                    put.kind,
                    put.ical,
                    put.etag,
                    rev,
                    start,
                    end,
                    put.at.millis()
                ],
            )?;
            tx.exec_cached(
                "DELETE FROM tombstones WHERE calendar_id = ?1 AND href = ?2",
                params![put.calendar_id.0, put.href],
            )?;
            put.new_object_id.0.clone()
        }
    };
    // Invariant 7: an edit keeps the watermark; only a new object (or a
    // user's first part of it) starts one.
    let mut users = vec![owner.clone(), writer.clone()];
    users.extend(crate::apply_sharing::users_with_default_alarms(
        tx,
        &put.calendar_id,
    )?);
    for user in &users {
        tx.exec_cached(
            "INSERT OR IGNORE INTO alarm_watermarks (object_id, user, handled_until_ms) VALUES (?1, ?2, ?3)",
            params![object_id, user, put.at.millis()],
        )?;
    }
    if let Some(part) = &put.per_user {
        crate::apply_sharing::write_per_user_part(
            tx,
            rev,
            &put.calendar_id,
            &object_id,
            &writer,
            part,
        )?;
    }
    // Invariant 4: the index row comes from this command's own plan, never
    // from a value already stored (the seed's bug).
    write_index_row(tx, &object_id, put.next_check)?;
    if shared_changed {
        touch_calendar(tx, &put.calendar_id, rev, put.at)?;
    }
    Ok(applied(rev, existing.is_none()))
}

fn object_id_taken(tx: &Transaction, id: &str) -> Result<bool, StoreError> {
    Ok(tx
        .row_cached("SELECT 1 FROM objects WHERE id = ?1", [id], |_| Ok(()))
        .optional()?
        .is_some())
}

pub(crate) fn write_index_row(
    tx: &Transaction,
    object_id: &str,
    next_check: Option<Instant>,
) -> Result<(), StoreError> {
    match next_check {
        Some(at) => tx.exec_cached(
            "INSERT OR REPLACE INTO alarm_index (object_id, next_check_ms) VALUES (?1, ?2)",
            params![object_id, at.millis()],
        )?,
        None => tx.exec_cached("DELETE FROM alarm_index WHERE object_id = ?1", [object_id])?,
    };
    Ok(())
}

fn delete_object(
    tx: &Transaction,
    rev: i64,
    calendar_id: &CalendarId,
    href: &str,
    if_match: Option<&str>,
    as_user: &str,
    at: Instant,
) -> ApplyResult {
    let Some(existing) = existing_object(tx, calendar_id, href)? else {
        return rejected(Rejection::NotFound);
    };
    let deleter = if as_user.is_empty() {
        calendar_owner(tx, calendar_id)?.unwrap_or_default()
    } else {
        as_user.to_owned()
    };
    let part = crate::apply_sharing::per_user_part(tx, &existing.id, &deleter)?;
    let seen = crate::command::view_etag(&existing.etag, part.as_deref());
    if if_match.is_some_and(|etag| etag != seen) {
        return rejected(Rejection::PreconditionFailed);
    }
    for table in ["per_user_data", "alarm_index", "alarm_watermarks"] {
        tx.exec_cached(
            &format!("DELETE FROM {table} WHERE object_id = ?1"),
            [&existing.id],
        )?;
    }
    cancel_pending_outbox(tx, "object_id = ?1", &[&existing.id], "object deleted", at)?;
    tx.exec_cached("DELETE FROM objects WHERE id = ?1", [&existing.id])?;
    tx.exec_cached(
        "INSERT OR REPLACE INTO tombstones (calendar_id, href, revision) VALUES (?1, ?2, ?3)",
        params![calendar_id.0, href, rev],
    )?;
    prune_tombstones(tx, calendar_id)?;
    touch_calendar(tx, calendar_id, rev, at)?;
    Ok(applied(rev, false))
}

/// Deletions a calendar remembers for sync-collection. Part of the state
/// machine, so a constant, never configuration: every node must prune
/// the same tombstones at the same command.
pub const TOMBSTONES_KEPT_PER_CALENDAR: usize = 10_000;

/// Keeps the newest [`TOMBSTONES_KEPT_PER_CALENDAR`] deletions of a
/// calendar and raises its sync horizon past the ones dropped: a client
/// whose sync token is older is told to start again (RFC 6578
/// `valid-sync-token`) instead of missing deletions.
fn prune_tombstones(tx: &Transaction, calendar_id: &CalendarId) -> Result<(), StoreError> {
    let cutoff: Option<i64> = tx
        .row_cached(
            "SELECT revision FROM tombstones WHERE calendar_id = ?1 ORDER BY revision DESC LIMIT 1 OFFSET ?2",
            params![calendar_id.0, TOMBSTONES_KEPT_PER_CALENDAR as i64],
            |r| r.get(0),
        )
        .optional()?;
    let Some(cutoff) = cutoff else {
        return Ok(());
    };
    tx.exec_cached(
        "DELETE FROM tombstones WHERE calendar_id = ?1 AND revision <= ?2",
        params![calendar_id.0, cutoff],
    )?;
    tx.exec_cached(
        "INSERT INTO sync_horizons (calendar_id, revision) VALUES (?1, ?2)
         ON CONFLICT (calendar_id) DO UPDATE SET revision = max(revision, excluded.revision)",
        params![calendar_id.0, cutoff],
    )?;
    Ok(())
}

fn current_watermark(
    tx: &Transaction,
    object_id: &str,
    user: &str,
) -> Result<Option<i64>, StoreError> {
    Ok(tx
        .row_cached(
            "SELECT handled_until_ms FROM alarm_watermarks WHERE object_id = ?1 AND user = ?2",
            params![object_id, user],
            |r| r.get(0),
        )
        .optional()?)
}

/// Invariant 5: the intent (outbox entries) is committed before anything
/// is sent; with it, the watermarks and the index row move (invariants 3,
/// 4, 7). The plan is a compare-and-swap on the object's ETag and each
/// watermark, so a plan made from an older state changes nothing.
fn fire_alarms(tx: &Transaction, rev: i64, fire: &FireAlarms) -> ApplyResult {
    let etag: Option<String> = tx
        .row_cached(
            "SELECT etag FROM objects WHERE id = ?1",
            [&fire.object_id.0],
            |r| r.get(0),
        )
        .optional()?;
    match etag {
        None => return rejected(Rejection::NotFound),
        Some(etag) if etag != fire.expected_etag => return rejected(Rejection::Stale),
        Some(_) => {}
    }
    for advance in &fire.watermarks {
        let current = current_watermark(tx, &fire.object_id.0, &advance.user)?;
        if current != advance.from.map(Instant::millis) {
            return rejected(Rejection::Stale);
        }
    }
    for advance in &fire.watermarks {
        tx.exec_cached(
            "INSERT OR REPLACE INTO alarm_watermarks (object_id, user, handled_until_ms) VALUES (?1, ?2, ?3)",
            params![fire.object_id.0, advance.user, advance.to.millis()],
        )?;
    }
    for delivery in &fire.deliveries {
        let (state, next_attempt, reason) = match &delivery.skipped {
            None => ("pending", Some(fire.at.millis()), None),
            Some(reason) => ("skipped", None, Some(reason.as_str())),
        };
        // A key already in the outbox is the same delivery (invariant 6):
        // never a second row for it.
        tx.exec_cached(
            "INSERT OR IGNORE INTO alarm_outbox
             (key, object_id, user, channel, recipient, trigger_ms, fired_ms, state, attempts, next_attempt_ms, last_error, payload, updated_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0, ?9, ?10, ?11, ?7)",
            params![
                delivery.key,
                fire.object_id.0,
                delivery.user,
                delivery.channel,
                delivery.recipient,
                delivery.trigger.millis(),
                fire.at.millis(),
                state,
                next_attempt,
                reason,
                delivery.payload
            ],
        )?;
    }
    write_index_row(tx, &fire.object_id.0, fire.next_check)?;
    Ok(applied(rev, false))
}

fn record_delivery(tx: &Transaction, rev: i64, record: &RecordDelivery) -> ApplyResult {
    let at = record.at.millis();
    let changed = match &record.result {
        DeliveryResult::Delivered => tx.exec_cached(
            "UPDATE alarm_outbox SET state = 'delivered', attempts = attempts + 1, next_attempt_ms = NULL,
             last_error = NULL, updated_ms = ?2 WHERE key = ?1 AND state = 'pending'",
            params![record.key, at],
        )?,
        DeliveryResult::Retry { next_attempt, error } => tx.exec_cached(
            "UPDATE alarm_outbox SET attempts = attempts + 1, next_attempt_ms = ?2, last_error = ?3, updated_ms = ?4
             WHERE key = ?1 AND state = 'pending'",
            params![record.key, next_attempt.millis(), error, at],
        )?,
        DeliveryResult::Failed { error } => tx.exec_cached(
            "UPDATE alarm_outbox SET state = 'failed', attempts = attempts + 1, next_attempt_ms = NULL,
             last_error = ?2, updated_ms = ?3 WHERE key = ?1 AND state = 'pending'",
            params![record.key, error, at],
        )?,
    };
    if changed == 0 {
        return rejected(Rejection::Stale);
    }
    Ok(applied(rev, false))
}

fn set_alarm_settings(tx: &Transaction, rev: i64, settings: &AlarmSettings) -> ApplyResult {
    let exists = tx
        .row_cached(
            "SELECT 1 FROM principals WHERE name = ?1",
            [&settings.user],
            |_| Ok(()),
        )
        .optional()?
        .is_some();
    if !exists {
        return rejected(Rejection::NotFound);
    }
    tx.exec_cached(
        "INSERT OR REPLACE INTO alarm_settings (user, channels, webhook_url, webhook_secret) VALUES (?1, ?2, ?3, ?4)",
        params![
            settings.user,
            encode_list(&settings.channels),
            settings.webhook_url,
            settings.webhook_secret
        ],
    )?;
    Ok(applied(rev, false))
}
