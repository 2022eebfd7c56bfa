"""A real Prometheus on loopback, scraping tiny HTTP servers that serve DCGM exporter texts.

Debian's `prometheus` with `scrape_interval: 1s`. The first sample becomes
queryable a few seconds after start (target discovery is batched), so callers
wait for data with `wait_for_series`, never with a sleep.
Recipe: ../shared/TESTING.md, "Cluster engines".
"""

from __future__ import annotations

import json
import subprocess
import threading
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests.harness.procs import HarnessError, free_port, stop_process, tail, wait_for

BINARY = "prometheus"
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "cluster"


def exposition_text(name: str) -> str:
    """A fixture as an exporter would serve it. The .ini captures start with a title
    line and a blank line that are not exposition format; Prometheus would reject
    the whole scrape, so those two lines are dropped (as in SOURCES.md)."""
    text = (FIXTURES / name).read_text()
    if name.endswith(".ini"):
        text = "\n".join(text.splitlines()[2:])
    return text if text.endswith("\n") else text + "\n"


class FakeExporter:
    """Serves one text as /metrics; `serve()` swaps it atomically."""

    def __init__(self, text: str) -> None:
        self._text = text.encode()
        self._lock = threading.Lock()
        self.scrapes = 0
        exporter = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                with exporter._lock:
                    body = exporter._text
                    exporter.scrapes += 1
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self._thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def serve(self, text: str) -> int:
        """Swap the served text; returns the scrape count at the swap."""
        with self._lock:
            self._text = text.encode()
            return self.scrapes

    def wait_scraped_after(self, count: int, timeout_s: float = 15.0) -> None:
        wait_for(lambda: self.scrapes > count, timeout_s, f"a scrape of {self.address}")

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class ScrapeJob:
    name: str
    targets: list[str]
    # Labels set on every sample, e.g. a stable Hostname for an exporter pod that
    # restarts under a new name (metric_relabel_configs, as sites do).
    set_labels: dict[str, str] = field(default_factory=dict)


class PrometheusServer:
    def __init__(self, root: Path, jobs: list[ScrapeJob]) -> None:
        self.root = root
        self.jobs = jobs
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _config(self) -> str:
        lines = ["global:", "  scrape_interval: 1s", "  scrape_timeout: 1s", "scrape_configs:"]
        for job in self.jobs:
            lines += [
                f"  - job_name: {json.dumps(job.name)}",
                "    static_configs:",
                f"      - targets: {json.dumps(job.targets)}",
            ]
            if job.set_labels:
                lines.append("    metric_relabel_configs:")
                for key, value in job.set_labels.items():
                    lines += [
                        "      - action: replace",
                        f"        target_label: {json.dumps(key)}",
                        f"        replacement: {json.dumps(value)}",
                    ]
        return "\n".join(lines) + "\n"

    def start(self, timeout_s: float = 30.0) -> PrometheusServer:
        self.root.mkdir(parents=True, exist_ok=True)
        conf = self.root / "prometheus.yml"
        conf.write_text(self._config())
        log = self.root / "prometheus.log"
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [
                    BINARY,
                    f"--config.file={conf}",
                    f"--storage.tsdb.path={self.root / 'data'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--log.level=warn",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_for(
            lambda: self.proc.poll() is not None or self._ready(),
            timeout_s,
            "prometheus /-/ready",
            on_timeout=lambda: tail(log),
        )
        if self.proc.poll() is not None:
            raise HarnessError("prometheus exited:\n" + tail(log))
        return self

    def _ready(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as r:
            return r.status == 200

    def query(self, promql: str) -> list[dict]:
        q = urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{q}", timeout=5) as r:
            return json.load(r)["data"]["result"]

    def wait_for_series(self, promql: str, timeout_s: float = 30.0) -> list[dict]:
        """Wait until `promql` returns something (e.g. the first scrape landed)."""
        return wait_for(
            lambda: self.query(promql),
            timeout_s,
            f"prometheus to return {promql}",
            interval_s=0.2,
        )

    def stop(self) -> None:
        stop_process(self.proc)
