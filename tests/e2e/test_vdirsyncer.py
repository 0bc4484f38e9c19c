"""End-to-end: vdirsyncer, a real two-way synchroniser, against Tocsin.

vdirsyncer pairs a local directory of `.ics` files with the user's CalDAV
calendars. It discovers collections from the root URL, lists them with
calendar-query, uploads with `If-None-Match: *`, updates with `If-Match`,
creates collections with extended MKCOL and syncs their metadata, so one
round trip exercises most of what a desktop client relies on. Each test
checks the far side with the python `caldav` library or the local files.
"""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import caldav
import pytest
from caldav.elements import dav

VDIRSYNCER_TIMEOUT_S = 60
USER, PASSWORD = "vera", "vera-pw"


def vdirsyncer_bin() -> str:
    return str(Path(sys.executable).parent / "vdirsyncer")


class Pair:
    """A vdirsyncer configuration pairing a local tree with Tocsin."""

    def __init__(self, root: Path, url: str):
        self.local = root / "local"
        self.local.mkdir()
        self.config = root / "config"
        self.config.write_text(
            f"""
[general]
status_path = "{root / 'status'}/"

[pair cal]
a = "cal_local"
b = "cal_remote"
collections = ["from a", "from b"]
conflict_resolution = "b wins"
metadata = ["displayname", "color"]

[storage cal_local]
type = "filesystem"
path = "{self.local}/"
fileext = ".ics"

[storage cal_remote]
type = "caldav"
url = "{url}/"
username = "{USER}"
password = "{PASSWORD}"
"""
        )

    def run(self, *args: str) -> str:
        env = dict(os.environ, VDIRSYNCER_CONFIG=str(self.config))
        # `discover` asks before creating a collection on either side.
        done = subprocess.run(
            [vdirsyncer_bin(), *args],
            input="y\n" * 20,
            text=True,
            capture_output=True,
            env=env,
            timeout=VDIRSYNCER_TIMEOUT_S,
        )
        assert done.returncode == 0, f"vdirsyncer {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout + done.stderr

    def sync(self):
        self.run("sync")


def event_text(uid: str, summary: str, start: str = "20270110T090000Z") -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Tocsin tests//vdirsyncer//EN\r\n"
        f"BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20261201T000000Z\r\nDTSTART:{start}\r\n"
        f"DURATION:PT1H\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )


@pytest.fixture(scope="module")
def remote(server):
    server.add_user(USER, PASSWORD, "vera@example.com")
    client = caldav.DAVClient(url=server.url + "/", username=USER, password=PASSWORD)
    principal = client.principal()
    calendar = principal.make_calendar(name="Synced", cal_id="synced")
    return principal, calendar


@pytest.fixture(scope="module")
def pair(server, remote, tmp_path_factory):
    pair = Pair(tmp_path_factory.mktemp("vdirsyncer"), server.url)
    pair.run("discover", "cal")
    pair.sync()
    return pair


def local_files(pair: Pair, slug: str) -> dict[str, str]:
    return {p.name: p.read_text() for p in (pair.local / slug).glob("*.ics")}


def remote_uids(calendar) -> set[str]:
    return {str(o.icalendar_component["UID"]) for o in calendar.events()}


def test_discovery_from_the_root_url_mirrors_every_calendar(pair, remote):
    principal, _ = remote
    remote_slugs = {c.url.path.rstrip("/").rsplit("/", 1)[-1] for c in principal.calendars()}
    local_slugs = {p.name for p in pair.local.iterdir() if p.is_dir()}
    assert "synced" in local_slugs
    assert remote_slugs <= local_slugs


def test_a_server_event_reaches_the_local_tree(pair, remote):
    _, calendar = remote
    uid = f"srv-{uuid.uuid4()}"
    calendar.save_event(event_text(uid, "Written on the server"))
    pair.sync()
    texts = local_files(pair, "synced").values()
    assert any(f"UID:{uid}" in t and "Written on the server" in t for t in texts)


def test_a_local_event_is_uploaded_as_written(pair, remote):
    _, calendar = remote
    uid = f"loc-{uuid.uuid4()}"
    text = event_text(uid, "Written locally")
    (pair.local / "synced" / f"{uid}.ics").write_text(text)
    pair.sync()
    assert uid in remote_uids(calendar)
    stored = calendar.event_by_uid(uid).data
    assert "SUMMARY:Written locally" in stored


def test_edits_travel_both_ways_without_conflicts(pair, remote):
    _, calendar = remote
    uid = f"edit-{uuid.uuid4()}"
    calendar.save_event(event_text(uid, "First version"))
    pair.sync()
    # Edit on the server: the local copy follows.
    event = calendar.event_by_uid(uid)
    event.data = event_text(uid, "Second version (server)")
    event.save()
    pair.sync()
    [(name, text)] = [(n, t) for n, t in local_files(pair, "synced").items() if f"UID:{uid}" in t]
    assert "Second version (server)" in text
    # Edit locally: the server follows (vdirsyncer sends If-Match).
    (pair.local / "synced" / name).write_text(event_text(uid, "Third version (local)"))
    pair.sync()
    assert "Third version (local)" in calendar.event_by_uid(uid).data


def test_deletions_travel_both_ways(pair, remote):
    _, calendar = remote
    gone_locally, gone_remotely = f"del-l-{uuid.uuid4()}", f"del-r-{uuid.uuid4()}"
    calendar.save_event(event_text(gone_locally, "Deleted locally"))
    calendar.save_event(event_text(gone_remotely, "Deleted on the server"))
    pair.sync()
    for name, text in local_files(pair, "synced").items():
        if f"UID:{gone_locally}" in text:
            (pair.local / "synced" / name).unlink()
    calendar.event_by_uid(gone_remotely).delete()
    pair.sync()
    assert gone_locally not in remote_uids(calendar)
    assert not any(f"UID:{gone_remotely}" in t for t in local_files(pair, "synced").values())


def test_a_local_collection_is_created_on_the_server_with_its_metadata(pair, remote):
    principal, _ = remote
    (pair.local / "holidays").mkdir()
    (pair.local / "holidays" / "displayname").write_text("Holidays")
    pair.run("discover", "cal")
    pair.run("metasync")
    pair.sync()
    created = {c.url.path.rstrip("/").rsplit("/", 1)[-1]: c for c in principal.calendars()}
    assert "holidays" in created
    assert created["holidays"].get_display_name() == "Holidays"


def test_a_second_sync_with_no_changes_is_a_no_op(pair, remote):
    _, calendar = remote
    before = local_files(pair, "synced")
    before_remote = {o.url: o.get_property(dav.GetEtag()) for o in calendar.events()}
    pair.sync()
    assert local_files(pair, "synced") == before
    assert {o.url: o.get_property(dav.GetEtag()) for o in calendar.events()} == before_remote
