//! Reads: the small query API the rest of Tocsin uses.
//!
//! Owns read-only connections and the SQL of every read. A [`Reader`] is
//! cheap to clone and safe to share; each [`Reader::read`] runs in one
//! read transaction, so what it sees is one consistent state. It must
//! never write: its connections are opened read-only.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, params};
use tocsin_calendar::Instant;

use crate::StoreError;
use crate::cached::CachedExec;
use crate::model::{
    Calendar, CalendarId, CalendarObject, Change, Counts, ObjectId, ObjectSummary, Principal,
    PropName,
};

/// Idle read connections kept open for reuse; more may be open while
/// requests run, and are closed when returned beyond this bound.
const READ_CONNECTIONS_IDLE_MAX: usize = 16;

/// A handle for reading the state database.
#[derive(Clone)]
pub struct Reader {
    pool: Arc<ReaderPool>,
}

struct ReaderPool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Reader {
    pub(crate) fn new(path: &Path) -> Self {
        Reader {
            pool: Arc::new(ReaderPool {
                path: path.to_owned(),
                idle: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Runs `f` against one consistent state of the database.
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Query<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let conn = self.acquire()?;
        let result = run_in_read_transaction(&conn, f);
        self.release(conn);
        result
    }

    fn acquire(&self) -> Result<Connection, StoreError> {
        let idle = self.pool.idle.lock().ok().and_then(|mut idle| idle.pop());
        match idle {
            Some(conn) => Ok(conn),
            None => open_read_only(&self.pool.path),
        }
    }

    fn release(&self, conn: Connection) {
        if let Ok(mut idle) = self.pool.idle.lock()
            && idle.len() < READ_CONNECTIONS_IDLE_MAX
        {
            idle.push(conn);
        }
    }

    /// Copies the database, as of one read transaction, into a new file at
    /// `dest`, and returns the raft metadata stored in that copy.
    pub fn export_snapshot(&self, dest: &Path) -> Result<Option<String>, StoreError> {
        let conn = self.acquire()?;
        let dest_text = dest.to_string_lossy().into_owned();
        let result = conn
            .execute("VACUUM INTO ?1", [&dest_text])
            .map_err(StoreError::from);
        self.release(conn);
        result?;
        let copy = open_read_only(dest)?;
        crate::raft_meta(&copy)
    }
}

fn open_read_only(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    conn.set_prepared_statement_cache_capacity(crate::cached::STATEMENT_CACHE_CAPACITY);
    Ok(conn)
}

fn run_in_read_transaction<T>(
    conn: &Connection,
    f: impl FnOnce(&Query<'_>) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.exec_cached("BEGIN DEFERRED", [])?;
    let result = f(&Query { conn });
    // A read transaction holds nothing worth keeping; ending it cannot lose data.
    let _ = conn.exec_cached("COMMIT", []);
    result
}

/// Queries inside one read transaction.
pub struct Query<'c> {
    conn: &'c Connection,
}

fn decode_list(table: &'static str, json: &str) -> Result<Vec<String>, StoreError> {
    serde_json::from_str(json).map_err(|e| StoreError::corrupt(table, e))
}

fn instant(ms: i64) -> Instant {
    Instant::from_millis(ms)
}

const PRINCIPAL_COLUMNS: &str =
    "name, password_hash, display_name, addresses, created_ms, updated_ms";
const CALENDAR_COLUMNS: &str = "id, owner, slug, components, revision, created_ms, updated_ms";
const OBJECT_COLUMNS: &str =
    "id, calendar_id, href, uid, kind, ical, etag, revision, created_ms, modified_ms";

struct RawPrincipal {
    name: String,
    password_hash: String,
    display_name: Option<String>,
    addresses: String,
    created: i64,
    updated: i64,
}

impl RawPrincipal {
    fn from_row(r: &Row) -> rusqlite::Result<Self> {
        Ok(RawPrincipal {
            name: r.get(0)?,
            password_hash: r.get(1)?,
            display_name: r.get(2)?,
            addresses: r.get(3)?,
            created: r.get(4)?,
            updated: r.get(5)?,
        })
    }

    fn decode(self) -> Result<Principal, StoreError> {
        Ok(Principal {
            addresses: decode_list("principals", &self.addresses)?,
            name: self.name,
            password_hash: self.password_hash,
            display_name: self.display_name,
            created: instant(self.created),
            updated: instant(self.updated),
        })
    }
}

struct RawCalendar {
    id: String,
    owner: String,
    slug: String,
    components: String,
    revision: i64,
    created: i64,
    updated: i64,
}

impl RawCalendar {
    fn from_row(r: &Row) -> rusqlite::Result<Self> {
        Ok(RawCalendar {
            id: r.get(0)?,
            owner: r.get(1)?,
            slug: r.get(2)?,
            components: r.get(3)?,
            revision: r.get(4)?,
            created: r.get(5)?,
            updated: r.get(6)?,
        })
    }

    fn decode(self) -> Result<Calendar, StoreError> {
        Ok(Calendar {
            components: decode_list("calendars", &self.components)?,
            id: CalendarId(self.id),
            owner: self.owner,
            slug: self.slug,
            revision: self.revision as u64,
            created: instant(self.created),
            updated: instant(self.updated),
        })
    }
}

fn object_from_row(r: &Row) -> rusqlite::Result<CalendarObject> {
    Ok(CalendarObject {
        id: ObjectId(r.get(0)?),
        calendar_id: CalendarId(r.get(1)?),
        href: r.get(2)?,
        uid: r.get(3)?,
        kind: r.get(4)?,
        ical: r.get(5)?,
        etag: r.get(6)?,
        revision: r.get::<_, i64>(7)? as u64,
        created: instant(r.get(8)?),
        modified: instant(r.get(9)?),
    })
}

const SUMMARY_COLUMNS: &str =
    "href, etag, revision, kind, length(CAST(ical AS BLOB)), created_ms, modified_ms";

fn summary_from_row(r: &Row) -> rusqlite::Result<ObjectSummary> {
    Ok(ObjectSummary {
        href: r.get(0)?,
        etag: r.get(1)?,
        revision: r.get::<_, i64>(2)? as u64,
        kind: r.get(3)?,
        size: r.get::<_, i64>(4)? as u64,
        created: instant(r.get(5)?),
        modified: instant(r.get(6)?),
    })
}

impl Query<'_> {
    pub(crate) fn conn(&self) -> &Connection {
        self.conn
    }

    /// A principal by name.
    pub fn principal(&self, name: &str) -> Result<Option<Principal>, StoreError> {
        let sql = format!("SELECT {PRINCIPAL_COLUMNS} FROM principals WHERE name = ?1");
        let raw = self
            .conn
            .prepare_cached(&sql)?
            .query_row([name], RawPrincipal::from_row)
            .optional()?;
        raw.map(RawPrincipal::decode).transpose()
    }

    /// Every principal, by name.
    pub fn principals(&self) -> Result<Vec<Principal>, StoreError> {
        let sql = format!("SELECT {PRINCIPAL_COLUMNS} FROM principals ORDER BY name");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let raws = stmt
            .query_map([], RawPrincipal::from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        raws.into_iter().map(RawPrincipal::decode).collect()
    }

    /// A calendar by id.
    pub fn calendar(&self, id: &CalendarId) -> Result<Option<Calendar>, StoreError> {
        let sql = format!("SELECT {CALENDAR_COLUMNS} FROM calendars WHERE id = ?1");
        let raw = self
            .conn
            .prepare_cached(&sql)?
            .query_row([&id.0], RawCalendar::from_row)
            .optional()?;
        raw.map(RawCalendar::decode).transpose()
    }

    /// A calendar by its owner and URL segment.
    pub fn calendar_by_slug(
        &self,
        owner: &str,
        slug: &str,
    ) -> Result<Option<Calendar>, StoreError> {
        let sql =
            format!("SELECT {CALENDAR_COLUMNS} FROM calendars WHERE owner = ?1 AND slug = ?2");
        let raw = self
            .conn
            .prepare_cached(&sql)?
            .query_row(params![owner, slug], RawCalendar::from_row)
            .optional()?;
        raw.map(RawCalendar::decode).transpose()
    }

    /// The calendars a principal owns, by URL segment.
    pub fn calendars_of(&self, owner: &str) -> Result<Vec<Calendar>, StoreError> {
        let sql =
            format!("SELECT {CALENDAR_COLUMNS} FROM calendars WHERE owner = ?1 ORDER BY slug");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let raws = stmt
            .query_map([owner], RawCalendar::from_row)?
            .collect::<Result<Vec<_>, _>>()?;
        raws.into_iter().map(RawCalendar::decode).collect()
    }

    /// A calendar's stored properties.
    pub fn calendar_props(&self, id: &CalendarId) -> Result<Vec<(PropName, String)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT namespace, name, value FROM calendar_props WHERE calendar_id = ?1 ORDER BY namespace, name",
        )?;
        let rows = stmt.query_map([&id.0], |r| {
            Ok((
                PropName::new(r.get::<_, String>(0)?, r.get::<_, String>(1)?),
                r.get(2)?,
            ))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One calendar property's value.
    pub fn calendar_prop(
        &self,
        id: &CalendarId,
        name: &PropName,
    ) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT value FROM calendar_props WHERE calendar_id = ?1 AND namespace = ?2 AND name = ?3",
            )?
            .query_row(params![id.0, name.namespace, name.name], |r| r.get(0))
            .optional()?)
    }

    /// An object by calendar and href.
    pub fn object(
        &self,
        calendar_id: &CalendarId,
        href: &str,
    ) -> Result<Option<CalendarObject>, StoreError> {
        let sql =
            format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE calendar_id = ?1 AND href = ?2");
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row(params![calendar_id.0, href], object_from_row)
            .optional()?)
    }

    /// An object by id.
    pub fn object_by_id(&self, id: &ObjectId) -> Result<Option<CalendarObject>, StoreError> {
        let sql = format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE id = ?1");
        Ok(self
            .conn
            .prepare_cached(&sql)?
            .query_row([&id.0], object_from_row)
            .optional()?)
    }

    /// Every object of a calendar, by href.
    pub fn objects(&self, calendar_id: &CalendarId) -> Result<Vec<CalendarObject>, StoreError> {
        let sql =
            format!("SELECT {OBJECT_COLUMNS} FROM objects WHERE calendar_id = ?1 ORDER BY href");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([&calendar_id.0], object_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Objects whose instances may overlap `[start, end)`, by href: a
    /// superset, to be refined by the calendar core.
    pub fn objects_possibly_overlapping(
        &self,
        calendar_id: &CalendarId,
        start: Option<Instant>,
        end: Option<Instant>,
    ) -> Result<Vec<CalendarObject>, StoreError> {
        let sql = format!(
            "SELECT {OBJECT_COLUMNS} FROM objects WHERE calendar_id = ?1
             AND (?2 IS NULL OR end_ms IS NULL OR end_ms >= ?2)
             AND (?3 IS NULL OR start_ms IS NULL OR start_ms <= ?3)
             ORDER BY href"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(
            params![
                calendar_id.0,
                start.map(Instant::millis),
                end.map(Instant::millis)
            ],
            object_from_row,
        )?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Names, ETags and revisions of every object of a calendar, by href.
    pub fn object_summaries(
        &self,
        calendar_id: &CalendarId,
    ) -> Result<Vec<ObjectSummary>, StoreError> {
        let sql =
            format!("SELECT {SUMMARY_COLUMNS} FROM objects WHERE calendar_id = ?1 ORDER BY href");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([&calendar_id.0], summary_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The newest revision whose deletion this calendar has forgotten (0
    /// when none): a sync token before it cannot be answered, one at it
    /// can (every later deletion is still remembered).
    pub fn sync_horizon(&self, calendar_id: &CalendarId) -> Result<u64, StoreError> {
        let horizon: Option<i64> = self
            .conn
            .prepare_cached("SELECT revision FROM sync_horizons WHERE calendar_id = ?1")?
            .query_row([&calendar_id.0], |r| r.get(0))
            .optional()?;
        Ok(horizon.map_or(0, |r| r as u64))
    }

    /// Changes after `revision`, oldest first, at most `limit`.
    pub fn changes_since(
        &self,
        calendar_id: &CalendarId,
        revision: u64,
        limit: usize,
    ) -> Result<Vec<Change>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT href, etag, revision, kind, length(CAST(ical AS BLOB)), created_ms, modified_ms, 0
             FROM objects WHERE calendar_id = ?1 AND revision > ?2
             UNION ALL
             SELECT href, '', revision, '', 0, 0, 0, 1 FROM tombstones WHERE calendar_id = ?1 AND revision > ?2
             ORDER BY 3, 1 LIMIT ?3",
        )?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = stmt.query_map(params![calendar_id.0, revision as i64, limit], |r| {
            let deleted: i64 = r.get(7)?;
            if deleted == 1 {
                Ok(Change::Deleted {
                    href: r.get(0)?,
                    revision: r.get::<_, i64>(2)? as u64,
                })
            } else {
                Ok(Change::Present(summary_from_row(r)?))
            }
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Row counts.
    pub fn counts(&self) -> Result<Counts, StoreError> {
        let count = |sql: &str| -> Result<u64, StoreError> {
            Ok(self
                .conn
                .prepare_cached(sql)?
                .query_row([], |r| r.get::<_, i64>(0))? as u64)
        };
        Ok(Counts {
            users: count("SELECT count(*) FROM principals")?,
            calendars: count("SELECT count(*) FROM calendars")?,
            objects: count("SELECT count(*) FROM objects")?,
            alarm_index: count("SELECT count(*) FROM alarm_index")?,
            outbox_pending: count("SELECT count(*) FROM alarm_outbox WHERE state = 'pending'")?,
        })
    }

    /// The alarm-index row of an object, if it has one.
    pub fn next_check(&self, object_id: &ObjectId) -> Result<Option<Instant>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT next_check_ms FROM alarm_index WHERE object_id = ?1")?
            .query_row([&object_id.0], |r| r.get::<_, i64>(0))
            .optional()?
            .map(instant))
    }

    /// Watermarks of an object, by user (invariant 7).
    pub fn watermarks(&self, object_id: &ObjectId) -> Result<Vec<(String, Instant)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT user, handled_until_ms FROM alarm_watermarks WHERE object_id = ?1 ORDER BY user",
        )?;
        let rows = stmt.query_map([&object_id.0], |r| Ok((r.get(0)?, instant(r.get(1)?))))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The state digest: equal on every node that applied the same log.
    pub fn digest(&self) -> Result<String, StoreError> {
        crate::digest::state_digest(self.conn)
    }
}
