//! RFC 4791 §9.7 filters and §9.9 time-range, evaluated against expanded
//! instances with overrides and zones.

mod common;

use common::{at, obj};
use tocsin_calendar::*;

fn range(s: &str, e: &str) -> TimeRange {
    TimeRange {
        start: Some(at(s)),
        end: Some(at(e)),
    }
}

fn calendar(comp: CompFilter) -> CompFilter {
    CompFilter {
        name: "VCALENDAR".into(),
        comp_filters: vec![comp],
        ..CompFilter::default()
    }
}

fn comp_in(name: &str, r: TimeRange) -> CompFilter {
    CompFilter {
        name: name.into(),
        time_range: Some(r),
        ..CompFilter::default()
    }
}

const WEEKLY: &str = "BEGIN:VEVENT\nUID:w\nDTSTART;TZID=Europe/Berlin:20260105T090000\nDTEND;TZID=Europe/Berlin:20260105T100000\nRRULE:FREQ=WEEKLY;COUNT=4\nSUMMARY:Team Meeting\nATTENDEE;PARTSTAT=ACCEPTED;CN=Bob:mailto:bob@example.com\nBEGIN:VALARM\nACTION:DISPLAY\nTRIGGER:-PT30M\nEND:VALARM\nEND:VEVENT\n\
BEGIN:VEVENT\nUID:w\nRECURRENCE-ID;TZID=Europe/Berlin:20260112T090000\nDTSTART;TZID=Europe/Berlin:20260113T150000\nDTEND;TZID=Europe/Berlin:20260113T160000\nSUMMARY:Moved meeting\nEND:VEVENT\n";

#[test]
fn time_range_sees_expanded_instances() {
    let o = obj(WEEKLY);
    let utc = Zone::utc();
    assert!(o.matches(
        &calendar(comp_in(
            "VEVENT",
            range("2026-01-19T08:00:00Z", "2026-01-19T08:30:00Z")
        )),
        &utc
    ));
    assert!(!o.matches(
        &calendar(comp_in(
            "VEVENT",
            range("2026-01-19T09:00:00Z", "2026-01-19T10:00:00Z")
        )),
        &utc
    ));
    assert!(!o.matches(
        &calendar(comp_in(
            "VEVENT",
            range("2026-02-02T00:00:00Z", "2026-03-01T00:00:00Z")
        )),
        &utc
    ));
}

#[test]
fn time_range_follows_moved_override_not_its_original_slot() {
    let o = obj(WEEKLY);
    let utc = Zone::utc();
    assert!(!o.matches(
        &calendar(comp_in(
            "VEVENT",
            range("2026-01-12T08:00:00Z", "2026-01-12T09:00:00Z")
        )),
        &utc
    ));
    assert!(o.matches(
        &calendar(comp_in(
            "VEVENT",
            range("2026-01-13T14:00:00Z", "2026-01-13T14:01:00Z")
        )),
        &utc
    ));
}

#[test]
fn time_range_is_half_open() {
    let o =
        obj("BEGIN:VEVENT\nUID:x\nDTSTART:20260101T100000Z\nDTEND:20260101T110000Z\nEND:VEVENT\n");
    let utc = Zone::utc();
    assert!(!o.matches(
        &calendar(comp_in(
            "VEVENT",
            range("2026-01-01T11:00:00Z", "2026-01-01T12:00:00Z")
        )),
        &utc
    ));
    assert!(!o.matches(
        &calendar(comp_in(
            "VEVENT",
            range("2026-01-01T09:00:00Z", "2026-01-01T10:00:00Z")
        )),
        &utc
    ));
    let zero = obj("BEGIN:VEVENT\nUID:x\nDTSTART:20260101T100000Z\nEND:VEVENT\n");
    assert!(zero.matches(
        &calendar(comp_in(
            "VEVENT",
            range("2026-01-01T10:00:00Z", "2026-01-01T10:00:01Z")
        )),
        &utc
    ));
}

#[test]
fn floating_time_range_depends_on_the_calendar_zone() {
    let o =
        obj("BEGIN:VEVENT\nUID:x\nDTSTART:20260101T100000\nDTEND:20260101T110000\nEND:VEVENT\n");
    let r = range("2026-01-01T15:00:00Z", "2026-01-01T16:00:00Z");
    assert!(o.matches(
        &calendar(comp_in("VEVENT", r)),
        &Zone::iana("America/New_York").expect("zone")
    ));
    assert!(!o.matches(&calendar(comp_in("VEVENT", r)), &Zone::utc()));
}

#[test]
fn text_match_uses_collation_and_negation() {
    let o = obj(WEEKLY);
    let summary = |text: &str, collation, negate| {
        calendar(CompFilter {
            name: "VEVENT".into(),
            prop_filters: vec![PropFilter {
                name: "SUMMARY".into(),
                text_match: Some(TextMatch {
                    text: text.into(),
                    collation,
                    negate,
                }),
                ..PropFilter::default()
            }],
            ..CompFilter::default()
        })
    };
    let utc = Zone::utc();
    assert!(o.matches(&summary("team", Collation::AsciiCasemap, false), &utc));
    assert!(!o.matches(&summary("team", Collation::Octet, false), &utc));
    assert!(o.matches(&summary("Moved", Collation::Octet, false), &utc));
    assert!(o.matches(&summary("nothing", Collation::AsciiCasemap, true), &utc));
}

#[test]
fn param_filter_and_is_not_defined() {
    let o = obj(WEEKLY);
    let utc = Zone::utc();
    let partstat = |text: &str| {
        calendar(CompFilter {
            name: "VEVENT".into(),
            prop_filters: vec![PropFilter {
                name: "ATTENDEE".into(),
                param_filters: vec![ParamFilter {
                    name: "PARTSTAT".into(),
                    is_not_defined: false,
                    text_match: Some(TextMatch {
                        text: text.into(),
                        collation: Collation::AsciiCasemap,
                        negate: false,
                    }),
                }],
                ..PropFilter::default()
            }],
            ..CompFilter::default()
        })
    };
    assert!(o.matches(&partstat("accepted"), &utc));
    assert!(!o.matches(&partstat("declined"), &utc));
    let no_location = calendar(CompFilter {
        name: "VEVENT".into(),
        prop_filters: vec![PropFilter {
            name: "LOCATION".into(),
            is_not_defined: true,
            ..PropFilter::default()
        }],
        ..CompFilter::default()
    });
    assert!(o.matches(&no_location, &utc));
    let no_todo = calendar(CompFilter {
        name: "VTODO".into(),
        is_not_defined: true,
        ..CompFilter::default()
    });
    assert!(o.matches(&no_todo, &utc));
    let todo = calendar(CompFilter {
        name: "VTODO".into(),
        ..CompFilter::default()
    });
    assert!(!o.matches(&todo, &utc));
}

#[test]
fn valarm_time_range_tests_triggers_of_instances() {
    let o = obj(WEEKLY);
    let utc = Zone::utc();
    let alarm_in = |r| {
        calendar(CompFilter {
            name: "VEVENT".into(),
            comp_filters: vec![comp_in("VALARM", r)],
            ..CompFilter::default()
        })
    };
    // Third instance 2026-01-19 08:00Z: alarm at 07:30Z.
    assert!(o.matches(
        &alarm_in(range("2026-01-19T07:30:00Z", "2026-01-19T07:31:00Z")),
        &utc
    ));
    assert!(!o.matches(
        &alarm_in(range("2026-01-19T07:31:00Z", "2026-01-19T08:00:00Z")),
        &utc
    ));
}

#[test]
fn vtodo_time_range_follows_rfc4791_table() {
    let utc = Zone::utc();
    let due_only = obj("BEGIN:VTODO\nUID:t\nDUE:20260110T120000Z\nEND:VTODO\n");
    assert!(due_only.matches(
        &calendar(comp_in(
            "VTODO",
            range("2026-01-10T00:00:00Z", "2026-01-10T12:00:00Z")
        )),
        &utc
    ));
    assert!(!due_only.matches(
        &calendar(comp_in(
            "VTODO",
            range("2026-01-10T12:00:00Z", "2026-01-11T00:00:00Z")
        )),
        &utc
    ));
    let neither = obj("BEGIN:VTODO\nUID:t\nSUMMARY:someday\nEND:VTODO\n");
    assert!(neither.matches(
        &calendar(comp_in(
            "VTODO",
            range("2030-01-01T00:00:00Z", "2030-01-02T00:00:00Z")
        )),
        &utc
    ));
    let completed = obj("BEGIN:VTODO\nUID:t\nCOMPLETED:20260105T120000Z\nEND:VTODO\n");
    assert!(completed.matches(
        &calendar(comp_in(
            "VTODO",
            range("2026-01-05T00:00:00Z", "2026-01-06T00:00:00Z")
        )),
        &utc
    ));
    assert!(!completed.matches(
        &calendar(comp_in(
            "VTODO",
            range("2026-01-06T00:00:00Z", "2026-01-07T00:00:00Z")
        )),
        &utc
    ));
}

#[test]
fn prop_filter_time_range_on_date_properties() {
    let o = obj(
        "BEGIN:VEVENT\nUID:x\nDTSTART:20260101T100000Z\nDTSTAMP:20251201T000000Z\nEND:VEVENT\n",
    );
    let f = |r| {
        calendar(CompFilter {
            name: "VEVENT".into(),
            prop_filters: vec![PropFilter {
                name: "DTSTAMP".into(),
                time_range: Some(r),
                ..PropFilter::default()
            }],
            ..CompFilter::default()
        })
    };
    assert!(o.matches(
        &f(range("2025-12-01T00:00:00Z", "2025-12-02T00:00:00Z")),
        &Zone::utc()
    ));
    assert!(!o.matches(
        &f(range("2025-12-02T00:00:00Z", "2025-12-03T00:00:00Z")),
        &Zone::utc()
    ));
}

#[test]
fn top_filter_must_be_vcalendar() {
    let o = obj(WEEKLY);
    assert!(o.matches(
        &CompFilter {
            name: "VCALENDAR".into(),
            ..CompFilter::default()
        },
        &Zone::utc()
    ));
    assert!(!o.matches(
        &CompFilter {
            name: "VEVENT".into(),
            ..CompFilter::default()
        },
        &Zone::utc()
    ));
}

#[test]
fn busy_periods_skip_transparent_and_cancelled() {
    let o = obj(
        "BEGIN:VEVENT\nUID:b\nDTSTART:20260101T100000Z\nDTEND:20260101T110000Z\nRRULE:FREQ=DAILY;COUNT=3\nEND:VEVENT\nBEGIN:VEVENT\nUID:b\nRECURRENCE-ID:20260102T100000Z\nDTSTART:20260102T100000Z\nDTEND:20260102T110000Z\nSTATUS:CANCELLED\nEND:VEVENT\n",
    );
    let busy = o.busy_periods(
        &range("2026-01-01T10:30:00Z", "2026-01-10T00:00:00Z"),
        &Zone::utc(),
    );
    let got: Vec<_> = busy
        .iter()
        .map(|p| (p.start.to_rfc3339(), p.end.to_rfc3339()))
        .collect();
    assert_eq!(
        got,
        [
            (
                "2026-01-01T10:30:00Z".to_string(),
                "2026-01-01T11:00:00Z".to_string()
            ),
            (
                "2026-01-03T10:00:00Z".to_string(),
                "2026-01-03T11:00:00Z".to_string()
            )
        ]
    );
}
