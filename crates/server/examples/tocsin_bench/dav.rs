//! Suite 1: the CalDAV workload of issue 6, against Tocsin and its peers
//! (Xandikos, Radicale, Cyrus) in one run, one server at a time.
//!
//! Per server: PUT of the first 1,000 objects with 4 concurrent clients
//! (timed), then the rest of the 10,000 — by PUT for Tocsin and Cyrus,
//! written straight into the peer's storage for Radicale (its files) and
//! Xandikos (its git repository) — then GET/s, calendar-query over one
//! month, sync-collection initial and delta, with the server's memory
//! sampled from /proc all along.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::runtime::Runtime;

use crate::util::{
    Dav, Proc, RssSampler, Tocsin, free_port, load_average, metric, quantile, self_cpu_seconds,
    summary, tree_cpu_seconds, wait_until, xml_elements,
};
use crate::workload::{Object, dav_mix, ical_utc, month_start};

/// Objects written through PUT on every server, timed.
const PUT_TIMED: usize = 1_000;

#[derive(clap::Args)]
pub struct DavArgs {
    /// The tocsin binary.
    #[arg(long, default_value = "target/release/tocsin")]
    bin: PathBuf,
    /// Where bench/install_peers.sh installed the peers; without it only
    /// Tocsin runs.
    #[arg(long)]
    peers: Option<PathBuf>,
    /// Servers to run, in order.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "tocsin,xandikos,radicale,cyrus"
    )]
    servers: Vec<String>,
    /// Objects in the calendar.
    #[arg(long, default_value_t = 10_000)]
    events: usize,
    /// Concurrent PUT clients.
    #[arg(long, default_value_t = 4)]
    put_clients: usize,
    /// Concurrent GET clients.
    #[arg(long, default_value_t = 16)]
    get_clients: usize,
    /// How long GETs run.
    #[arg(long, default_value_t = 10)]
    get_secs: u64,
    /// calendar-query REPORTs (one at a time), at most …
    #[arg(long, default_value_t = 50)]
    queries: usize,
    /// … and for at most this long (at least 5 queries are made).
    #[arg(long, default_value_t = 60)]
    query_secs_max: u64,
    /// Scratch directory (a fresh temporary one by default).
    #[arg(long)]
    scratch: Option<PathBuf>,
    /// Write every figure as JSON here too.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Seed of the generated calendar.
    #[arg(long, default_value_t = 6)]
    seed: u64,
}

/// One server under test, reachable and ready for the workload.
struct Server {
    kind: String,
    proc: Proc,
    dav: Dav,
    /// Directory of the calendar collection on disk (peers filled there).
    storage: Option<PathBuf>,
    /// What restarts it (Xandikos, after its git repository was filled).
    restart: Option<Box<dyn Fn() -> Result<Proc>>>,
    /// Tocsin's /metrics, to count log fsyncs per PUT.
    metrics: Option<String>,
}

pub fn run(args: DavArgs) -> Result<()> {
    let scratch_holder;
    let scratch = match &args.scratch {
        Some(dir) => dir.clone(),
        None => {
            scratch_holder = tempfile::Builder::new()
                .prefix("tocsin-dav-bench-")
                .tempdir()?;
            scratch_holder.path().to_owned()
        }
    };
    let rt = Runtime::new()?;
    let today = now_secs() / 86_400;
    let objects = Arc::new(dav_mix(args.events, args.seed, today));
    let extra = dav_mix(3, args.seed + 1, today);
    let bytes: usize = objects.iter().map(|o| o.text.len()).sum();
    println!(
        "workload: {} objects, {:.1} MiB of iCalendar, seed {}, scratch {}",
        objects.len(),
        bytes as f64 / 1024.0 / 1024.0,
        args.seed,
        scratch.display()
    );
    let mut results: Vec<Value> = Vec::new();
    for kind in &args.servers {
        println!("\n== {kind}");
        let server = match start(kind, &args, &scratch) {
            Ok(s) => s,
            Err(e) => {
                println!("{kind}: not measured: {e:#}");
                results.push(json!({"server": kind, "error": format!("{e:#}")}));
                continue;
            }
        };
        match measure(&rt, server, &args, &objects, &extra, today) {
            Ok(r) => results.push(r),
            Err(e) => {
                println!("{kind}: failed: {e:#}");
                results.push(json!({"server": kind, "error": format!("{e:#}")}));
            }
        }
    }
    print_table(&results, &args);
    if let Some(path) = &args.json {
        fs::write(path, serde_json::to_string_pretty(&results)?)?;
    }
    Ok(())
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn peers_dir(args: &DavArgs) -> Result<&Path> {
    args.peers
        .as_deref()
        .context("--peers DIR is needed for the peers (see bench/install_peers.sh)")
}

fn start(kind: &str, args: &DavArgs, scratch: &Path) -> Result<Server> {
    let dir = scratch.join(kind);
    fs::create_dir_all(&dir)?;
    match kind {
        "tocsin" => {
            let tocsin = Tocsin::start(&args.bin, &dir.join("data"), &[])?;
            tocsin.add_user("bench", "bench-pw")?;
            let dav = Dav::new(
                &tocsin.url,
                "/dav/calendars/bench/calendar/",
                Some(("bench", "bench-pw")),
            )?;
            Ok(Server {
                kind: kind.into(),
                metrics: Some(format!("{}/metrics", tocsin.url)),
                proc: tocsin.proc,
                dav,
                storage: None,
                restart: None,
            })
        }
        "xandikos" => {
            let peers = peers_dir(args)?.to_owned();
            let port = free_port()?;
            let data = dir.join("data");
            let launch = {
                let (dir, data) = (dir.clone(), data.clone());
                move || -> Result<Proc> {
                    let mut command = Command::new(peers.join("venv/bin/xandikos"));
                    command
                        .args(["serve", "--defaults", "-l", "127.0.0.1", "-p"])
                        .arg(port.to_string())
                        .arg("-d")
                        .arg(&data)
                        .arg("--state-dir")
                        .arg(dir.join("state"));
                    let mut proc =
                        Proc::spawn("xandikos", &mut command, &dir.join("xandikos.log"))?;
                    wait_http(&mut proc, port)?;
                    Ok(proc)
                }
            };
            let proc = launch()?;
            Ok(Server {
                kind: kind.into(),
                proc,
                dav: Dav::new(
                    &format!("http://127.0.0.1:{port}"),
                    "/user/calendars/calendar/",
                    None,
                )?,
                storage: Some(data.join("user/calendars/calendar")),
                restart: Some(Box::new(launch)),
                metrics: None,
            })
        }
        "radicale" => {
            let peers = peers_dir(args)?;
            let port = free_port()?;
            let config = dir.join("config");
            fs::write(
                &config,
                format!(
                    "[server]\nhosts = 127.0.0.1:{port}\n[auth]\ntype = none\n[storage]\nfilesystem_folder = {}\n[rights]\ntype = owner_only\n[logging]\nlevel = warning\n",
                    dir.join("data").display()
                ),
            )?;
            let mut command = Command::new(peers.join("venv/bin/radicale"));
            command.arg("--config").arg(&config);
            let mut proc = Proc::spawn("radicale", &mut command, &dir.join("radicale.log"))?;
            wait_http(&mut proc, port)?;
            let dav = Dav::new(
                &format!("http://127.0.0.1:{port}"),
                "/bench/calendar/",
                Some(("bench", "bench")),
            )?;
            let rt = Runtime::new()?;
            rt.block_on(async {
                dav.send(
                    reqwest::Method::from_bytes(b"PROPFIND")?,
                    "/bench/",
                    &[("Depth", "0")],
                    None,
                )
                .await?;
                let made = dav
                    .send(
                        reqwest::Method::from_bytes(b"MKCALENDAR")?,
                        "/bench/calendar/",
                        &[],
                        None,
                    )
                    .await?;
                ensure!(made.status.as_u16() == 201, "MKCALENDAR: {}", made.status);
                Ok(())
            })?;
            Ok(Server {
                kind: kind.into(),
                proc,
                dav,
                storage: Some(dir.join("data/collection-root/bench/calendar")),
                restart: None,
                metrics: None,
            })
        }
        "cyrus" => start_cyrus(peers_dir(args)?),
        other => bail!("unknown server {other:?} (tocsin, xandikos, radicale, cyrus)"),
    }
}

fn wait_http(proc: &mut Proc, port: u16) -> Result<()> {
    let name = proc.name.clone();
    wait_until(&name, Duration::from_secs(60), || {
        proc.exited() || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
    })?;
    ensure!(!proc.exited(), "{name} exited at start (see its log)");
    Ok(())
}

/// Cyrus with the shared configuration: fixed ports 18080 (CalDAV) and
/// 11143 (IMAP, one login creates the mailboxes), a fresh spool.
fn start_cyrus(peers: &Path) -> Result<Server> {
    let cyrus = peers.join("cyrus");
    ensure!(
        cyrus.join("imapd.conf").exists(),
        "no Cyrus configuration in {}",
        cyrus.display()
    );
    for port in [18080, 11143] {
        ensure!(
            std::net::TcpListener::bind(("127.0.0.1", port)).is_ok(),
            "port {port} is taken; Cyrus' shared configuration needs it"
        );
    }
    for sub in ["conf", "spool"] {
        let _ = fs::remove_dir_all(cyrus.join(sub));
        fs::create_dir_all(cyrus.join(sub))?;
    }
    let _ = fs::remove_file(cyrus.join("notify.log"));
    let _ = fs::remove_file(cyrus.join("master.pid"));
    let chown = Command::new("chown")
        .args(["-R", "cyrus:mail"])
        .arg(&cyrus)
        .status()?;
    ensure!(chown.success(), "chown of {} failed", cyrus.display());
    let mut command = Command::new("runuser");
    command
        .args(["-u", "cyrus", "--", "/usr/lib/cyrus/bin/master", "-C"])
        .arg(cyrus.join("imapd.conf"))
        .arg("-M")
        .arg(cyrus.join("cyrus.conf"))
        .arg("-p")
        .arg(cyrus.join("master.pid"));
    let mut proc = Proc::spawn("cyrus", &mut command, &peers.join("cyrus-master.log"))?;
    wait_http(&mut proc, 18080)?;
    let master: u32 = fs::read_to_string(cyrus.join("master.pid"))?
        .trim()
        .parse()?;
    // The master is the process to watch and to stop; runuser ends with it.
    proc.pid = master;
    imap_login(11143, "test", "test")?;
    let dav = Dav::new(
        "http://127.0.0.1:18080",
        "/dav/calendars/user/test/Default/",
        Some(("test", "test")),
    )?;
    Ok(Server {
        kind: "cyrus".into(),
        proc,
        dav,
        storage: None,
        restart: None,
        metrics: None,
    })
}

/// One IMAP LOGIN, which makes Cyrus create the user's mailboxes.
fn imap_login(port: u16, user: &str, password: &str) -> Result<()> {
    use std::io::{BufRead, BufReader, Write};
    let stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut line = String::new();
    reader.read_line(&mut line)?;
    write!(writer, "a LOGIN {user} {password}\r\n")?;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            bail!("IMAP closed during LOGIN");
        }
        if line.starts_with("a ") {
            ensure!(line.starts_with("a OK"), "IMAP LOGIN: {line}");
            break;
        }
    }
    write!(writer, "b LOGOUT\r\n")?;
    Ok(())
}

/// PUTs `objects[range]` with `clients` concurrent clients; objects/s.
async fn put_all(
    dav: &Dav,
    objects: &Arc<Vec<Object>>,
    range: std::ops::Range<usize>,
    clients: usize,
) -> Result<(f64, Vec<f64>)> {
    let next = Arc::new(AtomicUsize::new(range.start));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (dav, objects, next, end) = (dav.clone(), objects.clone(), next.clone(), range.end);
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= end {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let o = &objects[i];
                let answer = dav.put(&o.name, &o.text).await?;
                ensure!(
                    answer.status.is_success(),
                    "PUT {}: {} {}",
                    o.name,
                    answer.status,
                    answer.body.chars().take(300).collect::<String>()
                );
                latencies.push(answer.took.as_secs_f64() * 1000.0);
            }
        });
    }
    let mut latencies = Vec::new();
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done??);
    }
    let secs = started.elapsed().as_secs_f64();
    Ok((range.len() as f64 / secs, latencies))
}

/// Writes the objects as files into a peer's collection directory.
fn write_files(dir: &Path, objects: &[Object]) -> Result<()> {
    ensure!(dir.is_dir(), "no collection directory {}", dir.display());
    for o in objects {
        fs::write(dir.join(&o.name), &o.text)?;
    }
    Ok(())
}

/// Commits files in Xandikos' collection (a git working tree).
fn git_commit_all(dir: &Path) -> Result<()> {
    for args in [
        vec!["add", "-A", "."],
        vec![
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@localhost",
            "commit",
            "-q",
            "-m",
            "bench fill",
        ],
    ] {
        let status = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(&args)
            .status()?;
        ensure!(
            status.success(),
            "git {:?} in {} failed",
            args,
            dir.display()
        );
    }
    Ok(())
}

const PROPFIND_ETAGS: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<D:propfind xmlns:D="DAV:"><D:prop><D:getetag/></D:prop></D:propfind>"#;

fn calendar_query_body(start: i64, end: i64) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
  <D:prop><D:getetag/><C:calendar-data/></D:prop>
  <C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">
    <C:time-range start="{}" end="{}"/>
  </C:comp-filter></C:comp-filter></C:filter>
</C:calendar-query>"#,
        ical_utc(start),
        ical_utc(end)
    )
}

fn sync_body(token: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<D:sync-collection xmlns:D="DAV:"><D:sync-token>{token}</D:sync-token><D:sync-level>1</D:sync-level>
<D:prop><D:getetag/></D:prop></D:sync-collection>"#
    )
}

/// One complete sync from `token`, following 507-truncated pages:
/// (time, requests, responses about members, the new token).
async fn sync_from(dav: &Dav, token: &str) -> Result<(f64, usize, usize, String)> {
    let started = Instant::now();
    let mut token = token.to_owned();
    let mut pages = 0;
    let mut members = 0;
    loop {
        let answer = dav.xml("REPORT", &sync_body(&token)).await?;
        ensure!(
            answer.status.as_u16() == 207,
            "sync-collection: {} {}",
            answer.status,
            answer.body.chars().take(300).collect::<String>()
        );
        pages += 1;
        let (responses, _) = xml_elements(&answer.body, "response");
        let truncated = answer.body.contains(" 507 ");
        members += responses - usize::from(truncated);
        let (_, new_token) = xml_elements(&answer.body, "sync-token");
        token = new_token
            .context("sync answer without a token")?
            .trim()
            .to_owned();
        if !truncated {
            break;
        }
        ensure!(pages < 1000, "sync-collection never finished");
    }
    Ok((
        started.elapsed().as_secs_f64() * 1000.0,
        pages,
        members,
        token,
    ))
}

fn measure(
    rt: &Runtime,
    mut server: Server,
    args: &DavArgs,
    objects: &Arc<Vec<Object>>,
    extra: &[Object],
    today: i64,
) -> Result<Value> {
    let kind = server.kind.clone();
    let mut sampler = RssSampler::start(server.proc.pid);
    let n = objects.len();
    let timed = PUT_TIMED.min(n);
    let cpu_at = |server: &Server| (self_cpu_seconds(), tree_cpu_seconds(server.proc.pid));
    println!(
        "machine load average (1 min) at the start: {}",
        load_average()
    );
    let flushes = |server: &Server| {
        let url = server.metrics.as_deref()?;
        rt.block_on(async {
            let fsyncs = metric(&server.dav.client, url, "log_flushes_total").await?;
            let applied = metric(&server.dav.client, url, "commands_applied_total").await?;
            Some((fsyncs, applied))
        })
    };
    let flushes_before = flushes(&server);

    // PUT, first thousand.
    let (put_rate, put_lat) =
        rt.block_on(put_all(&server.dav, objects, 0..timed, args.put_clients))?;
    let (p50, p99, _) = summary(&put_lat);
    println!(
        "PUT first {timed}, {} clients: {put_rate:.0}/s (latency p50 {p50:.1} ms, p99 {p99:.1} ms)",
        args.put_clients
    );
    let rss_put = sampler.phase_mib();

    // The rest.
    let fill_started = Instant::now();
    let mut put_rest_rate = None;
    let fill_method;
    match (&server.storage, &server.restart) {
        (None, _) => {
            let (rate, lat) =
                rt.block_on(put_all(&server.dav, objects, timed..n, args.put_clients))?;
            let (p50, p99, _) = summary(&lat);
            println!(
                "PUT {}..{n} (calendar growing to {n}): {rate:.0}/s (p50 {p50:.1} ms, p99 {p99:.1} ms)",
                timed
            );
            put_rest_rate = Some(rate);
            fill_method = "PUT";
        }
        (Some(dir), None) => {
            write_files(dir, &objects[timed..])?;
            fill_method = "files written into its storage";
        }
        (Some(dir), Some(restart)) => {
            server.proc.stop();
            write_files(dir, &objects[timed..])?;
            git_commit_all(dir)?;
            server.proc = restart()?;
            drop(sampler);
            sampler = RssSampler::start(server.proc.pid);
            fill_method = "git commit into its repository, server restarted";
        }
    }
    let fill_secs = fill_started.elapsed().as_secs_f64();
    println!("filled to {n} objects ({fill_method}) in {fill_secs:.1} s");
    let mut fsyncs_per_put = None;
    if let (Some((f0, a0)), Some((f1, a1))) = (flushes_before, flushes(&server)) {
        println!(
            "raft log: {:.0} fsyncs for {:.0} commands applied during the {n} PUTs ({:.3} fsyncs per PUT; group commit)",
            f1 - f0,
            a1 - a0,
            (f1 - f0) / n as f64
        );
        fsyncs_per_put = Some((f1 - f0) / n as f64);
    }
    let rss_fill = sampler.phase_mib();

    // The first listing after the fill (a peer builds its caches here).
    let listing = rt.block_on(server.dav.xml("PROPFIND", PROPFIND_ETAGS))?;
    ensure!(
        listing.status.as_u16() == 207,
        "PROPFIND: {}",
        listing.status
    );
    let listed = xml_elements(&listing.body, "response").0;
    println!(
        "first PROPFIND Depth 1 after the fill: {:.0} ms, {listed} responses",
        listing.took.as_secs_f64() * 1000.0
    );
    ensure!(
        listed > n,
        "{kind} lists {listed} members after the fill of {n}"
    );

    // GET.
    let (cpu_client, cpu_server) = cpu_at(&server);
    let (get_count, get_secs, get_lat) = rt.block_on(get_load(
        &server.dav,
        objects,
        args.get_clients,
        Duration::from_secs(args.get_secs),
    ))?;
    let get_rate = get_count as f64 / get_secs;
    let client_cpu = self_cpu_seconds() - cpu_client;
    let server_cpu = tree_cpu_seconds(server.proc.pid) - cpu_server;
    let (g50, g99, _) = summary(&get_lat);
    println!(
        "GET, {} clients, {:.0} s: {get_rate:.0}/s (p50 {g50:.2} ms, p99 {g99:.2} ms); CPU: client {:.0} µs/req ({:.0} % of a core), server {:.0} µs/req ({:.0} %)",
        args.get_clients,
        get_secs,
        client_cpu / get_count as f64 * 1e6,
        client_cpu / get_secs * 100.0,
        server_cpu / get_count as f64 * 1e6,
        server_cpu / get_secs * 100.0,
    );
    let rss_get = sampler.phase_mib();

    // calendar-query over next month.
    let (month_start, month_end) = (
        month_start(today * 86_400, 1),
        month_start(today * 86_400, 2),
    );
    let body = calendar_query_body(month_start, month_end);
    let mut report_ms = Vec::new();
    let mut matched = 0;
    let started = Instant::now();
    while report_ms.len() < args.queries
        && (report_ms.len() < 5 || started.elapsed() < Duration::from_secs(args.query_secs_max))
    {
        let answer = rt.block_on(server.dav.xml("REPORT", &body))?;
        ensure!(
            answer.status.as_u16() == 207,
            "calendar-query: {} {}",
            answer.status,
            answer.body.chars().take(300).collect::<String>()
        );
        matched = xml_elements(&answer.body, "response").0;
        report_ms.push(answer.took.as_secs_f64() * 1000.0);
    }
    let (r50, r99, rmax) = summary(&report_ms);
    println!(
        "calendar-query {}..{} with calendar-data: p50 {r50:.1} ms, p99 {r99:.1} ms, max {rmax:.1} ms over {} queries; {matched} objects match",
        ical_utc(month_start),
        ical_utc(month_end),
        report_ms.len()
    );
    let rss_report = sampler.phase_mib();

    // sync-collection, initial (three times) and delta.
    let mut initial = Vec::new();
    let mut token = String::new();
    let (mut pages, mut members) = (0, 0);
    for _ in 0..3 {
        let (ms, p, m, t) = rt.block_on(sync_from(&server.dav, ""))?;
        initial.push(ms);
        (pages, members, token) = (p, m, t);
    }
    println!(
        "sync-collection initial: median {:.1} ms ({pages} requests, {members} members)",
        quantile(&initial, 0.5)
    );
    rt.block_on(async {
        for i in 0..5 {
            let o = &objects[i * 97 + 11];
            let text = o.text.replacen("SUMMARY:", "SUMMARY:Changed: ", 1);
            let a = server.dav.put(&o.name, &text).await?;
            ensure!(a.status.is_success(), "changing PUT: {}", a.status);
        }
        for o in extra {
            let a = server.dav.put(&o.name, &o.text).await?;
            ensure!(a.status.is_success(), "new PUT: {}", a.status);
        }
        for i in 0..2 {
            let a = server.dav.delete(&objects[i * 131 + 7].name).await?;
            ensure!(a.status.is_success(), "DELETE: {}", a.status);
        }
        Ok(())
    })?;
    let mut delta = Vec::new();
    let mut delta_members = 0;
    for _ in 0..3 {
        let (ms, _, m, _) = rt.block_on(sync_from(&server.dav, &token))?;
        delta.push(ms);
        delta_members = m;
    }
    println!(
        "sync-collection delta after 5 changed, 3 added, 2 deleted: median {:.1} ms ({delta_members} members)",
        quantile(&delta, 0.5)
    );
    let rss_sync = sampler.phase_mib();
    let rss_max = sampler.overall_mib();
    let pss_max = sampler.pss_mib();
    let hwm = sampler.hwm_mib();
    let rss_end = sampler.rss_mib();
    println!(
        "memory (process tree, sampled every 100 ms): RSS max {rss_max:.1} MiB, Pss max {pss_max:.1} MiB; VmHWM {hwm:.1} MiB (largest one process); VmRSS at end {rss_end:.1} MiB"
    );
    drop(sampler);
    server.proc.stop();
    let load_end = load_average();
    println!("machine load average (1 min) at the end: {load_end}");
    Ok(json!({
        "load_average_end": load_end,
        "server": kind,
        "objects": n,
        "fill": fill_method,
        "fill_secs": fill_secs,
        "put_first_per_sec": put_rate,
        "put_first_latency_ms_p50": quantile(&put_lat, 0.5),
        "put_first_latency_ms_p99": quantile(&put_lat, 0.99),
        "put_rest_per_sec": put_rest_rate,
        "fsyncs_per_put": fsyncs_per_put,
        "first_listing_ms": listing.took.as_secs_f64() * 1000.0,
        "get_clients": args.get_clients,
        "get_per_sec": get_rate,
        "get_latency_ms_p50": g50,
        "get_latency_ms_p99": g99,
        "get_client_cpu_us_per_req": client_cpu / get_count as f64 * 1e6,
        "get_server_cpu_us_per_req": server_cpu / get_count as f64 * 1e6,
        "report_ms_p50": r50,
        "report_ms_p99": r99,
        "report_ms_max": rmax,
        "report_count": report_ms.len(),
        "report_matches": matched,
        "sync_initial_ms": quantile(&initial, 0.5),
        "sync_initial_requests": pages,
        "sync_initial_members": members,
        "sync_delta_ms": quantile(&delta, 0.5),
        "sync_delta_members": delta_members,
        "rss_mib_max": rss_max,
        "pss_mib_max": pss_max,
        "rss_mib_by_phase": {"put": rss_put, "fill": rss_fill, "get": rss_get, "report": rss_report, "sync": rss_sync},
        "vmhwm_mib": hwm,
        "vmrss_mib_end": rss_end,
    }))
}

/// GETs of random members by `clients` clients for `how_long`:
/// (requests, seconds, latencies in ms).
async fn get_load(
    dav: &Dav,
    objects: &Arc<Vec<Object>>,
    clients: usize,
    how_long: Duration,
) -> Result<(usize, f64, Vec<f64>)> {
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..clients {
        let (dav, objects) = (dav.clone(), objects.clone());
        tasks.spawn(async move {
            let mut rng = StdRng::seed_from_u64(c as u64);
            let mut latencies = Vec::new();
            while started.elapsed() < how_long {
                let o = &objects[rng.gen_range(0..objects.len())];
                let answer = dav.get(&o.name).await?;
                ensure!(
                    answer.status.as_u16() == 200 && answer.body.len() >= o.text.len() / 2,
                    "GET {}: {}",
                    o.name,
                    answer.status
                );
                latencies.push(answer.took.as_secs_f64() * 1000.0);
            }
            Ok::<_, anyhow::Error>(latencies)
        });
    }
    let mut latencies = Vec::new();
    while let Some(done) = tasks.join_next().await {
        latencies.extend(done??);
    }
    Ok((latencies.len(), started.elapsed().as_secs_f64(), latencies))
}

fn fmt(v: &Value, key: &str, digits: usize) -> String {
    match v.get(key).and_then(Value::as_f64) {
        Some(x) => {
            let s = format!("{x:.digits$}");
            group_thousands(&s)
        }
        None => "—".into(),
    }
}

fn group_thousands(s: &str) -> String {
    let (int, frac) = s.split_once('.').map_or((s, None), |(i, f)| (i, Some(f)));
    let mut out = String::new();
    for (i, c) in int.chars().enumerate() {
        if i > 0 && (int.len() - i) % 3 == 0 && c.is_ascii_digit() {
            out.push(',');
        }
        out.push(c);
    }
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    out
}

fn print_table(results: &[Value], args: &DavArgs) {
    println!("\n## CalDAV workload, {} objects\n", args.events);
    println!(
        "| server | PUT/s first {PUT_TIMED} ({} clients) | PUT/s {PUT_TIMED}→{} | GET/s ({} clients) | calendar-query p50 ms | p99 ms | matches | sync initial ms | sync delta ms | RSS max MiB | Pss max MiB | VmHWM MiB |",
        args.put_clients, args.events, args.get_clients
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in results {
        if let Some(e) = r.get("error") {
            println!(
                "| {} | not measured: {} |",
                r["server"].as_str().unwrap_or("?"),
                e
            );
            continue;
        }
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r["server"].as_str().unwrap_or("?"),
            fmt(r, "put_first_per_sec", 0),
            fmt(r, "put_rest_per_sec", 0),
            fmt(r, "get_per_sec", 0),
            fmt(r, "report_ms_p50", 1),
            fmt(r, "report_ms_p99", 1),
            fmt(r, "report_matches", 0),
            fmt(r, "sync_initial_ms", 1),
            fmt(r, "sync_delta_ms", 1),
            fmt(r, "rss_mib_max", 1),
            fmt(r, "pss_mib_max", 1),
            fmt(r, "vmhwm_mib", 1),
        );
    }
    let Some(tocsin) = results
        .iter()
        .find(|r| r["server"] == "tocsin" && r.get("error").is_none())
    else {
        return;
    };
    println!(
        "\nRatios (how many times Tocsin is better: throughput Tocsin ÷ peer, time peer ÷ Tocsin):\n"
    );
    println!(
        "| peer | PUT/s first {PUT_TIMED} | GET/s | calendar-query p50 | p99 | sync initial | sync delta | Pss max |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in results {
        if r["server"] == "tocsin" || r.get("error").is_some() {
            continue;
        }
        let ratio = |key: &str, higher_better: bool| -> String {
            match (tocsin[key].as_f64(), r[key].as_f64()) {
                (Some(t), Some(p)) if t > 0.0 && p > 0.0 => {
                    format!("{:.1}×", if higher_better { t / p } else { p / t })
                }
                _ => "—".into(),
            }
        };
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            r["server"].as_str().unwrap_or("?"),
            ratio("put_first_per_sec", true),
            ratio("get_per_sec", true),
            ratio("report_ms_p50", false),
            ratio("report_ms_p99", false),
            ratio("sync_initial_ms", false),
            ratio("sync_delta_ms", false),
            ratio("pss_mib_max", false),
        );
    }
    println!(
        "\nTocsin against issue 6's targets: calendar-query p50 {} ms (≤ 50), GET {}/s (≥ 5,000), PUT {}/s first {PUT_TIMED} and {}/s {PUT_TIMED}→{} (≥ 1,000, fsynced), RSS max {} MiB sampled, VmHWM {} MiB (≤ 200)",
        fmt(tocsin, "report_ms_p50", 1),
        fmt(tocsin, "get_per_sec", 0),
        fmt(tocsin, "put_first_per_sec", 0),
        fmt(tocsin, "put_rest_per_sec", 0),
        args.events,
        fmt(tocsin, "rss_mib_max", 1),
        fmt(tocsin, "vmhwm_mib", 1),
    );
}
