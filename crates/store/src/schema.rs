//! The database layout and its version.
//!
//! Owns the DDL, the schema version and the check that a file is ours.
//! Opening must change nothing on disk until the file is known to be a
//! Tocsin database of a version this build understands: a data directory
//! of a newer Tocsin or of another program is refused, byte for byte
//! untouched.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::StoreError;

/// `"Tocs"`: the SQLite application id that marks a Tocsin state database.
pub const APPLICATION_ID: i64 = 0x546f_6373;

/// The schema this build creates and reads.
pub const SCHEMA_VERSION: i64 = 1;

const SCHEMA_V1: &str = r#"
CREATE TABLE raft_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE principals (
    name TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    display_name TEXT,
    addresses TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE calendars (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    slug TEXT NOT NULL,
    components TEXT NOT NULL,
    revision INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    UNIQUE (owner, slug)
) WITHOUT ROWID;

CREATE TABLE calendar_props (
    calendar_id TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (calendar_id, namespace, name)
) WITHOUT ROWID;

CREATE TABLE objects (
    id TEXT PRIMARY KEY,
    calendar_id TEXT NOT NULL,
    href TEXT NOT NULL,
    uid TEXT NOT NULL,
    kind TEXT NOT NULL,
    ical TEXT NOT NULL,
    etag TEXT NOT NULL,
    revision INTEGER NOT NULL,
    start_ms INTEGER,
    end_ms INTEGER,
    created_ms INTEGER NOT NULL,
    modified_ms INTEGER NOT NULL,
    UNIQUE (calendar_id, href),
    UNIQUE (calendar_id, uid)
);
CREATE INDEX objects_by_revision ON objects (calendar_id, revision);

CREATE TABLE tombstones (
    calendar_id TEXT NOT NULL,
    href TEXT NOT NULL,
    revision INTEGER NOT NULL,
    PRIMARY KEY (calendar_id, href)
) WITHOUT ROWID;
CREATE INDEX tombstones_by_revision ON tombstones (calendar_id, revision);

CREATE TABLE sync_horizons (
    calendar_id TEXT PRIMARY KEY,
    revision INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE per_user_data (
    object_id TEXT NOT NULL,
    user TEXT NOT NULL,
    data TEXT NOT NULL,
    revision INTEGER NOT NULL,
    PRIMARY KEY (object_id, user)
) WITHOUT ROWID;
CREATE INDEX per_user_data_by_user ON per_user_data (user, object_id);

CREATE TABLE shares (
    calendar_id TEXT NOT NULL,
    sharee TEXT NOT NULL,
    access TEXT NOT NULL,
    slug TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (calendar_id, sharee),
    UNIQUE (sharee, slug)
) WITHOUT ROWID;

CREATE TABLE user_calendar_props (
    calendar_id TEXT NOT NULL,
    user TEXT NOT NULL,
    namespace TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (calendar_id, user, namespace, name)
) WITHOUT ROWID;

CREATE TABLE user_calendar_revisions (
    calendar_id TEXT NOT NULL,
    user TEXT NOT NULL,
    revision INTEGER NOT NULL,
    PRIMARY KEY (calendar_id, user)
) WITHOUT ROWID;

CREATE TABLE alarm_index (
    object_id TEXT PRIMARY KEY,
    next_check_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX alarm_index_by_time ON alarm_index (next_check_ms, object_id);

CREATE TABLE alarm_watermarks (
    object_id TEXT NOT NULL,
    user TEXT NOT NULL,
    handled_until_ms INTEGER NOT NULL,
    PRIMARY KEY (object_id, user)
) WITHOUT ROWID;

CREATE TABLE alarm_outbox (
    key TEXT PRIMARY KEY,
    object_id TEXT NOT NULL,
    user TEXT NOT NULL,
    channel TEXT NOT NULL,
    recipient TEXT NOT NULL,
    trigger_ms INTEGER NOT NULL,
    fired_ms INTEGER NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_ms INTEGER,
    last_error TEXT,
    payload TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX alarm_outbox_pending ON alarm_outbox (next_attempt_ms, key) WHERE state = 'pending';
CREATE INDEX alarm_outbox_by_user ON alarm_outbox (user, fired_ms);

CREATE TABLE alarm_settings (
    user TEXT PRIMARY KEY,
    channels TEXT NOT NULL,
    webhook_url TEXT,
    webhook_secret TEXT
) WITHOUT ROWID;
"#;

/// Every table, in the order the state digest visits them, with the
/// columns that order its rows. `raft_meta` is left out: it describes the
/// log position, not the state.
pub(crate) const DIGEST_TABLES: &[(&str, &str)] = &[
    ("principals", "name"),
    ("calendars", "id"),
    ("calendar_props", "calendar_id, namespace, name"),
    ("objects", "id"),
    ("tombstones", "calendar_id, href"),
    ("sync_horizons", "calendar_id"),
    ("per_user_data", "object_id, user"),
    ("shares", "calendar_id, sharee"),
    ("user_calendar_props", "calendar_id, user, namespace, name"),
    ("user_calendar_revisions", "calendar_id, user"),
    ("alarm_index", "object_id"),
    ("alarm_watermarks", "object_id, user"),
    ("alarm_outbox", "key"),
    ("alarm_settings", "user"),
];

/// Opens (or creates) the state database at `path`, refusing foreign or
/// newer files before anything is written to them.
pub(crate) fn open_checked(path: &Path) -> Result<Connection, StoreError> {
    if path.exists() {
        check_existing(path)?;
    }
    let conn = Connection::open(path)?;
    configure(&conn)?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version == 0 {
        create(&conn)?;
    }
    add_later_indexes(&conn)?;
    Ok(conn)
}

/// Checks `path` without writing to it.
pub(crate) fn verify(path: &Path) -> Result<(), StoreError> {
    if path.exists() {
        check_existing(path)?;
    }
    Ok(())
}

/// Reads the header of an existing file through a read-only connection.
fn check_existing(path: &Path) -> Result<(), StoreError> {
    check_header(path).map_err(|e| match e {
        StoreError::Sqlite(source) => StoreError::Unreadable {
            path: path.to_owned(),
            source,
        },
        other => other,
    })
}

fn check_header(path: &Path) -> Result<(), StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let application_id: i64 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let is_empty = application_id == 0 && version == 0 && table_count(&conn)? == 0;
    if is_empty {
        return Ok(());
    }
    if application_id != APPLICATION_ID {
        return Err(StoreError::ForeignDatabase {
            path: path.to_owned(),
            found: application_id,
        });
    }
    if version > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            path: path.to_owned(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    Ok(())
}

/// Checks that `path` holds a non-empty Tocsin database this build can
/// read, without writing to it: what a snapshot received from a peer must be.
pub(crate) fn check_snapshot(path: &Path) -> Result<(), StoreError> {
    check_existing(path)?;
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let application_id: i64 = conn.pragma_query_value(None, "application_id", |r| r.get(0))?;
    if application_id != APPLICATION_ID {
        return Err(StoreError::ForeignDatabase {
            path: path.to_owned(),
            found: application_id,
        });
    }
    Ok(())
}

fn table_count(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))?)
}

/// Page cache of the one writing connection. SQLite's default (2 MiB)
/// holds too little of the outbox and index for a burst of firings: each
/// command then reads its pages back with a system call.
const WRITER_PAGE_CACHE_KIB: i64 = 64 * 1024;

/// WAL with `synchronous = NORMAL`: a commit survives a process crash but
/// not necessarily a power cut; the raft log (fsynced) replays what was
/// lost, and snapshots checkpoint before the log is purged.
fn configure(conn: &Connection) -> Result<(), StoreError> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "cache_size", -WRITER_PAGE_CACHE_KIB)?;
    conn.pragma_update(
        None,
        "wal_autocheckpoint",
        crate::checkpointer::WAL_BACKSTOP_PAGES,
    )?;
    conn.pragma_update(
        None,
        "journal_size_limit",
        crate::checkpointer::WAL_FILE_KEPT_BYTES,
    )?;
    conn.set_prepared_statement_cache_capacity(crate::cached::STATEMENT_CACHE_CAPACITY);
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "OFF")?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(())
}

/// Brings the indexes of a schema 1 file written by an earlier build to
/// today's, and adds the tables it lacks (empty, as every node's is until
/// its log applies a command that writes them). An index is not state
/// (the digest reads rows, not pages), so changing one needs no new
/// schema version. The outbox indexes leave out
/// what a delivery changes (its state, its update time): a burst of
/// deliveries then rewrites one index entry each instead of four.
fn add_later_indexes(conn: &Connection) -> Result<(), StoreError> {
    let by_user_on_update: bool = conn.query_row(
        "SELECT count(*) > 0 FROM sqlite_master WHERE name = 'alarm_outbox_by_user' AND sql LIKE '%updated_ms%'",
        [],
        |r| r.get(0),
    )?;
    if by_user_on_update {
        conn.execute_batch("DROP INDEX alarm_outbox_by_user;")?;
    }
    conn.execute_batch(
        "DROP INDEX IF EXISTS alarm_outbox_by_state;
         CREATE INDEX IF NOT EXISTS alarm_outbox_pending ON alarm_outbox (next_attempt_ms, key) WHERE state = 'pending';
         CREATE INDEX IF NOT EXISTS alarm_outbox_by_user ON alarm_outbox (user, fired_ms);
         CREATE INDEX IF NOT EXISTS per_user_data_by_user ON per_user_data (user, object_id);
         CREATE TABLE IF NOT EXISTS sync_horizons (calendar_id TEXT PRIMARY KEY, revision INTEGER NOT NULL) WITHOUT ROWID;",
    )?;
    Ok(())
}

fn create(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(&format!(
        "BEGIN; {SCHEMA_V1} PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
    ))?;
    Ok(())
}
