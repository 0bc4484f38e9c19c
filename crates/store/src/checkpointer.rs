//! Checkpoints of the state database's write-ahead log, off the apply path.
//!
//! With SQLite's automatic checkpoint, the connection that commits copies
//! the WAL back into the database file and fsyncs it — on the thread that
//! applies the raft log, the one thing in Tocsin that cannot run in
//! parallel. This module owns a thread with its own connection that runs
//! passive checkpoints (they never block the writer or readers) at a
//! fixed pace; the writer keeps an automatic checkpoint only as a
//! backstop for a WAL that grows past [`WAL_BACKSTOP_PAGES`]. It must
//! never write rows: a checkpoint moves pages, not state.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::time::Duration;

use rusqlite::Connection;

use crate::StoreError;

/// Pace of the passive checkpoints.
const CHECKPOINT_INTERVAL: Duration = Duration::from_millis(250);
/// WAL pages (4 KiB) past which the writer checkpoints itself. Under
/// steady reads and writes the WAL cannot restart, so it grows to this
/// size and each commit then checkpoints on the apply thread: the bound
/// is set well above what a burst of firings writes.
pub(crate) const WAL_BACKSTOP_PAGES: i64 = 65_536;
/// Size the WAL file is cut back to once a checkpoint lets it restart.
pub(crate) const WAL_FILE_KEPT_BYTES: i64 = 64 * 1024 * 1024;

/// The checkpoint thread; it ends when this handle is dropped.
pub(crate) struct Checkpointer {
    _stop: Sender<()>,
}

impl Checkpointer {
    pub(crate) fn start(path: &Path) -> Result<Checkpointer, StoreError> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_millis(100))?;
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("state-checkpoint".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(CHECKPOINT_INTERVAL)
                {
                    checkpoint_passive(&conn);
                }
            })
            .map_err(|source| StoreError::Io {
                path: path.to_owned(),
                source,
            })?;
        Ok(Checkpointer { _stop: stop })
    }
}

/// A busy database (a snapshot being installed) is tried again at the
/// next tick; nothing is lost by skipping one.
fn checkpoint_passive(conn: &Connection) {
    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
        tracing::debug!(error = %e, "passive checkpoint skipped");
    }
}
