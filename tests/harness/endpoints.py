"""Real receivers for channel tests, on 127.0.0.1 only: an HTTP endpoint that records
every POST (what Apprise's json:// and ntfy:// send), and a real SMTP server
(aiosmtpd) that records every mail (what mailto:// sends)."""

from __future__ import annotations

import email
import email.policy
import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.harness.sshd import free_port


@dataclass
class Post:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpEndpoint:
    port: int
    posts: list[Post] = field(default_factory=list)
    #: The status code to answer with (a test sets 500 to make deliveries fail).
    status: int = 200

    def json_posts(self) -> list[Any]:
        return [p.json for p in list(self.posts)]


@contextmanager
def http_endpoint() -> Iterator[HttpEndpoint]:
    endpoint = HttpEndpoint(port=0)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            endpoint.posts.append(Post(self.path, dict(self.headers), body))
            self.send_response(endpoint.status)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    endpoint.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield endpoint
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class SmtpServer:
    port: int
    mails: list[email.message.EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)


@contextmanager
def smtp_server() -> Iterator[SmtpServer]:
    from aiosmtpd.controller import Controller

    box = SmtpServer(port=free_port())

    class Handler:
        async def handle_DATA(self, server, session, envelope) -> str:
            box.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            box.mails.append(
                email.message_from_bytes(envelope.content, policy=email.policy.default)
            )
            return "250 Message accepted for delivery"

    controller = Controller(Handler(), hostname="127.0.0.1", port=box.port)
    controller.start()
    try:
        yield box
    finally:
        controller.stop()


def wait_until(predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
