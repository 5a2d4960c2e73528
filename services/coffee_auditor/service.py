"""The continuous auditor: a round every interval, ``/metrics`` and ``/healthz`` on one port.

The HTTP server answers from its own threads while a round runs (a first round may read a long
topic). ``/healthz`` answers 200 while the process serves; a round that fails (a server down) is
counted (``coffee_ledger_audit_errors_total``) and tried again after the interval, and the verdict
goes stale on the dashboard (docs/ledger.md). A stop (SIGTERM) ends the process at once: a round cut
short saved nothing, and the next process resumes from the last saved tally.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app

from coffee_auditor.engine import AuditError, Auditor
from coffee_auditor.metrics import LedgerMetrics
from coffee_auditor.settings import AuditorSettings

StartResponse = Callable[..., Any]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per scrape is noise


def app(metrics: LedgerMetrics) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    serve_metrics = make_wsgi_app(metrics.registry)

    def wsgi(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return serve_metrics(environ, start_response)  # type: ignore[no-any-return]
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain; charset=utf-8")])
            return [b"ok\n"]
        start_response("404 Not Found", [("Content-Type", "text/plain; charset=utf-8")])
        return [b"not found: /metrics or /healthz\n"]

    return wsgi


def start_http(host: str, port: int, metrics: LedgerMetrics) -> WSGIServer:
    server = make_server(host, port, app(metrics), server_class=_Server, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server


def say(message: str) -> None:
    print(message, flush=True)


def run(settings: AuditorSettings) -> None:
    """Serve, and run rounds until the process is stopped."""
    metrics = LedgerMetrics()
    server = start_http(settings.host, settings.port, metrics)
    interval = settings.interval.total_seconds()
    auditor = Auditor(settings.targets())
    say(f"auditor: serving /metrics and /healthz on {settings.host}:{settings.port}, topic {settings.topic}, "
        f"a round every {interval:g} s")
    try:
        while True:
            try:
                report = auditor.round(progress=say)
            except AuditError as exc:
                metrics.errors.inc()
                say(f"auditor: round failed: {exc}")
            else:
                metrics.update(report, time.time())
                verdict = "all agree" if report.agrees else "DIFFERENCES"
                say(f"auditor: {report.records_read} records read in {report.seconds:.2f} s, "
                    f"{report.remembered_ids} ids remembered: {verdict}")
            time.sleep(interval)
    finally:
        server.shutdown()
        server.server_close()
