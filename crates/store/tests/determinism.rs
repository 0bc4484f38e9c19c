//! Invariant 2: the same command log, applied to two fresh stores in any
//! batching, gives byte-identical state digests; a snapshot carries the
//! same state to a third.

use proptest::prelude::*;
use tocsin_calendar::Instant;
use tocsin_store::{
    CalendarId, Command, CreateCalendar, CreateUser, ObjectId, Precondition, PropName, PutObject,
    ShareAccess, ShareCalendar, Store, TimeBounds, revision_of,
};

fn user(i: u8) -> String {
    format!("user{}", i % 3)
}

fn calendar(i: u8) -> CalendarId {
    CalendarId(format!("cal{}", i % 4))
}

/// A small alphabet of commands over few names, so they collide often:
/// rejections must be as deterministic as successes.
fn command() -> impl Strategy<Value = Command> {
    let at = (0i64..1_000_000).prop_map(Instant::from_millis);
    prop_oneof![
        (any::<u8>(), at.clone()).prop_map(|(i, at)| Command::CreateUser(CreateUser {
            name: user(i),
            password_hash: format!("hash{i}"),
            display_name: None,
            addresses: vec![format!("mailto:{}@x", user(i))],
            default_calendar: None,
            at,
        })),
        (any::<u8>(), any::<u8>(), at.clone()).prop_map(|(u, c, at)| Command::CreateCalendar(
            CreateCalendar {
                id: calendar(c),
                owner: user(u),
                slug: format!("s{}", c % 4),
                components: vec!["VEVENT".into()],
                props: vec![(PropName::new("DAV:", "displayname"), format!("n{c}"))],
                at,
            }
        )),
        (
            any::<u8>(),
            any::<u8>(),
            any::<u8>(),
            proptest::option::of(0i64..2_000_000),
            any::<bool>(),
            at.clone()
        )
            .prop_map(|(c, h, e, next, guarded, at)| Command::PutObject(Box::new(
                PutObject {
                    calendar_id: calendar(c),
                    href: format!("{}.ics", h % 5),
                    new_object_id: ObjectId(format!("o{c}-{h}-{}", at.millis())),
                    uid: format!("uid{}", h % 6),
                    kind: "VEVENT".into(),
                    ical: format!("BEGIN:VCALENDAR\r\nX:{e}\r\nEND:VCALENDAR\r\n"),
                    etag: format!("e{e}"),
                    bounds: TimeBounds::default(),
                    precondition: if guarded {
                        Precondition::IfMatch(format!("e{}", e / 2))
                    } else {
                        Precondition::None
                    },
                    next_check: next.map(Instant::from_millis),
                    zone_fingerprint: String::new(),
                    as_user: String::new(),
                    per_user: None,
                    at,
                }
            ))),
        (any::<u8>(), any::<u8>(), at.clone()).prop_map(|(c, h, at)| Command::DeleteObject {
            calendar_id: calendar(c),
            href: format!("{}.ics", h % 5),
            if_match: None,
            as_user: String::new(),
            at,
        }),
        (any::<u8>(), at.clone()).prop_map(|(c, at)| Command::DeleteCalendar {
            id: calendar(c),
            at
        }),
        (any::<u8>(), at.clone()).prop_map(|(u, at)| Command::RemoveUser { name: user(u), at }),
        (any::<u8>(), any::<u8>(), any::<bool>(), at.clone()).prop_map(|(c, u, write, at)| {
            Command::ShareCalendar(ShareCalendar {
                calendar_id: calendar(c),
                sharee: user(u),
                access: if write { ShareAccess::ReadWrite } else { ShareAccess::Read },
                slug: format!("shared{}", c % 4),
                at,
            })
        }),
        (any::<u8>(), any::<u8>(), at.clone()).prop_map(|(c, u, at)| Command::RevokeShare {
            calendar_id: calendar(c),
            sharee: user(u),
            at,
        }),
        (any::<u8>(), any::<u8>(), any::<u8>(), at.clone()).prop_map(|(c, u, t, at)| Command::PatchUserCalendar {
            calendar_id: calendar(c),
            user: user(u),
            set: vec![(
                PropName::new("urn:ietf:params:xml:ns:caldav", "default-alarm-vevent-datetime"),
                format!("BEGIN:VALARM\r\nACTION:DISPLAY\r\nTRIGGER:-PT{t}M\r\nEND:VALARM\r\n"),
            )],
            remove: vec![],
            replan: vec![],
            at,
        }),
        // A per-user write: the shared part and the writer's own part.
        (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>(), at).prop_map(|(c, h, u, t, at)| {
            let shared = format!("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:uid{}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", h % 6);
            Command::PutObject(Box::new(PutObject {
                calendar_id: calendar(c),
                href: format!("{}.ics", h % 5),
                new_object_id: ObjectId(format!("p{c}-{h}-{}", at.millis())),
                uid: format!("uid{}", h % 6),
                kind: "VEVENT".into(),
                etag: tocsin_store::etag_of(&shared),
                ical: shared,
                bounds: TimeBounds::default(),
                precondition: Precondition::None,
                next_check: None,
                zone_fingerprint: String::new(),
                as_user: user(u),
                per_user: Some(format!("BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:uid{}\r\nBEGIN:VALARM\r\nTRIGGER:-PT{t}M\r\nEND:VALARM\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n", h % 6)),
                at,
            }))
        }),
    ]
}

fn apply_in_batches(store: &mut Store, log: &[Command], batch: usize) -> Vec<String> {
    let mut outcomes = Vec::new();
    for (chunk_start, chunk) in log.chunks(batch.max(1)).enumerate() {
        let base = (chunk_start * batch.max(1)) as u64 + 1;
        let items = chunk
            .iter()
            .enumerate()
            .map(|(i, c)| (revision_of(base + i as u64, 0), c));
        let results = store.apply_batch(items, "{}").expect("apply");
        outcomes.extend(results.into_iter().map(|o| format!("{o:?}")));
    }
    outcomes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]
    #[test]
    fn same_log_gives_same_digest_whatever_the_batching(
        commands in proptest::collection::vec(command(), 1..80),
        batch_a in 1usize..7,
        batch_b in 1usize..40,
    ) {
        let log: Vec<Command> = commands;
        let dir = tempfile::tempdir().unwrap();
        let mut a = Store::open(&dir.path().join("a.db")).unwrap();
        let mut b = Store::open(&dir.path().join("b.db")).unwrap();
        let outcomes_a = apply_in_batches(&mut a, &log, batch_a);
        let outcomes_b = apply_in_batches(&mut b, &log, batch_b);
        prop_assert_eq!(outcomes_a, outcomes_b);
        let digest_a = a.reader().read(|q| q.digest()).unwrap();
        prop_assert_eq!(&digest_a, &b.reader().read(|q| q.digest()).unwrap());

        // A snapshot of `a`, installed over a store with other content,
        // reproduces the same state.
        let snapshot = dir.path().join("snap.db");
        a.reader().export_snapshot(&snapshot).unwrap();
        let mut c = Store::open(&dir.path().join("c.db")).unwrap();
        apply_in_batches(&mut c, &log[..log.len() / 2], 3);
        c.import_snapshot(&snapshot).unwrap();
        prop_assert_eq!(&digest_a, &c.reader().read(|q| q.digest()).unwrap());
    }
}

#[test]
fn different_logs_give_different_digests() {
    let dir = tempfile::tempdir().unwrap();
    let mut a = Store::open(&dir.path().join("a.db")).unwrap();
    let mut b = Store::open(&dir.path().join("b.db")).unwrap();
    let make = |name: &str| {
        Command::CreateUser(CreateUser {
            name: name.into(),
            password_hash: "h".into(),
            display_name: None,
            addresses: vec![],
            default_calendar: None,
            at: Instant::from_millis(1),
        })
    };
    a.apply_batch([(1, &make("x"))], "{}").unwrap();
    b.apply_batch([(1, &make("y"))], "{}").unwrap();
    assert_ne!(
        a.reader().read(|q| q.digest()).unwrap(),
        b.reader().read(|q| q.digest()).unwrap()
    );
}
