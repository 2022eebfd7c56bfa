"""Apprise delivering to real receivers on loopback: a JSON webhook and ntfy over HTTP,
email over a real SMTP server. Failures come back with Apprise's reason and without
any secret part of the URL."""

from __future__ import annotations

import logging

import pytest

from gpu_tray.channels.deliver import Delivery, check_url, deliver, scrub, secret_parts
from gpu_tray.channels.message import Message
from tests.harness.endpoints import http_endpoint, smtp_server

MESSAGE = Message("GPU free on node3", "node3: GPU 0 (H100 80GB) is free, 79 GiB")
TOKEN = "T0KEN-s3cret-4b9f"


def test_json_webhook_receives_title_and_body() -> None:
    with http_endpoint() as hook:
        url = f"json://127.0.0.1:{hook.port}/hooks/{TOKEN}"
        assert deliver(url, MESSAGE) == Delivery(True)
        [post] = hook.posts
        assert post.path == f"/hooks/{TOKEN}"
        assert post.headers["Content-Type"] == "application/json"
        body = post.json
        assert (body["title"], body["message"], body["type"]) == (
            "GPU free on node3",
            "node3: GPU 0 (H100 80GB) is free, 79 GiB",
            "info",
        )


def test_ntfy_receives_the_topic_title_and_message() -> None:
    with http_endpoint() as ntfy:
        assert deliver(f"ntfy://127.0.0.1:{ntfy.port}/gpu-lab-{TOKEN}", MESSAGE).ok
        [post] = ntfy.posts
        assert post.json == {
            "topic": f"gpu-lab-{TOKEN}",
            "title": "GPU free on node3",
            "message": "node3: GPU 0 (H100 80GB) is free, 79 GiB",
        }


def test_email_through_a_real_smtp_server() -> None:
    with smtp_server() as smtp:
        url = f"mailto://127.0.0.1:{smtp.port}/team@lab.example?from=gpu-tray@lab.example"
        assert deliver(url, MESSAGE) == Delivery(True)
        [mail] = smtp.mails
        assert smtp.envelopes == [("gpu-tray@lab.example", ["team@lab.example"])]
        assert mail["Subject"] == "GPU free on node3"
        assert mail["To"] == "team@lab.example"
        text = mail.get_body(("plain", "html")).get_content()
        assert "node3: GPU 0 (H100 80GB) is free, 79 GiB" in text


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.name}: {record.getMessage()}")


def test_a_refusing_webhook_gives_apprises_reason_without_the_token() -> None:
    # What the app's own log handler (on the root logger, as `gpu-tray -v` sets it up)
    # receives. Not caplog: pytest hooks its handlers onto every logger.
    recorder = Recorder()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(recorder)
    root.setLevel(logging.DEBUG)
    try:
        _refusals()
    finally:
        root.removeHandler(recorder)
        root.setLevel(old_level)
    assert not [line for line in recorder.lines if TOKEN in line]
    assert not [line for line in recorder.lines if line.startswith("apprise")]


def _refusals() -> None:
    with http_endpoint() as hook:
        hook.status = 500
        url = f"json://127.0.0.1:{hook.port}/hooks/{TOKEN}"
        assert deliver(url, MESSAGE) == Delivery(
            False, "Failed to send JSON POST notification: Internal server error., error=500."
        )
        hook.status = 403
        result = deliver(f"ntfy://127.0.0.1:{hook.port}/{TOKEN}", MESSAGE)
        assert result == Delivery(
            False, "Failed to send ntfy notification to topic '***': error=403."
        )


def test_nothing_listening_and_a_bad_url() -> None:
    from tests.harness.sshd import free_port

    port = free_port()
    assert deliver(f"json://127.0.0.1:{port}/{TOKEN}", MESSAGE) == Delivery(
        False, "A Connection error occurred sending JSON notification to 127.0.0.1."
    )
    bad = "nosuchservice://" + TOKEN
    expected = (
        "Apprise does not understand this URL: check its scheme and fields "
        "(https://github.com/caronc/apprise/wiki lists them)"
    )
    assert deliver(bad, MESSAGE) == Delivery(False, expected)
    assert check_url(bad) == expected
    assert check_url("   ") == "the URL is empty"
    assert check_url(f"json://127.0.0.1:{port}/{TOKEN}") is None


@pytest.mark.parametrize(
    ("url", "text", "scrubbed"),
    [
        (
            "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#general",
            "Failed to send to T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ (general)",
            "Failed to send to ***/***/*** (***)",
        ),
        (
            "tgram://123456789:ABCdefGHIjklMNO/987654",
            "bot 123456789:ABCdefGHIjklMNO refused chat 987654",
            "bot ***:*** refused chat ***",
        ),
        (
            "mailtos://alice:pa%24%24word@mail.example.org:465?to=team%40lab.example",
            "login failed for alice with pa$$word at mail.example.org:465",
            "login failed for *** with *** at mail.example.org:465",
        ),
    ],
)
def test_scrub_masks_every_part_that_could_be_secret(url: str, text: str, scrubbed: str) -> None:
    assert scrub(text, url) == scrubbed
    assert scrub(url, url) == "***"
    assert all(len(p) >= 4 for p in secret_parts(url))
