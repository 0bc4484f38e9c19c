//! Statements through the connection's statement cache.
//!
//! `apply` runs the same few dozen statements for every command; parsing
//! and planning each one again cost more than running it. Owns only the
//! cache's size and the two helpers; it must never hold a statement
//! across transactions.

use rusqlite::{CachedStatement, Connection, Params, Row};

/// Distinct statements kept prepared per connection: every statement of
/// `apply` and of the queries fits, so none is evicted in steady state.
pub(crate) const STATEMENT_CACHE_CAPACITY: usize = 256;

/// Runs statements through the statement cache.
pub(crate) trait CachedExec {
    /// `Connection::execute`, cached.
    fn exec_cached<P: Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize>;
    /// `Connection::query_row`, cached.
    fn row_cached<T, P: Params, F: FnOnce(&Row<'_>) -> rusqlite::Result<T>>(
        &self,
        sql: &str,
        params: P,
        f: F,
    ) -> rusqlite::Result<T>;
}

impl CachedExec for Connection {
    fn exec_cached<P: Params>(&self, sql: &str, params: P) -> rusqlite::Result<usize> {
        self.prepare_cached(sql)?.execute(params)
    }

    fn row_cached<T, P: Params, F: FnOnce(&Row<'_>) -> rusqlite::Result<T>>(
        &self,
        sql: &str,
        params: P,
        f: F,
    ) -> rusqlite::Result<T> {
        let mut stmt: CachedStatement<'_> = self.prepare_cached(sql)?;
        stmt.query_row(params, f)
    }
}
