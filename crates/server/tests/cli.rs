//! The command line refuses bad input with one line naming the problem, a
//! failing exit status, and nothing changed on disk.

mod common;

use common::{TestServer, listing, tocsin};

fn one_line_error(output: &std::process::Output) -> String {
    assert!(!output.status.success(), "expected failure");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "not one line: {stderr:?}"
    );
    assert!(stderr.starts_with("tocsin: error: "), "{stderr:?}");
    stderr
}

#[test]
fn an_unknown_flag_is_named() {
    let output = tocsin().args(["serve", "--bogus"]).output().unwrap();
    let stderr = one_line_error(&output);
    assert!(stderr.contains("--bogus"), "{stderr}");
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn an_unreadable_config_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.toml");
    let output = tocsin()
        .args(["serve", "--config"])
        .arg(&missing)
        .output()
        .unwrap();
    let stderr = one_line_error(&output);
    assert!(stderr.contains("nope.toml"), "{stderr}");
    assert!(!dir.path().join("data").exists());
}

#[test]
fn a_config_with_an_unknown_key_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nlisten_port = 5\n").unwrap();
    let output = tocsin()
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = one_line_error(&output);
    assert!(
        stderr.contains("listen_port") && stderr.contains("line 2"),
        "{stderr}"
    );
}

/// Starts `serve` on a data directory holding only `file` with `content`;
/// it must fail with one line containing `named`, and change nothing.
fn assert_refused_untouched(file: &str, content: &[u8], named: &str) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join(file), content).unwrap();
    let before = listing(&data);
    let output = tocsin()
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .output()
        .unwrap();
    let stderr = one_line_error(&output);
    assert!(stderr.contains(named), "{stderr}");
    assert_eq!(listing(&data), before);
}

#[test]
fn a_data_directory_of_another_program_is_refused_untouched() {
    assert_refused_untouched(
        "state.db",
        b"SQLite format 3\0 but not really a database at all",
        "state.db",
    );
}

#[test]
fn a_data_directory_of_another_cluster_is_refused_untouched() {
    assert_refused_untouched(
        "node.json",
        br#"{"cluster":"someone-else","node_id":1}"#,
        "someone-else",
    );
}

#[test]
fn user_commands_work_against_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let server = TestServer::start(&data);
    let run = |args: &[&str], stdin: &str| {
        let mut child = tocsin()
            .args(args)
            .arg("--data")
            .arg(&data)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    let added = run(
        &[
            "user",
            "add",
            "alice",
            "--password-stdin",
            "--email",
            "alice@example.com",
        ],
        "pw1\n",
    );
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let again = run(&["user", "add", "alice", "--password-stdin"], "pw1\n");
    let stderr = one_line_error(&again);
    assert!(stderr.contains("already exists"), "{stderr}");
    let listed = run(&["user", "list", "--json"], "");
    let users: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(users[0]["name"], "alice");
    assert_eq!(users[0]["addresses"][0], "mailto:alice@example.com");
    assert!(
        run(&["user", "passwd", "alice", "--password-stdin"], "pw2\n")
            .status
            .success()
    );
    let status = run(&["status", "--json"], "");
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["node"]["role"], "leader");
    assert_eq!(status["counts"]["users"], 1);
    assert_eq!(status["counts"]["calendars"], 1);
    assert!(run(&["user", "remove", "alice"], "").status.success());
    let gone = run(&["user", "remove", "alice"], "");
    one_line_error(&gone);
    let bad_name = run(&["user", "add", "../x", "--password-stdin"], "pw\n");
    assert!(one_line_error(&bad_name).contains("invalid user name"));
    assert!(server.terminate().success());
}

#[test]
fn user_commands_without_a_server_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let output = tocsin()
        .args(["user", "list", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = one_line_error(&output);
    assert!(stderr.contains("tocsin serve"), "{stderr}");
}

#[test]
fn alarms_explain_prints_the_next_alarms_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("weekly.ics");
    std::fs::write(
        &file,
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:w\r\nDTSTAMP:20260101T000000Z\r\n\
         DTSTART;TZID=Europe/Berlin:20261207T090000\r\nDURATION:PT1H\r\nRRULE:FREQ=WEEKLY\r\n\
         BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:x\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
    )
    .unwrap();
    let output = tocsin()
        .args([
            "alarms",
            "explain",
            "--now",
            "2026-12-04T12:00:00Z",
            "--count",
            "2",
            "--json",
        ])
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    // 09:00 Berlin is 08:00Z in winter; the alarm is 15 minutes before.
    assert_eq!(json["next_check"], "2026-12-07T07:45:00Z");
    let alarms = json["alarms"].as_array().unwrap();
    assert_eq!(alarms.len(), 2);
    assert_eq!(alarms[0]["trigger"], "2026-12-07T07:45:00Z");
    assert_eq!(alarms[0]["recurrence_id"], "20261207T080000Z");
    assert_eq!(alarms[1]["trigger"], "2026-12-14T07:45:00Z");
    assert_eq!(alarms[0]["uid"], "w");
    assert_eq!(alarms[0]["action"], "DISPLAY");
    assert!(
        alarms[0]["alarm_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
}

#[test]
fn alarms_explain_names_an_invalid_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.ics");
    std::fs::write(&file, "not a calendar").unwrap();
    let output = tocsin()
        .args(["alarms", "explain"])
        .arg(&file)
        .output()
        .unwrap();
    let stderr = one_line_error(&output);
    assert!(stderr.contains("bad.ics"), "{stderr}");
}
