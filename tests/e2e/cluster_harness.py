"""Three `tocsin serve` processes on loopback, with a fault-injecting proxy
in front of each node's peer (raft) traffic, started and stopped by PID.

Each node listens on its own port for clients and peers; the address its
peers use is a proxy that forwards to it. A proxy reads the
`x-tocsin-node` header every peer request carries, so the harness can cut
any set of links: `partition(n)` isolates node n both ways.
"""

import http.client
import json
import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from conftest import tocsin_bin
from receivers import free_port

SECRET = "cluster-test-secret"


class Links:
    """Which peer links are cut: a set of (from, to) node ids."""

    def __init__(self):
        self.cut = set()
        self.lock = threading.Lock()

    def blocked(self, source, dest):
        with self.lock:
            return (source, dest) in self.cut

    def isolate(self, node, nodes):
        with self.lock:
            for other in nodes:
                if other != node:
                    self.cut.add((node, other))
                    self.cut.add((other, node))

    def heal(self):
        with self.lock:
            self.cut.clear()


class FaultProxy:
    """An HTTP proxy to one node's peer endpoint that drops cut links."""

    def __init__(self, node_id, target_port, links):
        proxy = self
        self.node_id = node_id
        self.target_port = target_port
        self.links = links

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def relay(self):
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length) if length else None
                source = int(self.headers.get("x-tocsin-node", "0") or 0)
                if proxy.links.blocked(source, proxy.node_id):
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "host")}
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", proxy.target_port, timeout=10)
                    conn.request(self.command, self.path, body=body, headers=headers)
                    answer = conn.getresponse()
                    data = answer.read()
                    conn.close()
                except OSError:
                    self.send_response(502)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if proxy.links.blocked(proxy.node_id, source):
                    # The answer would cross a cut link: it is lost.
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(answer.status)
                for k, v in answer.getheaders():
                    if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = relay
            do_POST = relay

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()


class Node:
    def __init__(self, node_id, root: Path, peer_port, api_port, peers_args, extra_args, log_dir):
        self.id = node_id
        self.data = root / f"n{node_id}"
        self.data.mkdir(parents=True, exist_ok=True)
        self.api_port = api_port
        self.url = f"http://127.0.0.1:{api_port}"
        self.peer_port = peer_port
        self.peers_args = peers_args
        self.extra_args = extra_args
        self.log_dir = log_dir
        self.proc = None
        self.starts = 0

    def start(self, join=False):
        self.starts += 1
        log = open(self.log_dir / f"node{self.id}-{self.starts}.log", "wb")
        args = [
            tocsin_bin(), "serve", "--listen", f"127.0.0.1:{self.api_port}", "--data", str(self.data),
            "--node-id", str(self.id), "--cluster-secret", SECRET,
            "--raft-addr", f"127.0.0.1:{self.peer_port}",
        ]
        args += ["--join"] if join else self.peers_args
        self.proc = subprocess.Popen(args + self.extra_args, stdout=subprocess.DEVNULL, stderr=log)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self):
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=30)

    def token(self):
        return json.loads((self.data / "admin.json").read_text())["token"]

    def status(self, timeout=2.0):
        req = urllib.request.Request(self.url + "/admin/status", headers={"Authorization": "Bearer " + self.token()})
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())

    def raft_status(self):
        """This node's own view (no read barrier), from its peer endpoint."""
        req = urllib.request.Request(
            self.url + "/raft/status",
            headers={"x-tocsin-cluster-token": cluster_token(SECRET)},
        )
        with urllib.request.urlopen(req, timeout=2) as r:
            return json.loads(r.read())


def cluster_token(secret):
    import hashlib
    return hashlib.sha256(b"tocsin-cluster-token\0" + secret.encode()).hexdigest()


class ClusterUnderTest:
    def __init__(self, root: Path, extra_args=(), size=3, proxied=True):
        """`proxied=False` lets peers talk to each other directly (no fault
        injection, and no proxy in the way of a throughput measurement)."""
        self.root = root
        self.links = Links()
        log_dir = Path(os.environ.get("TOCSIN_TEST_LOG_DIR", root))
        log_dir.mkdir(parents=True, exist_ok=True)
        ports = {i: free_port() for i in range(1, size + 1)}
        self.proxies = {i: FaultProxy(i, ports[i], self.links) for i in ports}
        peer_port = {i: self.proxies[i].port if proxied else ports[i] for i in ports}
        peers_args = []
        for i in ports:
            peers_args += ["--peer", f"{i}=127.0.0.1:{peer_port[i]},http://127.0.0.1:{ports[i]}"]
        self.nodes = {
            i: Node(i, root, peer_port[i], ports[i], peers_args, list(extra_args), log_dir) for i in ports
        }

    def start(self):
        for node in self.nodes.values():
            node.start()
        self.wait_for_leader()

    def stop(self):
        for node in self.nodes.values():
            node.stop()
        for proxy in self.proxies.values():
            proxy.stop()

    def leader(self, among=None, timeout=15.0):
        """The id of a leader every live node in `among` agrees on."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            views = {}
            for i, node in self.nodes.items():
                if among is not None and i not in among or not node.alive():
                    continue
                try:
                    s = node.raft_status()
                    views[i] = (s["role"], s["leader"], s["term"])
                except (OSError, urllib.error.URLError, ValueError):
                    views[i] = None
            leaders = [i for i, v in views.items() if v and v[0] == "leader"]
            if len(leaders) == 1 and all(v and v[1] == leaders[0] for v in views.values()):
                return leaders[0]
            time.sleep(0.05)
        raise AssertionError(f"no agreed leader within {timeout}s: {views}")

    wait_for_leader = leader

    def partition(self, node_id):
        self.links.isolate(node_id, list(self.nodes))

    def heal(self):
        self.links.heal()

    def digests(self):
        return {i: n.status()["digest"] for i, n in self.nodes.items() if n.alive()}

    def wait_converged(self, timeout=30.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                views = {i: n.raft_status() for i, n in self.nodes.items() if n.alive()}
                applied = {v["applied_index"] for v in views.values()}
                if len(applied) == 1:
                    digests = self.digests()
                    if len(set(digests.values())) == 1:
                        return digests
            except (OSError, urllib.error.URLError, ValueError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"the cluster did not converge within {timeout}s")
