//! A `tocsin serve` process for tests: started on 127.0.0.1 with a port
//! the OS picks, found through the admin file it writes, stopped by PID.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to start before the test fails.
const START_TIMEOUT: Duration = Duration::from_secs(30);

pub fn tocsin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tocsin"))
}

pub struct TestServer {
    pub child: Child,
    pub data: PathBuf,
    pub url: String,
    pub token: String,
}

impl TestServer {
    /// Starts a server on `data` and waits until it is ready.
    pub fn start(data: &Path) -> TestServer {
        Self::start_with(data, &[])
    }

    pub fn start_with(data: &Path, extra: &[&str]) -> TestServer {
        let admin_file = data.join("admin.json");
        let _ = std::fs::remove_file(&admin_file);
        let log = std::fs::File::create(data.with_extension("log")).expect("log file");
        let child = tocsin()
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn tocsin serve");
        let deadline = Instant::now() + START_TIMEOUT;
        let endpoint: serde_json::Value = loop {
            if let Ok(bytes) = std::fs::read(&admin_file)
                && let Ok(value) = serde_json::from_slice(&bytes)
            {
                break value;
            }
            assert!(
                Instant::now() < deadline,
                "server did not start; see {}",
                data.with_extension("log").display()
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let server = TestServer {
            child,
            data: data.to_owned(),
            url: endpoint["url"].as_str().expect("url").to_owned(),
            token: endpoint["token"].as_str().expect("token").to_owned(),
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        // Readiness only: a TLS test checks the certificate on its own.
        let client = reqwest::blocking::Client::builder()
            .danger_accept_invalid_certs(true)
            .build()
            .expect("client");
        loop {
            let ready = client
                .get(format!("{}/readyz", self.url))
                .send()
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            if ready {
                return;
            }
            assert!(Instant::now() < deadline, "server never became ready");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().expect("wait for tocsin")
    }

    pub fn admin(&self) -> reqwest::blocking::Client {
        reqwest::blocking::Client::new()
    }

    pub fn status(&self) -> serde_json::Value {
        self.admin()
            .get(format!("{}/admin/status", self.url))
            .bearer_auth(&self.token)
            .send()
            .expect("status")
            .json()
            .expect("status json")
    }

    pub fn add_user(&self, name: &str, password: &str) -> reqwest::StatusCode {
        self.admin()
            .post(format!("{}/admin/users", self.url))
            .bearer_auth(&self.token)
            .json(&serde_json::json!({ "name": name, "password": password }))
            .send()
            .map(|r| r.status())
            .unwrap_or(reqwest::StatusCode::SERVICE_UNAVAILABLE)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every file name and size in `dir`, sorted: what "nothing on disk
/// changed" compares.
pub fn listing(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter(|e| e.path().is_file())
                .map(|e| {
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        std::fs::read(e.path()).unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}
