//! The store: Tocsin's replicated state machine on SQLite.
//!
//! [`Store`] owns the one write connection and the only write path,
//! [`Store::apply_batch`], which applies [`Command`]s in log order
//! (invariant 1). [`Reader`] serves every read through read-only
//! connections. This crate is the only one that speaks SQL.
//!
//! Architecture invariants:
//! - `apply` is deterministic (invariant 2): it reads no clock, no RNG, no
//!   environment; the same log gives the same [`Query::digest`] on every
//!   node.
//! - The data a batch changes and the log position it reached are written
//!   in one SQLite transaction, so a crash leaves either both or neither.
//! - The store knows nothing of openraft: the cluster crate hands it log
//!   indexes and an opaque metadata string.
//!
//! ```no_run
//! # fn main() -> Result<(), tocsin_store::StoreError> {
//! use tocsin_store::{Command, Store, revision_of};
//! let mut store = Store::open(std::path::Path::new("state.db"))?;
//! let noop = Command::Noop { padding: String::new() };
//! let outcomes = store.apply_batch([(revision_of(1, 0), &noop)], "{}")?;
//! let digest = store.reader().read(|q| q.digest())?;
//! # let _ = (outcomes, digest); Ok(()) }
//! ```
#![deny(missing_docs)]

mod alarm_queries;
mod apply;
mod apply_sharing;
mod cached;
mod checkpointer;
mod command;
mod digest;
mod error;
mod model;
mod planning;
mod query;
mod schema;
mod sharing_queries;

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension};

use crate::cached::CachedExec;

pub use alarm_queries::{DueObject, OutboxEntry};
pub use apply::TOMBSTONES_KEPT_PER_CALENDAR;
pub use command::{
    AlarmSettings, COMMAND_FORMAT, Command, CreateCalendar, CreateUser, DeliveryResult,
    ENVELOPE_COMMANDS_MAX, Envelope, FireAlarms, NewDelivery, ObjectReplan, Outcome, Precondition,
    PutObject, RecordDelivery, Rejection, ShareAccess, ShareCalendar, WatermarkAdvance, etag_of,
    revision_of, view_etag, zone_fingerprint,
};
pub use error::StoreError;
pub use model::{
    Calendar, CalendarId, CalendarObject, Change, Counts, ObjectId, ObjectSummary, Principal,
    PropName, TimeBounds,
};
pub use planning::{
    AlarmInputs, AlarmSubject, TOCSIN_NS, calendar_timezone_prop, default_alarms_from_props,
    defaults_when_none_prop,
};
pub use query::{Query, Reader};
pub use schema::{APPLICATION_ID, SCHEMA_VERSION};
pub use sharing_queries::{Access, CalendarAccess, ShareRow};

/// The key under which the cluster's metadata (last applied log id,
/// membership) is kept, in the same transaction as the data.
const RAFT_META_KEY: &str = "applied";

/// The state database, opened for writing.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    reader: Reader,
    _checkpointer: checkpointer::Checkpointer,
}

impl Store {
    /// Opens the database at `path`, creating it if absent. A file of a
    /// newer schema or of another program is refused untouched.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = schema::open_checked(path)?;
        Ok(Store {
            conn,
            path: path.to_owned(),
            reader: Reader::new(path),
            _checkpointer: checkpointer::Checkpointer::start(path)?,
        })
    }

    /// Checks, without writing anything, that `path` is absent, empty, or a
    /// Tocsin state database this build can open.
    pub fn verify(path: &Path) -> Result<(), StoreError> {
        schema::verify(path)
    }

    /// A handle for reads, shareable across threads.
    pub fn reader(&self) -> Reader {
        self.reader.clone()
    }

    /// The file this store writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Applies commands in order, each at its revision (see
    /// [`revision_of`]), in one transaction with `raft_meta`.
    pub fn apply_batch<'a>(
        &mut self,
        commands: impl IntoIterator<Item = (u64, &'a Command)>,
        raft_meta: &str,
    ) -> Result<Vec<Outcome>, StoreError> {
        let tx = self.conn.transaction()?;
        let mut outcomes = Vec::new();
        for (revision, command) in commands {
            outcomes.push(apply_in_savepoint(&tx, revision, command)?);
        }
        tx.exec_cached(
            "INSERT OR REPLACE INTO raft_meta (key, value) VALUES (?1, ?2)",
            rusqlite::params![RAFT_META_KEY, raft_meta],
        )?;
        tx.commit()?;
        Ok(outcomes)
    }

    /// The metadata written with the last applied batch.
    pub fn raft_meta(&self) -> Result<Option<String>, StoreError> {
        raft_meta(&self.conn)
    }

    /// Makes everything applied so far durable in the database file, so the
    /// log before it may be purged.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(FULL)", [], |_| Ok(()))?;
        Ok(())
    }

    /// Replaces the whole state with the database file at `src` (a
    /// snapshot made by [`Reader::export_snapshot`]), after checking it is
    /// a Tocsin database this build understands.
    pub fn import_snapshot(&mut self, src: &Path) -> Result<(), StoreError> {
        schema::check_snapshot(src)?;
        self.conn.restore(
            rusqlite::DatabaseName::Main,
            src,
            None::<fn(rusqlite::backup::Progress)>,
        )?;
        Ok(())
    }
}

/// Applies one command inside a savepoint, kept only if it was applied.
/// The savepoint statements go through the statement cache like the rest
/// of `apply` (rusqlite's `Savepoint` parses them for every command).
fn apply_in_savepoint(
    tx: &rusqlite::Transaction,
    revision: u64,
    command: &Command,
) -> Result<Outcome, StoreError> {
    tx.exec_cached("SAVEPOINT apply_command", [])?;
    let outcome = apply::apply_command(tx, revision, command);
    if !matches!(outcome, Ok(Outcome::Applied { .. })) {
        tx.exec_cached("ROLLBACK TO apply_command", [])?;
    }
    tx.exec_cached("RELEASE apply_command", [])?;
    outcome
}

pub(crate) fn raft_meta(conn: &Connection) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT value FROM raft_meta WHERE key = ?1",
            [RAFT_META_KEY],
            |r| r.get(0),
        )
        .optional()?)
}
