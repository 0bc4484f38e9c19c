//! Recurrence rules at the instance level, one test per behaviour of issue 3
//! (RRULE parts are covered in `src/rrule.rs` and by the differential test).

mod common;

use common::{at, obj};
use tocsin_calendar::*;

fn starts(o: &CalendarObject, zone: &Zone, n: usize) -> Vec<String> {
    o.instances_from(zone, Instant::MIN)
        .take(n)
        .map(|i| i.start.to_rfc3339())
        .collect()
}

#[test]
fn dtstart_counts_toward_count_even_when_not_matching_the_rule() {
    // RFC 5545 §3.8.5.3: DTSTART is always the first instance.
    let o = obj(
        "BEGIN:VEVENT\nUID:c\nDTSTART:20260101T100000Z\nRRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=3\nEND:VEVENT\n",
    );
    assert_eq!(
        starts(&o, &Zone::utc(), 10),
        [
            "2026-01-01T10:00:00Z",
            "2026-01-05T10:00:00Z",
            "2026-01-12T10:00:00Z"
        ]
    );
}

#[test]
fn until_is_inclusive() {
    let o = obj(
        "BEGIN:VEVENT\nUID:u\nDTSTART:20260101T100000Z\nRRULE:FREQ=DAILY;UNTIL=20260103T100000Z\nEND:VEVENT\n",
    );
    assert_eq!(starts(&o, &Zone::utc(), 10).len(), 3);
}

#[test]
fn rdate_date_value_adds_an_all_day_instance() {
    let o = obj(
        "BEGIN:VEVENT\nUID:r\nDTSTART;VALUE=DATE:20260101\nRDATE;VALUE=DATE:20260110,20260105\nEND:VEVENT\n",
    );
    let zone = Zone::iana("Europe/Berlin").expect("zone");
    let all: Vec<Instance> = o.instances_from(&zone, Instant::MIN).collect();
    let got: Vec<_> = all
        .iter()
        .map(|i| {
            (
                i.start.to_rfc3339(),
                i.recurrence_id.clone().unwrap_or_default(),
                i.all_day,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "2025-12-31T23:00:00Z".to_string(),
                "20260101".to_string(),
                true
            ),
            (
                "2026-01-04T23:00:00Z".to_string(),
                "20260105".to_string(),
                true
            ),
            (
                "2026-01-09T23:00:00Z".to_string(),
                "20260110".to_string(),
                true
            ),
        ]
    );
    assert_eq!(all[0].end, at("2026-01-01T23:00:00Z"));
}

#[test]
fn rdate_equal_to_a_rule_instance_is_one_instance() {
    let o = obj(
        "BEGIN:VEVENT\nUID:r\nDTSTART:20260101T100000Z\nRRULE:FREQ=DAILY;COUNT=2\nRDATE:20260102T100000Z\nEND:VEVENT\n",
    );
    assert_eq!(
        starts(&o, &Zone::utc(), 10),
        ["2026-01-01T10:00:00Z", "2026-01-02T10:00:00Z"]
    );
}

#[test]
fn exdate_in_another_zone_matches_by_instant() {
    let o = obj(
        "BEGIN:VEVENT\nUID:x\nDTSTART;TZID=Europe/Berlin:20260105T100000\nRRULE:FREQ=DAILY;COUNT=3\nEXDATE:20260106T090000Z\nEND:VEVENT\n",
    );
    assert_eq!(
        starts(&o, &Zone::utc(), 10),
        ["2026-01-05T09:00:00Z", "2026-01-07T09:00:00Z"]
    );
}

#[test]
fn override_pairs_by_recurrence_id_not_sequence() {
    let o = obj(
        "BEGIN:VEVENT\nUID:o\nSEQUENCE:7\nDTSTART:20260105T100000Z\nRRULE:FREQ=DAILY;COUNT=3\nEND:VEVENT\n\
BEGIN:VEVENT\nUID:o\nSEQUENCE:0\nRECURRENCE-ID:20260106T100000Z\nDTSTART:20260106T150000Z\nEND:VEVENT\n",
    );
    let all: Vec<Instance> = o.instances_from(&Zone::utc(), Instant::MIN).collect();
    let got: Vec<_> = all
        .iter()
        .map(|i| (i.start.to_rfc3339(), i.is_override))
        .collect();
    assert_eq!(
        got,
        [
            ("2026-01-05T10:00:00Z".to_string(), false),
            ("2026-01-06T15:00:00Z".to_string(), true),
            ("2026-01-07T10:00:00Z".to_string(), false)
        ]
    );
}

#[test]
fn rule_time_in_dst_gap_is_shifted_by_the_gap() {
    let o = obj(
        "BEGIN:VEVENT\nUID:g\nDTSTART;TZID=Europe/Berlin:20260328T023000\nRRULE:FREQ=DAILY;COUNT=3\nEND:VEVENT\n",
    );
    // 2026-03-29 02:30 does not exist: 03:30 CEST (01:30Z).
    assert_eq!(
        starts(&o, &Zone::utc(), 5),
        [
            "2026-03-28T01:30:00Z",
            "2026-03-29T01:30:00Z",
            "2026-03-30T00:30:00Z"
        ]
    );
}

#[test]
fn rule_time_in_dst_overlap_is_the_first_occurrence() {
    let o = obj(
        "BEGIN:VEVENT\nUID:g\nDTSTART;TZID=America/New_York:20261031T013000\nRRULE:FREQ=DAILY;COUNT=3\nEND:VEVENT\n",
    );
    // 2026-11-01 01:30 happens twice in New York: the first is EDT (05:30Z).
    assert_eq!(
        starts(&o, &Zone::utc(), 5),
        [
            "2026-10-31T05:30:00Z",
            "2026-11-01T05:30:00Z",
            "2026-11-02T06:30:00Z"
        ]
    );
}

#[test]
fn impossible_rule_terminates_with_dtstart_only() {
    let o = obj(
        "BEGIN:VEVENT\nUID:i\nDTSTART:20260101T100000Z\nRRULE:FREQ=MONTHLY;BYMONTH=2;BYMONTHDAY=31\nEND:VEVENT\n",
    );
    let started = std::time::Instant::now();
    assert_eq!(starts(&o, &Zone::utc(), 5), ["2026-01-01T10:00:00Z"]);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn endless_rule_from_1970_starts_anywhere_at_once() {
    let o = obj("BEGIN:VEVENT\nUID:e\nDTSTART:19700101T090000Z\nRRULE:FREQ=DAILY\nEND:VEVENT\n");
    let started = std::time::Instant::now();
    let first: Vec<String> = o
        .instances_from(&Zone::utc(), at("9000-06-01T00:00:00Z"))
        .take(2)
        .map(|i| i.start.to_rfc3339())
        .collect();
    assert_eq!(first, ["9000-06-01T09:00:00Z", "9000-06-02T09:00:00Z"]);
    assert!(
        started.elapsed() < std::time::Duration::from_millis(50),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn all_day_and_floating_follow_the_supplied_zone() {
    let o =
        obj("BEGIN:VEVENT\nUID:f\nDTSTART:20260105T090000\nRRULE:FREQ=DAILY;COUNT=1\nEND:VEVENT\n");
    assert_eq!(
        starts(&o, &Zone::iana("Asia/Tokyo").expect("zone"), 1),
        ["2026-01-05T00:00:00Z"]
    );
    assert_eq!(
        starts(&o, &Zone::iana("America/Los_Angeles").expect("zone"), 1),
        ["2026-01-05T17:00:00Z"]
    );
}

#[test]
fn time_bounds_are_unbounded_for_endless_rules_and_widened_for_floating() {
    let endless =
        obj("BEGIN:VEVENT\nUID:e\nDTSTART:20260101T090000Z\nRRULE:FREQ=DAILY\nEND:VEVENT\n");
    assert_eq!(
        endless.time_bounds(),
        (Some(at("2026-01-01T09:00:00Z")), None)
    );
    let floating =
        obj("BEGIN:VEVENT\nUID:f\nDTSTART:20260101T090000\nDTEND:20260101T100000\nEND:VEVENT\n");
    assert_eq!(
        floating.time_bounds(),
        (
            Some(at("2025-12-31T19:00:00Z")),
            Some(at("2026-01-02T00:00:00Z"))
        )
    );
}
