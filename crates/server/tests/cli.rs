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
