//! Suite 2: alarm timing (issue 4). A `tocsin serve` with its webhook
//! pointed at a receiver in this process, which stamps each POST's arrival
//! with the wall clock the server fires by.
//!
//! - `lateness`: alarms with triggers spread over a minute (one-second
//!   resolution, as iCalendar has): arrival − trigger, early deliveries.
//! - `burst`: every alarm due in the same second: time until the last one
//!   arrives, every key seen, duplicates.
//! - `index`: the index filled with up to a million objects with alarms:
//!   server memory, the scheduler's next-due query on the live database,
//!   and the wake-up lateness of an alarm placed ahead of all others.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, ensure};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use tokio::runtime::Runtime;

use crate::util::{Dav, MIB, RssSampler, Tocsin, load_average, quantile, summary};
use crate::workload::{alarm_event, rfc3339};

#[derive(clap::Args, Clone)]
pub struct CommonArgs {
    /// The tocsin binary.
    #[arg(long, default_value = "target/release/tocsin")]
    bin: PathBuf,
    /// A config file for the server (default: none, every default).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Users the objects are spread over (round robin; one calendar each).
    #[arg(long, default_value_t = 10)]
    users: usize,
    /// Concurrent PUT clients while filling.
    #[arg(long, default_value_t = 8)]
    put_clients: usize,
    /// Scratch directory (a fresh temporary one by default).
    #[arg(long)]
    scratch: Option<PathBuf>,
    /// Write the figures as JSON here too.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct TimedArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Alarms.
    #[arg(long)]
    alarms: Option<usize>,
    /// Seconds from the start of the fill to the first trigger (the fill
    /// must end before it).
    #[arg(long)]
    lead_secs: Option<i64>,
    /// Seconds to wait past the last trigger for stragglers.
    #[arg(long, default_value_t = 60)]
    grace_secs: u64,
}

#[derive(clap::Args)]
pub struct IndexArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Objects with alarms to put in the index.
    #[arg(long, default_value_t = 1_000_000)]
    objects: usize,
    /// Stop filling after this long and report a reduced run.
    #[arg(long, default_value_t = 1500)]
    fill_secs_max: u64,
    /// Timed runs of each index query.
    #[arg(long, default_value_t = 10_000)]
    query_runs: usize,
    /// Wake-up probes (alarms placed ahead of all others), one at a time.
    #[arg(long, default_value_t = 5)]
    probes: usize,
}

/// One POST the receiver took.
#[derive(Clone)]
struct Arrival {
    /// Wall clock at arrival, ms since the epoch.
    at_ms: f64,
    key: String,
    uid: String,
    trigger: String,
    late_seconds: f64,
}

type Arrivals = Arc<Mutex<Vec<Arrival>>>;

fn wall_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64() * 1000.0)
        .unwrap_or(0.0)
}

async fn receive(State(log): State<Arrivals>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let at_ms = wall_ms();
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let doc: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let arrival = Arrival {
        at_ms,
        key,
        uid: doc["uid"].as_str().unwrap_or_default().to_owned(),
        trigger: doc["trigger"].as_str().unwrap_or_default().to_owned(),
        late_seconds: doc["late_seconds"].as_f64().unwrap_or(f64::NAN),
    };
    if let Ok(mut log) = log.lock() {
        log.push(arrival);
    }
    StatusCode::OK
}

/// The webhook receiver: its own runtime and thread, so the clients of
/// this program never delay a stamp.
struct Receiver {
    url: String,
    log: Arrivals,
    _rt: Runtime,
}

impl Receiver {
    fn start() -> Result<Receiver> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()?;
        let log: Arrivals = Arc::new(Mutex::new(Vec::new()));
        let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let url = format!("http://{}/alarms", listener.local_addr()?);
        let app = axum::Router::new()
            .route("/alarms", axum::routing::post(receive))
            .with_state(log.clone());
        rt.spawn(async move { axum::serve(listener, app).await });
        Ok(Receiver { url, log, _rt: rt })
    }

    fn arrivals(&self) -> Vec<Arrival> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn count(&self) -> usize {
        self.log.lock().map(|l| l.len()).unwrap_or(0)
    }
}

/// A server with `users` users whose alarms go to the webhook only.
struct Setup {
    tocsin: Tocsin,
    receiver: Receiver,
    users: Vec<Dav>,
    _scratch: Option<tempfile::TempDir>,
    scratch: PathBuf,
}

fn setup(common: &CommonArgs, prefix: &str) -> Result<Setup> {
    let (holder, scratch) = match &common.scratch {
        Some(dir) => (None, dir.clone()),
        None => {
            let t = tempfile::Builder::new().prefix(prefix).tempdir()?;
            let p = t.path().to_owned();
            (Some(t), p)
        }
    };
    let receiver = Receiver::start()?;
    let mut extra = vec!["--webhook-url".to_owned(), receiver.url.clone()];
    if let Some(config) = &common.config {
        extra.push("--config".into());
        extra.push(config.display().to_string());
    }
    let tocsin = Tocsin::start(&common.bin, &scratch.join("data"), &extra)?;
    let mut users = Vec::new();
    for u in 0..common.users {
        let name = format!("u{u}");
        let password = format!("pw-{name}");
        tocsin.add_user(&name, &password)?;
        tocsin.cli(&["user", "alarms", &name, "--channels", "webhook"], None)?;
        users.push(Dav::new(
            &tocsin.url,
            &format!("/dav/calendars/{name}/calendar/"),
            Some((&name, &password)),
        )?);
    }
    println!(
        "machine load average (1 min) at the start: {}",
        load_average()
    );
    println!(
        "tocsin pid {} at {}, data {}, webhook {}, {} users (channels: webhook)",
        tocsin.proc.pid,
        tocsin.url,
        tocsin.data.display(),
        receiver.url,
        users.len()
    );
    Ok(Setup {
        tocsin,
        receiver,
        users,
        _scratch: holder,
        scratch,
    })
}

/// PUTs object `i` (for `i` in `0..n`, made by `text_of`) to user
/// `i % users` with `clients` concurrent clients, stopping early at
/// `deadline`; calls `progress(done)` every `every` objects.
/// Returns how many were written and how long it took.
async fn fill(
    users: &[Dav],
    n: usize,
    clients: usize,
    text_of: Arc<dyn Fn(usize) -> (String, String) + Send + Sync>,
    deadline: Option<Instant>,
    progress: Arc<dyn Fn(usize) + Send + Sync>,
    every: usize,
) -> Result<(usize, f64)> {
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..clients {
        let (users, next, done, text_of, progress) = (
            users.to_vec(),
            next.clone(),
            done.clone(),
            text_of.clone(),
            progress.clone(),
        );
        tasks.spawn(async move {
            loop {
                if deadline.is_some_and(|d| Instant::now() > d) {
                    return Ok::<_, anyhow::Error>(());
                }
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok(());
                }
                let (name, text) = text_of(i);
                let answer = users[i % users.len()].put(&name, &text).await?;
                ensure!(
                    answer.status.is_success(),
                    "PUT {name}: {} {}",
                    answer.status,
                    answer.body.chars().take(300).collect::<String>()
                );
                let d = done.fetch_add(1, Ordering::Relaxed) + 1;
                if d % every == 0 {
                    progress(d);
                }
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok((
        done.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64(),
    ))
}

fn now_s() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What a timed run found.
struct Verdict {
    figures: Value,
}

/// Writes `n` alarms due at `trigger_of(i)` (seconds, all after the fill),
/// waits for them, and judges the arrivals.
fn timed_run(
    what: &str,
    args: &TimedArgs,
    n: usize,
    lead_secs: i64,
    trigger_of: impl Fn(i64, usize) -> i64,
) -> Result<Verdict> {
    let s = setup(&args.common, &format!("tocsin-alarm-{what}-"))?;
    let rt = Runtime::new()?;
    let sampler = RssSampler::start(s.tocsin.proc.pid);
    let now = now_s();
    let base = now + lead_secs;
    let triggers: Arc<Vec<i64>> = Arc::new((0..n).map(|i| trigger_of(base, i)).collect());
    let first_trigger = *triggers.iter().min().context("no alarms")?;
    let last_trigger = *triggers.iter().max().context("no alarms")?;
    println!(
        "{what}: {n} alarms, triggers {} .. {} (the fill has {lead_secs} s)",
        rfc3339(first_trigger),
        rfc3339(last_trigger)
    );
    let text_of = {
        let (triggers, what) = (triggers.clone(), what.to_owned());
        Arc::new(move |i: usize| {
            let uid = format!("{what}-{i:06}");
            (format!("{uid}.ics"), alarm_event(&uid, triggers[i], now, i))
        })
    };
    let what_owned = what.to_owned();
    let progress = Arc::new(move |d: usize| println!("  {what_owned}: {d} written"));
    let (written, fill_secs) = rt.block_on(fill(
        &s.users,
        n,
        args.common.put_clients,
        text_of,
        None,
        progress,
        10_000,
    ))?;
    let fill_end = wall_ms();
    let fill_margin_ms = first_trigger as f64 * 1000.0 - fill_end;
    println!(
        "  filled {written} in {fill_secs:.1} s ({:.0} PUT/s); first trigger {:.1} s after the fill ended",
        written as f64 / fill_secs,
        fill_margin_ms / 1000.0
    );
    ensure!(
        fill_margin_ms > 1000.0,
        "the fill ended too late for the first trigger; give more --lead-secs"
    );
    let rss_fill = sampler.phase_mib();
    // Wait for every alarm, or the grace period past the last trigger.
    let give_up = last_trigger as f64 * 1000.0 + args.grace_secs as f64 * 1000.0;
    loop {
        let seen: HashSet<String> = s.receiver.arrivals().into_iter().map(|a| a.uid).collect();
        if seen.len() >= n || wall_ms() > give_up {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    // A little longer, so a duplicate would be counted.
    std::thread::sleep(Duration::from_secs(2));
    let arrivals = s.receiver.arrivals();
    let rss_fire = sampler.phase_mib();
    let hwm = sampler.hwm_mib();
    drop(sampler);
    let log_tail = fs::read_to_string(s.tocsin.data.with_extension("log")).unwrap_or_default();
    let warnings = log_tail
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .count();
    let mut tocsin = s.tocsin;
    tocsin.proc.stop();
    println!(
        "machine load average (1 min) at the end: {}",
        load_average()
    );

    let expected: HashMap<String, i64> = (0..n)
        .map(|i| (format!("{what}-{i:06}"), triggers[i]))
        .collect();
    let mut first_by_key: HashMap<&str, &Arrival> = HashMap::new();
    let mut unexpected = 0;
    let mut trigger_mismatch = 0;
    for a in &arrivals {
        let Some(&t) = expected.get(&a.uid) else {
            unexpected += 1;
            continue;
        };
        if a.trigger != rfc3339(t) {
            trigger_mismatch += 1;
        }
        first_by_key
            .entry(a.key.as_str())
            .and_modify(|f| {
                if a.at_ms < f.at_ms {
                    *f = a;
                }
            })
            .or_insert(a);
    }
    let uids: HashSet<&str> = first_by_key.values().map(|a| a.uid.as_str()).collect();
    let lateness: Vec<f64> = first_by_key
        .values()
        .map(|a| a.at_ms - expected[&a.uid] as f64 * 1000.0)
        .collect();
    let early = lateness.iter().filter(|&&l| l < 0.0).count();
    let (p50, p99, max) = summary(&lateness);
    let min = quantile(&lateness, 0.0);
    let last_arrival = arrivals.iter().map(|a| a.at_ms).fold(f64::NAN, f64::max);
    let first_arrival = arrivals.iter().map(|a| a.at_ms).fold(f64::NAN, f64::min);
    let reported_late: Vec<f64> = first_by_key
        .values()
        .map(|a| a.late_seconds * 1000.0)
        .collect();
    let figures = json!({
        "alarms": n,
        "users": args.common.users,
        "put_clients": args.common.put_clients,
        "fill_secs": fill_secs,
        "fill_put_per_sec": written as f64 / fill_secs,
        "first_trigger": rfc3339(first_trigger),
        "last_trigger": rfc3339(last_trigger),
        "arrivals": arrivals.len(),
        "keys": first_by_key.len(),
        "uids_arrived": uids.len(),
        "missing": n - uids.len(),
        "duplicates": arrivals.len() - unexpected - first_by_key.len(),
        "unexpected": unexpected,
        "trigger_mismatch": trigger_mismatch,
        "early": early,
        "lateness_ms_min": min,
        "lateness_ms_p50": p50,
        "lateness_ms_p99": p99,
        "lateness_ms_max": max,
        "server_late_seconds_ms_p50": quantile(&reported_late, 0.5),
        "server_late_seconds_ms_p99": quantile(&reported_late, 0.99),
        "first_arrival_after_first_trigger_ms": first_arrival - first_trigger as f64 * 1000.0,
        "last_arrival_after_last_trigger_ms": last_arrival - last_trigger as f64 * 1000.0,
        "rss_mib_fill": rss_fill,
        "rss_mib_fire": rss_fire,
        "vmhwm_mib": hwm,
        "server_log_warnings": warnings,
        "scratch": s.scratch.display().to_string(),
    });
    println!(
        "  arrived: {} POSTs, {} keys, {} of {n} uids ({} missing), {} duplicates, {} early, {} unexpected, {} trigger mismatches",
        arrivals.len(),
        first_by_key.len(),
        uids.len(),
        n - uids.len(),
        figures["duplicates"],
        early,
        unexpected,
        trigger_mismatch
    );
    println!(
        "  lateness (arrival − trigger): min {min:.1} ms, p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms; last arrival {:.1} ms after the last trigger",
        last_arrival - last_trigger as f64 * 1000.0
    );
    println!(
        "  server memory: RSS max {:.1} MiB while filling, {:.1} MiB while firing; VmHWM {hwm:.1} MiB; {warnings} WARN/ERROR lines in its log",
        rss_fill, rss_fire
    );
    Ok(Verdict { figures })
}

pub fn lateness(args: TimedArgs) -> Result<()> {
    let n = args.alarms.unwrap_or(10_000);
    let lead = args.lead_secs.unwrap_or(45);
    // Uniformly over 60 whole seconds: iCalendar triggers have one-second
    // resolution, so each second holds n/60 alarms.
    let v = timed_run("lateness", &args, n, lead, |base, i| {
        base + (i * 60 / n) as i64
    })?;
    let f = &v.figures;
    println!(
        "\nlateness, {n} alarms over 60 s: p50 {:.1} ms, p99 {:.1} ms (target ≤ 100: {}), max {:.1} ms; early {} (target 0: {}); missing {}; duplicates {}",
        f["lateness_ms_p50"].as_f64().unwrap_or(f64::NAN),
        f["lateness_ms_p99"].as_f64().unwrap_or(f64::NAN),
        met(f["lateness_ms_p99"].as_f64().is_some_and(|x| x <= 100.0)),
        f["lateness_ms_max"].as_f64().unwrap_or(f64::NAN),
        f["early"],
        met(f["early"] == 0),
        f["missing"],
        f["duplicates"],
    );
    write_json(&args.common, f)
}

pub fn burst(args: TimedArgs) -> Result<()> {
    let n = args.alarms.unwrap_or(50_000);
    let lead = args.lead_secs.unwrap_or(120);
    let v = timed_run("burst", &args, n, lead, |base, _| base)?;
    let f = &v.figures;
    let drain = f["last_arrival_after_last_trigger_ms"]
        .as_f64()
        .unwrap_or(f64::NAN);
    println!(
        "\nburst, {n} alarms due at {}: last delivery {:.2} s after the trigger second (target ≤ 10 s: {}); {} of {n} arrived ({} missing), {} duplicates, {} early",
        f["first_trigger"].as_str().unwrap_or("?"),
        drain / 1000.0,
        met(drain <= 10_000.0 && f["missing"] == 0),
        f["uids_arrived"],
        f["missing"],
        f["duplicates"],
        f["early"],
    );
    write_json(&args.common, f)
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "NOT met" }
}

fn write_json(common: &CommonArgs, figures: &Value) -> Result<()> {
    if let Some(path) = &common.json {
        fs::write(path, serde_json::to_string_pretty(figures)?)?;
    }
    Ok(())
}

fn dir_bytes(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.metadata().ok())
                .filter(|m| m.is_file())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Times `sql` (one row or none) `runs` times on `conn`: p50, p99, max µs.
fn time_query(conn: &rusqlite::Connection, sql: &str, runs: usize) -> Result<(f64, f64, f64)> {
    let mut stmt = conn.prepare(sql)?;
    let mut micros = Vec::with_capacity(runs);
    for _ in 0..runs {
        let started = Instant::now();
        let mut rows = stmt.query([])?;
        while rows.next()?.is_some() {}
        micros.push(started.elapsed().as_secs_f64() * 1e6);
    }
    Ok(summary(&micros))
}

pub fn index(args: IndexArgs) -> Result<()> {
    let s = setup(&args.common, "tocsin-alarm-index-")?;
    let rt = Runtime::new()?;
    let sampler = Arc::new(RssSampler::start(s.tocsin.proc.pid));
    let now = now_s();
    let n = args.objects;
    // Triggers spread over the next 300 days, from the second day on, so
    // nothing fires while the index is filled.
    let text_of = Arc::new(move |i: usize| {
        let mut rng = StdRng::seed_from_u64(i as u64);
        let trigger = now + 86_400 + rng.gen_range(0..300 * 86_400);
        let uid = format!("index-{i:07}");
        (format!("{uid}.ics"), alarm_event(&uid, trigger, now, i))
    });
    let checkpoints: Arc<Mutex<Vec<Value>>> = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let progress = {
        let (sampler, checkpoints, data) =
            (sampler.clone(), checkpoints.clone(), s.tocsin.data.clone());
        let last = Arc::new(Mutex::new((0usize, 0.0f64)));
        Arc::new(move |d: usize| {
            let t = started.elapsed().as_secs_f64();
            let rate = {
                let mut last = last.lock().expect("progress lock");
                let r = (d - last.0) as f64 / (t - last.1);
                *last = (d, t);
                r
            };
            let rss = sampler.rss_mib();
            let disk = dir_bytes(&data) as f64 / MIB;
            println!(
                "  {d} objects after {t:.0} s: {rate:.0} PUT/s lately; server RSS {rss:.1} MiB; data {disk:.0} MiB"
            );
            if let Ok(mut c) = checkpoints.lock() {
                c.push(json!({"objects": d, "secs": t, "put_per_sec": rate, "rss_mib": rss, "data_mib": disk}));
            }
        })
    };
    let deadline = Instant::now() + Duration::from_secs(args.fill_secs_max);
    let (written, fill_secs) = rt.block_on(fill(
        &s.users,
        n,
        args.common.put_clients,
        text_of,
        Some(deadline),
        progress,
        (n / 20).max(1),
    ))?;
    println!(
        "filled {written} of {n} objects in {fill_secs:.0} s ({:.0} PUT/s overall){}",
        written as f64 / fill_secs,
        if written < n {
            " — REDUCED RUN: the fill hit --fill-secs-max"
        } else {
            ""
        }
    );
    let rss_fill_max = sampler.phase_mib();
    // Let a snapshot that the fill started finish, then read memory.
    std::thread::sleep(Duration::from_secs(10));
    let rss_idle = sampler.rss_mib();

    // The scheduler's query, on the live database.
    let db = s.tocsin.data.join("state.db");
    let conn = rusqlite::Connection::open_with_flags(
        &db,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    let rows: i64 = conn.query_row("SELECT count(*) FROM alarm_index", [], |r| r.get(0))?;
    let next_sql = "SELECT next_check_ms FROM alarm_index ORDER BY next_check_ms LIMIT 1";
    let plan: Vec<String> = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {next_sql}"))?
        .query_map([], |r| r.get::<_, String>(3))?
        .collect::<Result<_, _>>()?;
    let (q50, q99, qmax) = time_query(&conn, next_sql, args.query_runs)?;
    let due_sql = format!(
        "SELECT object_id, next_check_ms FROM alarm_index WHERE next_check_ms <= {}
         ORDER BY next_check_ms, object_id LIMIT 2048",
        (now_s() + 3600) * 1000
    );
    let due_plan: Vec<String> = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {due_sql}"))?
        .query_map([], |r| r.get::<_, String>(3))?
        .collect::<Result<_, _>>()?;
    let (d50, d99, dmax) = time_query(&conn, &due_sql, args.query_runs)?;
    drop(conn);
    println!(
        "alarm_index rows: {rows}; next due: p50 {q50:.1} µs, p99 {q99:.1} µs, max {qmax:.1} µs over {} runs (plan: {})",
        args.query_runs,
        plan.join("; ")
    );
    println!(
        "due objects (none due): p50 {d50:.1} µs, p99 {d99:.1} µs, max {dmax:.1} µs (plan: {})",
        due_plan.join("; ")
    );

    // Wake-up: one alarm ahead of all others, a few seconds out.
    let mut probe_ms = Vec::new();
    for p in 0..args.probes {
        let trigger = now_s() + 4;
        let uid = format!("probe-{p}");
        let text = alarm_event(&uid, trigger, now_s(), 0);
        let before = s.receiver.count();
        let answer = rt.block_on(s.users[0].put(&format!("{uid}.ics"), &text))?;
        ensure!(answer.status.is_success(), "probe PUT: {}", answer.status);
        let give_up = Instant::now() + Duration::from_secs(30);
        while s.receiver.count() == before && Instant::now() < give_up {
            std::thread::sleep(Duration::from_millis(5));
        }
        let arrivals = s.receiver.arrivals();
        let got = arrivals
            .iter()
            .find(|a| a.uid == uid)
            .context("a probe alarm never arrived")?;
        let late = got.at_ms - trigger as f64 * 1000.0;
        println!("  probe {p}: arrived {late:.1} ms after its trigger");
        probe_ms.push(late);
    }
    let (p50, _, pmax) = summary(&probe_ms);
    let rss_end = sampler.rss_mib();
    let hwm = sampler.hwm_mib();
    let rss_max = sampler.overall_mib();
    let disk = dir_bytes(&s.tocsin.data) as f64 / MIB;
    drop(sampler);
    let mut tocsin = s.tocsin;
    tocsin.proc.stop();
    println!(
        "machine load average (1 min) at the end: {}",
        load_average()
    );
    println!(
        "\nindex of {rows} objects: server RSS {rss_idle:.1} MiB after the fill, {rss_end:.1} MiB at the end, max {rss_max:.1} MiB (VmHWM {hwm:.1}) — target ≤ 512: {}; next due found in p50 {q50:.1} µs / p99 {q99:.1} µs (target ≤ 1 ms: {}); wake-up lateness of an alarm ahead of all: p50 {p50:.1} ms, max {pmax:.1} ms; data directory {disk:.0} MiB",
        met(rss_max <= 512.0),
        met(q99 <= 1000.0),
    );
    let figures = json!({
        "objects_requested": n,
        "objects_written": written,
        "alarm_index_rows": rows,
        "fill_secs": fill_secs,
        "fill_put_per_sec": written as f64 / fill_secs,
        "reduced_run": written < n,
        "checkpoints": *checkpoints.lock().expect("checkpoints"),
        "rss_mib_fill_max": rss_fill_max,
        "rss_mib_after_fill": rss_idle,
        "rss_mib_end": rss_end,
        "rss_mib_max": rss_max,
        "vmhwm_mib": hwm,
        "data_mib": disk,
        "next_due_us": {"p50": q50, "p99": q99, "max": qmax, "runs": args.query_runs, "plan": plan},
        "due_objects_us": {"p50": d50, "p99": d99, "max": dmax, "plan": due_plan},
        "probe_lateness_ms": probe_ms,
    });
    write_json(&args.common, &figures)
}
