"""PrometheusProbe against small local HTTP servers: every failure is a typed state
with an exact message; auth headers; gzip; the fan-out of a source-level failure."""

from __future__ import annotations

import gzip
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gpu_tray.core.models import HostState
from gpu_tray.core.settings import SourceConfig
from gpu_tray.sources.base import NoSecrets
from gpu_tray.sources.prometheus.probe import PASSWORD_KIND, TOKEN_KIND, PrometheusProbe

CLUSTER = Path(__file__).resolve().parent.parent / "fixtures" / "cluster"
GOOD = (
    CLUSTER / "generated_local" / "GENERATED_LOCAL_prom_api_v1_query_dcgm_5metrics_regex.json"
).read_bytes()


class Api:
    """A stand-in for Prometheus' HTTP API that answers what the test tells it to."""

    def __init__(self) -> None:
        self.status = 200
        self.body = GOOD
        self.gzip = False
        self.headers_seen: list[dict[str, str]] = []
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                api.headers_seen.append(dict(self.headers))
                body = gzip.compress(api.body) if api.gzip else api.body
                self.send_response(api.status)
                self.send_header("Content-Type", "application/json")
                if api.gzip:
                    self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api() -> Iterator[Api]:
    a = Api()
    yield a
    a.close()


class Secrets(NoSecrets):
    def __init__(self, stored: dict[tuple[str, str], str]) -> None:
        self.stored = stored
        self.asked: list[tuple[str, str]] = []

    def secret(self, kind: str, account: str) -> str | None:
        self.asked.append((kind, account))
        return self.stored.get((kind, account))


def probe(url: str, secrets=None, **options) -> PrometheusProbe:
    return PrometheusProbe(
        SourceConfig(kind="prometheus", url=url, options=options), secrets or NoSecrets()
    )


def states(snaps) -> list[tuple[str, str, str | None]]:
    return [(s.name, s.state.value, s.message) for s in snaps]


def test_one_poll_gives_every_host(api: Api) -> None:
    p = probe(api.url)
    snaps = p.poll()
    assert [(s.name, s.state, s.source) for s in snaps] == [
        ("lke529760-766837-0a634ab30000", HostState.OK, "prometheus"),
        ("nvidia-dcgm-exporter-q28k4", HostState.OK, "prometheus"),
    ]
    assert p.expected_hosts() == ("lke529760-766837-0a634ab30000", "nvidia-dcgm-exporter-q28k4")
    # One request per poll, and it is the instant query.
    assert len(api.headers_seen) == 1
    assert "Authorization" not in api.headers_seen[0]


def test_gzip_answer(api: Api) -> None:
    api.gzip = True
    snaps = probe(api.url).poll()
    assert [s.state for s in snaps] == [HostState.OK, HostState.OK]
    assert api.headers_seen[0]["Accept-Encoding"] == "gzip"


def test_refused_before_any_host_is_known() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    assert states(probe(url).poll()) == [
        (
            f"prometheus:127.0.0.1:{port}",
            "unreachable",
            f"Cannot connect to Prometheus at {url}: connection refused",
        )
    ]


def test_source_failure_is_reported_for_every_known_host(api: Api) -> None:
    p = probe(api.url)
    p.poll()
    api.status, api.body = 503, b"Service Unavailable"
    assert states(p.poll()) == [
        (
            "lke529760-766837-0a634ab30000",
            "unreachable",
            f"Prometheus at {api.url} answered HTTP 503 Service Unavailable",
        ),
        (
            "nvidia-dcgm-exporter-q28k4",
            "unreachable",
            f"Prometheus at {api.url} answered HTTP 503 Service Unavailable",
        ),
    ]


def test_a_host_that_vanishes_is_unreachable(api: Api) -> None:
    p = probe(api.url)
    p.poll()
    api.body = (
        CLUSTER
        / "generated_local"
        / "GENERATED_LOCAL_prom_api_v1_query_range_DCGM_FI_DEV_FB_USED_mig.json"
    ).read_bytes()
    assert states(p.poll()) == [
        ("nvidia-dcgm-exporter-q28k4", "ok", None),
        (
            "lke529760-766837-0a634ab30000",
            "unreachable",
            f"Prometheus at {api.url} has no current DCGM data for lke529760-766837-0a634ab30000 "
            "(its exporter is down or no longer scraped)",
        ),
    ]


@pytest.mark.parametrize(
    ("status", "body", "state", "message"),
    [
        (
            400,
            b'{"status":"error","errorType":"bad_data","error":"invalid parameter \\"query\\": 1:14: parse error"}',
            "bad_output",
            'Prometheus at {url} rejected the query (HTTP 400 Bad Request): invalid parameter "query": 1:14: parse error',
        ),
        (
            422,
            b'{"status":"error","errorType":"execution","error":"query processing would load too many samples"}',
            "bad_output",
            "Prometheus at {url} rejected the query (HTTP 422 Unprocessable Entity): query processing would load too many samples",
        ),
        (
            404,
            b"404 page not found",
            "bad_output",
            "{url} has no Prometheus query API (HTTP 404 Not Found): is the url right?",
        ),
        (
            401,
            b"Unauthorized",
            "auth_failed",
            'Prometheus at {url} needs credentials (HTTP 401 Unauthorized): set auth = "bearer" or "basic" in its [[sources]] entry',
        ),
        (
            502,
            b"<html>Bad Gateway</html>",
            "unreachable",
            "Prometheus at {url} answered HTTP 502 Bad Gateway",
        ),
        (200, b"<html>Grafana</html>", "bad_output", "Prometheus at {url}: the answer is not JSON"),
        (
            200,
            b'{"status":"success","data":{"resultType":"vector","result":[]}}',
            "bad_output",
            "Prometheus at {url} has no DCGM exporter series (DCGM_FI_DEV_*): is the exporter scraped by it?",
        ),
    ],
)
def test_http_and_query_failures(
    api: Api, status: int, body: bytes, state: str, message: str
) -> None:
    api.status, api.body = status, body
    [snap] = probe(api.url).poll()
    assert (snap.name, snap.state.value, snap.message) == (
        f"prometheus:{api.url.removeprefix('http://')}",
        state,
        message.format(url=api.url),
    )


def test_bearer_token_from_the_keyring(api: Api) -> None:
    secrets = Secrets({(TOKEN_KIND, api.url): "s3cret-token"})
    p = probe(api.url + "/", secrets, auth="bearer")
    assert all(s.ok for s in p.poll())
    assert api.headers_seen[-1]["Authorization"] == "Bearer s3cret-token"
    assert secrets.asked == [(TOKEN_KIND, api.url)]
    p.poll()
    assert secrets.asked == [(TOKEN_KIND, api.url)]  # looked up once, not every poll
    api.status, api.body = 403, b"Forbidden"
    assert states(p.poll())[0][1:] == (
        "auth_failed",
        f"Prometheus at {api.url} refused the credentials (HTTP 403 Forbidden)",
    )
    assert HostState.AUTH_FAILED.needs_user  # the poller waits for the user, never retries
    p.reset()
    api.status, api.body = 200, GOOD
    p.poll()
    assert len(secrets.asked) == 2  # a reset looks it up again


def test_basic_auth_from_the_keyring(api: Api) -> None:
    secrets = Secrets({(PASSWORD_KIND, f"alice@{api.url}"): "pa:ss"})
    assert all(s.ok for s in probe(api.url, secrets, auth="basic", username="alice").poll())
    assert api.headers_seen[-1]["Authorization"] == "Basic YWxpY2U6cGE6c3M="


def test_missing_secret_is_auth_failed_without_a_request(api: Api) -> None:
    assert states(probe(api.url, auth="bearer").poll()) == [
        (
            f"prometheus:{api.url.removeprefix('http://')}",
            "auth_failed",
            f"No bearer token for Prometheus at {api.url} in the system keyring",
        )
    ]
    assert states(probe(api.url, auth="basic", username="bob").poll())[0][2] == (
        f"No password for bob at Prometheus {api.url} in the system keyring"
    )
    assert api.headers_seen == []


def test_tarpit_times_out_with_our_deadline() -> None:
    """A listener that accepts and never answers: the probe gives up at timeout_s."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        [snap] = probe(url, timeout_s=0.5).poll()
    assert (snap.state.value, snap.message) == (
        "timeout",
        f"Prometheus at {url} did not answer within 0.5 s",
    )
