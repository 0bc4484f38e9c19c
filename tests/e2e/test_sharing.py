"""End-to-end: shared calendars with per-user alarms, acknowledgements,
snoozes and default alarms — two users, a real client library (python
caldav) plus raw requests where the library has no API (sharing), and a
real webhook receiver. Alarm times are in seconds ("a 15-second alarm")
so the test runs in seconds; the rules are the same for minutes.
"""

import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import caldav
import pytest

from conftest import Server, raw
from receivers import WebhookSink

UTC = timezone.utc


def ical_time(t):
    return t.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def share(server, owner, slug, sharee, access):
    body = f"""<?xml version="1.0" encoding="utf-8"?>
<D:share-resource xmlns:D="DAV:"><D:sharee><D:href>mailto:{sharee}@example.com</D:href>
<D:share-access><D:{access}/></D:share-access></D:sharee></D:share-resource>"""
    return raw(server, "POST", f"/dav/calendars/{owner}/{slug}/", body,
               {"Content-Type": "application/davsharing+xml"}, user=owner)[0]


def valarm(trigger, uid=None, extra=""):
    uid_line = f"UID:{uid}\r\n" if uid else ""
    return f"BEGIN:VALARM\r\n{uid_line}ACTION:DISPLAY\r\nDESCRIPTION:r\r\nTRIGGER:{trigger}\r\n{extra}END:VALARM\r\n"


def event(uid, start, alarms="", summary="Team meeting", extra=""):
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tocsin-tests//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{ical_time(start)}\r\nDURATION:PT1H\r\n"
        f"SUMMARY:{summary}\r\n{extra}{alarms}END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def put(server, user, slug, uid, text, etag=None):
    headers = {"Content-Type": "text/calendar"}
    if etag:
        headers["If-Match"] = etag
    status, h, _ = raw(server, "PUT", f"/dav/calendars/{user}/{slug}/{uid}.ics", text, headers, user=user)
    return status, h.get("ETag")


def get(server, user, slug, uid):
    status, h, body = raw(server, "GET", f"/dav/calendars/{user}/{slug}/{uid}.ics", user=user)
    return status, h.get("ETag"), body


def sync(server, user, slug, token=""):
    body = f"""<?xml version="1.0"?><D:sync-collection xmlns:D="DAV:"><D:sync-token>{token}</D:sync-token>
<D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>"""
    status, _, text = raw(server, "REPORT", f"/dav/calendars/{user}/{slug}/", body, user=user)
    assert status == 207, text
    token = text.split("<D:sync-token>")[1].split("</D:sync-token>")[0]
    hrefs = [h.split("</D:href>")[0] for h in text.split("<D:href>")[1:]]
    return token, [h for h in hrefs if h.endswith(".ics")]


@pytest.fixture(scope="module")
def hook():
    sink = WebhookSink()
    yield sink
    sink.stop()


@pytest.fixture(scope="module")
def server(hook):
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        config = Path(tmp) / "tocsin.toml"
        # Alarms here are seconds apart, so the flood guard is lowered.
        config.write_text("[alarms]\nmin_instance_interval_secs = 1\n")
        srv = Server(data, ["--config", str(config)])
        for user in ["alice", "bob", "carol"]:
            srv.add_user(user, f"{user}-pw", f"{user}@example.com")
            srv.set_alarm_channels(user, ["webhook"], f"{hook.url}/u/{user}")
        try:
            yield srv
        finally:
            srv.stop()


@pytest.fixture()
def team(server):
    """A fresh calendar of alice's, shared read-write with bob."""
    slug = "team-" + uuid.uuid4().hex[:6]
    client = caldav.DAVClient(url=server.url + "/", username="alice", password="alice-pw")
    client.principal().make_calendar(name="Team", cal_id=slug)
    assert share(server, "alice", slug, "bob", "read-write") == 200
    return slug


def deliveries_for(hook, user, uid):
    return [d for d in hook.deliveries(uid) if d[1] == f"/u/{user}"]


def test_a_shared_calendar_appears_in_the_sharees_home_with_its_sharing_properties(server, team):
    bob = caldav.DAVClient(url=server.url + "/", username="bob", password="bob-pw").principal()
    paths = [c.url.path for c in bob.calendars()]
    assert f"/dav/calendars/bob/{team}/" in paths
    body = """<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:prop><D:share-access/><D:sharer-resource-uri/><D:invite/></D:prop></D:propfind>"""
    status, _, text = raw(server, "PROPFIND", f"/dav/calendars/bob/{team}/", body, {"Depth": "0"}, user="bob")
    assert status == 207 and "<D:read-write/>" in text and f"/dav/calendars/alice/{team}/" in text
    status, _, text = raw(server, "PROPFIND", f"/dav/calendars/alice/{team}/", body, {"Depth": "0"})
    assert "<D:shared-owner/>" in text and "/dav/principals/bob/" in text


def test_owner_and_sharee_each_hear_only_their_own_alarm_at_its_instant(server, hook, team):
    uid = "own-" + uuid.uuid4().hex[:6]
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=18)
    status, alice_etag = put(server, "alice", team, uid, event(uid, start, valarm("-PT15S")))
    assert status == 201
    # Bob sees the shared event without alice's alarm …
    _, bob_etag, bob_view = get(server, "bob", team, uid)
    assert "BEGIN:VALARM" not in bob_view and "SUMMARY:Team meeting" in bob_view
    alice_token, _ = sync(server, "alice", team)
    # … and adds his own five-second one: a change of his part only.
    status, bob_etag_after = put(server, "bob", team, uid, event(uid, start, valarm("-PT5S")), etag=bob_etag)
    assert status == 204 and bob_etag_after != bob_etag
    assert get(server, "alice", team, uid)[1] == alice_etag, "alice's ETag moved on bob's own change"
    assert sync(server, "alice", team, alice_token)[1] == [], "alice was told of bob's own change"
    _, _, alice_view = get(server, "alice", team, uid)
    assert "TRIGGER:-PT15S" in alice_view and "TRIGGER:-PT5S" not in alice_view
    [alice_hears] = deliveries_for(hook, "alice", uid) or hook.wait_for(uid, path="/u/alice")
    [bob_hears] = hook.wait_for(uid, path="/u/bob", timeout=20)
    time.sleep(1)
    assert len(deliveries_for(hook, "alice", uid)) == 1 and len(deliveries_for(hook, "bob", uid)) == 1
    assert alice_hears[3]["user"] == "alice" and bob_hears[3]["user"] == "bob"
    assert alice_hears[0] >= (start - timedelta(seconds=15)).timestamp()
    assert bob_hears[0] >= (start - timedelta(seconds=5)).timestamp()
    assert alice_hears[3]["idempotency_key"] != bob_hears[3]["idempotency_key"]


def test_a_shared_change_moves_both_users_etags_and_sync(server, team):
    uid = "chg-" + uuid.uuid4().hex[:6]
    start = datetime.now(UTC) + timedelta(days=3)
    put(server, "alice", team, uid, event(uid, start, valarm("-PT15M")))
    put(server, "bob", team, uid, event(uid, start, valarm("-PT5M")))
    alice_token, bob_token = sync(server, "alice", team)[0], sync(server, "bob", team)[0]
    alice_etag, bob_etag = get(server, "alice", team, uid)[1], get(server, "bob", team, uid)[1]
    status, _ = put(server, "alice", team, uid, event(uid, start, valarm("-PT15M"), summary="Moved room"))
    assert status == 204
    assert get(server, "alice", team, uid)[1] != alice_etag and get(server, "bob", team, uid)[1] != bob_etag
    assert [h.rsplit("/", 1)[1] for h in sync(server, "alice", team, alice_token)[1]] == [f"{uid}.ics"]
    assert [h.rsplit("/", 1)[1] for h in sync(server, "bob", team, bob_token)[1]] == [f"{uid}.ics"]
    # Each still has their own alarm after the other's shared edit.
    assert "TRIGGER:-PT5M" in get(server, "bob", team, uid)[2]
    assert "TRIGGER:-PT15M" in get(server, "alice", team, uid)[2]


def test_the_sharee_acknowledging_does_not_silence_the_owner(server, hook, team):
    uid = "ack-" + uuid.uuid4().hex[:6]
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=20)
    put(server, "alice", team, uid, event(uid, start, valarm("-PT15S")))
    acknowledged = ical_time(start)
    put(server, "bob", team, uid, event(uid, start, valarm("-PT12S", extra=f"ACKNOWLEDGED:{acknowledged}\r\n")))
    hook.wait_for(uid, path="/u/alice", timeout=20)
    time.sleep((start - timedelta(seconds=12)).timestamp() - time.time() + 1.5)
    assert len(deliveries_for(hook, "alice", uid)) == 1
    assert deliveries_for(hook, "bob", uid) == [], "an acknowledged alarm rang"


def test_a_snoozed_alarm_rings_once_at_the_snooze_time(server, hook, team):
    uid = "snz-" + uuid.uuid4().hex[:6]
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=8)
    put(server, "alice", team, uid, event(uid, start))
    put(server, "bob", team, uid, event(uid, start, valarm("-PT5S", uid="bob-alarm")))
    [first] = hook.wait_for(uid, path="/u/bob", timeout=15)
    # Bob dismisses it for now and snoozes it for a few seconds.
    fired = datetime.fromtimestamp(first[0], UTC).replace(microsecond=0) + timedelta(seconds=1)
    snooze_at = fired + timedelta(seconds=3)
    snoozed = valarm("-PT5S", uid="bob-alarm", extra=f"ACKNOWLEDGED:{ical_time(fired)}\r\n") + (
        "BEGIN:VALARM\r\nUID:bob-snooze\r\nACTION:DISPLAY\r\nDESCRIPTION:again\r\n"
        f"TRIGGER;VALUE=DATE-TIME:{ical_time(snooze_at)}\r\nRELATED-TO;RELTYPE=SNOOZE:bob-alarm\r\nEND:VALARM\r\n"
    )
    assert put(server, "bob", team, uid, event(uid, start, snoozed))[0] == 204
    again = hook.wait_for(uid, count=2, path="/u/bob", timeout=15)
    time.sleep(2)
    assert len(deliveries_for(hook, "bob", uid)) == 2, "the snooze rang more (or less) than once"
    assert again[1][0] >= snooze_at.timestamp()
    assert deliveries_for(hook, "alice", uid) == []


def test_a_read_only_sharee_cannot_write_but_keeps_their_own_alarms(server, team):
    assert share(server, "alice", team, "carol", "read") == 200
    uid = "ro-" + uuid.uuid4().hex[:6]
    start = datetime.now(UTC) + timedelta(days=2)
    put(server, "alice", team, uid, event(uid, start))
    status, _ = put(server, "carol", team, uid, event(uid, start, summary="Hijacked"))
    assert status == 403
    status, _, body = raw(server, "DELETE", f"/dav/calendars/carol/{team}/{uid}.ics", user="carol")
    assert status == 403 and "need-privileges" in body
    new = "ro-new-" + uuid.uuid4().hex[:6]
    assert put(server, "carol", team, new, event(new, start))[0] == 403
    # Her own alarm on the unchanged event is hers to set.
    assert put(server, "carol", team, uid, event(uid, start, valarm("-PT1H")))[0] == 204
    assert "SUMMARY:Team meeting" in get(server, "alice", team, uid)[2]


def test_revoking_a_share_removes_access_and_the_sharees_alarms(server, hook, team):
    uid = "rev-" + uuid.uuid4().hex[:6]
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=9)
    put(server, "alice", team, uid, event(uid, start))
    put(server, "bob", team, uid, event(uid, start, valarm("-PT5S")))
    assert share(server, "alice", team, "bob", "no-access") == 200
    assert get(server, "bob", team, uid)[0] == 404
    bob = caldav.DAVClient(url=server.url + "/", username="bob", password="bob-pw").principal()
    assert f"/dav/calendars/bob/{team}/" not in [c.url.path for c in bob.calendars()]
    time.sleep(max(0.0, (start - timedelta(seconds=5)).timestamp() - time.time()) + 2)
    assert deliveries_for(hook, "bob", uid) == []


def test_default_alarms_apply_and_re_plan_when_changed(server, hook, team):
    def set_default(trigger):
        body = f"""<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
<D:set><D:prop><C:default-alarm-vevent-datetime>BEGIN:VALARM&#13;
ACTION:DISPLAY&#13;
DESCRIPTION:default&#13;
TRIGGER:{trigger}&#13;
END:VALARM&#13;
</C:default-alarm-vevent-datetime></D:prop></D:set></D:propertyupdate>"""
        status, _, text = raw(server, "PROPPATCH", f"/dav/calendars/bob/{team}/", body, user="bob")
        assert status == 207 and "200 OK" in text, text

    set_default("-PT20S")
    uid = "def-" + uuid.uuid4().hex[:6]
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=26)
    # The event asks for default alarms (JMAP's useDefaultAlerts).
    put(server, "alice", team, uid, event(uid, start, extra="X-JMAP-USEDEFAULTALERTS:TRUE\r\n"))
    # Bob changes his default before it rings: the event is re-planned.
    set_default("-PT8S")
    [rang] = hook.wait_for(uid, path="/u/bob", timeout=30)
    assert rang[0] >= (start - timedelta(seconds=8)).timestamp(), "rang at the old default's time"
    assert rang[3]["trigger"] == (start - timedelta(seconds=8)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert deliveries_for(hook, "alice", uid) == [], "bob's default alarm reached alice"


def test_a_sharee_who_declined_hears_nothing(server, hook, team):
    uid = "dec-" + uuid.uuid4().hex[:6]
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=8)
    attendees = "ORGANIZER:mailto:alice@example.com\r\nATTENDEE;PARTSTAT=DECLINED:mailto:bob@example.com\r\n"
    put(server, "alice", team, uid, event(uid, start, valarm("-PT5S"), extra=attendees))
    put(server, "bob", team, uid, event(uid, start, valarm("-PT5S"), extra=attendees))
    hook.wait_for(uid, path="/u/alice", timeout=15)
    time.sleep(1.5)
    assert deliveries_for(hook, "bob", uid) == []


def test_opted_in_defaults_ring_for_events_with_no_alarm_and_stop_when_opted_out(server, hook, team):
    def patch(prop_xml):
        body = f"""<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"
 xmlns:T="urn:x-tocsin"><D:set><D:prop>{prop_xml}</D:prop></D:set></D:propertyupdate>"""
        return raw(server, "PROPPATCH", f"/dav/calendars/alice/{team}/", body, user="alice")

    default = "BEGIN:VALARM&#13;\nACTION:DISPLAY&#13;\nDESCRIPTION:default&#13;\nTRIGGER:-PT6S&#13;\nEND:VALARM&#13;\n"
    status, _, text = patch(f"<C:default-alarm-vevent-datetime>{default}</C:default-alarm-vevent-datetime>"
                            "<T:default-alarms-when-none>true</T:default-alarms-when-none>")
    assert status == 207 and "200 OK" in text, text
    status, _, text = patch("<T:default-alarms-when-none>maybe</T:default-alarms-when-none>")
    assert status == 207 and "403" in text, text

    status, _, text = raw(server, "PROPFIND", f"/dav/calendars/alice/{team}/",
                          '<?xml version="1.0"?><D:propfind xmlns:D="DAV:" xmlns:T="urn:x-tocsin">'
                          "<D:prop><T:default-alarms-when-none/></D:prop></D:propfind>",
                          {"Depth": "0"}, user="alice")
    assert status == 207 and ">true</" in text, text

    # An event with no VALARM at all rings at the default's time.
    uid = "none-" + uuid.uuid4().hex[:6]
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=12)
    put(server, "alice", team, uid, event(uid, start))
    [rang] = hook.wait_for(uid, path="/u/alice", timeout=30)
    assert rang[0] >= (start - timedelta(seconds=6)).timestamp(), "rang early"
    assert rang[3]["trigger"] == (start - timedelta(seconds=6)).strftime("%Y-%m-%dT%H:%M:%SZ")

    # Opted out: a second such event stays silent.
    status, _, text = patch("<T:default-alarms-when-none>false</T:default-alarms-when-none>")
    assert status == 207 and "200 OK" in text, text
    quiet = "quiet-" + uuid.uuid4().hex[:6]
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=8)
    put(server, "alice", team, quiet, event(quiet, start))
    time.sleep(max(0.0, start.timestamp() - time.time()) + 1.0)
    assert deliveries_for(hook, "alice", quiet) == []
    assert deliveries_for(hook, "bob", uid) == [], "alice's default alarm reached bob"
