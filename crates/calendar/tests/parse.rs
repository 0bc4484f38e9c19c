//! Parsing and validation: what is accepted, what is rejected and with which
//! CalDAV precondition (RFC 4791 §4.1, §5.3.2.1).

mod common;

use tocsin_calendar::*;

fn parse(body: &str) -> Result<CalendarObject, CalendarError> {
    CalendarObject::parse(&common::calendar_text(body), &Limits::default())
}

fn rejected(body: &str) -> Precondition {
    match parse(body) {
        Ok(_) => panic!("accepted:\n{body}"),
        Err(e) => {
            assert!(!e.to_string().is_empty());
            e.precondition()
        }
    }
}

#[test]
fn single_event_is_accepted_with_its_properties() {
    let o = parse("BEGIN:VEVENT\nUID:u1\nDTSTART:20261204T100000Z\nSUMMARY:Lunch\\, maybe\nDESCRIPTION:d\nLOCATION:here\nEND:VEVENT\n").expect("ok");
    assert_eq!(o.uid(), "u1");
    assert_eq!(o.kind(), ComponentKind::Event);
    assert_eq!(o.summary(), Some("Lunch, maybe"));
    assert_eq!(o.description(), Some("d"));
    assert_eq!(o.location(), Some("here"));
    assert!(!o.is_recurring());
}

#[test]
fn not_icalendar_is_valid_calendar_data_error() {
    for text in [
        "hello",
        "",
        "BEGIN:VCARD\r\nVERSION:4.0\r\nEND:VCARD\r\n",
        "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\n",
    ] {
        let e = CalendarObject::parse(text, &Limits::default()).expect_err(text);
        assert_eq!(
            e.precondition(),
            Precondition::ValidCalendarData,
            "{text}: {e}"
        );
    }
}

#[test]
fn several_uids_are_not_one_object() {
    assert_eq!(
        rejected(
            "BEGIN:VEVENT\nUID:a\nDTSTART:20261204T100000Z\nEND:VEVENT\nBEGIN:VEVENT\nUID:b\nDTSTART:20261204T100000Z\nEND:VEVENT\n"
        ),
        Precondition::ValidCalendarObjectResource
    );
}

#[test]
fn mixed_component_types_are_not_one_object() {
    assert_eq!(
        rejected(
            "BEGIN:VEVENT\nUID:a\nDTSTART:20261204T100000Z\nEND:VEVENT\nBEGIN:VTODO\nUID:a\nEND:VTODO\n"
        ),
        Precondition::ValidCalendarObjectResource
    );
}

#[test]
fn method_is_not_allowed_in_a_stored_object() {
    assert_eq!(
        rejected("METHOD:REQUEST\nBEGIN:VEVENT\nUID:a\nDTSTART:20261204T100000Z\nEND:VEVENT\n"),
        Precondition::ValidCalendarObjectResource
    );
}

#[test]
fn no_component_is_not_an_object() {
    assert_eq!(rejected(""), Precondition::ValidCalendarObjectResource);
}

#[test]
fn two_masters_or_duplicate_overrides_are_rejected() {
    assert_eq!(
        rejected(
            "BEGIN:VEVENT\nUID:a\nDTSTART:20261204T100000Z\nEND:VEVENT\nBEGIN:VEVENT\nUID:a\nDTSTART:20261205T100000Z\nEND:VEVENT\n"
        ),
        Precondition::ValidCalendarObjectResource
    );
    let o = "BEGIN:VEVENT\nUID:a\nRECURRENCE-ID:20261205T100000Z\nDTSTART:20261205T100000Z\nEND:VEVENT\n";
    assert_eq!(
        rejected(&format!("{o}{o}")),
        Precondition::ValidCalendarObjectResource
    );
}

#[test]
fn unsupported_component_is_named() {
    let e = parse("BEGIN:X-THING\nUID:a\nEND:X-THING\n").expect_err("rejected");
    assert_eq!(e.precondition(), Precondition::SupportedCalendarComponent);
    assert!(e.to_string().contains("X-THING"), "{e}");
}

#[test]
fn over_limits_are_max_resource_size() {
    let body = "BEGIN:VEVENT\nUID:a\nDTSTART:20261204T100000Z\nEND:VEVENT\n";
    let text = format!("BEGIN:VCALENDAR\r\n{body}END:VCALENDAR\r\n");
    let small = Limits {
        object_bytes_max: 10,
        ..Limits::default()
    };
    assert_eq!(
        CalendarObject::parse(&text, &small)
            .expect_err("bytes")
            .precondition(),
        Precondition::MaxResourceSize
    );
    let few = Limits {
        components_max: 1,
        ..Limits::default()
    };
    assert_eq!(
        CalendarObject::parse(&text, &few)
            .expect_err("components")
            .precondition(),
        Precondition::MaxResourceSize
    );
    let props = Limits {
        properties_max: 1,
        ..Limits::default()
    };
    assert_eq!(
        CalendarObject::parse(&text, &props)
            .expect_err("properties")
            .precondition(),
        Precondition::MaxResourceSize
    );
}

#[test]
fn bad_values_are_invalid_calendar_data() {
    assert_eq!(
        rejected("BEGIN:VEVENT\nUID:a\nDTSTART:tomorrow\nEND:VEVENT\n"),
        Precondition::ValidCalendarData
    );
    assert_eq!(
        rejected(
            "BEGIN:VEVENT\nUID:a\nDTSTART:20261204T100000Z\nRRULE:FREQ=SOMETIMES\nEND:VEVENT\n"
        ),
        Precondition::ValidCalendarData
    );
    assert_eq!(
        rejected(
            "BEGIN:VEVENT\nUID:a\nDTSTART:20261204T100000Z\nRRULE:FREQ=MONTHLY;BYMONTHDAY=40\nEND:VEVENT\n"
        ),
        Precondition::ValidCalendarData
    );
    assert_eq!(
        rejected("BEGIN:VEVENT\nUID:a\nEND:VEVENT\n"),
        Precondition::ValidCalendarData
    );
}

#[test]
fn tzid_without_vtimezone_resolves_iana_names() {
    let o = parse("BEGIN:VEVENT\nUID:a\nDTSTART;TZID=Europe/Berlin:20261204T100000\nEND:VEVENT\n")
        .expect("ok");
    let first = o
        .instances_from(&Zone::utc(), Instant::MIN)
        .next()
        .expect("instance");
    assert_eq!(first.start.to_rfc3339(), "2026-12-04T09:00:00Z");
}

#[test]
fn unknown_tzid_without_vtimezone_is_floating_not_utc() {
    let o = parse("BEGIN:VEVENT\nUID:a\nDTSTART;TZID=Somewhere Odd:20261204T100000\nEND:VEVENT\n")
        .expect("ok");
    let ny = Zone::iana("America/New_York").expect("zone");
    let first = o
        .instances_from(&ny, Instant::MIN)
        .next()
        .expect("instance");
    assert_eq!(first.start.to_rfc3339(), "2026-12-04T15:00:00Z");
}

#[test]
fn calendar_timezone_property_must_hold_one_vtimezone() {
    let e =
        Zone::from_calendar_timezone("BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n").expect_err("no zone");
    assert_eq!(e.precondition(), Precondition::ValidCalendarObjectResource);
    let z = Zone::from_calendar_timezone("BEGIN:VCALENDAR\r\nBEGIN:VTIMEZONE\r\nTZID:Europe/Paris\r\nEND:VTIMEZONE\r\nEND:VCALENDAR\r\n").expect("zone");
    assert_eq!(z.name(), "Europe/Paris");
}
