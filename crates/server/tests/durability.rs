//! Durability: SIGKILL during a burst of writes loses nothing that was
//! acknowledged, and the restarted state is exactly a replay of the log.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::TestServer;

#[test]
fn acknowledged_writes_survive_sigkill_and_the_state_equals_a_replay_of_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let server = TestServer::start(&data);

    // Writers run until the kill; each records the names the server acknowledged.
    let acknowledged = Arc::new(Mutex::new(Vec::new()));
    let mut writers = Vec::new();
    for w in 0..4 {
        let acknowledged = acknowledged.clone();
        let url = server.url.clone();
        let token = server.token.clone();
        writers.push(std::thread::spawn(move || {
            let client = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap();
            for i in 0.. {
                let name = format!("w{w}-{i}");
                let sent = client
                    .post(format!("{url}/admin/users"))
                    .bearer_auth(&token)
                    .json(&serde_json::json!({ "name": name, "password": "pw" }))
                    .send();
                match sent {
                    Ok(r) if r.status().as_u16() == 201 => acknowledged.lock().unwrap().push(name),
                    _ => break,
                }
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(1500));
    server.kill();
    for writer in writers {
        writer.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    eprintln!("{} writes acknowledged before SIGKILL", acknowledged.len());
    assert!(
        acknowledged.len() >= 4,
        "too few writes to test anything: {}",
        acknowledged.len()
    );

    let server = TestServer::start(&data);
    let users: Vec<serde_json::Value> = server
        .admin()
        .get(format!("{}/admin/users", server.url))
        .bearer_auth(&server.token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let present: std::collections::HashSet<String> = users
        .iter()
        .map(|u| u["name"].as_str().unwrap().to_owned())
        .collect();
    for name in &acknowledged {
        assert!(
            present.contains(name),
            "acknowledged write {name} lost after SIGKILL"
        );
    }
    let digest = server.status()["digest"].as_str().unwrap().to_owned();
    assert!(server.terminate().success());

    // Replay: a fresh node given only this node's log (and identity) must
    // rebuild the same state.
    let replay = dir.path().join("replay");
    std::fs::create_dir(&replay).unwrap();
    for file in ["node.json", "raft-log.db", "raft-log.db-wal"] {
        if data.join(file).exists() {
            std::fs::copy(data.join(file), replay.join(file)).unwrap();
        }
    }
    let replayed = TestServer::start(&replay);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let status = replayed.status();
        if status["digest"] == digest.as_str() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "replay digest {} != {digest}",
            status["digest"]
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(replayed.terminate().success());
}

#[test]
fn a_corrupt_log_entry_stops_the_node_with_its_index_named() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let server = TestServer::start(&data);
    assert_eq!(server.add_user("alice", "pw").as_u16(), 201);
    assert!(server.terminate().success());

    let log = rusqlite::Connection::open(data.join("raft-log.db")).unwrap();
    let last: i64 = log
        .query_row("SELECT max(idx) FROM entries", [], |r| r.get(0))
        .unwrap();
    log.execute("UPDATE entries SET entry = CAST(replace(CAST(entry AS TEXT), 'alice', 'mallo') AS BLOB) WHERE idx = ?1", [last])
        .unwrap();
    let changed: i64 = log
        .query_row(
            "SELECT instr(CAST(entry AS TEXT), 'mallo') FROM entries WHERE idx = ?1",
            [last],
            |r| r.get(0),
        )
        .unwrap();
    assert!(changed > 0, "the test did not corrupt anything");
    drop(log);

    let output = common::tocsin()
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("entry {last} is corrupt")),
        "{stderr}"
    );
}

#[test]
fn a_torn_log_tail_is_dropped_and_everything_acknowledged_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let server = TestServer::start(&data);
    assert_eq!(server.add_user("alice", "pw").as_u16(), 201);
    server.kill();

    // A write cut short by the crash: bytes after the last complete frame
    // of the log's journal, as a torn sector would leave them.
    let wal = data.join("raft-log.db-wal");
    assert!(wal.exists(), "SIGKILL should leave the log journal behind");
    let mut torn = std::fs::read(&wal).unwrap();
    torn.extend((0..3000u32).map(|i| (i * 7 % 251) as u8));
    std::fs::write(&wal, torn).unwrap();

    let server = TestServer::start(&data);
    let users: Vec<serde_json::Value> = server
        .admin()
        .get(format!("{}/admin/users", server.url))
        .bearer_auth(&server.token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["name"], "alice");
    assert_eq!(server.add_user("bob", "pw").as_u16(), 201);
    assert!(server.terminate().success());
}
