//! What both suites share: percentiles, the memory and CPU of a server
//! process tree read from /proc, processes started and stopped by PID,
//! free ports, and a small CalDAV client over reqwest.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{Client, Method, StatusCode};

/// How often the memory sampler reads /proc.
const RSS_SAMPLE_PERIOD: Duration = Duration::from_millis(100);
/// How long a stopped server may take before it gets SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(20);

/// The value at quantile `q` (0..=1) of `values`, nearest rank.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// p50, p99 and max of `values`.
pub fn summary(values: &[f64]) -> (f64, f64, f64) {
    (
        quantile(values, 0.5),
        quantile(values, 0.99),
        quantile(values, 1.0),
    )
}

/// A `kB` field (`VmRSS:`, `VmHWM:`) of /proc/PID/status, in bytes.
pub fn status_bytes(pid: u32, field: &str) -> Option<u64> {
    kb_field(&format!("/proc/{pid}/status"), field)
}

/// The `field:   N kB` line of a /proc file, in bytes.
fn kb_field(path: &str, field: &str) -> Option<u64> {
    let text = fs::read_to_string(path).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    let kb: u64 = line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb * 1024)
}

/// The process and all its live descendants.
pub fn process_tree(root: u32) -> Vec<u32> {
    let mut parents: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(dir) = fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(ppid) = stat_fields(pid).and_then(|f| f.get(1)?.parse::<u32>().ok()) {
                parents.entry(ppid).or_default().push(pid);
            }
        }
    }
    let mut tree = vec![root];
    let mut i = 0;
    while i < tree.len() {
        if let Some(children) = parents.get(&tree[i]) {
            tree.extend(children);
        }
        i += 1;
    }
    tree
}

/// Fields of /proc/PID/stat after the command name (state is field 0).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 2..];
    Some(after.split_whitespace().map(str::to_owned).collect())
}

/// CPU seconds (user + system) of a process tree: the live processes and
/// the children they have reaped.
pub fn tree_cpu_seconds(root: u32) -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    process_tree(root)
        .into_iter()
        .filter_map(stat_fields)
        .map(|f| {
            // utime, stime, cutime, cstime are fields 14–17 of stat (1-based),
            // 11–14 here.
            (11..=14)
                .filter_map(|i| f.get(i)?.parse::<f64>().ok())
                .sum::<f64>()
                / ticks
        })
        .sum()
}

/// CPU seconds (user + system) this process has used.
pub fn self_cpu_seconds() -> f64 {
    // SAFETY: getrusage writes into the struct we pass and nothing else.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

pub const MIB: f64 = 1024.0 * 1024.0;

#[derive(Default)]
struct RssState {
    phase_max: u64,
    overall_max: u64,
    last: u64,
    pss_max: u64,
    hwm_max: u64,
}

/// Pss of a process (its resident memory, shared pages divided among
/// the processes sharing them), in bytes.
fn pss_bytes(pid: u32) -> Option<u64> {
    kb_field(&format!("/proc/{pid}/smaps_rollup"), "Pss:")
}

/// Samples a process tree every 100 ms: the summed VmRSS (maximum per
/// phase and overall), the summed Pss (which does not count pages shared
/// by a multi-process server's workers twice) and the largest VmHWM of
/// any one process.
pub struct RssSampler {
    root: u32,
    state: Arc<Mutex<RssState>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    pub fn start(root: u32) -> RssSampler {
        let state = Arc::new(Mutex::new(RssState::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (state.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let tree = process_tree(root);
                    let rss: u64 = tree
                        .iter()
                        .filter_map(|&pid| status_bytes(pid, "VmRSS:"))
                        .sum();
                    let pss: u64 = tree.iter().filter_map(|&pid| pss_bytes(pid)).sum();
                    let hwm = tree
                        .iter()
                        .filter_map(|&pid| status_bytes(pid, "VmHWM:"))
                        .max()
                        .unwrap_or(0);
                    if let Ok(mut s) = state.lock() {
                        s.last = rss;
                        s.phase_max = s.phase_max.max(rss);
                        s.overall_max = s.overall_max.max(rss);
                        s.pss_max = s.pss_max.max(pss);
                        s.hwm_max = s.hwm_max.max(hwm);
                    }
                    std::thread::sleep(RSS_SAMPLE_PERIOD);
                }
            })
        };
        RssSampler {
            root,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// The largest tree RSS since the last call (or the start), in MiB;
    /// starts the next phase.
    pub fn phase_mib(&self) -> f64 {
        let mut s = self.state.lock().expect("sampler lock");
        let max = s.phase_max.max(s.last);
        s.phase_max = s.last;
        max as f64 / MIB
    }

    /// The largest tree RSS seen so far, in MiB.
    pub fn overall_mib(&self) -> f64 {
        self.state.lock().expect("sampler lock").overall_max as f64 / MIB
    }

    /// The largest summed Pss seen so far, in MiB.
    pub fn pss_mib(&self) -> f64 {
        self.state.lock().expect("sampler lock").pss_max as f64 / MIB
    }

    /// VmHWM (peak resident set) of the root process, or the largest of
    /// any process of the tree sampled so far, in MiB.
    pub fn hwm_mib(&self) -> f64 {
        let root = status_bytes(self.root, "VmHWM:").unwrap_or(0);
        let sampled = self.state.lock().expect("sampler lock").hwm_max;
        root.max(sampled) as f64 / MIB
    }

    /// VmRSS of the root process now, in MiB.
    pub fn rss_mib(&self) -> f64 {
        status_bytes(self.root, "VmRSS:").unwrap_or(0) as f64 / MIB
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The 1-minute load average of the machine (the benchmarks share it).
pub fn load_average() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_default()
}

/// The sum of the Prometheus samples whose name ends with `suffix`.
pub async fn metric(client: &Client, metrics_url: &str, suffix: &str) -> Option<f64> {
    let text = client
        .get(metrics_url)
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let values: Vec<f64> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            let bare = name.split('{').next()?;
            bare.ends_with(suffix).then(|| value.parse().ok())?
        })
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A process this program started; stopped by its PID.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
    /// The PID to watch and to signal (for a daemon that writes its own
    /// pid file, that PID rather than the launcher's).
    pub pid: u32,
}

impl Proc {
    /// Starts `command` with its output in `log`.
    pub fn spawn(name: &str, command: &mut Command, log: &Path) -> Result<Proc> {
        let out = fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
        let child = command
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Proc {
            name: name.to_owned(),
            pid: child.id(),
            child: Some(child),
        })
    }

    /// Whether the process has exited.
    pub fn exited(&mut self) -> bool {
        match &mut self.child {
            Some(child) => !matches!(child.try_wait(), Ok(None)),
            None => !Path::new(&format!("/proc/{}", self.pid)).exists(),
        }
    }

    /// SIGTERM, then SIGKILL after a grace period; waits for the exit.
    pub fn stop(&mut self) {
        signal(self.pid, libc::SIGTERM);
        let deadline = Instant::now() + STOP_GRACE;
        while !self.exited() {
            if Instant::now() > deadline {
                signal(self.pid, libc::SIGKILL);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if !self.exited() {
            self.stop();
        }
    }
}

fn signal(pid: u32, sig: i32) {
    // SAFETY: kill only sends a signal to the process we started.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// Waits until `ready` answers true, or fails after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) -> Result<()> {
    let deadline = Instant::now() + timeout;
    while !ready() {
        if Instant::now() > deadline {
            bail!("{what} not ready after {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Ok(())
}

/// A Tocsin server started on 127.0.0.1 with a port the OS picks.
pub struct Tocsin {
    pub proc: Proc,
    pub url: String,
    pub data: PathBuf,
    bin: PathBuf,
}

impl Tocsin {
    pub fn start(bin: &Path, data: &Path, extra: &[String]) -> Result<Tocsin> {
        fs::create_dir_all(data)?;
        let admin = data.join("admin.json");
        let _ = fs::remove_file(&admin);
        let mut command = Command::new(bin);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .args(extra);
        let mut proc = Proc::spawn("tocsin", &mut command, &data.with_extension("log"))?;
        let mut url = String::new();
        wait_until("tocsin admin.json", Duration::from_secs(60), || {
            if proc.exited() {
                return true;
            }
            let Ok(text) = fs::read_to_string(&admin) else {
                return false;
            };
            match serde_json::from_str::<serde_json::Value>(&text) {
                Ok(v) => {
                    url = v["url"].as_str().unwrap_or_default().to_owned();
                    true
                }
                Err(_) => false,
            }
        })?;
        if url.is_empty() {
            bail!(
                "tocsin did not start; see {}",
                data.with_extension("log").display()
            );
        }
        let ready = format!("{url}/readyz");
        wait_until("tocsin /readyz", Duration::from_secs(60), || {
            reqwest::blocking::get(&ready).is_ok_and(|r| r.status().is_success())
        })?;
        Ok(Tocsin {
            proc,
            url,
            data: data.to_owned(),
            bin: bin.to_owned(),
        })
    }

    /// Runs a `tocsin` CLI command against this server's data directory.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> Result<String> {
        use std::io::Write;
        let mut child = Command::new(&self.bin)
            .args(args)
            .arg("--data")
            .arg(&self.data)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .context("stdin")?
                .write_all(text.as_bytes())?;
        }
        drop(child.stdin.take());
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "tocsin {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    pub fn add_user(&self, name: &str, password: &str) -> Result<()> {
        self.cli(
            &["user", "add", name, "--password-stdin"],
            Some(&format!("{password}\n")),
        )?;
        Ok(())
    }
}

/// A CalDAV collection and the credentials to reach it.
#[derive(Clone)]
pub struct Dav {
    pub client: Client,
    /// `http://host:port`
    pub origin: String,
    /// The collection's path, ending in `/`.
    pub collection: String,
    auth: Option<HeaderValue>,
}

/// An answer: status, body, and how long it took.
pub struct Answer {
    pub status: StatusCode,
    pub body: String,
    pub took: Duration,
}

impl Dav {
    pub fn new(origin: &str, collection: &str, credentials: Option<(&str, &str)>) -> Result<Dav> {
        let client = Client::builder()
            .timeout(Duration::from_secs(600))
            .pool_max_idle_per_host(64)
            .build()?;
        let auth = credentials
            .map(|(u, p)| HeaderValue::from_str(&format!("Basic {}", base64(&format!("{u}:{p}")))))
            .transpose()?;
        Ok(Dav {
            client,
            origin: origin.trim_end_matches('/').to_owned(),
            collection: collection.to_owned(),
            auth,
        })
    }

    pub fn href(&self, name: &str) -> String {
        format!("{}{name}", self.collection)
    }

    /// Sends one request to `path` (absolute path on the origin).
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<String>,
    ) -> Result<Answer> {
        let started = Instant::now();
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.origin));
        if let Some(auth) = &self.auth {
            request = request.header(AUTHORIZATION, auth.clone());
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        let response = request.send().await?;
        let status = response.status();
        let body = response.text().await?;
        Ok(Answer {
            status,
            body,
            took: started.elapsed(),
        })
    }

    pub async fn put(&self, name: &str, text: &str) -> Result<Answer> {
        self.send(
            Method::PUT,
            &self.href(name),
            &[(CONTENT_TYPE.as_str(), "text/calendar; charset=utf-8")],
            Some(text.to_owned()),
        )
        .await
    }

    pub async fn get(&self, name: &str) -> Result<Answer> {
        self.send(Method::GET, &self.href(name), &[], None).await
    }

    pub async fn delete(&self, name: &str) -> Result<Answer> {
        self.send(Method::DELETE, &self.href(name), &[], None).await
    }

    /// A REPORT or PROPFIND on the collection, Depth 1.
    pub async fn xml(&self, method: &str, body: &str) -> Result<Answer> {
        self.send(
            Method::from_bytes(method.as_bytes())?,
            &self.collection,
            &[
                ("Depth", "1"),
                (CONTENT_TYPE.as_str(), "application/xml; charset=utf-8"),
            ],
            Some(body.to_owned()),
        )
        .await
    }
}

/// Standard base64 with padding (for a Basic credential).
pub fn base64(text: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The XML elements named `local` (any namespace prefix) in `xml`: how
/// many, and the text of the first.
pub fn xml_elements<'a>(xml: &'a str, local: &str) -> (usize, Option<&'a str>) {
    let mut count = 0;
    let mut first = None;
    let mut rest = xml;
    let mut offset = 0;
    while let Some(at) = rest.find('<') {
        let tag_start = offset + at + 1;
        let tail = &xml[tag_start..];
        let end = tail
            .find(|c: char| c == '>' || c == '/' || c.is_whitespace())
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let bare = name.rsplit(':').next().unwrap_or(name);
        if bare == local && !name.is_empty() {
            count += 1;
            if first.is_none()
                && let Some(gt) = tail.find('>')
            {
                let text = &tail[gt + 1..];
                first = Some(&text[..text.find('<').unwrap_or(text.len())]);
            }
        }
        offset = tag_start;
        rest = &xml[offset..];
    }
    (count, first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_the_rfc_examples() {
        assert_eq!(base64("f"), "Zg==");
        assert_eq!(base64("fo"), "Zm8=");
        assert_eq!(base64("foo"), "Zm9v");
        assert_eq!(base64("foob"), "Zm9vYg==");
    }

    #[test]
    fn elements_are_found_whatever_the_prefix() {
        let xml = "<D:multistatus xmlns:D=\"DAV:\"><D:response><D:href>/a</D:href></D:response>\
<response><href>/b</href></response><D:sync-token>tok</D:sync-token></D:multistatus>";
        assert_eq!(xml_elements(xml, "response").0, 2);
        assert_eq!(xml_elements(xml, "sync-token"), (1, Some("tok")));
        assert_eq!(xml_elements(xml, "href"), (2, Some("/a")));
    }
}
