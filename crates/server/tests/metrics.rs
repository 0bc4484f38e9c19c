//! `/metrics` reports real figures of the write path and the alarm engine.

mod common;

use common::TestServer;

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn metrics_count_the_commands_committed_and_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let server = TestServer::start(&data);
    for name in ["ann", "ben", "cat"] {
        assert_eq!(server.add_user(name, "pw").as_u16(), 201);
    }
    let text = reqwest::blocking::get(format!("{}/metrics", server.url))
        .unwrap()
        .text()
        .unwrap();
    assert!(
        metric(&text, "tocsin_commands_applied_total").unwrap() >= 3.0,
        "{text}"
    );
    assert!(metric(&text, "tocsin_commit_seconds_count").unwrap() >= 3.0);
    assert!(metric(&text, "tocsin_apply_seconds_count").unwrap() >= 1.0);
    assert!(metric(&text, "tocsin_log_flushes_total").unwrap() >= 1.0);
    assert!(metric(&text, "tocsin_raft_last_log_index").unwrap() >= 4.0);
    assert!(metric(&text, "tocsin_raft_log_entries").unwrap() >= 4.0);
    assert_eq!(metric(&text, "tocsin_raft_is_leader"), Some(1.0));
    assert!(text.contains("tocsin_alarms_fired_total"));
    assert!(text.contains("tocsin_alarm_lateness_seconds_bucket"));
    assert!(server.terminate().success());
}
