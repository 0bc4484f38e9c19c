//! The store's error type.
//!
//! Owns the classification of what can go wrong below the state machine:
//! SQLite failures, a data directory of another schema, a corrupt row.
//! It must never carry a rejection of a command: those are deterministic
//! [`crate::Outcome`]s, part of the replicated state, not errors.

use std::path::PathBuf;

/// Anything that stops the store from reading or writing its database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The file cannot be opened or read as a database.
    #[error("{path}: cannot be opened as a Tocsin state database: {source}")]
    Unreadable {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// The database was written by a newer Tocsin.
    #[error(
        "{path}: schema version {found} is newer than this Tocsin understands ({supported}); upgrade Tocsin"
    )]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// The version the file declares.
        found: i64,
        /// The newest version this build knows.
        supported: i64,
    },
    /// The file is a SQLite database but not one of Tocsin's.
    #[error("{path}: not a Tocsin state database (found application id {found:#x})")]
    ForeignDatabase {
        /// The database file.
        path: PathBuf,
        /// The SQLite application id in the file header.
        found: i64,
    },
    /// A stored value could not be decoded.
    #[error("corrupt stored value in {table}: {detail}")]
    Corrupt {
        /// The table holding the value.
        table: &'static str,
        /// What was wrong with it.
        detail: String,
    },
    /// A command of a newer encoding than this build can apply. Applying
    /// it partially would let this node diverge, so the node must stop.
    #[error(
        "command format {found} is newer than this Tocsin understands ({supported}); upgrade this node"
    )]
    CommandTooNew {
        /// The format in the log entry.
        found: u16,
        /// The newest format this build applies.
        supported: u16,
    },
    /// A file operation around the database (snapshots) failed.
    #[error("{path}: {source}")]
    Io {
        /// The file involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl StoreError {
    pub(crate) fn corrupt(table: &'static str, detail: impl ToString) -> Self {
        StoreError::Corrupt {
            table,
            detail: detail.to_string(),
        }
    }
}
