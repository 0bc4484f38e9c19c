//! Behaviour of `apply`, one test per rule it enforces.

use tocsin_calendar::Instant;
use tocsin_store::{
    CalendarId, Command, CreateCalendar, CreateUser, Envelope, ObjectId, Outcome, Precondition,
    PropName, PutObject, Rejection, Store, TimeBounds, revision_of,
};

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    next_index: u64,
}

impl Fixture {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(&dir.path().join("state.db")).expect("open store");
        Fixture {
            _dir: dir,
            store,
            next_index: 1,
        }
    }

    fn apply(&mut self, command: Command) -> Outcome {
        let index = self.next_index;
        self.next_index += 1;
        let mut outcomes = self
            .store
            .apply_batch([(revision_of(index, 0), &command)], "{}")
            .expect("apply");
        outcomes.pop().expect("an outcome")
    }

    fn with_user_and_calendar(mut self) -> Self {
        let outcome = self.apply(create_user("alice"));
        assert!(matches!(outcome, Outcome::Applied { created: true, .. }));
        self
    }
}

fn at(ms: i64) -> Instant {
    Instant::from_millis(ms)
}

fn calendar_id() -> CalendarId {
    CalendarId("cal-1".into())
}

fn create_user(name: &str) -> Command {
    Command::CreateUser(CreateUser {
        name: name.into(),
        password_hash: "$argon2id$test".into(),
        display_name: None,
        addresses: vec![format!("mailto:{name}@example.com")],
        default_calendar: Some(CreateCalendar {
            id: calendar_id(),
            owner: name.into(),
            slug: "default".into(),
            components: vec!["VEVENT".into(), "VTODO".into()],
            props: vec![(PropName::new("DAV:", "displayname"), "Calendar".into())],
            at: at(1_000),
        }),
        at: at(1_000),
    })
}

fn put(
    href: &str,
    uid: &str,
    etag: &str,
    precondition: Precondition,
    next_check: Option<i64>,
    now: i64,
) -> Command {
    Command::PutObject(Box::new(PutObject {
        calendar_id: calendar_id(),
        href: href.into(),
        new_object_id: ObjectId(format!("obj-{href}")),
        uid: uid.into(),
        kind: "VEVENT".into(),
        ical: format!("BEGIN:VCALENDAR\r\nUID:{uid}\r\nEND:VCALENDAR\r\n"),
        etag: etag.into(),
        bounds: TimeBounds::default(),
        precondition,
        next_check: next_check.map(at),
        zone_fingerprint: String::new(),
        as_user: String::new(),
        per_user: None,
        at: at(now),
    }))
}

#[test]
fn put_creates_then_replaces() {
    let mut f = Fixture::new().with_user_and_calendar();
    assert!(matches!(
        f.apply(put("a.ics", "u1", "e1", Precondition::None, None, 2_000)),
        Outcome::Applied { created: true, .. }
    ));
    assert!(matches!(
        f.apply(put("a.ics", "u1", "e2", Precondition::None, None, 3_000)),
        Outcome::Applied { created: false, .. }
    ));
    let object = f
        .store
        .reader()
        .read(|q| q.object(&calendar_id(), "a.ics"))
        .unwrap()
        .unwrap();
    assert_eq!(object.etag, "e2");
    assert_eq!(object.created, at(2_000));
    assert_eq!(object.modified, at(3_000));
}

#[test]
fn if_match_with_a_stale_etag_is_rejected_and_changes_nothing() {
    let mut f = Fixture::new().with_user_and_calendar();
    f.apply(put("a.ics", "u1", "e1", Precondition::None, None, 2_000));
    let before = f.store.reader().read(|q| q.digest()).unwrap();
    let outcome = f.apply(put(
        "a.ics",
        "u1",
        "e2",
        Precondition::IfMatch("stale".into()),
        None,
        3_000,
    ));
    assert_eq!(outcome, Outcome::Rejected(Rejection::PreconditionFailed));
    assert_eq!(f.store.reader().read(|q| q.digest()).unwrap(), before);
}

#[test]
fn if_none_match_on_an_existing_href_is_rejected() {
    let mut f = Fixture::new().with_user_and_calendar();
    f.apply(put("a.ics", "u1", "e1", Precondition::None, None, 2_000));
    let outcome = f.apply(put(
        "a.ics",
        "u1",
        "e2",
        Precondition::IfNoneMatch,
        None,
        3_000,
    ));
    assert_eq!(outcome, Outcome::Rejected(Rejection::PreconditionFailed));
}

#[test]
fn a_uid_held_by_another_href_is_a_conflict() {
    let mut f = Fixture::new().with_user_and_calendar();
    f.apply(put("a.ics", "u1", "e1", Precondition::None, None, 2_000));
    let outcome = f.apply(put("b.ics", "u1", "e2", Precondition::None, None, 3_000));
    assert_eq!(
        outcome,
        Outcome::Rejected(Rejection::UidConflict {
            href: "a.ics".into()
        })
    );
}

#[test]
fn an_edit_keeps_the_watermark_invariant_7() {
    let mut f = Fixture::new().with_user_and_calendar();
    f.apply(put(
        "a.ics",
        "u1",
        "e1",
        Precondition::None,
        Some(50_000),
        2_000,
    ));
    f.apply(put(
        "a.ics",
        "u1",
        "e2",
        Precondition::None,
        Some(60_000),
        9_000,
    ));
    let marks = f
        .store
        .reader()
        .read(|q| q.watermarks(&ObjectId("obj-a.ics".into())))
        .unwrap();
    assert_eq!(marks, vec![("alice".to_owned(), at(2_000))]);
}

#[test]
fn an_alarm_moved_earlier_moves_the_index_row_earlier_invariant_4() {
    // The seed's bug: a stored later value must never survive a write that
    // plans an earlier one.
    let mut f = Fixture::new().with_user_and_calendar();
    f.apply(put(
        "a.ics",
        "u1",
        "e1",
        Precondition::None,
        Some(90_000),
        2_000,
    ));
    f.apply(put(
        "a.ics",
        "u1",
        "e2",
        Precondition::None,
        Some(40_000),
        3_000,
    ));
    let id = ObjectId("obj-a.ics".into());
    assert_eq!(
        f.store.reader().read(|q| q.next_check(&id)).unwrap(),
        Some(at(40_000))
    );
    f.apply(put("a.ics", "u1", "e3", Precondition::None, None, 4_000));
    assert_eq!(f.store.reader().read(|q| q.next_check(&id)).unwrap(), None);
}

#[test]
fn delete_removes_derived_rows_and_leaves_a_tombstone() {
    let mut f = Fixture::new().with_user_and_calendar();
    f.apply(put(
        "a.ics",
        "u1",
        "e1",
        Precondition::None,
        Some(90_000),
        2_000,
    ));
    let outcome = f.apply(Command::DeleteObject {
        calendar_id: calendar_id(),
        href: "a.ics".into(),
        if_match: None,
        as_user: String::new(),
        at: at(3_000),
    });
    let Outcome::Applied { revision, .. } = outcome else {
        panic!("delete rejected: {outcome:?}")
    };
    let id = ObjectId("obj-a.ics".into());
    let reader = f.store.reader();
    assert_eq!(reader.read(|q| q.next_check(&id)).unwrap(), None);
    assert!(reader.read(|q| q.watermarks(&id)).unwrap().is_empty());
    let changes = reader
        .read(|q| q.changes_since(&calendar_id(), 0, 100))
        .unwrap();
    assert_eq!(
        changes,
        vec![tocsin_store::Change::Deleted {
            href: "a.ics".into(),
            revision
        }]
    );
    let calendar = reader
        .read(|q| q.calendar(&calendar_id()))
        .unwrap()
        .unwrap();
    assert_eq!(calendar.revision, revision);
}

#[test]
fn delete_with_a_stale_if_match_is_rejected() {
    let mut f = Fixture::new().with_user_and_calendar();
    f.apply(put("a.ics", "u1", "e1", Precondition::None, None, 2_000));
    let outcome = f.apply(Command::DeleteObject {
        calendar_id: calendar_id(),
        href: "a.ics".into(),
        if_match: Some("nope".into()),
        as_user: String::new(),
        at: at(3_000),
    });
    assert_eq!(outcome, Outcome::Rejected(Rejection::PreconditionFailed));
}

#[test]
fn sync_changes_are_ordered_by_revision_and_limited() {
    let mut f = Fixture::new().with_user_and_calendar();
    for i in 0..5 {
        f.apply(put(
            &format!("{i}.ics"),
            &format!("u{i}"),
            "e",
            Precondition::None,
            None,
            2_000,
        ));
    }
    let reader = f.store.reader();
    let all = reader
        .read(|q| q.changes_since(&calendar_id(), 0, 100))
        .unwrap();
    assert_eq!(all.len(), 5);
    assert!(all.windows(2).all(|w| w[0].revision() < w[1].revision()));
    let after_second = reader
        .read(|q| q.changes_since(&calendar_id(), all[1].revision(), 2))
        .unwrap();
    assert_eq!(after_second, all[2..4].to_vec());
}

#[test]
fn removing_a_user_removes_their_calendars() {
    let mut f = Fixture::new().with_user_and_calendar();
    f.apply(put(
        "a.ics",
        "u1",
        "e1",
        Precondition::None,
        Some(5_000),
        2_000,
    ));
    let outcome = f.apply(Command::RemoveUser {
        name: "alice".into(),
        at: at(3_000),
    });
    assert!(matches!(outcome, Outcome::Applied { .. }));
    let counts = f.store.reader().read(|q| q.counts()).unwrap();
    assert_eq!(
        (
            counts.users,
            counts.calendars,
            counts.objects,
            counts.alarm_index
        ),
        (0, 0, 0, 0)
    );
}

#[test]
fn creating_a_calendar_for_a_missing_owner_is_not_found() {
    let mut f = Fixture::new();
    let outcome = f.apply(Command::CreateCalendar(CreateCalendar {
        id: CalendarId("x".into()),
        owner: "ghost".into(),
        slug: "x".into(),
        components: vec![],
        props: vec![],
        at: at(1),
    }));
    assert_eq!(outcome, Outcome::Rejected(Rejection::NotFound));
}

#[test]
fn an_entry_of_a_newer_format_is_refused() {
    let mut envelope = Envelope::new(vec![Command::Noop {
        padding: String::new(),
    }]);
    assert!(envelope.check_format().is_ok());
    envelope.format = tocsin_store::COMMAND_FORMAT + 1;
    let err = envelope.check_format().unwrap_err();
    assert!(err.to_string().contains("newer"), "{err}");
}

#[test]
fn commands_of_one_entry_get_distinct_increasing_revisions() {
    let mut f = Fixture::new().with_user_and_calendar();
    let a = put("a.ics", "ua", "e", Precondition::None, None, 2_000);
    let b = put("b.ics", "ub", "e", Precondition::None, None, 2_000);
    let outcomes = f
        .store
        .apply_batch([(revision_of(7, 0), &a), (revision_of(7, 1), &b)], "{}")
        .unwrap();
    let revisions: Vec<u64> = outcomes
        .iter()
        .map(|o| match o {
            Outcome::Applied { revision, .. } => *revision,
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(revisions[0] < revisions[1]);
    assert!(revision_of(6, tocsin_store::ENVELOPE_COMMANDS_MAX - 1) < revisions[0]);
    assert!(revisions[1] < revision_of(8, 0));
}

#[test]
fn a_calendar_remembers_a_bounded_number_of_deletions_and_raises_its_sync_horizon() {
    let mut f = Fixture::new().with_user_and_calendar();
    let kept = tocsin_store::TOMBSTONES_KEPT_PER_CALENDAR;
    let hrefs: Vec<String> = (0..kept + 2).map(|n| format!("e{n}.ics")).collect();
    let puts: Vec<Command> = hrefs
        .iter()
        .map(|href| put(href, href, "e", Precondition::None, None, 2_000))
        .collect();
    let deletes: Vec<Command> = hrefs
        .iter()
        .map(|href| Command::DeleteObject {
            calendar_id: calendar_id(),
            href: href.clone(),
            if_match: None,
            as_user: String::new(),
            at: at(3_000),
        })
        .collect();
    let mut delete_revisions = Vec::new();
    for chunk in puts.chunks(1_000).chain(deletes.chunks(1_000)) {
        let index = f.next_index;
        f.next_index += 1;
        let outcomes = f
            .store
            .apply_batch(
                chunk
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (revision_of(index, i), c)),
                "{}",
            )
            .unwrap();
        for (command, outcome) in chunk.iter().zip(outcomes) {
            let Outcome::Applied { revision, .. } = outcome else {
                panic!("rejected: {outcome:?}")
            };
            if matches!(command, Command::DeleteObject { .. }) {
                delete_revisions.push(revision);
            }
        }
    }
    let reader = f.store.reader();
    let horizon = reader.read(|q| q.sync_horizon(&calendar_id())).unwrap();
    assert_eq!(
        horizon, delete_revisions[1],
        "the two oldest deletions are forgotten"
    );
    let remembered = reader
        .read(|q| q.changes_since(&calendar_id(), horizon, usize::MAX))
        .unwrap();
    assert_eq!(remembered.len(), kept, "every later deletion is remembered");
    assert!(
        remembered
            .iter()
            .all(|c| matches!(c, tocsin_store::Change::Deleted { .. }))
    );
}
