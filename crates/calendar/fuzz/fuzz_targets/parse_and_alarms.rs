//! Fuzz target: any text through parsing, instances, filters, expand and
//! every alarm computation. Nothing may panic, and every loop must end
//! (libFuzzer's -timeout catches one that does not).
//!
//! Run (nightly toolchain, from crates/calendar):
//!     cargo +nightly fuzz run parse_and_alarms -- -max_total_time=300 -timeout=10
#![no_main]

use libfuzzer_sys::fuzz_target;
use tocsin_calendar::*;

fn exercise(obj: &CalendarObject, zone: &Zone) {
    let now = Instant::from_secs(1_796_000_000);
    let window = TimeRange { start: Some(Instant::from_secs(1_790_000_000)), end: Some(Instant::from_secs(1_800_000_000)) };
    let _ = obj.instances_from(zone, Instant::MIN).take(200).count();
    let _ = obj.instances_from(zone, now).take(50).count();
    let _ = obj.time_bounds();
    let _ = obj.expand(&window, zone);
    let _ = obj.limit_recurrence_set(&window, zone);
    let _ = obj.busy_periods(&window, zone);
    let filter = CompFilter {
        name: "VCALENDAR".into(),
        comp_filters: vec![CompFilter {
            name: obj.kind().name().into(),
            time_range: Some(window),
            prop_filters: vec![PropFilter {
                name: "SUMMARY".into(),
                text_match: Some(TextMatch { text: "a".into(), collation: Collation::UnicodeCasemap, negate: false }),
                ..PropFilter::default()
            }],
            comp_filters: vec![CompFilter { name: "VALARM".into(), time_range: Some(window), ..CompFilter::default() }],
            ..CompFilter::default()
        }],
        ..CompFilter::default()
    };
    let _ = obj.matches(&filter, zone);
    let addresses = vec!["mailto:a@example.com".to_string()];
    let view = UserView { user: "u", addresses: &addresses, zone, alarm_overlay: None, default_alarms: None };
    let policy = AlarmPolicy::default();
    let _ = due_alarms(obj, &view, Instant::from_secs(1_795_000_000), now, &policy);
    let _ = upcoming_alarms(obj, &view, now, 5, &policy);
    let _ = next_check(obj, &[(view, Instant::from_secs(1_700_000_000))], now, &policy);
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let limits = Limits { object_bytes_max: 64 * 1024, components_max: 200, properties_max: 2000 };
    if let Ok(obj) = CalendarObject::parse(&text, &limits) {
        exercise(&obj, &Zone::utc());
        if let Some(zone) = Zone::iana("Europe/Berlin") {
            exercise(&obj, &zone);
        }
    }
    let _ = Zone::from_calendar_timezone(&text);
    let _ = AlarmOverlay::parse(&text);
    let _ = DefaultAlarms::parse(Some(&text), None);
});
