//! The alarm commands: firing is a compare-and-swap that moves the index,
//! the watermarks and the outbox together (invariants 3–7), and delivery
//! results settle an entry once.

use tocsin_calendar::Instant;
use tocsin_store::{
    CalendarId, Command, CreateCalendar, CreateUser, DeliveryResult, FireAlarms, NewDelivery,
    ObjectId, Outcome, Precondition, PutObject, RecordDelivery, Rejection, Store, TimeBounds,
    WatermarkAdvance, revision_of,
};

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    index: u64,
}

fn at(ms: i64) -> Instant {
    Instant::from_millis(ms)
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).unwrap();
        let mut f = Fixture {
            _dir: dir,
            store,
            index: 0,
        };
        f.apply(Command::CreateUser(CreateUser {
            name: "alice".into(),
            password_hash: "h".into(),
            display_name: None,
            addresses: vec!["mailto:alice@example.com".into()],
            default_calendar: Some(CreateCalendar {
                id: CalendarId("cal".into()),
                owner: "alice".into(),
                slug: "calendar".into(),
                components: vec!["VEVENT".into()],
                props: vec![],
                at: at(0),
            }),
            at: at(0),
        }));
        f.apply(put("e1", Some(5_000), 1_000));
        f
    }

    fn apply(&mut self, command: Command) -> Outcome {
        self.index += 1;
        self.store
            .apply_batch([(revision_of(self.index, 0), &command)], "{}")
            .unwrap()
            .pop()
            .unwrap()
    }

    fn outbox(&self) -> Vec<(String, String)> {
        self.store
            .reader()
            .read(|q| q.outbox_log(None, 100))
            .unwrap()
            .into_iter()
            .map(|e| (e.key, e.state))
            .collect()
    }
}

fn put(etag: &str, next_check: Option<i64>, now: i64) -> Command {
    Command::PutObject(Box::new(PutObject {
        calendar_id: CalendarId("cal".into()),
        href: "a.ics".into(),
        new_object_id: ObjectId("obj".into()),
        uid: "u".into(),
        kind: "VEVENT".into(),
        ical: format!("BEGIN:VCALENDAR\r\nX:{etag}\r\nEND:VCALENDAR\r\n"),
        etag: etag.into(),
        bounds: TimeBounds::default(),
        precondition: Precondition::None,
        next_check: next_check.map(at),
        zone_fingerprint: String::new(),
        as_user: String::new(),
        per_user: None,
        at: at(now),
    }))
}

fn delivery(key: &str, skipped: bool) -> NewDelivery {
    NewDelivery {
        key: key.into(),
        user: "alice".into(),
        channel: "log".into(),
        recipient: "log".into(),
        trigger: at(5_000),
        skipped: skipped.then(|| "too late".to_owned()),
        payload: "{}".into(),
    }
}

fn fire(
    etag: &str,
    from: Option<i64>,
    to: i64,
    deliveries: Vec<NewDelivery>,
    next: Option<i64>,
) -> Command {
    Command::FireAlarms(Box::new(FireAlarms {
        object_id: ObjectId("obj".into()),
        expected_etag: etag.into(),
        watermarks: vec![WatermarkAdvance {
            user: "alice".into(),
            from: from.map(at),
            to: at(to),
        }],
        deliveries,
        next_check: next.map(at),
        at: at(to),
    }))
}

#[test]
fn firing_commits_the_intent_the_watermark_and_the_next_check_together() {
    let mut f = Fixture::new();
    let outcome = f.apply(fire(
        "e1",
        Some(1_000),
        5_000,
        vec![delivery("k1", false), delivery("k2", true)],
        Some(9_000),
    ));
    assert!(matches!(outcome, Outcome::Applied { .. }));
    let reader = f.store.reader();
    let id = ObjectId("obj".into());
    assert_eq!(reader.read(|q| q.next_check(&id)).unwrap(), Some(at(9_000)));
    assert_eq!(
        reader.read(|q| q.watermarks(&id)).unwrap(),
        vec![("alice".into(), at(5_000))]
    );
    let mut outbox = f.outbox();
    outbox.sort();
    assert_eq!(
        outbox,
        vec![
            ("k1".into(), "pending".into()),
            ("k2".into(), "skipped".into())
        ]
    );
    let due = reader
        .read(|q| q.pending_deliveries(at(5_000), 10))
        .unwrap();
    assert_eq!(
        due.iter().map(|e| e.key.as_str()).collect::<Vec<_>>(),
        ["k1"]
    );
}

#[test]
fn a_plan_from_an_edited_object_changes_nothing() {
    let mut f = Fixture::new();
    f.apply(put("e2", Some(6_000), 2_000));
    let before = f.store.reader().read(|q| q.digest()).unwrap();
    let outcome = f.apply(fire(
        "e1",
        Some(1_000),
        5_000,
        vec![delivery("k1", false)],
        Some(9_000),
    ));
    assert_eq!(outcome, Outcome::Rejected(Rejection::Stale));
    assert_eq!(f.store.reader().read(|q| q.digest()).unwrap(), before);
}

#[test]
fn a_plan_from_an_older_watermark_changes_nothing() {
    // A second scheduler (a new leader) planning from the same state as a
    // firing that already committed cannot fire the same alarms again.
    let mut f = Fixture::new();
    f.apply(fire(
        "e1",
        Some(1_000),
        5_000,
        vec![delivery("k1", false)],
        Some(9_000),
    ));
    let outcome = f.apply(fire(
        "e1",
        Some(1_000),
        5_100,
        vec![delivery("k1b", false)],
        Some(9_000),
    ));
    assert_eq!(outcome, Outcome::Rejected(Rejection::Stale));
    assert_eq!(f.outbox().len(), 1);
}

#[test]
fn the_same_key_never_makes_a_second_outbox_row_invariant_6() {
    let mut f = Fixture::new();
    f.apply(fire(
        "e1",
        Some(1_000),
        5_000,
        vec![delivery("k1", false)],
        Some(9_000),
    ));
    f.apply(fire(
        "e1",
        Some(5_000),
        9_000,
        vec![delivery("k1", false)],
        None,
    ));
    assert_eq!(f.outbox(), vec![("k1".into(), "pending".into())]);
}

#[test]
fn delivery_results_settle_an_entry_once() {
    let mut f = Fixture::new();
    f.apply(fire(
        "e1",
        Some(1_000),
        5_000,
        vec![delivery("k1", false)],
        None,
    ));
    let retry = Command::RecordDelivery(RecordDelivery {
        key: "k1".into(),
        result: DeliveryResult::Retry {
            next_attempt: at(20_000),
            error: "connection refused".into(),
        },
        at: at(6_000),
    });
    assert!(matches!(f.apply(retry), Outcome::Applied { .. }));
    let entry = f
        .store
        .reader()
        .read(|q| q.outbox_entry("k1"))
        .unwrap()
        .unwrap();
    assert_eq!(
        (entry.state.as_str(), entry.attempts, entry.next_attempt),
        ("pending", 1, Some(at(20_000)))
    );
    assert!(
        f.store
            .reader()
            .read(|q| q.pending_deliveries(at(19_999), 10))
            .unwrap()
            .is_empty()
    );
    let delivered = |t| {
        Command::RecordDelivery(RecordDelivery {
            key: "k1".into(),
            result: DeliveryResult::Delivered,
            at: at(t),
        })
    };
    assert!(matches!(
        f.apply(delivered(20_100)),
        Outcome::Applied { .. }
    ));
    assert_eq!(
        f.apply(delivered(20_200)),
        Outcome::Rejected(Rejection::Stale)
    );
    let entry = f
        .store
        .reader()
        .read(|q| q.outbox_entry("k1"))
        .unwrap()
        .unwrap();
    assert_eq!(
        (entry.state.as_str(), entry.attempts, entry.updated),
        ("delivered", 2, at(20_100))
    );
}

#[test]
fn deleting_an_object_cancels_its_pending_deliveries_with_a_reason_invariant_8() {
    let mut f = Fixture::new();
    f.apply(fire(
        "e1",
        Some(1_000),
        5_000,
        vec![delivery("k1", false)],
        None,
    ));
    f.apply(Command::DeleteObject {
        calendar_id: CalendarId("cal".into()),
        href: "a.ics".into(),
        if_match: None,
        as_user: String::new(),
        at: at(5_500),
    });
    let entry = f
        .store
        .reader()
        .read(|q| q.outbox_entry("k1"))
        .unwrap()
        .unwrap();
    assert_eq!(entry.state, "cancelled");
    assert_eq!(entry.last_error.as_deref(), Some("object deleted"));
}

#[test]
fn the_earliest_due_object_is_found_from_the_index() {
    let mut f = Fixture::new();
    let reader = f.store.reader();
    assert_eq!(reader.read(|q| q.next_due()).unwrap(), Some(at(5_000)));
    assert!(
        reader
            .read(|q| q.due_objects(at(4_999), 10))
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        reader.read(|q| q.due_objects(at(5_000), 10)).unwrap().len(),
        1
    );
    f.apply(put("e3", None, 3_000));
    assert_eq!(reader.read(|q| q.next_due()).unwrap(), None);
}

fn tz_prop() -> tocsin_store::PropName {
    tocsin_store::calendar_timezone_prop()
}

#[test]
fn a_write_planned_in_a_zone_that_changed_since_changes_nothing() {
    let mut f = Fixture::new();
    f.apply(Command::PatchCalendar {
        id: CalendarId("cal".into()),
        set: vec![(tz_prop(), "BEGIN:VCALENDAR…".into())],
        remove: vec![],
        replan: vec![tocsin_store::ObjectReplan {
            object_id: ObjectId("obj".into()),
            etag: "e1".into(),
            next_check: Some(at(4_000)),
        }],
        at: at(2_000),
    });
    // Planned before the zone changed: the empty fingerprint of "no zone".
    assert_eq!(
        f.apply(put("e9", Some(1), 3_000)),
        Outcome::Rejected(Rejection::Stale)
    );
}

#[test]
fn a_zone_change_replans_every_object_or_nothing() {
    let mut f = Fixture::new();
    let patch = |replan: Vec<tocsin_store::ObjectReplan>| Command::PatchCalendar {
        id: CalendarId("cal".into()),
        set: vec![(tz_prop(), "BEGIN:VCALENDAR…".into())],
        remove: vec![],
        replan,
        at: at(2_000),
    };
    assert_eq!(f.apply(patch(vec![])), Outcome::Rejected(Rejection::Stale));
    let stale = tocsin_store::ObjectReplan {
        object_id: ObjectId("obj".into()),
        etag: "old".into(),
        next_check: Some(at(4_000)),
    };
    assert_eq!(
        f.apply(patch(vec![stale])),
        Outcome::Rejected(Rejection::Stale)
    );
    let current = tocsin_store::ObjectReplan {
        object_id: ObjectId("obj".into()),
        etag: "e1".into(),
        next_check: Some(at(4_000)),
    };
    assert!(matches!(
        f.apply(patch(vec![current])),
        Outcome::Applied { .. }
    ));
    let id = ObjectId("obj".into());
    assert_eq!(
        f.store.reader().read(|q| q.next_check(&id)).unwrap(),
        Some(at(4_000))
    );
}
