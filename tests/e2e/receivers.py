"""Real receivers for alarm deliveries: an HTTP webhook sink and an SMTP
server (aiosmtpd), both on 127.0.0.1 with ports the OS picks."""

import json
import socket
import threading
import time
from email import message_from_bytes
from email.policy import default as default_policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class WebhookSink:
    """Records every POST. A path starting with /flaky answers 500 to the
    first request carrying a given Idempotency-Key, then 200."""

    def __init__(self):
        self.received = []  # (monotonic, wall time, path, headers, body)
        self.lock = threading.Lock()
        self.seen_keys = set()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                key = self.headers.get("Idempotency-Key")
                with sink.lock:
                    sink.received.append((time.time(), self.path, {k.lower(): v for k, v in self.headers.items()}, json.loads(body)))
                    fail = self.path.startswith("/flaky") and key not in sink.seen_keys
                    sink.seen_keys.add(key)
                self.send_response(500 if fail else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def deliveries(self, uid=None, path=None):
        with self.lock:
            return [
                r for r in self.received
                if (uid is None or r[3]["uid"] == uid) and (path is None or r[1].startswith(path))
            ]

    def wait_for(self, uid, count=1, timeout=15.0, path=None):
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = self.deliveries(uid, path)
            if len(found) >= count:
                return found
            time.sleep(0.02)
        return self.deliveries(uid, path)

    def stop(self):
        self.server.shutdown()


class SmtpSink:
    """aiosmtpd on a fixed port, startable and stoppable, keeping messages."""

    def __init__(self, port=None):
        self.port = port or free_port()
        self.messages = []
        self.controller = None

    def start(self):
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                message = message_from_bytes(envelope.content, policy=default_policy)
                sink.messages.append((time.time(), envelope.rcpt_tos, message))
                return "250 Message accepted for delivery"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self):
        if self.controller:
            self.controller.stop()
            self.controller = None

    def wait_for(self, subject_part, count=1, timeout=20.0):
        deadline = time.time() + timeout
        while time.time() < deadline:
            found = [m for m in self.messages if subject_part in str(m[2]["Subject"])]
            if len(found) >= count:
                return found
            time.sleep(0.05)
        return [m for m in self.messages if subject_part in str(m[2]["Subject"])]
