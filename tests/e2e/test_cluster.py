"""Replication and automatic failover, with three real `tocsin` processes
on loopback (see cluster_harness.py): SIGKILL of the leader under load,
the old leader's return, a partition, a rolling restart, and a node
removed and re-added empty. A checker (checker.py) gives the verdict on
alarms and acknowledged writes. DESIGN.md invariants 5, 6 and 9.
"""

import base64
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from checker import assert_good, print_verdict, verdict
from cluster_harness import ClusterUnderTest
from receivers import WebhookSink

UTC = timezone.utc
AUTH = "Basic " + base64.b64encode(b"alice:alice-pw").decode()
ELECTION_TIMEOUT_MAX_S = 0.6  # the default raft.election_timeout_max_ms
# Each event is written this long before its alarm: room for a write to a
# cut-off node to time out (2 s) and be retried on another.
WRITE_AHEAD_S = 5.0


def ical_time(epoch):
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y%m%dT%H%M%SZ")


def iso(epoch):
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_text(uid, trigger_epoch):
    start = trigger_epoch + 600
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tocsin-tests//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:{ical_time(start)}\r\nDTEND:{ical_time(start + 3600)}\r\n"
        "SUMMARY:cluster alarm\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:x\r\nTRIGGER:-PT10M\r\nEND:VALARM\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def put(node, uid, text, timeout=2):
    req = urllib.request.Request(
        f"{node.url}/dav/calendars/alice/calendar/{uid}.ics", data=text.encode(), method="PUT",
        headers={"Authorization": AUTH, "Content-Type": "text/calendar"},
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.headers.get("ETag")
    except urllib.error.HTTPError as e:
        return e.code, None
    except OSError:
        return None, None


def get_etag(node, uid):
    req = urllib.request.Request(f"{node.url}/dav/calendars/alice/calendar/{uid}.ics", headers={"Authorization": AUTH})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.headers.get("ETag")
    except (urllib.error.HTTPError, OSError):
        return None


class Load:
    """Writers putting events round-robin on every node; each event has one
    alarm, due at a whole second; one alarm is due every `spacing` second."""

    def __init__(self, cluster, start_in=WRITE_AHEAD_S + 1, seconds=20, spacing=1.0):
        self.cluster = cluster
        self.history = []  # (uid, trigger_epoch, etag, node, acknowledged_epoch)
        self.lock = threading.Lock()
        base = int(time.time() + start_in) + 1
        self.triggers = [base + int(k * spacing) for k in range(int(seconds / spacing))]
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        ids = sorted(self.cluster.nodes)
        for k, trigger in enumerate(self.triggers):
            if self.stop_flag.is_set():
                return
            # Write each event a little before its alarm, while the cluster changes.
            wait = trigger - WRITE_AHEAD_S - time.time()
            if wait > 0:
                time.sleep(wait)
            uid = f"c-{trigger}-{uuid.uuid4().hex[:6]}"
            text = event_text(uid, trigger)
            for attempt in range(6):
                node = self.cluster.nodes[ids[(k + attempt) % len(ids)]]
                if not node.alive():
                    continue
                status, etag = put(node, uid, text)
                if status in (201, 204):
                    with self.lock:
                        self.history.append((uid, trigger, etag, node.id, time.time()))
                    break
                time.sleep(0.2)

    def start(self):
        self.thread.start()

    def join(self):
        self.thread.join(timeout=120)

    def expected(self, now):
        """Alarms that must ring: due by `now`, and acknowledged before their
        trigger (an event created after its alarm time never rings it)."""
        with self.lock:
            return {
                (uid, iso(trigger)): trigger
                for uid, trigger, _, _, acked in self.history
                if trigger <= now and acked < trigger
            }


@pytest.fixture()
def hook():
    sink = WebhookSink()
    yield sink
    sink.stop()


@pytest.fixture()
def cluster(hook):
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "tocsin.toml"
        config.write_text(
            "[alarms]\nretry_delay_initial_secs = 1\nretry_delay_max_secs = 1\n"
            "[raft]\nsnapshot_after_entries = 200\nentries_kept_after_snapshot = 10\n"
        )
        c = ClusterUnderTest(Path(tmp), ["--config", str(config), "--webhook-url", hook.url + "/alarms"])
        c.start()
        leader = c.nodes[c.leader()]
        import subprocess
        from conftest import tocsin_bin
        subprocess.run(
            [tocsin_bin(), "user", "add", "alice", "--password-stdin", "--data", str(leader.data)],
            input="alice-pw\n", text=True, check=True, capture_output=True,
        )
        subprocess.run(
            [tocsin_bin(), "user", "alarms", "alice", "--channels", "webhook", "--data", str(leader.data)],
            check=True, capture_output=True,
        )
        try:
            yield c
        finally:
            c.stop()


def settle(load, hook, extra=4.0):
    load.join()
    time.sleep(max(0.0, load.triggers[-1] - time.time()) + extra)


def check_alarms(load, hook, label):
    deliveries = [(arrival, headers, body) for arrival, _, headers, body in hook.deliveries()]
    report = verdict(load.expected(time.time()), deliveries, time.time())
    print_verdict(report, label)
    assert report["expected"] >= len(load.triggers) // 2, "too few writes were acknowledged to test anything"
    assert_good(report)
    return report


def check_writes(load, cluster):
    """No write a client saw acknowledged is lost: every live node holds it."""
    for uid, _, etag, _, _ in load.history:
        for node in cluster.nodes.values():
            if node.alive():
                assert get_etag(node, uid) == etag, f"acknowledged write {uid} missing or changed on node {node.id}"


def test_sigkill_of_the_leader_under_load_loses_nothing_and_the_old_leader_rejoins(cluster, hook):
    load = Load(cluster, seconds=16)
    load.start()
    time.sleep(7)
    old = cluster.leader()
    killed_at = time.time()
    cluster.nodes[old].kill()
    new = cluster.leader(among=[i for i in cluster.nodes if i != old])
    elected_in = time.time() - killed_at
    print(f"node {old} killed; node {new} leads {elected_in:.2f} s later")
    assert new != old
    assert elected_in < 5 * ELECTION_TIMEOUT_MAX_S + 2, f"no new leader for {elected_in:.2f} s"
    settle(load, hook)
    check_alarms(load, hook, "after SIGKILL of the leader")
    check_writes(load, cluster)

    # The old leader comes back as a follower and delivers nothing.
    delivered_before = len(hook.deliveries())
    restarted_at = time.time()
    cluster.nodes[old].start()
    digests = cluster.wait_converged()
    assert len(set(digests.values())) == 1 and len(digests) == 3
    assert cluster.leader() == new
    time.sleep(2)
    from_old = [d for d in hook.deliveries() if d[0] > restarted_at and d[2].get("x-tocsin-node") == str(old)]
    assert from_old == [], "the restarted old leader delivered alarms"
    assert len(hook.deliveries()) == delivered_before, "deliveries after the old leader returned"


def test_a_partitioned_leader_fires_nothing_new_and_the_majority_fires_on_time(cluster, hook):
    load = Load(cluster, seconds=16)
    load.start()
    time.sleep(6)
    old = cluster.leader()
    cut_at = time.time()
    cluster.partition(old)
    majority = [i for i in cluster.nodes if i != old]
    new = cluster.leader(among=majority)
    print(f"node {old} cut off; node {new} leads the majority {time.time() - cut_at:.2f} s later")
    time.sleep(8)
    # Alarms due since the cut were fired by the majority; the cut-off node
    # committed no new intent, so it sent nothing due after the cut.
    from_old = [d for d in hook.deliveries() if d[2].get("x-tocsin-node") == str(old)
                and datetime.strptime(d[3]["trigger"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp() > cut_at + 1]
    assert from_old == [], f"the minority side fired {len(from_old)} alarms due after the cut"
    cluster.heal()
    settle(load, hook)
    report = check_alarms(load, hook, "across a partition of the leader")
    assert report["late_p50_s"] is not None and report["late_p50_s"] < 1.0, "the majority did not fire on time"
    digests = cluster.wait_converged()
    assert len(set(digests.values())) == 1 and len(digests) == 3
    check_writes(load, cluster)


def test_a_rolling_restart_under_load_loses_nothing(cluster, hook):
    load = Load(cluster, seconds=22)
    load.start()
    time.sleep(4)
    for i in sorted(cluster.nodes):
        cluster.nodes[i].stop()
        time.sleep(1.5)
        cluster.nodes[i].start()
        cluster.leader()
        time.sleep(2)
    settle(load, hook)
    check_alarms(load, hook, "across a rolling restart")
    digests = cluster.wait_converged()
    assert len(set(digests.values())) == 1 and len(digests) == 3
    check_writes(load, cluster)


def test_a_node_removed_and_re_added_empty_catches_up_by_snapshot(cluster, hook):
    import shutil
    import subprocess
    from conftest import tocsin_bin

    leader = cluster.leader()
    gone = max(i for i in cluster.nodes if i != leader)
    data = cluster.nodes[leader].data
    subprocess.run([tocsin_bin(), "cluster", "remove-node", str(gone), "--data", str(data)], check=True, capture_output=True)
    cluster.nodes[gone].stop()
    shutil.rmtree(cluster.nodes[gone].data)
    cluster.nodes[gone].data.mkdir()
    # Enough writes that the log is compacted past its start (snapshot
    # every 200 entries in this test's config): the empty node can only
    # catch up from a snapshot.
    for n in range(260):
        status, _ = put(cluster.nodes[leader], f"fill-{n}", event_text(f"fill-{n}", int(time.time()) + 86_400 + n))
        assert status == 201
    deadline = time.time() + 10
    while not cluster.nodes[leader].raft_status()["purged_index"] and time.time() < deadline:
        time.sleep(0.1)
    assert cluster.nodes[leader].raft_status()["purged_index"], "the log was not compacted; no snapshot would be needed"
    cluster.nodes[gone].start(join=True)
    node = cluster.nodes[gone]
    proxy_port = cluster.proxies[gone].port
    subprocess.run(
        [tocsin_bin(), "cluster", "add-node", str(gone), f"127.0.0.1:{proxy_port}", "--api-url", node.url, "--data", str(data)],
        check=True, capture_output=True, timeout=60,
    )
    digests = cluster.wait_converged()
    assert len(set(digests.values())) == 1 and len(digests) == 3
    status = node.raft_status()
    assert status["role"] == "follower" and gone in status["voters"]
    # It could not have replayed the log from the start (compacted): it
    # installed a snapshot, so its own log starts after one.
    assert status["purged_index"], "the new node did not start from a snapshot"
    assert get_etag(node, "fill-259") is not None


def test_a_shared_calendar_workload_leaves_one_state_on_every_node(cluster, hook):
    """Invariants 1-3: a share, per-user writes and a revocation are each
    one command, so every node applies the same state."""
    import subprocess
    from conftest import tocsin_bin

    leader = cluster.nodes[cluster.leader()]
    subprocess.run([tocsin_bin(), "user", "add", "bob", "--password-stdin", "--email", "bob@example.com",
                    "--data", str(leader.data)], input="bob-pw\n", text=True, check=True, capture_output=True)
    followers = [n for i, n in cluster.nodes.items() if i != leader.id]
    share = """<?xml version="1.0"?><D:share-resource xmlns:D="DAV:"><D:sharee><D:href>/dav/principals/bob/</D:href>
<D:share-access><D:read-write/></D:share-access></D:sharee></D:share-resource>"""
    req = urllib.request.Request(f"{followers[0].url}/dav/calendars/alice/calendar/", data=share.encode(), method="POST",
                                 headers={"Authorization": AUTH, "Content-Type": "application/davsharing+xml"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200
    bob_auth = "Basic " + base64.b64encode(b"bob:bob-pw").decode()
    for n in range(12):
        uid = f"shared-{n}"
        text = event_text(uid, int(time.time()) + 3600 + n)
        assert put(cluster.nodes[[leader.id, followers[0].id, followers[1].id][n % 3]], uid, text)[0] == 201
        # Bob sets his own alarm through another node: a per-user write.
        mine = text.replace("TRIGGER:-PT10M", "TRIGGER:-PT3M")
        req = urllib.request.Request(f"{followers[n % 2].url}/dav/calendars/bob/calendar-alice/{uid}.ics",
                                     data=mine.encode(), method="PUT",
                                     headers={"Authorization": bob_auth, "Content-Type": "text/calendar"})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 204
    revoke = share.replace("<D:read-write/>", "<D:no-access/>")
    req = urllib.request.Request(f"{followers[1].url}/dav/calendars/alice/calendar/", data=revoke.encode(), method="POST",
                                 headers={"Authorization": AUTH, "Content-Type": "application/davsharing+xml"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200
    digests = cluster.wait_converged()
    assert len(set(digests.values())) == 1 and len(digests) == 3
