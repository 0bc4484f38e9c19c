"""A `tocsin serve` process for end-to-end tests.

The server runs the binary named by TOCSIN_BIN (default: target/debug/tocsin)
on 127.0.0.1 with a port the OS picks, with its data in a temporary
directory; it is stopped by PID when the test session ends.
"""

import base64
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30


def raw(server, method, path, body=None, headers=None, user="alice", password=None):
    """One HTTP request; returns (status, headers (case-insensitive), body text)."""
    req = urllib.request.Request(server.url + path, data=body.encode() if isinstance(body, str) else body, method=method)
    if user is not None:
        token = base64.b64encode(f"{user}:{password or user + '-pw'}".encode()).decode()
        req.add_header("Authorization", "Basic " + token)
    for k, v in (headers or {}).items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.headers, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def tocsin_bin() -> str:
    return os.environ.get("TOCSIN_BIN", str(ROOT / "target" / "debug" / "tocsin"))


class Server:
    def __init__(self, data: Path, extra_args=()):
        self.data = data
        # Server logs go beside the data, or under TOCSIN_TEST_LOG_DIR to keep them.
        log_dir = Path(os.environ.get("TOCSIN_TEST_LOG_DIR", data.parent))
        log_dir.mkdir(parents=True, exist_ok=True)
        self.log = open(log_dir / f"tocsin-{os.getpid()}-{id(self)}.log", "wb")
        admin = data / "admin.json"
        if admin.exists():
            admin.unlink()
        self.proc = subprocess.Popen(
            [tocsin_bin(), "serve", "--listen", "127.0.0.1:0", "--data", str(data), *extra_args],
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                endpoint = json.loads(admin.read_text())
                break
            except (FileNotFoundError, json.JSONDecodeError):
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"tocsin did not start; see {self.log.name}")
                time.sleep(0.02)
        self.url = endpoint["url"]
        self.token = endpoint["token"]
        while True:
            try:
                with urllib.request.urlopen(self.url + "/readyz") as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("tocsin never became ready")
            time.sleep(0.02)

    def add_user(self, name: str, password: str, email: str | None = None):
        args = [tocsin_bin(), "user", "add", name, "--password-stdin", "--data", str(self.data)]
        if email:
            args += ["--email", email]
        subprocess.run(args, input=password + "\n", text=True, check=True, capture_output=True)

    def set_alarm_channels(self, user, channels, webhook_url):
        args = [tocsin_bin(), "user", "alarms", user, "--channels", ",".join(channels), "--data", str(self.data)]
        if webhook_url:
            args += ["--webhook-url", webhook_url]
        subprocess.run(args, check=True, capture_output=True)

    def admin_get(self, path):
        req = urllib.request.Request(self.url + path, headers={"Authorization": "Bearer " + self.token})
        with urllib.request.urlopen(req) as r:
            return json.loads(r.read())

    def alarm_log(self, user=None, count=500):
        query = f"?count={count}" + (f"&user={user}" if user else "")
        return self.admin_get("/admin/alarms/log" + query)

    def kill(self):
        self.stop(signal.SIGKILL)

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)
        self.log.close()


@pytest.fixture(scope="session")
def server():
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        data.mkdir()
        srv = Server(data)
        srv.add_user("alice", "alice-pw", "alice@example.com")
        srv.add_user("bob", "bob-pw", "bob@example.com")
        try:
            yield srv
        finally:
            srv.stop()
