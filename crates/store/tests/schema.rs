//! Opening a data directory that is not ours, or is newer, fails with a
//! message naming the problem and leaves the file byte for byte unchanged.

use rusqlite::Connection;
use tocsin_store::{SCHEMA_VERSION, Store, StoreError};

fn file_bytes(path: &std::path::Path) -> Vec<u8> {
    std::fs::read(path).expect("read file")
}

#[test]
fn a_foreign_sqlite_database_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE other (x); PRAGMA application_id = 42;")
            .unwrap();
    }
    let before = file_bytes(&path);
    let err = Store::open(&path).err().expect("must refuse");
    assert!(
        matches!(err, StoreError::ForeignDatabase { found: 42, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("not a Tocsin state database"));
    assert_eq!(file_bytes(&path), before);
    assert!(!dir.path().join("state.db-wal").exists());
}

#[test]
fn a_newer_schema_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    drop(Store::open(&path).unwrap());
    {
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        conn.pragma_update(None, "journal_mode", "DELETE").unwrap();
    }
    let before = file_bytes(&path);
    let err = Store::open(&path).err().expect("must refuse");
    assert!(matches!(err, StoreError::SchemaTooNew { .. }), "{err}");
    assert!(err.to_string().contains("upgrade Tocsin"));
    assert_eq!(file_bytes(&path), before);
}

#[test]
fn a_file_that_is_not_sqlite_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    std::fs::write(
        &path,
        b"this is not a database, just some text that is long enough",
    )
    .unwrap();
    let before = file_bytes(&path);
    assert!(Store::open(&path).is_err());
    assert_eq!(file_bytes(&path), before);
}

#[test]
fn reopening_our_own_database_keeps_its_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let digest = {
        let store = Store::open(&path).unwrap();
        store.reader().read(|q| q.digest()).unwrap()
    };
    let store = Store::open(&path).unwrap();
    assert_eq!(store.reader().read(|q| q.digest()).unwrap(), digest);
}

#[test]
fn a_foreign_snapshot_is_refused_and_the_state_kept() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(&dir.path().join("state.db")).unwrap();
    let digest = store.reader().read(|q| q.digest()).unwrap();
    let foreign = dir.path().join("foreign.db");
    Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE t (x);")
        .unwrap();
    assert!(store.import_snapshot(&foreign).is_err());
    assert_eq!(store.reader().read(|q| q.digest()).unwrap(), digest);
}

fn index_sql(path: &std::path::Path) -> Vec<(String, String)> {
    let conn = Connection::open(path).unwrap();
    let mut stmt = conn
        .prepare("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ('alarm_outbox', 'per_user_data') ORDER BY name")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn a_file_with_an_earlier_builds_indexes_gets_todays_and_keeps_its_state() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let digest = {
        let store = Store::open(&path).unwrap();
        store.reader().read(|q| q.digest()).unwrap()
    };
    let todays = index_sql(&path);
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "DROP INDEX alarm_outbox_pending; DROP INDEX alarm_outbox_by_user; DROP INDEX per_user_data_by_user;
             CREATE INDEX alarm_outbox_by_state ON alarm_outbox (state, next_attempt_ms);
             CREATE INDEX alarm_outbox_by_user ON alarm_outbox (user, updated_ms);",
        )
        .unwrap();
    assert_ne!(index_sql(&path), todays);
    let store = Store::open(&path).unwrap();
    assert_eq!(index_sql(&path), todays);
    assert_eq!(store.reader().read(|q| q.digest()).unwrap(), digest);
}
