//! Benchmark of the calendar core: parse + `next_check` for three typical
//! objects, and `next_check` over a 100,000-object generated corpus.
//!
//! Run: `cargo run --release -p tocsin-calendar --example bench`
//! (one thread; results go to `crates/calendar/BENCHMARKS.md`). This is a
//! measuring tool: it reads the wall clock, which the crate itself never does.

use std::hint::black_box;
use std::time::Instant as Clock;
use tocsin_calendar::*;

/// Timed repetitions per single-object case.
const RUNS: usize = 20_000;
/// Objects in the corpus.
const CORPUS_OBJECTS: usize = 100_000;

const SINGLE: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:bench\r\nBEGIN:VEVENT\r\nUID:single-1\r\nDTSTAMP:20261101T000000Z\r\n\
DTSTART:20261204T100000Z\r\nDTEND:20261204T110000Z\r\nSUMMARY:Dentist\r\nLOCATION:Main street\r\n\
BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nDESCRIPTION:Dentist\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

const BERLIN_VTIMEZONE: &str = "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\nBEGIN:DAYLIGHT\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\n\
DTSTART:19810329T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\nBEGIN:STANDARD\r\nTZOFFSETFROM:+0200\r\n\
TZOFFSETTO:+0100\r\nDTSTART:19961027T030000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\n";

fn weekly_with_overrides() -> String {
    let mut text = format!("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:bench\r\n{BERLIN_VTIMEZONE}");
    text.push_str(
        "BEGIN:VEVENT\r\nUID:weekly-1\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;TZID=Europe/Berlin:20260105T093000\r\n\
DTEND;TZID=Europe/Berlin:20260105T100000\r\nRRULE:FREQ=WEEKLY;BYDAY=MO\r\nSUMMARY:Weekly sync\r\n\
BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT10M\r\nEND:VALARM\r\nEND:VEVENT\r\n",
    );
    for week in 0..10 {
        let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 2).expect("date")
            + chrono::TimeDelta::weeks(week);
        let d = day.format("%Y%m%d");
        text.push_str(&format!(
            "BEGIN:VEVENT\r\nUID:weekly-1\r\nDTSTAMP:20260101T000000Z\r\nSEQUENCE:2\r\nRECURRENCE-ID;TZID=Europe/Berlin:{d}T093000\r\n\
DTSTART;TZID=Europe/Berlin:{d}T110000\r\nDTEND;TZID=Europe/Berlin:{d}T113000\r\nSUMMARY:Weekly sync (moved)\r\n\
BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT10M\r\nEND:VALARM\r\nEND:VEVENT\r\n"
        ));
    }
    text.push_str("END:VCALENDAR\r\n");
    text
}

const DAILY_1990: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:bench\r\nBEGIN:VEVENT\r\nUID:daily-1990\r\nDTSTAMP:19900101T000000Z\r\n\
DTSTART;TZID=Europe/Berlin:19900101T080000\r\nDURATION:PT30M\r\nRRULE:FREQ=DAILY\r\nSUMMARY:Stand-up\r\n\
BEGIN:VALARM\r\nACTION:EMAIL\r\nTRIGGER:-PT5M\r\nATTENDEE:mailto:a@example.com\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

fn now() -> Instant {
    Instant::parse_rfc3339("2026-12-01T12:00:00Z").expect("now")
}

fn parse_and_next_check(text: &str, zone: &Zone) -> Option<NextCheck> {
    let obj = CalendarObject::parse(text, &Limits::default()).expect("bench object parses");
    let addresses = vec!["mailto:a@example.com".to_string()];
    let view = UserView {
        user: "a",
        addresses: &addresses,
        zone,
        alarm_overlay: None,
        default_alarms: None,
    };
    next_check(&obj, &[(view, now())], now(), &AlarmPolicy::default())
}

/// Median and 99th percentile in microseconds.
fn time_case(name: &str, text: &str, target_us: f64) -> (String, f64, f64) {
    let zone = Zone::iana("Europe/Berlin").expect("zone");
    assert!(
        parse_and_next_check(text, &zone).is_some(),
        "{name}: no next_check"
    );
    let mut samples = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let t = Clock::now();
        black_box(parse_and_next_check(black_box(text), &zone));
        samples.push(t.elapsed().as_secs_f64() * 1e6);
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let median = samples[RUNS / 2];
    let p99 = samples[RUNS * 99 / 100];
    let verdict = if median <= target_us {
        "met"
    } else {
        "NOT met"
    };
    println!("| {name} | {median:.1} µs | {p99:.1} µs | ≤ {target_us} µs median: {verdict} |");
    (name.to_string(), median, p99)
}

/// A deterministic mix: single events, weekly/daily/monthly series in
/// several zones, all-day and floating ones, overrides and EXDATEs.
fn corpus() -> Vec<String> {
    let zones = [
        "Europe/Berlin",
        "America/New_York",
        "Asia/Tokyo",
        "Australia/Sydney",
    ];
    let mut state: u64 = 0x5eed;
    let mut next = move |n: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % n
    };
    (0..CORPUS_OBJECTS)
        .map(|i| {
            let zone = zones[next(4) as usize];
            let day = chrono::NaiveDate::from_ymd_opt(2024, 1, 1).expect("date") + chrono::TimeDelta::days(next(1400) as i64);
            let d = day.format("%Y%m%d");
            let hour = 7 + next(12);
            let (start, end) = match next(10) {
                0 => (format!("DTSTART;VALUE=DATE:{d}"), format!("DTEND;VALUE=DATE:{}", (day + chrono::TimeDelta::days(1)).format("%Y%m%d"))),
                1 => (format!("DTSTART:{d}T{hour:02}0000"), format!("DTEND:{d}T{hour:02}3000")),
                _ => (format!("DTSTART;TZID={zone}:{d}T{hour:02}0000"), format!("DTEND;TZID={zone}:{d}T{hour:02}4500")),
            };
            let rule = match next(6) {
                0 | 1 => String::new(),
                2 => "RRULE:FREQ=WEEKLY;BYDAY=MO,WE\r\n".to_string(),
                3 => "RRULE:FREQ=DAILY;COUNT=30\r\n".to_string(),
                4 => "RRULE:FREQ=MONTHLY;BYDAY=2TU\r\n".to_string(),
                _ => format!("RRULE:FREQ=WEEKLY;UNTIL={}T000000Z\r\n", (day + chrono::TimeDelta::days(200)).format("%Y%m%d")),
            };
            let alarm = match next(4) {
                0 => String::new(),
                1 => "BEGIN:VALARM\r\nACTION:EMAIL\r\nTRIGGER:-P1D\r\nEND:VALARM\r\n".to_string(),
                _ => "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\n".to_string(),
            };
            format!(
                "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:bench\r\nBEGIN:VEVENT\r\nUID:obj-{i}\r\nDTSTAMP:20240101T000000Z\r\n{start}\r\n{end}\r\n{rule}SUMMARY:Object {i}\r\n{alarm}END:VEVENT\r\nEND:VCALENDAR\r\n"
            )
        })
        .collect()
}

/// Parse alone and next_check alone for one text (median µs each).
fn split_case(name: &str, text: &str) {
    let zone = Zone::iana("Europe/Berlin").expect("zone");
    let mut parse = Vec::with_capacity(RUNS / 4);
    let mut check = Vec::with_capacity(RUNS / 4);
    let addresses = vec!["mailto:a@example.com".to_string()];
    for _ in 0..RUNS / 4 {
        let t = Clock::now();
        let obj = CalendarObject::parse(black_box(text), &Limits::default()).expect("parses");
        parse.push(t.elapsed().as_secs_f64() * 1e6);
        let view = UserView {
            user: "a",
            addresses: &addresses,
            zone: &zone,
            alarm_overlay: None,
            default_alarms: None,
        };
        let t = Clock::now();
        black_box(next_check(
            &obj,
            &[(view, now())],
            now(),
            &AlarmPolicy::default(),
        ));
        check.push(t.elapsed().as_secs_f64() * 1e6);
    }
    parse.sort_by(|a, b| a.total_cmp(b));
    check.sort_by(|a, b| a.total_cmp(b));
    println!(
        "| {name} | {:.1} µs | {:.1} µs |",
        parse[parse.len() / 2],
        check[check.len() / 2]
    );
}

fn main() {
    println!("| case | median | p99 | target |");
    println!("|---|---|---|---|");
    time_case("parse + next_check, single event", SINGLE, 20.0);
    time_case(
        "parse + next_check, weekly with 10 overrides (Europe/Berlin)",
        &weekly_with_overrides(),
        100.0,
    );
    time_case(
        "parse + next_check, daily infinite from 1990",
        DAILY_1990,
        100.0,
    );

    println!();
    println!("| case | parse (median) | next_check (median) |");
    println!("|---|---|---|");
    split_case("single event", SINGLE);
    split_case("weekly with 10 overrides", &weekly_with_overrides());
    split_case("daily infinite from 1990", DAILY_1990);

    let texts = corpus();
    let t = Clock::now();
    let objects: Vec<CalendarObject> = texts
        .iter()
        .map(|t| CalendarObject::parse(t, &Limits::default()).expect("corpus parses"))
        .collect();
    let parse_secs = t.elapsed().as_secs_f64();
    let zone = Zone::iana("Europe/Berlin").expect("zone");
    let addresses = vec!["mailto:a@example.com".to_string()];
    let view = UserView {
        user: "a",
        addresses: &addresses,
        zone: &zone,
        alarm_overlay: None,
        default_alarms: None,
    };
    let t = Clock::now();
    let mut scheduled = 0usize;
    for obj in &objects {
        if next_check(obj, &[(view, now())], now(), &AlarmPolicy::default()).is_some() {
            scheduled += 1;
        }
    }
    let check_secs = t.elapsed().as_secs_f64();
    let rate = CORPUS_OBJECTS as f64 / check_secs;
    let verdict = if rate >= 50_000.0 { "met" } else { "NOT met" };
    println!();
    println!("corpus: {CORPUS_OBJECTS} objects, {scheduled} with a next_check");
    println!("| corpus step | total | objects/s | target |");
    println!("|---|---|---|---|");
    println!("| next_check | {check_secs:.2} s | {rate:.0} | ≥ 50,000 objects/s: {verdict} |");
    println!(
        "| parse (for reference) | {parse_secs:.2} s | {:.0} | — |",
        CORPUS_OBJECTS as f64 / parse_secs
    );
}
