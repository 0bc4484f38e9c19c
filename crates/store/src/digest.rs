//! The state digest: a hash of every row of the replicated state.
//!
//! Owns the definition of "the same state": two stores that applied the
//! same log must produce the same digest (invariant 2), whatever their
//! file layout, page order or rowids. It must never include the raft
//! metadata, which describes the log position rather than the state.

use rusqlite::Connection;
use rusqlite::types::ValueRef;
use sha2::{Digest, Sha256};

use crate::StoreError;
use crate::schema::DIGEST_TABLES;

/// SHA-256, in hex, over every table in a fixed order, rows in primary-key
/// order, each value tagged with its type.
pub(crate) fn state_digest(conn: &Connection) -> Result<String, StoreError> {
    let mut hasher = Sha256::new();
    for (table, order) in DIGEST_TABLES {
        hasher.update(table.as_bytes());
        hash_table(conn, table, order, &mut hasher)?;
    }
    Ok(hex::encode(hasher.finalize()))
}

fn hash_table(
    conn: &Connection,
    table: &str,
    order: &str,
    hasher: &mut Sha256,
) -> Result<(), StoreError> {
    let mut stmt = conn.prepare(&format!("SELECT * FROM {table} ORDER BY {order}"))?;
    let columns = stmt.column_count();
    let mut rows = stmt.query([])?;
    while let Some(row) = rows.next()? {
        hasher.update(b"\x1erow");
        for i in 0..columns {
            hash_value(row.get_ref(i)?, hasher);
        }
    }
    Ok(())
}

fn hash_value(value: ValueRef<'_>, hasher: &mut Sha256) {
    match value {
        ValueRef::Null => hasher.update(b"\x00"),
        ValueRef::Integer(i) => {
            hasher.update(b"\x01");
            hasher.update(i.to_be_bytes());
        }
        ValueRef::Real(f) => {
            hasher.update(b"\x02");
            hasher.update(f.to_bits().to_be_bytes());
        }
        ValueRef::Text(t) | ValueRef::Blob(t) => {
            hasher.update(b"\x03");
            hasher.update((t.len() as u64).to_be_bytes());
            hasher.update(t);
        }
    }
}
