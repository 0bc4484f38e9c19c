//! Alarm semantics, one test per rule of issue 3 (see `src/alarm.rs`), each
//! named after the behaviour it pins. DESIGN.md invariants are cited where a
//! test guards one.

mod common;

use common::{at, obj};
use tocsin_calendar::*;

struct User {
    zone: Zone,
    addresses: Vec<String>,
}

impl User {
    fn utc() -> User {
        User {
            zone: Zone::utc(),
            addresses: vec!["mailto:alice@example.com".into()],
        }
    }
    fn in_zone(name: &str) -> User {
        User {
            zone: Zone::iana(name).expect("zone"),
            addresses: vec!["mailto:alice@example.com".into()],
        }
    }
    fn view(&self) -> UserView<'_> {
        UserView {
            user: "alice",
            addresses: &self.addresses,
            zone: &self.zone,
            alarm_overlay: None,
            default_alarms: None,
        }
    }
}

fn policy() -> AlarmPolicy {
    AlarmPolicy::default()
}

/// Triggers (RFC 3339) of the next `n` alarms after `after`.
fn next_triggers(o: &CalendarObject, user: &User, after: &str, n: usize) -> Vec<String> {
    upcoming_alarms(o, &user.view(), at(after), n, &policy())
        .iter()
        .map(|d| d.trigger.to_rfc3339())
        .collect()
}

fn event(extra: &str, alarm: &str) -> String {
    format!(
        "BEGIN:VEVENT\nUID:e1\nDTSTAMP:20260101T000000Z\nDTSTART:20261204T100000Z\nDTEND:20261204T110000Z\nSUMMARY:Standup\n{extra}BEGIN:VALARM\n{alarm}END:VALARM\nEND:VEVENT\n"
    )
}

#[test]
fn relative_trigger_fires_before_start() {
    let o = obj(&event("", "ACTION:DISPLAY\nTRIGGER:-PT15M\n"));
    assert_eq!(
        next_triggers(&o, &User::utc(), "2026-12-01T00:00:00Z", 5),
        ["2026-12-04T09:45:00Z"]
    );
}

#[test]
fn related_end_uses_dtend() {
    let o = obj(&event("", "ACTION:DISPLAY\nTRIGGER;RELATED=END:PT5M\n"));
    assert_eq!(
        next_triggers(&o, &User::utc(), "2026-12-01T00:00:00Z", 5),
        ["2026-12-04T11:05:00Z"]
    );
}

#[test]
fn related_end_uses_duration() {
    let o = obj(
        "BEGIN:VEVENT\nUID:e\nDTSTART:20261204T100000Z\nDURATION:PT2H\nBEGIN:VALARM\nACTION:DISPLAY\nTRIGGER;RELATED=END:-PT10M\nEND:VALARM\nEND:VEVENT\n",
    );
    assert_eq!(
        next_triggers(&o, &User::utc(), "2026-12-01T00:00:00Z", 5),
        ["2026-12-04T11:50:00Z"]
    );
}

#[test]
fn related_end_of_todo_uses_due() {
    let o = obj(
        "BEGIN:VTODO\nUID:t\nDTSTART:20261204T100000Z\nDUE:20261205T100000Z\nBEGIN:VALARM\nACTION:DISPLAY\nTRIGGER;RELATED=END:-PT1H\nEND:VALARM\nEND:VTODO\n",
    );
    assert_eq!(
        next_triggers(&o, &User::utc(), "2026-12-01T00:00:00Z", 5),
        ["2026-12-05T09:00:00Z"]
    );
}

#[test]
fn absolute_trigger_fires_once_not_per_instance() {
    let o = obj(&event(
        "RRULE:FREQ=DAILY\n",
        "ACTION:DISPLAY\nTRIGGER;VALUE=DATE-TIME:20261203T120000Z\n",
    ));
    let due = upcoming_alarms(
        &o,
        &User::utc().view(),
        at("2026-12-01T00:00:00Z"),
        10,
        &policy(),
    );
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].trigger, at("2026-12-03T12:00:00Z"));
    assert_eq!(due[0].recurrence_id, None);
}

#[test]
fn repeat_and_duration_add_repetitions() {
    let o = obj(&event(
        "",
        "ACTION:AUDIO\nTRIGGER:-PT30M\nREPEAT:2\nDURATION:PT10M\n",
    ));
    let due = upcoming_alarms(
        &o,
        &User::utc().view(),
        at("2026-12-01T00:00:00Z"),
        10,
        &policy(),
    );
    let got: Vec<_> = due
        .iter()
        .map(|d| (d.trigger.to_rfc3339(), d.repeat_index))
        .collect();
    assert_eq!(
        got,
        [
            ("2026-12-04T09:30:00Z".to_string(), 0),
            ("2026-12-04T09:40:00Z".to_string(), 1),
            ("2026-12-04T09:50:00Z".to_string(), 2)
        ]
    );
    assert!(due.iter().all(|d| d.action == AlarmAction::Audio));
}

#[test]
fn email_recipients_come_from_valarm_attendees() {
    let o = obj(&event(
        "",
        "ACTION:EMAIL\nTRIGGER:-PT15M\nSUMMARY:s\nDESCRIPTION:d\nATTENDEE:mailto:bob@example.com\nATTENDEE:mailto:carol@example.com\n",
    ));
    let due = upcoming_alarms(
        &o,
        &User::utc().view(),
        at("2026-12-01T00:00:00Z"),
        10,
        &policy(),
    );
    assert_eq!(due[0].action, AlarmAction::Email);
    assert_eq!(
        due[0].recipients,
        ["mailto:bob@example.com", "mailto:carol@example.com"]
    );
    assert_eq!(due[0].description.as_deref(), Some("d"));
}

#[test]
fn email_without_attendees_goes_to_the_users_first_mailto() {
    let o = obj(&event("", "ACTION:EMAIL\nTRIGGER:-PT15M\n"));
    let due = upcoming_alarms(
        &o,
        &User::utc().view(),
        at("2026-12-01T00:00:00Z"),
        10,
        &policy(),
    );
    assert_eq!(due[0].recipients, ["mailto:alice@example.com"]);
    let display = obj(&event("", "ACTION:DISPLAY\nTRIGGER:-PT15M\n"));
    assert!(
        upcoming_alarms(
            &display,
            &User::utc().view(),
            at("2026-12-01T00:00:00Z"),
            1,
            &policy()
        )[0]
        .recipients
        .is_empty()
    );
}

#[test]
fn unsupported_action_never_fires() {
    let o = obj(&event("", "ACTION:PROCEDURE\nTRIGGER:-PT15M\n"));
    assert!(next_triggers(&o, &User::utc(), "2026-12-01T00:00:00Z", 5).is_empty());
}

#[test]
fn exdate_instance_gets_no_alarm() {
    let o = obj(&event(
        "RRULE:FREQ=DAILY;COUNT=3\nEXDATE:20261205T100000Z\n",
        "ACTION:DISPLAY\nTRIGGER:-PT15M\n",
    ));
    assert_eq!(
        next_triggers(&o, &User::utc(), "2026-12-01T00:00:00Z", 5),
        ["2026-12-04T09:45:00Z", "2026-12-06T09:45:00Z"]
    );
}

#[test]
fn cancelled_override_gets_no_alarm() {
    let body = event(
        "RRULE:FREQ=DAILY;COUNT=3\n",
        "ACTION:DISPLAY\nTRIGGER:-PT15M\n",
    ) + "BEGIN:VEVENT\nUID:e1\nRECURRENCE-ID:20261205T100000Z\nDTSTART:20261205T100000Z\nDTEND:20261205T110000Z\nSTATUS:CANCELLED\nBEGIN:VALARM\nACTION:DISPLAY\nTRIGGER:-PT15M\nEND:VALARM\nEND:VEVENT\n";
    let o = obj(&body);
    assert_eq!(
        next_triggers(&o, &User::utc(), "2026-12-01T00:00:00Z", 5),
        ["2026-12-04T09:45:00Z", "2026-12-06T09:45:00Z"]
    );
}

#[test]
fn cancelled_master_gets_no_alarm() {
    let o = obj(&event(
        "STATUS:CANCELLED\n",
        "ACTION:DISPLAY\nTRIGGER:-PT15M\n",
    ));
    assert!(next_triggers(&o, &User::utc(), "2026-12-01T00:00:00Z", 5).is_empty());
    assert_eq!(
        next_check(
            &o,
            &[(User::utc().view(), at("2026-12-01T00:00:00Z"))],
            at("2026-12-01T00:00:00Z"),
            &policy()
        ),
        None
    );
}

#[test]
fn declined_instance_gets_no_alarm_per_override() {
    let body = event(
        "RRULE:FREQ=DAILY;COUNT=3\nATTENDEE;PARTSTAT=ACCEPTED:mailto:alice@example.com\n",
        "ACTION:DISPLAY\nTRIGGER:-PT15M\n",
    ) + "BEGIN:VEVENT\nUID:e1\nRECURRENCE-ID:20261205T100000Z\nDTSTART:20261205T100000Z\nDTEND:20261205T110000Z\nATTENDEE;PARTSTAT=DECLINED:MAILTO:Alice@Example.com\nBEGIN:VALARM\nACTION:DISPLAY\nTRIGGER:-PT15M\nEND:VALARM\nEND:VEVENT\n";
    let o = obj(&body);
    assert_eq!(
        next_triggers(&o, &User::utc(), "2026-12-01T00:00:00Z", 5),
        ["2026-12-04T09:45:00Z", "2026-12-06T09:45:00Z"]
    );
    // Someone else's view is not affected by Alice's answer.
    let bob = User {
        zone: Zone::utc(),
        addresses: vec!["mailto:bob@example.com".into()],
    };
    assert_eq!(next_triggers(&o, &bob, "2026-12-01T00:00:00Z", 5).len(), 3);
}

#[test]
fn acknowledged_suppresses_triggers_at_or_before_it() {
    let o = obj(&event(
        "RRULE:FREQ=DAILY;COUNT=3\n",
        "UID:a1\nACTION:DISPLAY\nTRIGGER:-PT15M\nACKNOWLEDGED:20261205T094500Z\n",
    ));
    assert_eq!(
        next_triggers(&o, &User::utc(), "2026-12-01T00:00:00Z", 5),
        ["2026-12-06T09:45:00Z"]
    );
}

#[test]
fn snooze_alarm_replaces_its_parent() {
    let body = "BEGIN:VEVENT\nUID:e1\nDTSTART:20261204T100000Z\nDTEND:20261204T110000Z\n\
BEGIN:VALARM\nUID:parent\nACTION:DISPLAY\nTRIGGER:-PT15M\nEND:VALARM\n\
BEGIN:VALARM\nUID:snooze\nRELATED-TO;RELTYPE=SNOOZE:parent\nACTION:DISPLAY\nTRIGGER;VALUE=DATE-TIME:20261204T095500Z\nEND:VALARM\nEND:VEVENT\n";
    let o = obj(body);
    let due = upcoming_alarms(
        &o,
        &User::utc().view(),
        at("2026-12-01T00:00:00Z"),
        5,
        &policy(),
    );
    let got: Vec<_> = due
        .iter()
        .map(|d| (d.alarm_id.as_str(), d.trigger.to_rfc3339()))
        .collect();
    assert_eq!(got, [("snooze", "2026-12-04T09:55:00Z".to_string())]);
}

#[test]
fn alarm_uid_and_x_wr_alarmuid_identify_alarms() {
    let o = obj(&event("", "UID:my-alarm\nACTION:DISPLAY\nTRIGGER:-PT15M\n"));
    assert_eq!(
        upcoming_alarms(
            &o,
            &User::utc().view(),
            at("2026-12-01T00:00:00Z"),
            1,
            &policy()
        )[0]
        .alarm_id,
        "my-alarm"
    );
    let o = obj(&event(
        "",
        "X-WR-ALARMUID:apple-id\nACTION:DISPLAY\nTRIGGER:-PT15M\n",
    ));
    assert_eq!(
        upcoming_alarms(
            &o,
            &User::utc().view(),
            at("2026-12-01T00:00:00Z"),
            1,
            &policy()
        )[0]
        .alarm_id,
        "apple-id"
    );
}

#[test]
fn alarm_without_uid_has_content_id_stable_across_property_order() {
    let a = obj(&event(
        "",
        "ACTION:DISPLAY\nTRIGGER:-PT15M\nDESCRIPTION:x\n",
    ));
    let b = obj(&event(
        "",
        "DESCRIPTION:x\nTRIGGER:-PT15M\nACTION:DISPLAY\n",
    ));
    let c = obj(&event(
        "",
        "ACTION:DISPLAY\nTRIGGER:-PT16M\nDESCRIPTION:x\n",
    ));
    let id = |o: &CalendarObject| {
        upcoming_alarms(
            o,
            &User::utc().view(),
            at("2026-12-01T00:00:00Z"),
            1,
            &policy(),
        )[0]
        .alarm_id
        .clone()
    };
    assert_eq!(id(&a), id(&b));
    assert_ne!(id(&a), id(&c));
}

#[test]
fn identical_alarms_fire_once() {
    let body = "BEGIN:VEVENT\nUID:e1\nDTSTART:20261204T100000Z\n\
BEGIN:VALARM\nACTION:DISPLAY\nTRIGGER:-PT15M\nEND:VALARM\nBEGIN:VALARM\nACTION:DISPLAY\nTRIGGER:-PT15M\nEND:VALARM\n\
BEGIN:VALARM\nACTION:DISPLAY\nTRIGGER;VALUE=DATE-TIME:20261204T094500Z\nEND:VALARM\nEND:VEVENT\n";
    let o = obj(body);
    assert_eq!(
        next_triggers(&o, &User::utc(), "2026-12-01T00:00:00Z", 5),
        ["2026-12-04T09:45:00Z"]
    );
}

#[test]
fn min_instance_interval_guards_minutely_floods() {
    let o = obj(&event(
        "RRULE:FREQ=SECONDLY;INTERVAL=10\n",
        "ACTION:DISPLAY\nTRIGGER:PT0S\n",
    ));
    let got = next_triggers(&o, &User::utc(), "2026-12-04T09:59:59Z", 3);
    assert_eq!(
        got,
        [
            "2026-12-04T10:00:00Z",
            "2026-12-04T10:01:00Z",
            "2026-12-04T10:02:00Z"
        ]
    );
}

#[test]
fn per_user_overlay_replaces_the_objects_alarms() {
    let o = obj(&event("", "ACTION:DISPLAY\nTRIGGER:-PT15M\n"));
    let overlay = AlarmOverlay::parse("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:e1\r\nBEGIN:VALARM\r\nACTION:EMAIL\r\nTRIGGER:-P1D\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n").expect("overlay");
    let user = User::utc();
    let view = UserView {
        alarm_overlay: Some(&overlay),
        ..user.view()
    };
    let due = upcoming_alarms(&o, &view, at("2026-12-01T00:00:00Z"), 5, &policy());
    let got: Vec<_> = due
        .iter()
        .map(|d| (d.action, d.trigger.to_rfc3339()))
        .collect();
    assert_eq!(
        got,
        [(AlarmAction::Email, "2026-12-03T10:00:00Z".to_string())]
    );
}

/// The next five triggers of `o` for `view`, from 2026-12-01, in RFC 3339.
fn triggers_from_dec_1(o: &CalendarObject, view: &UserView<'_>) -> Vec<String> {
    upcoming_alarms(o, view, at("2026-12-01T00:00:00Z"), 5, &policy())
        .iter()
        .map(|d| d.trigger.to_rfc3339())
        .collect()
}

#[test]
fn default_alarms_apply_only_to_components_that_ask() {
    let defaults = DefaultAlarms::parse(
        Some("BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT5M\r\nEND:VALARM\r\n"),
        Some("BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT15H\r\nEND:VALARM\r\n"),
    )
    .expect("defaults");
    let user = User::utc();
    let view = UserView {
        default_alarms: Some(&defaults),
        ..user.view()
    };
    let asks = obj(
        "BEGIN:VEVENT\nUID:e\nDTSTART:20261204T100000Z\nX-JMAP-USEDEFAULTALERTS:TRUE\nEND:VEVENT\n",
    );
    let silent = obj("BEGIN:VEVENT\nUID:e\nDTSTART:20261204T100000Z\nEND:VEVENT\n");
    let placeholder = obj(&event(
        "",
        "ACTION:NONE\nTRIGGER;VALUE=DATE-TIME:19760401T005545Z\nX-APPLE-DEFAULT-ALARM:TRUE\n",
    ));
    let all_day = obj(
        "BEGIN:VEVENT\nUID:e\nDTSTART;VALUE=DATE:20261204\nX-JMAP-USEDEFAULTALERTS:TRUE\nEND:VEVENT\n",
    );
    let t = |o: &CalendarObject| triggers_from_dec_1(o, &view);
    assert_eq!(t(&asks), ["2026-12-04T09:55:00Z"]);
    assert!(t(&silent).is_empty());
    assert_eq!(t(&placeholder), ["2026-12-04T09:55:00Z"]);
    assert_eq!(t(&all_day), ["2026-12-03T09:00:00Z"]);
}

#[test]
fn opted_in_defaults_also_cover_components_with_no_alarm_of_their_own() {
    let defaults = DefaultAlarms::parse(
        Some("BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT5M\r\nEND:VALARM\r\n"),
        None,
    )
    .expect("defaults")
    .applied_when_none(true);
    let user = User::utc();
    let view = UserView {
        default_alarms: Some(&defaults),
        ..user.view()
    };
    let silent = obj("BEGIN:VEVENT\nUID:e\nDTSTART:20261204T100000Z\nEND:VEVENT\n");
    let own = obj(&event("", "ACTION:DISPLAY\nTRIGGER:-PT30M\n"));
    let t = |o: &CalendarObject| triggers_from_dec_1(o, &view);
    assert_eq!(t(&silent), ["2026-12-04T09:55:00Z"]);
    // An alarm of the event's own wins: defaults never add to it.
    assert_eq!(t(&own), ["2026-12-04T09:30:00Z"]);
}

#[test]
fn alarm_moved_earlier_moves_next_check_earlier() {
    // The seed thread's bug (invariant 4): an edit that moves an alarm
    // earlier must move next_check earlier; nothing is copied from the old
    // value, next_check is recomputed from the new object alone.
    let now = at("2026-12-01T00:00:00Z");
    let user = User::utc();
    let before = obj(&event("", "ACTION:DISPLAY\nTRIGGER:-PT15M\n"));
    let after_edit = obj(&event("", "ACTION:DISPLAY\nTRIGGER:-P2D\n"));
    let old = next_check(&before, &[(user.view(), now)], now, &policy()).expect("old");
    let new = next_check(&after_edit, &[(user.view(), now)], now, &policy()).expect("new");
    assert_eq!(old.at, at("2026-12-04T09:45:00Z"));
    assert_eq!(new.at, at("2026-12-02T10:00:00Z"));
    assert!(new.at < old.at);
}

#[test]
fn next_check_is_a_recheck_when_nothing_is_due_within_the_horizon() {
    let o = obj(
        "BEGIN:VEVENT\nUID:e\nDTSTART:20281204T100000Z\nBEGIN:VALARM\nACTION:DISPLAY\nTRIGGER:-PT15M\nEND:VALARM\nEND:VEVENT\n",
    );
    let now = at("2026-12-01T00:00:00Z");
    let user = User::utc();
    let n = next_check(&o, &[(user.view(), now)], now, &policy()).expect("recheck");
    assert_eq!(
        n,
        NextCheck {
            at: at("2026-12-31T00:00:00Z"),
            is_recheck: true
        }
    );
}

#[test]
fn next_check_is_none_when_no_alarm_can_fire_again() {
    let o = obj(&event("", "ACTION:DISPLAY\nTRIGGER:-PT15M\n"));
    let now = at("2027-01-01T00:00:00Z");
    let user = User::utc();
    assert_eq!(next_check(&o, &[(user.view(), now)], now, &policy()), None);
    let no_alarm =
        obj("BEGIN:VEVENT\nUID:e\nDTSTART:20281204T100000Z\nRRULE:FREQ=DAILY\nEND:VEVENT\n");
    assert_eq!(
        next_check(&no_alarm, &[(user.view(), now)], now, &policy()),
        None
    );
}

#[test]
fn next_check_takes_the_earliest_over_users_each_with_its_watermark() {
    let o = obj(&event(
        "RRULE:FREQ=DAILY\n",
        "ACTION:DISPLAY\nTRIGGER:-PT15M\n",
    ));
    let now = at("2026-12-06T12:00:00Z");
    let alice = User::utc();
    let bob = User {
        zone: Zone::utc(),
        addresses: vec!["mailto:bob@example.com".into()],
    };
    // Alice has handled everything up to now; Bob's watermark lags (an
    // overdue alarm of his is unhandled): next_check is at or before it.
    let views = [
        (alice.view(), now),
        (
            UserView {
                user: "bob",
                ..bob.view()
            },
            at("2026-12-05T00:00:00Z"),
        ),
    ];
    let n = next_check(&o, &views, now, &policy()).expect("due");
    assert_eq!(n.at, at("2026-12-05T09:45:00Z"));
    assert!(!n.is_recheck);
}

#[test]
fn due_alarms_window_is_open_at_after_and_closed_at_until() {
    let o = obj(&event(
        "RRULE:FREQ=DAILY;COUNT=3\n",
        "ACTION:DISPLAY\nTRIGGER:-PT15M\n",
    ));
    let user = User::utc();
    let due = due_alarms(
        &o,
        &user.view(),
        at("2026-12-04T09:45:00Z"),
        at("2026-12-05T09:45:00Z"),
        &policy(),
    );
    let got: Vec<_> = due.iter().map(|d| d.trigger.to_rfc3339()).collect();
    assert_eq!(got, ["2026-12-05T09:45:00Z"]);
    assert_eq!(due[0].recurrence_id.as_deref(), Some("20261205T100000Z"));
    assert_eq!(due[0].instance_start, Some(at("2026-12-05T10:00:00Z")));
}

#[test]
fn override_with_other_sequence_still_replaces_its_instance() {
    // calcard pitfall (a): pairing must be by RECURRENCE-ID alone.
    let body = event(
        "SEQUENCE:0\nRRULE:FREQ=DAILY;COUNT=3\n",
        "ACTION:DISPLAY\nTRIGGER:-PT15M\n",
    ) + "BEGIN:VEVENT\nUID:e1\nSEQUENCE:4\nRECURRENCE-ID:20261205T100000Z\nDTSTART:20261205T140000Z\nDTEND:20261205T150000Z\nBEGIN:VALARM\nACTION:DISPLAY\nTRIGGER:-PT15M\nEND:VALARM\nEND:VEVENT\n";
    let o = obj(&body);
    assert_eq!(
        next_triggers(&o, &User::utc(), "2026-12-01T00:00:00Z", 5),
        [
            "2026-12-04T09:45:00Z",
            "2026-12-05T13:45:00Z",
            "2026-12-06T09:45:00Z"
        ]
    );
}

#[test]
fn this_and_future_override_moves_later_instances() {
    let body = event(
        "RRULE:FREQ=DAILY;COUNT=4\n",
        "ACTION:DISPLAY\nTRIGGER:-PT15M\n",
    ) + "BEGIN:VEVENT\nUID:e1\nRECURRENCE-ID;RANGE=THISANDFUTURE:20261205T100000Z\nDTSTART:20261205T120000Z\nDTEND:20261205T130000Z\nBEGIN:VALARM\nACTION:DISPLAY\nTRIGGER:-PT30M\nEND:VALARM\nEND:VEVENT\n";
    let o = obj(&body);
    assert_eq!(
        next_triggers(&o, &User::utc(), "2026-12-01T00:00:00Z", 5),
        [
            "2026-12-04T09:45:00Z",
            "2026-12-05T11:30:00Z",
            "2026-12-06T11:30:00Z",
            "2026-12-07T11:30:00Z"
        ]
    );
}

#[test]
fn floating_event_rings_in_the_users_zone() {
    let o = obj(
        "BEGIN:VEVENT\nUID:e\nDTSTART:20261204T100000\nBEGIN:VALARM\nACTION:DISPLAY\nTRIGGER:-PT15M\nEND:VALARM\nEND:VEVENT\n",
    );
    assert_eq!(
        next_triggers(
            &o,
            &User::in_zone("America/New_York"),
            "2026-12-01T00:00:00Z",
            1
        ),
        ["2026-12-04T14:45:00Z"]
    );
    assert_eq!(
        next_triggers(&o, &User::utc(), "2026-12-01T00:00:00Z", 1),
        ["2026-12-04T09:45:00Z"]
    );
}

#[test]
fn all_day_event_rings_at_local_midnight_offsets() {
    let o = obj(
        "BEGIN:VEVENT\nUID:e\nDTSTART;VALUE=DATE:20261204\nBEGIN:VALARM\nACTION:DISPLAY\nTRIGGER:-PT15H\nEND:VALARM\nEND:VEVENT\n",
    );
    let due = upcoming_alarms(
        &o,
        &User::in_zone("Europe/Berlin").view(),
        at("2026-12-01T00:00:00Z"),
        1,
        &policy(),
    );
    assert_eq!(due[0].trigger, at("2026-12-03T08:00:00Z"));
    assert!(due[0].all_day);
}

#[test]
fn daily_zoned_event_keeps_wall_clock_across_dst() {
    let o = obj(
        "BEGIN:VEVENT\nUID:e\nDTSTART;TZID=Europe/Berlin:20260327T090000\nRRULE:FREQ=DAILY;COUNT=3\nBEGIN:VALARM\nACTION:DISPLAY\nTRIGGER:PT0S\nEND:VALARM\nEND:VEVENT\n",
    );
    assert_eq!(
        next_triggers(&o, &User::utc(), "2026-03-01T00:00:00Z", 5),
        [
            "2026-03-27T08:00:00Z",
            "2026-03-28T08:00:00Z",
            "2026-03-29T07:00:00Z"
        ]
    );
}

#[test]
fn day_part_of_trigger_is_nominal_across_dst() {
    // -P1D before 09:00 Berlin on the day after the change is 09:00 local
    // the day before, not 24 h earlier.
    let o = obj(
        "BEGIN:VEVENT\nUID:e\nDTSTART;TZID=Europe/Berlin:20260330T090000\nBEGIN:VALARM\nACTION:DISPLAY\nTRIGGER:-P1D\nEND:VALARM\nEND:VEVENT\n",
    );
    assert_eq!(
        next_triggers(&o, &User::utc(), "2026-03-01T00:00:00Z", 1),
        ["2026-03-29T07:00:00Z"]
    );
}

#[test]
fn unknown_vtimezone_rings_by_its_own_rules_not_utc() {
    let body = "BEGIN:VTIMEZONE\nTZID:My Office Time\nBEGIN:STANDARD\nDTSTART:19701025T030000\nTZOFFSETFROM:+0200\nTZOFFSETTO:+0100\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\nEND:STANDARD\nBEGIN:DAYLIGHT\nDTSTART:19700329T020000\nTZOFFSETFROM:+0100\nTZOFFSETTO:+0200\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\nEND:DAYLIGHT\nEND:VTIMEZONE\n\
BEGIN:VEVENT\nUID:e\nDTSTART;TZID=My Office Time:20260701T090000\nBEGIN:VALARM\nACTION:DISPLAY\nTRIGGER:PT0S\nEND:VALARM\nEND:VEVENT\n";
    let o = obj(body);
    assert_eq!(
        next_triggers(&o, &User::utc(), "2026-06-01T00:00:00Z", 1),
        ["2026-07-01T07:00:00Z"]
    );
}

#[test]
fn infinite_daily_rule_from_1970_skips_ahead() {
    let o = obj(
        "BEGIN:VEVENT\nUID:e\nDTSTART:19700101T090000Z\nRRULE:FREQ=DAILY\nBEGIN:VALARM\nACTION:DISPLAY\nTRIGGER:-PT5M\nEND:VALARM\nEND:VEVENT\n",
    );
    let now = at("2026-12-04T12:00:00Z");
    let user = User::utc();
    let started = std::time::Instant::now();
    let n = next_check(&o, &[(user.view(), now)], now, &policy()).expect("due");
    assert_eq!(n.at, at("2026-12-05T08:55:00Z"));
    assert!(
        started.elapsed() < std::time::Duration::from_millis(50),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn idempotency_key_is_stable_and_distinguishes_recipient_and_trigger() {
    let o = obj(&event(
        "RRULE:FREQ=DAILY;COUNT=2\n",
        "UID:a\nACTION:EMAIL\nTRIGGER:-PT15M\n",
    ));
    let user = User::utc();
    let a = upcoming_alarms(&o, &user.view(), at("2026-12-01T00:00:00Z"), 2, &policy());
    let b = upcoming_alarms(&o, &user.view(), at("2026-12-01T00:00:00Z"), 2, &policy());
    assert_eq!(
        a[0].idempotency_key("obj-1", "mailto:x@y"),
        b[0].idempotency_key("obj-1", "mailto:x@y")
    );
    assert_ne!(
        a[0].idempotency_key("obj-1", "mailto:x@y"),
        a[0].idempotency_key("obj-1", "mailto:z@y")
    );
    assert_ne!(
        a[0].idempotency_key("obj-1", "mailto:x@y"),
        a[1].idempotency_key("obj-1", "mailto:x@y")
    );
    assert_ne!(
        a[0].idempotency_key("obj-1", "mailto:x@y"),
        a[0].idempotency_key("obj-2", "mailto:x@y")
    );
}

#[test]
fn alarm_follows_a_moved_override() {
    let body = event(
        "RRULE:FREQ=WEEKLY;COUNT=2\n",
        "ACTION:DISPLAY\nTRIGGER:-PT15M\n",
    ) + "BEGIN:VEVENT\nUID:e1\nRECURRENCE-ID:20261211T100000Z\nDTSTART:20261210T080000Z\nDTEND:20261210T090000Z\nBEGIN:VALARM\nACTION:DISPLAY\nTRIGGER:-PT15M\nEND:VALARM\nEND:VEVENT\n";
    let o = obj(&body);
    let due = upcoming_alarms(
        &o,
        &User::utc().view(),
        at("2026-12-05T00:00:00Z"),
        5,
        &policy(),
    );
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].trigger, at("2026-12-10T07:45:00Z"));
    assert_eq!(due[0].recurrence_id.as_deref(), Some("20261211T100000Z"));
}

#[test]
fn alarm_that_cannot_fire_does_not_make_the_walk_run_away() {
    // Found by fuzzing: an alarm with an unknown ACTION on an endless series
    // made upcoming_alarms walk a million instances looking for it.
    let o = obj(
        "BEGIN:VEVENT\nUID:e\nDTSTART:20000101T100000Z\nRRULE:FREQ=DAILY\nBEGIN:VALARM\nACTION:EMAXL\nTRIGGER:-P1D\nEND:VALARM\nEND:VEVENT\n",
    );
    let user = User::utc();
    let started = std::time::Instant::now();
    assert!(upcoming_alarms(&o, &user.view(), at("2026-12-01T00:00:00Z"), 5, &policy()).is_empty());
    assert_eq!(
        next_check(
            &o,
            &[(user.view(), at("2026-12-01T00:00:00Z"))],
            at("2026-12-01T00:00:00Z"),
            &policy()
        ),
        None
    );
    assert!(
        started.elapsed() < std::time::Duration::from_millis(100),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn upcoming_over_a_series_declined_forever_is_bounded() {
    let o = obj(
        "BEGIN:VEVENT\nUID:e\nDTSTART:20000101T100000Z\nRRULE:FREQ=DAILY\nATTENDEE;PARTSTAT=DECLINED:mailto:alice@example.com\nBEGIN:VALARM\nACTION:DISPLAY\nTRIGGER:-PT5M\nEND:VALARM\nEND:VEVENT\n",
    );
    let user = User::utc();
    assert!(upcoming_alarms(&o, &user.view(), at("2026-12-01T00:00:00Z"), 5, &policy()).is_empty());
    // A re-check is still scheduled: the series goes on (invariant 4 holds
    // trivially, nothing is due).
    let n = next_check(
        &o,
        &[(user.view(), at("2026-12-01T00:00:00Z"))],
        at("2026-12-01T00:00:00Z"),
        &policy(),
    );
    assert!(n.is_none_or(|n| n.is_recheck));
}

#[test]
fn flood_guard_spaces_rule_instances_only() {
    // Found by the differential test: an override moved onto a rule
    // instance's start (without alarms of its own) must not suppress that
    // instance's alarm.
    let body = event(
        "RRULE:FREQ=HOURLY;COUNT=3\n",
        "ACTION:DISPLAY\nTRIGGER:-PT5M\n",
    ) + "BEGIN:VEVENT\nUID:e1\nRECURRENCE-ID:20261204T100000Z\nDTSTART:20261204T110000Z\nDTEND:20261204T113000Z\nEND:VEVENT\n";
    let o = obj(&body);
    assert_eq!(
        next_triggers(&o, &User::utc(), "2026-12-01T00:00:00Z", 5),
        ["2026-12-04T10:55:00Z", "2026-12-04T11:55:00Z"]
    );
}

#[test]
fn time_part_of_trigger_is_exact_across_dst() {
    // RFC 5545 §3.3.6: hours are exact; 12 h before 07:00Z is 19:00Z even
    // though the wall clock jumped in between (see
    // tests/oracle_defects/trigger_exact_across_dst.ics).
    let o = obj(
        "BEGIN:VEVENT\nUID:e\nDTSTART;TZID=Europe/Berlin:20260329T090000\nBEGIN:VALARM\nACTION:DISPLAY\nTRIGGER:-PT12H\nEND:VALARM\nEND:VEVENT\n",
    );
    assert_eq!(
        next_triggers(&o, &User::utc(), "2026-03-01T00:00:00Z", 1),
        ["2026-03-28T19:00:00Z"]
    );
}
