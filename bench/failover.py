"""Benchmark: failover time and replicated write throughput.

    .venv/bin/python bench/failover.py [--kills 20] [--bin target/release/tocsin]

Failover time: a three-node cluster (tests/e2e/cluster_harness.py) with a
webhook receiver. Each round writes an event whose alarm is due 100 ms
after the moment the leader is then killed with SIGKILL; the figure is the
time from the kill to the arrival of that (by then overdue) alarm, sent by
the new leader. The killed node is restarted and the cluster converges
before the next round. Prints the median and the maximum.

Write throughput: PUT/s of small events with 16 concurrent clients for
10 s, against a single node and against the leader of three.
"""

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "e2e"))

from cluster_harness import ClusterUnderTest  # noqa: E402
from receivers import WebhookSink  # noqa: E402
import test_cluster as tc  # noqa: E402


def add_alice(node):
    import subprocess
    from conftest import tocsin_bin

    subprocess.run([tocsin_bin(), "user", "add", "alice", "--password-stdin", "--data", str(node.data)],
                   input="alice-pw\n", text=True, check=True, capture_output=True)
    subprocess.run([tocsin_bin(), "user", "alarms", "alice", "--channels", "webhook", "--data", str(node.data)],
                   check=True, capture_output=True)


def failover_rounds(kills):
    hook = WebhookSink()
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        cluster = ClusterUnderTest(Path(tmp), ["--webhook-url", hook.url + "/alarms"])
        cluster.start()
        add_alice(cluster.nodes[cluster.leader()])
        try:
            for round_no in range(kills):
                leader = cluster.leader()
                node = cluster.nodes[leader]
                # The alarm is due 100 ms after the kill (iCalendar has whole
                # seconds: the kill waits for the moment that suits).
                trigger_epoch = int(time.time()) + 3
                kill_at = trigger_epoch - 0.1
                uid = f"fo-{round_no}-{uuid.uuid4().hex[:6]}"
                status, _ = tc.put(node, uid, tc.event_text(uid, trigger_epoch), timeout=5)
                assert status == 201, status
                time.sleep(max(0.0, kill_at - time.time()))
                killed = time.time()
                node.kill()
                got = hook.wait_for(uid, timeout=20)
                assert got, f"round {round_no}: the alarm never arrived"
                took = got[0][0] - killed
                sender = got[0][2].get("x-tocsin-node")
                times.append(took)
                print(f"round {round_no + 1}: node {leader} killed; alarm delivered by node {sender} after {took:.3f} s", flush=True)
                node.start()
                cluster.wait_converged(timeout=60)
        finally:
            cluster.stop()
            hook.stop()
    return times


class Writer:
    def __init__(self, url, seconds, clients=16):
        self.url, self.seconds, self.clients = url, seconds, clients
        self.done = 0
        self.lock = threading.Lock()

    def run_one(self, stop_at):
        n = 0
        while time.time() < stop_at:
            uid = uuid.uuid4().hex
            text = tc.event_text(uid, int(time.time()) + 86_400 * 30)
            req = urllib.request.Request(f"{self.url}/dav/calendars/alice/calendar/{uid}.ics", data=text.encode(), method="PUT",
                                         headers={"Authorization": tc.AUTH, "Content-Type": "text/calendar"})
            with urllib.request.urlopen(req, timeout=10) as r:
                assert r.status == 201
            n += 1
        with self.lock:
            self.done += n

    def run(self):
        stop_at = time.time() + self.seconds
        threads = [threading.Thread(target=self.run_one, args=(stop_at,)) for _ in range(self.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return self.done / self.seconds


def throughput(size):
    with tempfile.TemporaryDirectory() as tmp:
        cluster = ClusterUnderTest(Path(tmp), [], size=size, proxied=False)
        cluster.start()
        leader = cluster.nodes[cluster.leader()]
        add_alice(leader)
        try:
            return Writer(leader.url, 10).run()
        finally:
            cluster.stop()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--bin", default=str(ROOT / "target" / "release" / "tocsin"))
    args = parser.parse_args()
    os.environ["TOCSIN_BIN"] = args.bin
    times = failover_rounds(args.kills)
    print(f"failover, SIGKILL to the overdue alarm delivered by the new leader, {len(times)} kills: "
          f"median {statistics.median(times):.3f} s, max {max(times):.3f} s")
    one = throughput(1)
    three = throughput(3)
    print(f"PUT/s with 16 clients: one node {one:.0f}, three nodes {three:.0f} ({three / one:.2f}x)")


if __name__ == "__main__":
    main()
