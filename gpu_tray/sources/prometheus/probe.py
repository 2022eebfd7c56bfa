"""Prometheus source: every GPU the DCGM exporter reports, from one instant query per poll.

One probe serves many hosts (grouped by the exporter's `Hostname` label). HTTP
and query failures become typed states; when the whole source fails, every host
it knew gets that state (or, before it knew any, one entry named after the source).
"""

from __future__ import annotations

import base64
import gzip
import json
import socket
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from dataclasses import dataclass
from datetime import datetime
from http.client import HTTPException, HTTPResponse

from gpu_tray.core.models import HostSnapshot, HostState, utcnow
from gpu_tray.core.settings import SourceConfig
from gpu_tray.sources.base import SecretLookup
from gpu_tray.sources.prometheus.dcgm import (
    DEFAULT_HOST_LABEL,
    QueryError,
    build_hosts,
    host_snapshot,
    instant_query,
    series_from_query,
)

DEFAULT_TIMEOUT_S = 10.0
# DCGM exporters are usually scraped every 15-30 s: three missed scrapes is stale.
DEFAULT_STALE_AFTER_S = 90.0
MAX_RESPONSE_BYTES = 256 * 1024 * 1024
TOKEN_KIND = "prometheus-token"
PASSWORD_KIND = "prometheus-password"


@dataclass(frozen=True, slots=True)
class PrometheusOptions:
    """The [[sources]] keys a prometheus source understands (validated in core/config.py)."""

    auth: str = "none"  # "none" | "bearer" | "basic"
    username: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    stale_after_s: float = DEFAULT_STALE_AFTER_S
    host_label: str = DEFAULT_HOST_LABEL
    ca_file: str | None = None

    @classmethod
    def of(cls, source: SourceConfig) -> PrometheusOptions:
        o = source.options
        return cls(
            auth=str(o.get("auth", "none")),
            username=str(o["username"]) if o.get("username") else None,
            timeout_s=float(o.get("timeout_s", DEFAULT_TIMEOUT_S)),  # type: ignore[arg-type]
            stale_after_s=float(o.get("stale_after_s", DEFAULT_STALE_AFTER_S)),  # type: ignore[arg-type]
            host_label=str(o.get("host_label", DEFAULT_HOST_LABEL)),
            ca_file=str(o["ca_file"]) if o.get("ca_file") else None,
        )


class _Failure(Exception):
    def __init__(self, state: HostState, message: str) -> None:
        super().__init__(message)
        self.state, self.message = state, message


class PrometheusProbe:
    kind = "prometheus"

    def __init__(self, source: SourceConfig, secrets: SecretLookup) -> None:
        if not source.url:
            raise ValueError("a prometheus source needs a url")
        self.source = source
        self.options = PrometheusOptions.of(source)
        self.url = source.url.rstrip("/")
        # Also the name of the one snapshot reported before any host is known, so
        # that the poller's reset(name) finds this probe by it.
        netloc = urllib.parse.urlsplit(self.url).netloc
        self.source_name = self.name = source.name or f"prometheus:{netloc}"
        self.secrets = secrets
        self.query = instant_query(self.options.host_label, self.options.stale_after_s)
        self._known: dict[str, None] = {}  # hosts seen, in order of first appearance
        self._auth_header: str | None = None
        self.last_response_bytes = 0  # for the benchmark: what one poll moved

    # -- Probe -----------------------------------------------------------------------------

    def expected_hosts(self) -> tuple[str, ...]:
        return tuple(self._known)

    def poll(self) -> list[HostSnapshot]:
        polled_at = utcnow()
        start = time.monotonic()
        try:
            body = self._fetch()
            result = series_from_query(body)
        except _Failure as f:
            return self._failed(f.state, f.message, polled_at)
        except QueryError as exc:
            return self._failed(HostState.BAD_OUTPUT, f"Prometheus at {self.url}: {exc}", polled_at)
        latency_ms = (time.monotonic() - start) * 1000.0
        now = result.evaluated_at if result.evaluated_at is not None else time.time()
        builds = build_hosts(
            result.series, now, self.options.stale_after_s, self.options.host_label
        )
        snaps = [host_snapshot(builds[name], polled_at, latency_ms, now) for name in sorted(builds)]
        for name in sorted(builds):
            self._known.setdefault(name, None)
        for name in self._known:
            if name not in builds:
                snaps.append(
                    HostSnapshot(
                        name,
                        HostState.UNREACHABLE,
                        f"Prometheus at {self.url} has no current DCGM data for {name} "
                        "(its exporter is down or no longer scraped)",
                        polled_at=polled_at,
                        latency_ms=latency_ms,
                        source=self.kind,
                    )
                )
        if not snaps:
            return [
                HostSnapshot(
                    self.source_name,
                    HostState.BAD_OUTPUT,
                    f"Prometheus at {self.url} has no DCGM exporter series "
                    "(DCGM_FI_DEV_*): is the exporter scraped by it?",
                    polled_at=polled_at,
                    latency_ms=latency_ms,
                    source=self.kind,
                )
            ]
        return snaps

    def reset(self) -> None:
        self._auth_header = None  # look the secret up again

    def close(self) -> None:
        pass

    # -- HTTP ------------------------------------------------------------------------------

    def _failed(self, state: HostState, message: str, polled_at: datetime) -> list[HostSnapshot]:
        names = list(self._known) or [self.source_name]
        return [
            HostSnapshot(name, state, message, polled_at=polled_at, source=self.kind)
            for name in names
        ]

    def _authorization(self) -> str | None:
        opts = self.options
        if opts.auth == "none":
            return None
        if self._auth_header is not None:
            return self._auth_header
        lookup = getattr(self.secrets, "secret", None)
        if opts.auth == "bearer":
            token = lookup(TOKEN_KIND, self.url) if lookup else None
            if not token:
                raise _Failure(
                    HostState.AUTH_FAILED,
                    f"No bearer token for Prometheus at {self.url} in the system keyring",
                )
            self._auth_header = f"Bearer {token}"
        else:
            user = opts.username or ""
            password = lookup(PASSWORD_KIND, f"{user}@{self.url}") if lookup else None
            if password is None:
                raise _Failure(
                    HostState.AUTH_FAILED,
                    f"No password for {user} at Prometheus {self.url} in the system keyring",
                )
            raw = f"{user}:{password}".encode()
            self._auth_header = "Basic " + base64.b64encode(raw).decode("ascii")
        return self._auth_header

    def _fetch(self) -> bytes:
        timeout = self.options.timeout_s
        query = urllib.parse.urlencode({"query": self.query})
        request = urllib.request.Request(f"{self.url}/api/v1/query?{query}", method="GET")
        request.add_header("Accept", "application/json")
        request.add_header("Accept-Encoding", "gzip")
        if auth := self._authorization():
            # Unredirected: a redirect to another host must not carry the secret.
            request.add_unredirected_header("Authorization", auth)
        context = None
        if self.url.startswith("https:"):
            try:
                context = ssl.create_default_context(cafile=self.options.ca_file)
            except (OSError, ssl.SSLError) as exc:
                raise _Failure(
                    HostState.BAD_OUTPUT, f"Cannot read ca_file {self.options.ca_file}: {exc}"
                ) from None
        deadline = time.monotonic() + timeout
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
                body = _read(response, deadline)
                encoding = response.headers.get("Content-Encoding", "")
        except urllib.error.HTTPError as exc:
            raise self._http_failure(exc) from None
        except urllib.error.URLError as exc:
            raise self._network_failure(exc.reason) from None
        except TimeoutError:
            raise self._timeout() from None
        except (OSError, HTTPException, ValueError) as exc:
            raise self._network_failure(exc) from None
        self.last_response_bytes = len(body)
        if encoding == "gzip":
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError, zlib.error):
                raise _Failure(
                    HostState.BAD_OUTPUT, f"Prometheus at {self.url}: the answer is not valid gzip"
                ) from None
        return body

    def _timeout(self) -> _Failure:
        return _Failure(
            HostState.TIMEOUT,
            f"Prometheus at {self.url} did not answer within {self.options.timeout_s:g} s",
        )

    def _network_failure(self, reason: object) -> _Failure:
        if isinstance(reason, TimeoutError):
            return self._timeout()
        if isinstance(reason, ConnectionRefusedError):
            why = "connection refused"
        elif isinstance(reason, socket.gaierror):
            why = "host name not found"
        elif isinstance(reason, ssl.SSLCertVerificationError):
            why = f"its TLS certificate is not trusted ({reason.verify_message})"
        elif isinstance(reason, ConnectionResetError):
            why = "the connection was reset"
        elif isinstance(reason, OSError) and reason.strerror:
            why = reason.strerror.lower()
        else:
            why = str(reason) or type(reason).__name__
        return _Failure(HostState.UNREACHABLE, f"Cannot connect to Prometheus at {self.url}: {why}")

    def _http_failure(self, exc: urllib.error.HTTPError) -> _Failure:
        status = f"HTTP {exc.code} {exc.reason}".strip()
        if exc.code in (401, 403):
            if self.options.auth == "none":
                return _Failure(
                    HostState.AUTH_FAILED,
                    f"Prometheus at {self.url} needs credentials ({status}): "
                    'set auth = "bearer" or "basic" in its [[sources]] entry',
                )
            return _Failure(
                HostState.AUTH_FAILED,
                f"Prometheus at {self.url} refused the credentials ({status})",
            )
        if exc.code in (400, 422):
            detail = _error_text(exc)
            return _Failure(
                HostState.BAD_OUTPUT,
                f"Prometheus at {self.url} rejected the query ({status})"
                + (f": {detail}" if detail else ""),
            )
        if exc.code == 404:
            return _Failure(
                HostState.BAD_OUTPUT,
                f"{self.url} has no Prometheus query API ({status}): is the url right?",
            )
        return _Failure(HostState.UNREACHABLE, f"Prometheus at {self.url} answered {status}")


def _read(response: HTTPResponse, deadline: float) -> bytes:
    """Read the whole body, but not past our own deadline or size limit: a server
    that trickles bytes would otherwise reset the socket timeout forever."""
    chunks: list[bytes] = []
    size = 0
    while True:
        if time.monotonic() > deadline:
            raise TimeoutError
        chunk = response.read(1 << 16)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise ValueError(f"the answer is larger than {MAX_RESPONSE_BYTES >> 20} MiB")
        chunks.append(chunk)


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        body = exc.read(65536)
        if exc.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        doc = json.loads(body)
        return " ".join(str(doc.get("error", "")).split())[:200]
    except Exception:  # an error page that is not Prometheus' JSON: the status says enough
        return ""
