//! Data-driven golden tests: each `tests/golden/NAME.ics` is run through
//! instances, expand, limit-recurrence-set, busy periods, alarms and
//! next_check, and the rendered result is compared with
//! `tests/golden/NAME.expected`. The first line of the expectation holds the
//! settings (`# zone=… range=START/END now=…`). A mismatch fails with both
//! texts; `TOCSIN_BLESS=1` rewrites the expectation (review the diff!).

use std::fmt::Write;
use std::path::Path;
use tocsin_calendar::*;

struct Settings {
    zone: Zone,
    range: TimeRange,
    now: Instant,
}

fn settings(first_line: &str) -> Settings {
    let mut zone = Zone::utc();
    let mut range = TimeRange::default();
    let mut now = Instant::EPOCH;
    for part in first_line.trim_start_matches('#').split_whitespace() {
        match part.split_once('=') {
            Some(("zone", z)) => zone = Zone::iana(z).unwrap_or_else(|| panic!("zone {z}")),
            Some(("range", r)) => {
                let (s, e) = r.split_once('/').expect("range START/END");
                range = TimeRange {
                    start: Instant::parse_rfc3339(s),
                    end: Instant::parse_rfc3339(e),
                };
            }
            Some(("now", n)) => now = Instant::parse_rfc3339(n).expect("now"),
            _ => panic!("unknown setting {part}"),
        }
    }
    Settings { zone, range, now }
}

fn render(obj: &CalendarObject, s: &Settings) -> String {
    let mut out = String::new();
    let lower = s.range.start.unwrap_or(Instant::MIN);
    let _ = writeln!(out, "instances:");
    for i in obj
        .instances_from(&s.zone, lower)
        .take_while(|i| s.range.end.is_none_or(|e| i.start < e))
        .take(50)
    {
        let _ = writeln!(
            out,
            "  {} {} rid={} {}{}{}",
            i.start,
            i.end,
            i.recurrence_id.as_deref().unwrap_or("-"),
            if i.all_day { "all-day " } else { "" },
            if i.is_override { "override " } else { "" },
            if i.cancelled { "cancelled" } else { "" }
        );
    }
    let (b0, b1) = obj.time_bounds();
    let _ = writeln!(
        out,
        "bounds: {} {}",
        b0.map_or("-".into(), |t| t.to_rfc3339()),
        b1.map_or("-".into(), |t| t.to_rfc3339())
    );
    let _ = writeln!(out, "busy:");
    for p in obj.busy_periods(&s.range, &s.zone) {
        let _ = writeln!(out, "  {} {} {:?}", p.start, p.end, p.kind);
    }
    let addresses = vec!["mailto:alice@example.com".to_string()];
    let view = UserView {
        user: "alice",
        addresses: &addresses,
        zone: &s.zone,
        alarm_overlay: None,
        default_alarms: None,
    };
    let _ = writeln!(out, "alarms:");
    for d in upcoming_alarms(obj, &view, s.now, 8, &AlarmPolicy::default()) {
        let _ = writeln!(
            out,
            "  {} {} {} rid={} repeat={} {:?}",
            d.trigger,
            d.action.as_str(),
            d.alarm_id,
            d.recurrence_id.as_deref().unwrap_or("-"),
            d.repeat_index,
            d.recipients
        );
    }
    let nc = next_check(obj, &[(view, s.now)], s.now, &AlarmPolicy::default());
    let _ = writeln!(
        out,
        "next_check: {}",
        nc.map_or("none".into(), |n| format!(
            "{}{}",
            n.at,
            if n.is_recheck { " recheck" } else { "" }
        ))
    );
    let _ = writeln!(out, "expand:");
    out.push_str(&obj.expand(&s.range, &s.zone).replace("\r\n", "\n"));
    let _ = writeln!(out, "limit-recurrence-set:");
    out.push_str(
        &obj.limit_recurrence_set(&s.range, &s.zone)
            .replace("\r\n", "\n"),
    );
    out
}

#[test]
fn golden_files_match_their_expectations() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let bless = std::env::var_os("TOCSIN_BLESS").is_some();
    let mut inputs: Vec<_> = std::fs::read_dir(&dir)
        .expect("golden dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "ics"))
        .collect();
    inputs.sort();
    assert!(inputs.len() >= 8, "golden cases missing");
    let mut failures = Vec::new();
    for input in &inputs {
        let expected_path = input.with_extension("expected");
        let expected = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("{} has no .expected file", input.display()));
        let (first, body) = expected.split_once('\n').unwrap_or((&expected, ""));
        let s = settings(first);
        let text = std::fs::read_to_string(input)
            .expect("input")
            .replace("\r\n", "\n")
            .replace('\n', "\r\n");
        let obj = CalendarObject::parse(&text, &Limits::default())
            .unwrap_or_else(|e| panic!("{}: {e}", input.display()));
        let got = render(&obj, &s);
        if got != body {
            if bless {
                std::fs::write(&expected_path, format!("{first}\n{got}")).expect("bless");
            } else {
                failures.push(format!(
                    "== {}\n-- expected\n{body}\n-- got\n{got}",
                    input.display()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
