"""One message to one Apprise URL, and why it failed, in words without the URL.

Apprise says why a delivery failed only in its log. We capture that log for the one
call and keep its last warning or error as the reason. Its lines can carry parts of
the URL (a webhook's path is its token), so the reason is scrubbed of every part of
the URL that could be secret, and Apprise's logger does not reach ours at all.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass
from urllib.parse import unquote

from gpu_tray.channels.message import Message

# Apprise's lines, and those of urllib3 under it ("POST /hooks/TOKEN"), can carry the
# URL's secret parts: they never reach our handlers. Nothing else here uses urllib3.
for _name in ("apprise", "urllib3"):
    logging.getLogger(_name).propagate = False
_lock = threading.Lock()  # LogCapture hooks the one "apprise" logger: one capture at a time

MASK = "***"
# Parts of a URL that say where, not how to get in: host names, addresses, ports, schemes.
_HOSTISH = re.compile(r"^(?:[A-Za-z0-9-]+\.)+[A-Za-z0-9-]+$|^\d{1,5}$")
_LEVEL = re.compile(r"^(WARNING|ERROR|CRITICAL) (.*)$")


@dataclass(frozen=True, slots=True)
class Delivery:
    ok: bool
    #: Why not, in Apprise's words, with the URL's secret parts masked; None when ok.
    reason: str | None = None


def secret_parts(url: str) -> list[str]:
    """Every piece of `url` that could be a secret, longest first (so that a piece
    inside another is masked after it)."""
    rest = url.split("://", 1)[-1]
    pieces = {url, rest, unquote(url), unquote(rest)}
    for piece in re.split(r"[/:@?&=#,;+]+", rest):
        for p in {piece, unquote(piece)}:
            if len(p) >= 4 and not _HOSTISH.match(p):
                pieces.add(p)
    return sorted((p for p in pieces if p), key=len, reverse=True)


def scrub(text: str, url: str) -> str:
    for piece in secret_parts(url):
        text = text.replace(piece, MASK)
    return text


def check_url(url: str) -> str | None:
    """None when Apprise understands `url`, else the problem in words (without the URL)."""
    import apprise

    if not url.strip():
        return "the URL is empty"
    with _lock:
        ok = apprise.Apprise().add(url)
    if not ok:
        return (
            "Apprise does not understand this URL: check its scheme and fields "
            "(https://github.com/caronc/apprise/wiki lists them)"
        )
    return None


def deliver(url: str, message: Message) -> Delivery:
    """Send `message` to `url` now (blocks: network). Never raises for a bad URL or a
    failed delivery: returns Delivery(False, reason)."""
    import apprise

    if problem := check_url(url):
        return Delivery(False, problem)
    with _lock, apprise.LogCapture(level=logging.WARNING, fmt="%(levelname)s %(message)s") as log:
        a = apprise.Apprise()
        a.add(url)
        try:
            ok = bool(a.notify(body=message.body, title=message.title))
        except Exception as exc:  # a plugin's own bug: say so, do not kill the sender
            ok = False
            log.write(f"ERROR {type(exc).__name__}: {exc}\n")
        lines = log.getvalue().splitlines()
    if ok:
        return Delivery(True)
    reasons = [m.group(2).strip() for line in lines if (m := _LEVEL.match(line))]
    reason = reasons[-1] if reasons else "Apprise reported a failure and gave no reason"
    return Delivery(False, scrub(reason, url)[:300])
