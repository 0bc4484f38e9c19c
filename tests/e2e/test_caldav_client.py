"""End-to-end: the python `caldav` library against a running Tocsin.

Each test uses the library the way an application would, and where the
library could hide a server fault behind a client-side fallback, checks
the server's own answer with a raw request too.
"""

import base64
import http.client
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta, timezone
from urllib.parse import urlsplit

import caldav
import pytest
from caldav.lib.error import AuthorizationError

from conftest import raw

UTC = timezone.utc
DAV = "{DAV:}"


def client(server, user="alice", password=None):
    return caldav.DAVClient(url=server.url + "/", username=user, password=password or f"{user}-pw")


def new_calendar(server, name=None):
    principal = client(server).principal()
    cal_id = name or "t-" + uuid.uuid4().hex[:8]
    return principal.make_calendar(name=cal_id.upper(), cal_id=cal_id)


def event_ics(uid, start, end, summary="Event", extra="", body_extra=""):
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tocsin-tests//EN\r\n"
        f"{extra}"
        "BEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{start}\r\nDTEND:{end}\r\nSUMMARY:{summary}\r\n"
        f"{body_extra}"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


BERLIN = (
    "BEGIN:VTIMEZONE\r\nTZID:Europe/Berlin\r\n"
    "BEGIN:DAYLIGHT\r\nTZOFFSETFROM:+0100\r\nTZOFFSETTO:+0200\r\nTZNAME:CEST\r\nDTSTART:19700329T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU\r\nEND:DAYLIGHT\r\n"
    "BEGIN:STANDARD\r\nTZOFFSETFROM:+0200\r\nTZOFFSETTO:+0100\r\nTZNAME:CET\r\nDTSTART:19701025T030000\r\nRRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU\r\nEND:STANDARD\r\n"
    "END:VTIMEZONE\r\n"
)


def test_discovery_from_the_root_url_finds_the_calendars(server):
    principal = client(server).principal()
    assert principal.url.path == "/dav/principals/alice/"
    calendars = principal.calendars()
    assert any(c.url.path == "/dav/calendars/alice/calendar/" for c in calendars)
    addresses = principal.calendar_user_address_set()
    assert "mailto:alice@example.com" in addresses


def test_the_well_known_uri_redirects_to_the_dav_root(server):
    status, headers, _ = raw(server, "PROPFIND", "/.well-known/caldav", user=None)
    assert status == 301 and headers["Location"] == "/dav/"


def test_requests_without_credentials_get_401_with_a_challenge(server):
    for path in ["/", "/dav/", "/dav/principals/alice/", "/dav/calendars/alice/calendar/"]:
        status, headers, _ = raw(server, "PROPFIND", path, user=None, headers={"Depth": "0"})
        assert status == 401, path
        assert headers["WWW-Authenticate"].startswith("Basic realm=")


def test_a_wrong_password_is_refused(server):
    with pytest.raises(AuthorizationError):
        client(server, password="wrong").principal()
    status, _, _ = raw(server, "PROPFIND", "/", password="wrong", headers={"Depth": "0"})
    assert status == 401


def test_a_user_cannot_reach_another_users_calendars(server):
    status, _, _ = raw(server, "PROPFIND", "/dav/calendars/alice/calendar/", user="bob", headers={"Depth": "0"})
    assert status in (403, 404)
    status, _, _ = raw(server, "GET", "/dav/calendars/alice/calendar/x.ics", user="bob")
    assert status in (403, 404)


def test_a_calendar_is_created_renamed_and_deleted(server):
    principal = client(server).principal()
    calendar = principal.make_calendar(name="Work", cal_id="work")
    assert calendar.get_display_name() == "Work"
    calendar.set_properties([caldav.elements.dav.DisplayName("Office")])
    assert principal.calendar(cal_id="work").get_display_name() == "Office"
    assert any(c.url.path == "/dav/calendars/alice/work/" for c in principal.calendars())
    calendar.delete()
    assert not any(c.url.path == "/dav/calendars/alice/work/" for c in principal.calendars())


def test_events_are_saved_loaded_updated_and_deleted(server):
    calendar = new_calendar(server)
    uid = str(uuid.uuid4())
    text = event_ics(uid, "20270105T090000Z", "20270105T100000Z", "Standup")
    event = calendar.save_event(text)
    loaded = calendar.event_by_uid(uid)
    assert loaded.icalendar_component["SUMMARY"] == "Standup"
    # What a client sends is what GET returns, byte for byte (the library
    # re-serialises, so this one goes raw).
    exact = text.replace("SUMMARY:Standup\r\n", "SUMMARY:Standup\r\nX-ODD-ORDER:kept;as=is\r\n")
    status, _, _ = raw(server, "PUT", calendar.url.path + "exact.ics", exact.replace(uid, uid + "-x"), {"Content-Type": "text/calendar"})
    assert status == 201
    status, headers, body = raw(server, "GET", calendar.url.path + "exact.ics")
    assert status == 200 and body == exact.replace(uid, uid + "-x") and headers["ETag"].startswith('"')
    assert raw(server, "GET", event.url.path)[0] == 200
    loaded.icalendar_component["SUMMARY"] = "Daily standup"
    loaded.save()
    assert calendar.event_by_uid(uid).icalendar_component["SUMMARY"] == "Daily standup"
    loaded.delete()
    with pytest.raises(caldav.lib.error.NotFoundError):
        calendar.event_by_uid(uid)


def test_todos_are_saved_loaded_updated_and_deleted(server):
    calendar = new_calendar(server)
    todo = calendar.save_todo(summary="Buy milk", uid="todo-1", due=datetime(2027, 1, 10, 12, tzinfo=UTC))
    assert [t.icalendar_component["SUMMARY"] for t in calendar.todos()] == ["Buy milk"]
    todo.complete()
    assert calendar.todos() == []
    assert len(calendar.todos(include_completed=True)) == 1
    todo.delete()
    assert calendar.todos(include_completed=True) == []


def test_a_time_range_search_expands_recurrences_with_overrides_and_zones(server):
    calendar = new_calendar(server)
    uid = "weekly-" + uuid.uuid4().hex
    text = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tocsin-tests//EN\r\n" + BERLIN +
        "BEGIN:VEVENT\r\nUID:" + uid + "\r\nDTSTAMP:20260101T000000Z\r\n"
        "DTSTART;TZID=Europe/Berlin:20270301T090000\r\nDTEND;TZID=Europe/Berlin:20270301T100000\r\n"
        "RRULE:FREQ=WEEKLY;COUNT=6\r\nEXDATE;TZID=Europe/Berlin:20270315T090000\r\nSUMMARY:Weekly\r\nEND:VEVENT\r\n"
        "BEGIN:VEVENT\r\nUID:" + uid + "\r\nDTSTAMP:20260101T000000Z\r\nSEQUENCE:2\r\n"
        "RECURRENCE-ID;TZID=Europe/Berlin:20270322T090000\r\n"
        "DTSTART;TZID=Europe/Berlin:20270323T140000\r\nDTEND;TZID=Europe/Berlin:20270323T150000\r\nSUMMARY:Moved\r\nEND:VEVENT\r\n"
        "END:VCALENDAR\r\n"
    )
    calendar.save_event(text)
    found = calendar.search(
        start=datetime(2027, 3, 1, tzinfo=UTC), end=datetime(2027, 4, 1, tzinfo=UTC),
        event=True, expand=True, server_expand=True,
    )
    starts = sorted(e.icalendar_component["DTSTART"].dt.astimezone(UTC) for e in found)
    # Berlin is UTC+1 until 28 March 2027, UTC+2 after: the 29 March instance is at 07:00Z.
    assert starts == [
        datetime(2027, 3, 1, 8, tzinfo=UTC),
        datetime(2027, 3, 8, 8, tzinfo=UTC),
        # 15 March is excluded (EXDATE); 22 March moved to the 23rd, 14:00 CET.
        datetime(2027, 3, 23, 13, tzinfo=UTC),
        datetime(2027, 3, 29, 7, tzinfo=UTC),
    ]
    summaries = {e.icalendar_component["SUMMARY"] for e in found}
    assert summaries == {"Weekly", "Moved"}
    # A window holding only the EXDATE'd instance matches nothing.
    assert calendar.search(
        start=datetime(2027, 3, 15, 7, tzinfo=UTC), end=datetime(2027, 3, 15, 10, tzinfo=UTC), event=True
    ) == []
    # The override's original slot no longer matches; its new slot does.
    assert calendar.search(
        start=datetime(2027, 3, 22, 7, tzinfo=UTC), end=datetime(2027, 3, 22, 10, tzinfo=UTC), event=True
    ) == []
    assert len(calendar.search(
        start=datetime(2027, 3, 23, 12, tzinfo=UTC), end=datetime(2027, 3, 23, 14, tzinfo=UTC), event=True
    )) == 1


def test_an_alarm_time_range_search_finds_events_by_their_alarm(server):
    calendar = new_calendar(server)
    alarm = "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:soon\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\n"
    calendar.save_event(event_ics("alarmed", "20270601T100000Z", "20270601T110000Z", body_extra=alarm))
    calendar.save_event(event_ics("silent", "20270601T100000Z", "20270601T110000Z"))
    query = """<?xml version="1.0"?>
<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
 <D:prop><D:getetag/></D:prop>
 <C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"><C:comp-filter name="VALARM">
  <C:time-range start="{start}" end="{end}"/></C:comp-filter></C:comp-filter></C:comp-filter></C:filter>
</C:calendar-query>"""
    path = calendar.url.path
    status, _, body = raw(server, "REPORT", path, query.format(start="20270601T094000Z", end="20270601T095000Z"), {"Depth": "1"})
    assert status == 207
    assert "alarmed.ics" in body or "alarmed" in body
    assert body.count("<D:response>") == 1
    status, _, body = raw(server, "REPORT", path, query.format(start="20270601T100000Z", end="20270601T120000Z"), {"Depth": "1"})
    assert status == 207 and "<D:response>" not in body
    found = calendar.search(
        alarm_start=datetime(2027, 6, 1, 9, 40, tzinfo=UTC), alarm_end=datetime(2027, 6, 1, 9, 50, tzinfo=UTC), event=True
    )
    assert [e.icalendar_component["UID"] for e in found] == ["alarmed"]


def test_sync_tokens_report_additions_changes_and_deletions(server):
    calendar = new_calendar(server)
    first = calendar.save_event(event_ics("s1", "20270701T100000Z", "20270701T110000Z", "one"))
    initial = calendar.objects_by_sync_token(load_objects=True)
    token = initial.sync_token
    assert str(token).startswith("urn:x-tocsin:sync:"), "the library fell back to a fake token"
    assert [o.icalendar_component["UID"] for o in initial] == ["s1"]
    calendar.save_event(event_ics("s2", "20270702T100000Z", "20270702T110000Z", "two"))
    added = calendar.objects_by_sync_token(sync_token=token, load_objects=True)
    assert [o.icalendar_component["UID"] for o in added] == ["s2"]
    first.icalendar_component["SUMMARY"] = "one, changed"
    first.save()
    changed = calendar.objects_by_sync_token(sync_token=added.sync_token, load_objects=True)
    assert [o.icalendar_component["SUMMARY"] for o in changed] == ["one, changed"]
    first.delete()
    deleted = calendar.objects_by_sync_token(sync_token=changed.sync_token, load_objects=False)
    assert [o.url.path.rsplit("/", 1)[1] for o in deleted] == [first.url.path.rsplit("/", 1)[1]]
    assert deleted.sync_token != changed.sync_token
    quiet = calendar.objects_by_sync_token(sync_token=deleted.sync_token)
    assert list(quiet) == []


def test_an_invalid_sync_token_is_refused_with_valid_sync_token(server):
    calendar = new_calendar(server)
    body = """<?xml version="1.0"?><D:sync-collection xmlns:D="DAV:"><D:sync-token>urn:x-tocsin:sync:nope:5</D:sync-token>
<D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>"""
    status, _, text = raw(server, "REPORT", calendar.url.path, body)
    assert status == 403 and "valid-sync-token" in text


def test_a_sync_answer_over_the_limit_is_truncated_and_resumable(server):
    calendar = new_calendar(server)
    for i in range(5):
        calendar.save_event(event_ics(f"lim{i}", "20270801T100000Z", "20270801T110000Z"))
    seen, token, rounds = set(), "", 0
    while True:
        rounds += 1
        body = f"""<?xml version="1.0"?><D:sync-collection xmlns:D="DAV:"><D:sync-token>{token}</D:sync-token>
<D:sync-level>1</D:sync-level><D:limit><D:nresults>2</D:nresults></D:limit><D:prop><D:getetag/></D:prop></D:sync-collection>"""
        status, _, text = raw(server, "REPORT", calendar.url.path, body)
        assert status == 207
        hrefs = [h for h in text.split("<D:href>")[1:]]
        seen.update(h.split("</D:href>")[0] for h in hrefs if ".ics" in h.split("</D:href>")[0])
        token = text.split("<D:sync-token>")[1].split("</D:sync-token>")[0]
        if "507" not in text:
            break
        assert rounds < 10
    assert len(seen) == 5 and rounds == 3


def test_etag_preconditions_prevent_lost_updates(server):
    calendar = new_calendar(server)
    path = calendar.url.path + "c.ics"
    text = event_ics("cond", "20270901T100000Z", "20270901T110000Z")
    status, headers, _ = raw(server, "PUT", path, text, {"Content-Type": "text/calendar", "If-None-Match": "*"})
    assert status == 201
    etag = headers["ETag"]
    status, _, _ = raw(server, "PUT", path, text, {"Content-Type": "text/calendar", "If-None-Match": "*"})
    assert status == 412
    changed = text.replace("SUMMARY:Event", "SUMMARY:Changed")
    status, _, _ = raw(server, "PUT", path, changed, {"Content-Type": "text/calendar", "If-Match": '"stale"'})
    assert status == 412
    status, headers, _ = raw(server, "PUT", path, changed, {"Content-Type": "text/calendar", "If-Match": etag})
    assert status == 204 and headers["ETag"] != etag
    status, _, _ = raw(server, "DELETE", path, headers={"If-Match": etag})
    assert status == 412
    status, _, body = raw(server, "GET", path)
    assert status == 200 and "SUMMARY:Changed" in body


def test_invalid_calendar_data_is_refused_with_its_precondition(server):
    calendar = client(server).principal().make_calendar(
        name="Events only", cal_id="events-only-" + uuid.uuid4().hex[:6], supported_calendar_component_set=["VEVENT"]
    )
    path = calendar.url.path
    cases = {
        "garbage.ics": ("this is not a calendar", "valid-calendar-data"),
        "two-uids.ics": (
            event_ics("a", "20270101T100000Z", "20270101T110000Z").replace(
                "END:VCALENDAR", "BEGIN:VEVENT\r\nUID:b\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20270101T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR"
            ),
            "valid-calendar-object-resource",
        ),
        "todo.ics": (
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VTODO\r\nUID:j\r\nDTSTAMP:20260101T000000Z\r\nEND:VTODO\r\nEND:VCALENDAR\r\n",
            "supported-calendar-component",
        ),
    }
    for name, (text, condition) in cases.items():
        status, _, body = raw(server, "PUT", path + name, text, {"Content-Type": "text/calendar"})
        assert status == 403, name
        assert condition in body, (name, body)
    big = event_ics("big", "20270101T100000Z", "20270101T110000Z", body_extra="DESCRIPTION:" + "x" * (2 << 20) + "\r\n")
    status, _, body = raw(server, "PUT", path + "big.ics", big, {"Content-Type": "text/calendar"})
    assert status in (403, 413)
    assert status == 413 or "max-resource-size" in body
    uid_taken = event_ics("dup", "20270101T100000Z", "20270101T110000Z")
    assert raw(server, "PUT", path + "dup1.ics", uid_taken, {"Content-Type": "text/calendar"})[0] == 201
    status, _, body = raw(server, "PUT", path + "dup2.ics", uid_taken, {"Content-Type": "text/calendar"})
    assert status == 403 and "no-uid-conflict" in body and "dup1.ics" in body
    status, _, _ = raw(server, "GET", path + "garbage.ics")
    assert status == 404


def test_hostile_xml_is_refused_without_expanding_entities(server):
    bomb = """<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>
<D:propfind xmlns:D="DAV:"><D:prop><D:displayname>&b;</D:displayname></D:prop></D:propfind>"""
    status, _, body = raw(server, "PROPFIND", "/dav/calendars/alice/", bomb, {"Depth": "0"})
    assert status == 400 and "document type" in body
    deep = "<D:propfind xmlns:D=\"DAV:\">" + "<D:x>" * 100 + "</D:x>" * 100 + "</D:propfind>"
    status, _, _ = raw(server, "PROPFIND", "/dav/calendars/alice/", deep, {"Depth": "0"})
    assert status == 400


def test_free_busy_reports_busy_time(server):
    calendar = new_calendar(server)
    calendar.save_event(event_ics("fb", "20271001T100000Z", "20271001T110000Z"))
    body = """<?xml version="1.0"?><C:free-busy-query xmlns:C="urn:ietf:params:xml:ns:caldav">
<C:time-range start="20271001T000000Z" end="20271002T000000Z"/></C:free-busy-query>"""
    status, headers, text = raw(server, "REPORT", calendar.url.path, body, {"Depth": "1"})
    assert status == 200 and headers["Content-Type"].startswith("text/calendar")
    assert "FREEBUSY;FBTYPE=BUSY:20271001T100000Z/20271001T110000Z" in text


def test_principals_can_be_searched_by_name_and_listed(server):
    dav = client(server)
    found = dav.search_principals(name="bob")
    assert [p.url.path for p in found] == ["/dav/principals/bob/"]
    everyone = {p.url.path for p in dav.search_principals()}
    assert {"/dav/principals/alice/", "/dav/principals/bob/"} <= everyone


def test_a_token_older_than_the_remembered_deletions_is_refused_and_a_fresh_sync_works(server):
    """The server keeps a bounded number of deletions per calendar
    (TOMBSTONES_KEPT_PER_CALENDAR, 10,000); a client whose token predates
    the ones it forgot must start again, never silently miss a deletion."""
    calendar = new_calendar(server)
    count = 10_002
    auth = "Basic " + base64.b64encode(b"alice:alice-pw").decode()
    netloc = urlsplit(server.url).netloc

    def sync(token):
        body = f"""<?xml version="1.0"?><D:sync-collection xmlns:D="DAV:"><D:sync-token>{token}</D:sync-token>
<D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>"""
        return raw(server, "REPORT", calendar.url.path, body)

    def token_of(text):
        return text.split("<D:sync-token>")[1].split("</D:sync-token>")[0]

    def run(method, names, make_body):
        conn = http.client.HTTPConnection(netloc, timeout=30)
        for name in names:
            body = make_body(name)
            headers = {"Authorization": auth}
            if body is not None:
                headers["Content-Type"] = "text/calendar"
            conn.request(method, f"{calendar.url.path}{name}.ics", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            assert response.status in (201, 204), (method, name, response.status)
        conn.close()

    def in_parallel(method, make_body):
        names = [f"bulk-{n}" for n in range(count)]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda part: run(method, part, make_body), [names[i::8] for i in range(8)]))

    in_parallel("PUT", lambda name: event_ics(name, "20270101T100000Z", "20270101T110000Z"))
    status, _, text = sync("")
    assert status == 207
    before_deletions = token_of(text)
    in_parallel("DELETE", lambda name: None)

    status, _, text = sync(before_deletions)
    assert status == 403 and "valid-sync-token" in text, (status, text[:300])
    status, _, text = sync("")
    assert status == 207 and "bulk-" not in text
    status, _, text = sync(token_of(text))
    assert status == 207
