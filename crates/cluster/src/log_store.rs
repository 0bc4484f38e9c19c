//! The raft log: durable, checksummed, with group commit.
//!
//! Owns the log file (`raft-log.db`, SQLite), the vote, and the purge and
//! truncate points. Appends are visible to readers as soon as `append`
//! returns (they wait in memory) and are made durable by one writer
//! thread that drains every queued job into a single transaction: one
//! fsync for however many proposals arrived meanwhile (group commit).
//!
//! An implementation of openraft's log storage must:
//! - make appended entries readable when `append` returns;
//! - call the flush callback only after the entries are on disk;
//! - persist the vote before `save_vote` returns;
//! - never leave a hole between the purge point and the last entry.
//!
//! Every entry carries a CRC-32 of its encoding, checked when the log is
//! opened and on every read: a corrupt entry stops the node with the index
//! named; it is never silently accepted or skipped. A torn write at the
//! tail never reaches a reader: SQLite's journal drops an unfinished
//! transaction, and an unfinished transaction was never acknowledged.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant as StdInstant;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{AnyError, LogState, RaftLogReader, StorageIOError};
use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::oneshot;

use crate::metrics::ClusterMetrics;
use crate::types::{Entry, LogId, StorageError, TypeConfig, Vote};

/// Jobs waiting for the writer thread; `append` blocks when it is full.
const WRITER_QUEUE_JOBS_MAX: usize = 4096;
/// Jobs folded into one transaction (one fsync).
const GROUP_COMMIT_JOBS_MAX: usize = 1024;

/// `"TLog"`: the SQLite application id of a Tocsin raft log.
const LOG_APPLICATION_ID: i64 = 0x544c_6f67;

const LOG_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS entries (
    idx INTEGER PRIMARY KEY,
    crc INTEGER NOT NULL,
    entry BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
"#;

/// Errors opening the log; once open, errors are openraft's.
#[derive(Debug, thiserror::Error)]
pub enum LogOpenError {
    /// SQLite failed.
    #[error("{path}: {source}")]
    Sqlite {
        /// The log file.
        path: PathBuf,
        /// The underlying error.
        source: rusqlite::Error,
    },
    /// The file is not a Tocsin raft log.
    #[error("{path}: not a Tocsin raft log (application id {found:#x})")]
    Foreign {
        /// The log file.
        path: PathBuf,
        /// The application id found.
        found: i64,
    },
    /// An entry failed its checksum or could not be decoded.
    #[error(
        "{path}: raft log entry {index} is corrupt ({detail}); refusing to start. Restore this node from a peer or a backup"
    )]
    Corrupt {
        /// The log file.
        path: PathBuf,
        /// The index of the bad entry.
        index: u64,
        /// What was wrong.
        detail: String,
    },
    /// Entries are missing between the purge point and the last entry.
    #[error("{path}: raft log has a hole at index {index}; refusing to start")]
    Hole {
        /// The log file.
        path: PathBuf,
        /// The first missing index.
        index: u64,
    },
}

/// What readers and the writer share.
struct Shared {
    path: PathBuf,
    state: Mutex<MemState>,
    read_conn: Mutex<Connection>,
}

/// Everything about the log that must be answered without disk I/O.
struct MemState {
    /// Appended entries not yet committed to the file.
    unflushed: BTreeMap<u64, Entry>,
    last_log_id: Option<LogId>,
    last_purged_log_id: Option<LogId>,
    vote: Option<Vote>,
    committed: Option<LogId>,
}

enum Job {
    Append {
        entries: Vec<Entry>,
        callback: LogFlushed<TypeConfig>,
    },
    Truncate {
        from_index: u64,
        done: oneshot::Sender<Result<(), String>>,
    },
    Purge {
        upto: LogId,
        done: oneshot::Sender<Result<(), String>>,
    },
    SaveMeta {
        key: &'static str,
        value: String,
        done: oneshot::Sender<Result<(), String>>,
    },
}

/// The raft log storage handed to openraft.
#[derive(Clone)]
pub struct LogStore {
    shared: Arc<Shared>,
    writer: SyncSender<Job>,
}

/// A reader of the log, for openraft's replication and apply tasks.
#[derive(Clone)]
pub struct LogReader {
    shared: Arc<Shared>,
}

fn sqlite_err(path: &Path) -> impl Fn(rusqlite::Error) -> LogOpenError + '_ {
    move |source| LogOpenError::Sqlite {
        path: path.to_owned(),
        source,
    }
}

fn crc_of(bytes: &[u8]) -> i64 {
    i64::from(crc32fast::hash(bytes))
}

impl LogStore {
    /// Opens (or creates) the log at `path`, verifying every entry.
    pub fn open(path: &Path, metrics: ClusterMetrics) -> Result<LogStore, LogOpenError> {
        let write_conn = open_log_connection(path)?;
        let mem = load_and_verify(&write_conn, path)?;
        let read_conn = open_log_connection(path)?;
        let shared = Arc::new(Shared {
            path: path.to_owned(),
            state: Mutex::new(mem),
            read_conn: Mutex::new(read_conn),
        });
        let (tx, rx) = sync_channel(WRITER_QUEUE_JOBS_MAX);
        let writer_shared = shared.clone();
        std::thread::Builder::new()
            .name("raft-log-writer".into())
            .spawn(move || run_writer(write_conn, rx, writer_shared, metrics))
            .map_err(|e| LogOpenError::Corrupt {
                path: path.to_owned(),
                index: 0,
                detail: format!("cannot start the log writer: {e}"),
            })?;
        Ok(LogStore { shared, writer: tx })
    }

    fn state(&self) -> MutexGuard<'_, MemState> {
        lock(&self.shared.state)
    }

    async fn send_and_wait(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<(), String>>) -> Job,
    ) -> Result<(), StorageError> {
        let (done, wait) = oneshot::channel();
        self.send(make(done))?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StorageIOError::write_logs(AnyError::error(e)).into()),
            Err(_) => Err(StorageIOError::write_logs(AnyError::error("log writer stopped")).into()),
        }
    }

    fn send(&self, job: Job) -> Result<(), StorageError> {
        self.writer
            .send(job)
            .map_err(|_| StorageIOError::write_logs(AnyError::error("log writer stopped")).into())
    }
}

/// A poisoned lock means a thread panicked mid-update; the memory state is
/// still a consistent value (every update is a single assignment or map
/// operation), so reading on is safe.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl LogStore {
    /// Checks, without writing anything, that `path` is absent, empty, or a
    /// Tocsin raft log.
    pub fn verify(path: &Path) -> Result<(), LogOpenError> {
        verify_log_file(path)
    }
}

fn verify_log_file(path: &Path) -> Result<(), LogOpenError> {
    let err = sqlite_err(path);
    if path.exists() {
        let probe = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .map_err(&err)?;
        let found: i64 = probe
            .pragma_query_value(None, "application_id", |r| r.get(0))
            .map_err(&err)?;
        let tables: i64 = probe
            .query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0))
            .map_err(&err)?;
        if found != LOG_APPLICATION_ID && !(found == 0 && tables == 0) {
            return Err(LogOpenError::Foreign {
                path: path.to_owned(),
                found,
            });
        }
    }
    Ok(())
}

fn open_log_connection(path: &Path) -> Result<Connection, LogOpenError> {
    verify_log_file(path)?;
    let err = sqlite_err(path);
    let conn = Connection::open(path).map_err(&err)?;
    conn.pragma_update(None, "journal_mode", "WAL")
        .map_err(&err)?;
    // FULL: a commit is on disk when it returns; the flush callback relies on it.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(&err)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))
        .map_err(&err)?;
    conn.execute_batch(LOG_SCHEMA).map_err(&err)?;
    conn.pragma_update(None, "application_id", LOG_APPLICATION_ID)
        .map_err(&err)?;
    Ok(conn)
}

fn read_meta<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    path: &Path,
    key: &str,
) -> Result<Option<T>, LogOpenError> {
    let raw: Option<String> = conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()
        .map_err(sqlite_err(path))?;
    raw.map(|raw| {
        serde_json::from_str(&raw).map_err(|e| LogOpenError::Corrupt {
            path: path.to_owned(),
            index: 0,
            detail: format!("meta {key}: {e}"),
        })
    })
    .transpose()
}

/// Reads the log's metadata and checks every entry's checksum and that
/// indexes run without a hole from the purge point.
fn load_and_verify(conn: &Connection, path: &Path) -> Result<MemState, LogOpenError> {
    let last_purged_log_id: Option<LogId> = read_meta(conn, path, "purged")?;
    let vote = read_meta(conn, path, "vote")?;
    let committed = read_meta(conn, path, "committed")?;
    let mut expected = last_purged_log_id.map(|p| p.index + 1);
    let mut last_log_id = last_purged_log_id;
    let mut stmt = conn
        .prepare("SELECT idx, crc, entry FROM entries ORDER BY idx")
        .map_err(sqlite_err(path))?;
    let mut rows = stmt.query([]).map_err(sqlite_err(path))?;
    while let Some(row) = rows.next().map_err(sqlite_err(path))? {
        let index = row.get::<_, i64>(0).map_err(sqlite_err(path))? as u64;
        let crc: i64 = row.get(1).map_err(sqlite_err(path))?;
        let bytes: Vec<u8> = row.get(2).map_err(sqlite_err(path))?;
        if expected.is_some_and(|e| e != index) {
            return Err(LogOpenError::Hole {
                path: path.to_owned(),
                index: expected.unwrap_or(index),
            });
        }
        let entry = decode_entry(&bytes, crc).map_err(|detail| LogOpenError::Corrupt {
            path: path.to_owned(),
            index,
            detail,
        })?;
        last_log_id = Some(entry.log_id);
        expected = Some(index + 1);
    }
    Ok(MemState {
        unflushed: BTreeMap::new(),
        last_log_id,
        last_purged_log_id,
        vote,
        committed,
    })
}

fn decode_entry(bytes: &[u8], crc: i64) -> Result<Entry, String> {
    if crc_of(bytes) != crc {
        return Err("checksum mismatch".into());
    }
    serde_json::from_slice(bytes).map_err(|e| format!("undecodable: {e}"))
}

/// The writer thread: one transaction, one fsync, per group of jobs.
fn run_writer(
    mut conn: Connection,
    rx: Receiver<Job>,
    shared: Arc<Shared>,
    metrics: ClusterMetrics,
) {
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while jobs.len() < GROUP_COMMIT_JOBS_MAX {
            match rx.try_recv() {
                Ok(job) => jobs.push(job),
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => break,
            }
        }
        let started = StdInstant::now();
        let committed = lock(&shared.state).committed;
        let result = write_group(&mut conn, &jobs, committed);
        metrics.observe_log_flush(started.elapsed(), jobs.len());
        finish_group(jobs, result, &shared);
    }
}

fn write_group(
    conn: &mut Connection,
    jobs: &[Job],
    committed: Option<LogId>,
) -> Result<(), String> {
    let tx = conn.transaction().map_err(|e| e.to_string())?;
    for job in jobs {
        write_job(&tx, job).map_err(|e| e.to_string())?;
    }
    let committed = serde_json::to_string(&committed).map_err(|e| e.to_string())?;
    tx.execute(
        "INSERT OR REPLACE INTO meta (key, value) VALUES ('committed', ?1)",
        [committed],
    )
    .map_err(|e| e.to_string())?;
    tx.commit().map_err(|e| e.to_string())
}

fn write_job(tx: &rusqlite::Transaction, job: &Job) -> Result<(), Box<dyn std::error::Error>> {
    match job {
        Job::Append { entries, .. } => {
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO entries (idx, crc, entry) VALUES (?1, ?2, ?3)",
            )?;
            for entry in entries {
                let bytes = serde_json::to_vec(entry)?;
                stmt.execute(params![entry.log_id.index as i64, crc_of(&bytes), bytes])?;
            }
        }
        Job::Truncate { from_index, .. } => {
            tx.execute("DELETE FROM entries WHERE idx >= ?1", [*from_index as i64])?;
        }
        Job::Purge { upto, .. } => {
            tx.execute("DELETE FROM entries WHERE idx <= ?1", [upto.index as i64])?;
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES ('purged', ?1)",
                [serde_json::to_string(upto)?],
            )?;
        }
        Job::SaveMeta { key, value, .. } => {
            tx.execute(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?1, ?2)",
                params![key, value],
            )?;
        }
    }
    Ok(())
}

/// Reports each job's result and forgets flushed entries that are still
/// the current ones at their index (a later truncate may have replaced them).
fn finish_group(jobs: Vec<Job>, result: Result<(), String>, shared: &Shared) {
    for job in jobs {
        match job {
            Job::Append { entries, callback } => {
                if result.is_ok() {
                    let mut state = lock(&shared.state);
                    for entry in &entries {
                        let index = entry.log_id.index;
                        if state
                            .unflushed
                            .get(&index)
                            .is_some_and(|e| e.log_id == entry.log_id)
                        {
                            state.unflushed.remove(&index);
                        }
                    }
                }
                callback.log_io_completed(result.clone().map_err(std::io::Error::other));
            }
            Job::Truncate { done, .. } | Job::Purge { done, .. } | Job::SaveMeta { done, .. } => {
                let _ = done.send(result.clone());
            }
        }
    }
}

fn bounds(range: &impl RangeBounds<u64>) -> (u64, Option<u64>) {
    let start = match range.start_bound() {
        Bound::Included(s) => *s,
        Bound::Excluded(s) => s + 1,
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(e) => Some(e + 1),
        Bound::Excluded(e) => Some(*e),
        Bound::Unbounded => None,
    };
    (start, end)
}

impl Shared {
    /// Entries in `range`: unflushed ones from memory, the rest from the file.
    fn entries(&self, range: impl RangeBounds<u64>) -> Result<Vec<Entry>, StorageError> {
        let (start, end) = bounds(&range);
        let (mut found, last_index) = {
            let state = lock(&self.state);
            let last = state.last_log_id.map(|l| l.index);
            let found: BTreeMap<u64, Entry> = state
                .unflushed
                .range(start..end.unwrap_or(u64::MAX))
                .map(|(i, e)| (*i, e.clone()))
                .collect();
            (found, last)
        };
        let Some(last_index) = last_index else {
            return Ok(Vec::new());
        };
        let end = end.map_or(last_index + 1, |e| e.min(last_index + 1));
        if start >= end {
            return Ok(Vec::new());
        }
        let missing_from_memory = (end - start) as usize != found.len();
        if missing_from_memory {
            self.read_from_file(start, end, &mut found)?;
        }
        Ok(found.into_values().collect())
    }

    fn read_from_file(
        &self,
        start: u64,
        end: u64,
        found: &mut BTreeMap<u64, Entry>,
    ) -> Result<(), StorageError> {
        let conn = lock(&self.read_conn);
        let read_err = |e: &dyn std::fmt::Display| -> StorageError {
            StorageIOError::read_logs(AnyError::error(format!("{}: {e}", self.path.display())))
                .into()
        };
        let mut stmt = conn
            .prepare_cached(
                "SELECT idx, crc, entry FROM entries WHERE idx >= ?1 AND idx < ?2 ORDER BY idx",
            )
            .map_err(|e| read_err(&e))?;
        let mut rows = stmt
            .query(params![start as i64, end as i64])
            .map_err(|e| read_err(&e))?;
        while let Some(row) = rows.next().map_err(|e| read_err(&e))? {
            let index = row.get::<_, i64>(0).map_err(|e| read_err(&e))? as u64;
            if found.contains_key(&index) {
                continue;
            }
            let crc: i64 = row.get(1).map_err(|e| read_err(&e))?;
            let bytes: Vec<u8> = row.get(2).map_err(|e| read_err(&e))?;
            let entry = decode_entry(&bytes, crc)
                .map_err(|detail| read_err(&format!("entry {index} is corrupt: {detail}")))?;
            found.insert(index, entry);
        }
        Ok(())
    }
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        self.shared.entries(range)
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        self.shared.entries(range)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let state = self.state();
        Ok(LogState {
            last_purged_log_id: state.last_purged_log_id,
            last_log_id: state.last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        LogReader {
            shared: self.shared.clone(),
        }
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        let value = serde_json::to_string(vote)
            .map_err(|e| StorageError::from(StorageIOError::write_vote(AnyError::new(&e))))?;
        self.send_and_wait(|done| Job::SaveMeta {
            key: "vote",
            value,
            done,
        })
        .await?;
        self.state().vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.state().vote)
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        // Kept in memory and written with the next group of jobs: a lost
        // committed pointer only means re-applying from the state
        // machine's own applied point, so it is not worth an fsync.
        self.state().committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.state().committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        {
            let mut state = self.state();
            for entry in &entries {
                state.unflushed.insert(entry.log_id.index, entry.clone());
                state.last_log_id = Some(entry.log_id);
            }
        }
        self.send(Job::Append { entries, callback })
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        {
            let mut state = self.state();
            state.unflushed.retain(|index, _| *index < log_id.index);
            state.last_log_id = if log_id.index == 0 {
                state.last_purged_log_id
            } else {
                self.shared
                    .entries_before_locked(&state, log_id.index)?
                    .or(state.last_purged_log_id)
            };
        }
        self.send_and_wait(|done| Job::Truncate {
            from_index: log_id.index,
            done,
        })
        .await
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        {
            let mut state = self.state();
            state.unflushed.retain(|index, _| *index > log_id.index);
            state.last_purged_log_id = Some(log_id);
            if state
                .last_log_id
                .is_none_or(|last| last.index < log_id.index)
            {
                state.last_log_id = Some(log_id);
            }
        }
        self.send_and_wait(|done| Job::Purge { upto: log_id, done })
            .await
    }
}

impl Shared {
    /// The log id of the entry at `index - 1`, read while holding the
    /// memory state so no writer interleaves.
    fn entries_before_locked(
        &self,
        state: &MemState,
        index: u64,
    ) -> Result<Option<LogId>, StorageError> {
        let previous = index - 1;
        if let Some(entry) = state.unflushed.get(&previous) {
            return Ok(Some(entry.log_id));
        }
        if state
            .last_purged_log_id
            .is_some_and(|p| p.index >= previous)
        {
            return Ok(state.last_purged_log_id);
        }
        let mut found = BTreeMap::new();
        self.read_from_file(previous, index, &mut found)?;
        Ok(found.into_values().next().map(|e| e.log_id))
    }
}
