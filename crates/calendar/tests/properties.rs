//! Property tests (proptest): instances are strictly ordered and do not
//! depend on where iteration starts; `next_check` is never after the
//! earliest unhandled trigger (DESIGN.md invariant 4).

use proptest::prelude::*;
use tocsin_calendar::*;

const ZONES: [&str; 5] = [
    "UTC",
    "Europe/Berlin",
    "America/New_York",
    "Australia/Sydney",
    "Asia/Kolkata",
];
const FREQS: [&str; 5] = ["HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"];
const DAYS: [&str; 7] = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"];

#[derive(Clone, Debug)]
struct Spec {
    zone: usize,
    freq: usize,
    interval: u32,
    count: Option<u32>,
    days: Vec<usize>,
    start_day: i64,
    start_minute: i64,
    exdate: Option<usize>,
    moved: Option<(usize, i64)>,
    cancelled: Option<usize>,
    alarm_minutes: i64,
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        0..ZONES.len(),
        0..FREQS.len(),
        1u32..4,
        proptest::option::of(1u32..40),
        proptest::collection::vec(0..7usize, 0..3),
        0i64..3000,
        0i64..(24 * 4),
        proptest::option::of(1usize..10),
        proptest::option::of((1usize..10, -600i64..600)),
        proptest::option::of(1usize..10),
        -2000i64..120,
    )
        .prop_map(
            |(
                zone,
                freq,
                interval,
                count,
                days,
                start_day,
                q,
                exdate,
                moved,
                cancelled,
                alarm_minutes,
            )| Spec {
                zone,
                freq,
                interval,
                count,
                days,
                start_day,
                start_minute: q * 15,
                exdate,
                moved,
                cancelled,
                alarm_minutes,
            },
        )
}

fn local_text(day: i64, minute: i64) -> String {
    let base = chrono::NaiveDate::from_ymd_opt(2020, 1, 1)
        .expect("date")
        .and_hms_opt(0, 0, 0)
        .expect("time");
    (base + chrono::TimeDelta::days(day) + chrono::TimeDelta::minutes(minute))
        .format("%Y%m%dT%H%M%S")
        .to_string()
}

fn dt(zone: &str, name: &str, day: i64, minute: i64) -> String {
    if zone == "UTC" {
        format!("{name}:{}Z\r\n", local_text(day, minute))
    } else {
        format!("{name};TZID={zone}:{}\r\n", local_text(day, minute))
    }
}

/// The nth instance's local start, approximated by stepping the frequency
/// (only used to pick EXDATE/override targets; a miss is harmless).
fn nth_local(s: &Spec, n: usize) -> (i64, i64) {
    let n = n as i64 * i64::from(s.interval);
    match FREQS[s.freq] {
        "HOURLY" => (s.start_day, s.start_minute + 60 * n),
        "DAILY" => (s.start_day + n, s.start_minute),
        "WEEKLY" => (s.start_day + 7 * n, s.start_minute),
        _ => (s.start_day + 400 * n, s.start_minute),
    }
}

fn build(s: &Spec) -> String {
    let zone = ZONES[s.zone];
    let mut rule = format!("FREQ={};INTERVAL={}", FREQS[s.freq], s.interval);
    if let Some(c) = s.count {
        rule.push_str(&format!(";COUNT={c}"));
    }
    if FREQS[s.freq] == "WEEKLY" && !s.days.is_empty() {
        let days: Vec<&str> = s.days.iter().map(|d| DAYS[*d]).collect();
        rule.push_str(&format!(";BYDAY={}", days.join(",")));
    }
    let mut text =
        String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:prop\r\nBEGIN:VEVENT\r\nUID:p\r\n");
    text.push_str(&dt(zone, "DTSTART", s.start_day, s.start_minute));
    text.push_str(&dt(zone, "DTEND", s.start_day, s.start_minute + 45));
    text.push_str(&format!("RRULE:{rule}\r\n"));
    if let Some(n) = s.exdate {
        let (d, m) = nth_local(s, n);
        text.push_str(&dt(zone, "EXDATE", d, m));
    }
    text.push_str(&format!(
        "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:{}PT{}M\r\nEND:VALARM\r\nEND:VEVENT\r\n",
        if s.alarm_minutes < 0 { "-" } else { "" },
        s.alarm_minutes.abs()
    ));
    for (n, shift, cancel) in [
        s.moved.map(|(n, sh)| (n, sh, false)),
        s.cancelled.map(|n| (n, 0, true)),
    ]
    .into_iter()
    .flatten()
    {
        let (d, m) = nth_local(s, n);
        text.push_str("BEGIN:VEVENT\r\nUID:p\r\nSEQUENCE:2\r\n");
        text.push_str(&dt(zone, "RECURRENCE-ID", d, m));
        text.push_str(&dt(zone, "DTSTART", d, m + shift));
        text.push_str(&dt(zone, "DTEND", d, m + shift + 30));
        if cancel {
            text.push_str("STATUS:CANCELLED\r\n");
        }
        text.push_str(&format!(
            "BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:{}PT{}M\r\nEND:VALARM\r\nEND:VEVENT\r\n",
            if s.alarm_minutes < 0 { "-" } else { "" },
            s.alarm_minutes.abs()
        ));
    }
    text.push_str("END:VCALENDAR\r\n");
    text
}

fn parse(s: &Spec) -> Option<CalendarObject> {
    // Two overrides may target the same instance: such text is rejected.
    CalendarObject::parse(&build(s), &Limits::default()).ok()
}

const INSTANCES_CHECKED: usize = 300;

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn instances_are_strictly_ordered(s in spec()) {
        let Some(obj) = parse(&s) else { return Ok(()) };
        let zone = Zone::utc();
        let all: Vec<Instance> = obj.instances_from(&zone, Instant::MIN).take(INSTANCES_CHECKED).collect();
        for w in all.windows(2) {
            prop_assert!((w[0].start, &w[0].recurrence_id) < (w[1].start, &w[1].recurrence_id), "{:?} then {:?}", w[0], w[1]);
        }
    }

    #[test]
    fn instances_do_not_depend_on_the_starting_point(s in spec(), skip in 0usize..60) {
        let Some(obj) = parse(&s) else { return Ok(()) };
        let zone = Zone::iana("Europe/Berlin").expect("zone");
        let all: Vec<Instance> = obj.instances_from(&zone, Instant::MIN).take(INSTANCES_CHECKED).collect();
        let Some(pivot) = all.get(skip) else { return Ok(()) };
        let from_pivot: Vec<Instance> = obj.instances_from(&zone, pivot.start).take(all.len() - skip).collect();
        let tail: Vec<Instance> = all.iter().filter(|i| i.start >= pivot.start).cloned().collect();
        prop_assert_eq!(&from_pivot[..tail.len().min(from_pivot.len())], &tail[..tail.len().min(from_pivot.len())]);
        prop_assert!(from_pivot.len() >= tail.len());
    }

    #[test]
    fn next_check_is_never_after_the_earliest_unhandled_trigger(s in spec(), after_days in 0i64..3000, lag_hours in 0i64..2000) {
        let Some(obj) = parse(&s) else { return Ok(()) };
        let zone = Zone::utc();
        let base = Instant::parse_rfc3339("2020-01-01T00:00:00Z").expect("base");
        let now = base.saturating_add(Duration::from_secs(after_days * 86_400));
        let watermark = now.saturating_sub(Duration::from_secs(lag_hours * 3600));
        // Brute force: every instance from the beginning, trigger = start + offset.
        let offset = Duration::from_secs(s.alarm_minutes * 60);
        let earliest = obj
            .instances_from(&zone, Instant::MIN)
            .take(20_000)
            .filter(|i| !i.cancelled)
            .map(|i| i.start.saturating_add(offset))
            .filter(|t| *t > watermark)
            .min();
        let addresses: Vec<String> = Vec::new();
        let view = UserView { user: "u", addresses: &addresses, zone: &zone, alarm_overlay: None, default_alarms: None };
        let next = next_check(&obj, &[(view, watermark)], now, &AlarmPolicy::default());
        match (next, earliest) {
            (Some(n), Some(e)) => prop_assert!(n.at <= e, "next_check {} after trigger {}", n.at, e),
            (None, Some(e)) => prop_assert!(false, "no next_check but a trigger at {}", e),
            _ => {}
        }
    }
}
