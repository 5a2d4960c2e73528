"""Prometheus metrics of the service, on a registry of its own (one per app, so tests can build many).

Latency buckets are fine-grained below 10 ms because the target is a 3 ms p99; the benchmark
reads them back to report the server-side view next to the client's.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from coffee_service.serve import EVENTS, TIMED_OUT

LATENCY_BUCKETS = (
    0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.002, 0.0025, 0.003, 0.004, 0.005, 0.0075,
    0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)
UNMATCHED = "unmatched"


class Metrics:
    def __init__(self, reasons: Iterable[str] = ()) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("coffee_ingest_requests", "HTTP requests by route and status.",
                                ["route", "status"], registry=r)
        self.request_duration = Histogram("coffee_ingest_request_duration_seconds",
                                          "Time from request start to the last response byte, by route and status.",
                                          ["route", "status"], buckets=LATENCY_BUCKETS, registry=r)
        self.produce_duration = Histogram("coffee_ingest_produce_duration_seconds",
                                          "Time from handing a record to the producer until the broker's answer.",
                                          ["outcome"], buckets=LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge("coffee_ingest_in_flight_requests", "HTTP requests being served.", registry=r)
        self.rejections = Counter("coffee_ingest_rejections", "Orders or requests refused, by reason.",
                                  ["reason"], registry=r)
        self.orders = Counter("coffee_ingest_orders", "Orders by outcome (accepted = acknowledged by Kafka).",
                              ["outcome"], registry=r)
        for reason in reasons:  # so dashboards see zeros, not gaps
            self.rejections.labels(reason)
        for outcome in ("accepted", "rejected", "unavailable"):
            self.orders.labels(outcome)
        self.connections_cut = Counter(
            "coffee_ingest_connections_cut", "Clients cut off by the public port's limits, by reason (header_timeout, "
            "body_timeout, header_too_large, evicted, refused, busy).", ["reason"], registry=r)
        for event in EVENTS:
            self.connections_cut.labels(event)
        self.token_reloads = Counter("coffee_ingest_token_reloads", "Reads of a changed token file, by outcome "
                                     "(loaded; failed: the last good tokens stay in use).", ["outcome"], registry=r)
        for outcome in ("loaded", "failed"):
            self.token_reloads.labels(outcome)
        self.token_file_ok = Gauge("coffee_ingest_token_file_ok",
                                   "1 while the token file as it is now is the one in use, 0 after a failed reload.",
                                   registry=r)
        self.token_file_ok.set(1)  # tokens given as INGEST_TOKENS: nothing to reload
        self._children: dict[tuple[str, int], tuple[Any, Any]] = {}
        self.accepted = self.orders.labels("accepted")
        self.rejected = self.orders.labels("rejected")
        self.unavailable = self.orders.labels("unavailable")
        self.produce_acked = self.produce_duration.labels("acked")
        self.produce_failed = self.produce_duration.labels("failed")
        self.produce_timeout = self.produce_duration.labels("timeout")

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        # labels() takes a lock and builds a key each time; the hot path caches the children.
        key = (route, status)
        children = self._children.get(key)
        if children is None:
            children = (self.requests.labels(route, str(status)), self.request_duration.labels(route, str(status)))
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def reject(self, reason: str | None) -> None:
        self.rejections.labels(reason or "internal").inc()  # the ingest's own problems all carry one


class MetricsMiddleware:
    """Pure ASGI (no BaseHTTPMiddleware task overhead): counts, times and tracks in-flight requests."""

    def __init__(self, app: ASGIApp, metrics: Metrics, routes: Iterable[str]) -> None:
        self.app = app
        self.metrics = metrics
        self.routes = frozenset(routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 0

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        in_flight = self.metrics.in_flight
        in_flight.inc()
        try:
            await self.app(scope, receive, send_and_record)
        except BaseException:
            status = status or 500  # uvicorn answers 500 for it
            raise
        finally:
            in_flight.dec()
            if not status:  # no answer: the client went away (499, as nginx logs it) or timed out
                status = 408 if scope.get(TIMED_OUT) else 499
            path = scope["path"]
            self.metrics.observe_request(path if path in self.routes else UNMATCHED, status,
                                         time.perf_counter() - start)
