"""The HTTP API: POST /v1/orders and /v1/orders:batch (bare ASGI, see routing.py) and the probes
on the public port; metrics, OpenAPI and the probes on the internal port (Starlette); the metrics
middleware wraps both. The token file is re-read when it changes (``coffee_service.reload``).

Checks run cheapest and least revealing first: token (401), content type (415), size (413),
JSON and schema (400/422), store ownership (403); only then is Kafka touched, so a rejected
request never writes anything. 202 is sent only after the broker's ack.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp

from coffee_ingest import rejections
from coffee_ingest.auth import Authenticator, AuthError, TokenFileError, load_tokens, parse_token_file
from coffee_ingest.metrics import Metrics, MetricsMiddleware
from coffee_ingest.openapi import build_openapi
from coffee_ingest.producer import Delivery, OrderProducer, ProduceError
from coffee_ingest.routing import Incoming, OrderRoutes
from coffee_ingest.settings import IngestSettings
from coffee_orders.schema import Order, Window, parse_order, to_wire
from coffee_service.problems import Problem
from coffee_service.reload import WatchedFile

log = logging.getLogger("coffee_ingest")

ORDERS, BATCH = "/v1/orders", "/v1/orders:batch"
ROUTES = (ORDERS, BATCH, "/healthz", "/readyz", "/metrics", "/openapi.json")
PUBLIC_ROUTES = (ORDERS, BATCH, "/healthz", "/readyz")


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type="application/json")


class IngestService:
    """The state behind the routes: settings, tokens, producer and metrics."""

    def __init__(self, settings: IngestSettings, authenticator: Authenticator | None = None) -> None:
        self.settings = settings
        self.metrics = Metrics(rejections.REASONS)
        self.token_file: WatchedFile[Authenticator] | None = None
        if authenticator is not None:
            self.auth = authenticator
        elif settings.tokens_file is not None:
            self.token_file = token_file = _watched_tokens(settings.tokens_file, self.metrics)
            self.metrics.token_file_ok.set_function(lambda: 1.0 if token_file.ok else 0.0)
            self.auth = token_file.value
        else:
            self.auth = Authenticator(load_tokens(content=settings.tokens))
        self.producer = OrderProducer(settings, self.metrics)
        self.openapi = orjson.dumps(build_openapi(settings))

    # -- shared steps ----------------------------------------------------------------------
    def _store(self, request: Incoming) -> str:
        try:
            return self.auth.store_for(request.header(b"authorization"))
        except AuthError as exc:
            raise rejections.unauthenticated(exc.detail, exc.error) from None

    async def _body(self, request: Incoming, limit: int) -> bytes:
        content_type = request.header(b"content-type")
        media, *params = (content_type or "").lower().split(";")
        charsets = [p.strip().removeprefix("charset=").strip('"') for p in params if p.strip().startswith("charset=")]
        if media.strip() != "application/json" or any(c != "utf-8" for c in charsets):
            raise rejections.unsupported_media_type(content_type)
        length = request.header(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            raise rejections.body_too_large(limit)
        chunks, size = [], 0
        async for chunk in request.chunks():  # a chunked body has no Content-Length: count as we go
            size += len(chunk)
            if size > limit:
                raise rejections.body_too_large(limit)
            chunks.append(chunk)
        return b"".join(chunks)

    def _window(self) -> Window:
        s = self.settings
        return Window(datetime.now(UTC), s.placed_at_horizon, s.placed_at_max_future)

    def _overloaded(self, extra: int) -> bool:
        return self.producer.pending + extra > self.settings.max_in_flight

    # -- routes ----------------------------------------------------------------------------
    async def post_order(self, request: Incoming) -> Response:
        store = self._store(request)
        body = await self._body(request, self.settings.max_body_bytes)
        try:
            order = parse_order(body, self._window())
        except ValidationError as exc:
            raise rejections.validation_problem(exc) from None
        if order.store_id != store:
            raise rejections.forbidden_store(store, order.store_id)
        if self._overloaded(1):
            self.metrics.unavailable.inc()
            raise rejections.overloaded(self.settings.retry_after_s)
        try:
            delivery = await self.producer.send(store.encode(), to_wire(order))
        except ProduceError as exc:
            self.metrics.unavailable.inc()
            log.debug("order %s not confirmed by Kafka: %s", order.message_id, exc.detail)
            raise rejections.kafka_unavailable(self.settings.retry_after_s, exc.detail) from None
        self.metrics.accepted.inc()
        return _json(_accepted(order, delivery), 202)

    async def post_batch(self, request: Incoming) -> Response:
        store = self._store(request)
        s = self.settings
        body = await self._body(request, s.max_batch_body_bytes)
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise rejections.malformed_json(str(exc)) from None
        raw_orders = _batch_orders(doc, s.max_batch_orders)
        window = self._window()
        results: list[dict[str, Any] | None] = [None] * len(raw_orders)
        valid: list[tuple[int, Order]] = []
        for index, raw in enumerate(raw_orders):
            try:
                text = orjson.dumps(raw)
                if len(text) > s.max_body_bytes:
                    raise rejections.body_too_large(s.max_body_bytes)
                order = parse_order(text, window)
                if order.store_id != store:
                    raise rejections.forbidden_store(store, order.store_id)
                valid.append((index, order))
            except ValidationError as exc:
                results[index] = self._reject_one(index, rejections.validation_problem(exc, at=("orders", index)))
            except Problem as problem:
                results[index] = self._reject_one(index, problem)
        if self._overloaded(len(valid)):
            deliveries: list[Delivery | ProduceError] = [ProduceError("too many orders in flight")] * len(valid)
        else:
            deliveries = await self.producer.send_many(
                [(order.store_id.encode(), to_wire(order)) for _, order in valid], raise_first=False)
        unavailable = 0
        for (index, order), delivery in zip(valid, deliveries, strict=True):
            if isinstance(delivery, Delivery):
                self.metrics.accepted.inc()
                results[index] = {"index": index, "status": 202, **_accepted(order, delivery)}
            else:
                unavailable += 1
                self.metrics.unavailable.inc()
                self.metrics.reject("kafka_unavailable")
                unconfirmed = rejections.kafka_unavailable(s.retry_after_s, delivery.detail)
                results[index] = {"index": index, "status": 503, "message_id": str(order.message_id),
                                  "problem": unconfirmed.document()}
        accepted = len(valid) - unavailable
        answer = {"accepted": accepted, "rejected": len(raw_orders) - len(valid), "unavailable": unavailable,
                  "results": results}
        return _json(answer, 200, {"Retry-After": str(s.retry_after_s)} if unavailable else None)

    def _reject_one(self, index: int, problem: Problem) -> dict[str, Any]:
        self.metrics.reject(problem.reason)
        self.metrics.rejected.inc()
        return {"index": index, "status": problem.status, "problem": problem.document()}

    async def healthz(self, request: Request) -> Response:
        return _json({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        ok, detail = await self.producer.ready()
        if ok:
            return _json({"status": "ready", "kafka": detail})
        return Problem(503, "not-ready", "Not ready", detail, reason="not_ready",
                       headers={"Retry-After": str(self.settings.retry_after_s)}).response(request.url.path)

    async def metrics_endpoint(self, request: Request) -> Response:
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def openapi_endpoint(self, request: Request) -> Response:
        return Response(self.openapi, media_type="application/json")

    def _tokens_changed(self, auth: Authenticator) -> None:
        self.auth = auth
        log.info("token file reloaded: %d stores", auth.store_count)

    # -- wiring ----------------------------------------------------------------------------
    def asgi(self) -> ASGIApp:
        """The public app: the order routes and the probes (its lifespan runs the producer)."""

        @asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            self.producer.start(io_event=self.settings.ack_wakeup == "io-event")
            log.info("order ingest ready to accept orders for %d stores on topic %s (Kafka acks via %s)",
                     self.auth.store_count, self.settings.topic, self.producer.delivery_mode)
            watch = None
            if self.token_file is not None:
                watch = asyncio.create_task(self.token_file.watch(
                    self.settings.tokens_reload_interval.total_seconds(), self._tokens_changed), name="tokens")
            try:
                yield
            finally:
                if watch is not None:
                    watch.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await watch
                await self.producer.close()

        rest = Starlette(
            routes=[Route("/healthz", self.healthz, methods=["GET"]), Route("/readyz", self.readyz, methods=["GET"])],
            exception_handlers={HTTPException: self._http_error, Exception: self._internal_error},
            lifespan=lifespan,
        )
        orders = OrderRoutes({ORDERS: self.post_order, BATCH: self.post_batch}, self.metrics, rest)
        return MetricsMiddleware(orders, metrics=self.metrics, routes=PUBLIC_ROUTES)

    def internal_asgi(self) -> ASGIApp:
        """The internal app: metrics, OpenAPI and the probes, for the monitoring only."""
        internal = Starlette(
            routes=[
                Route("/healthz", self.healthz, methods=["GET"]),
                Route("/readyz", self.readyz, methods=["GET"]),
                Route("/metrics", self.metrics_endpoint, methods=["GET"]),
                Route("/openapi.json", self.openapi_endpoint, methods=["GET"]),
            ],
            exception_handlers={HTTPException: self._http_error, Exception: self._internal_error},
        )
        return MetricsMiddleware(internal, metrics=self.metrics, routes=ROUTES)

    async def _http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        problem = rejections.http_problem(exc.status_code, exc.detail)
        self.metrics.reject(problem.reason)
        response = problem.response(request.url.path)
        response.headers.update(exc.headers or {})
        return response

    async def _internal_error(self, request: Request, exc: Exception) -> Response:
        log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
        return rejections.internal_error().response(request.url.path)


def _accepted(order: Order, delivery: Delivery) -> dict[str, Any]:
    return {"message_id": str(order.message_id), "topic": delivery.topic, "partition": delivery.partition,
            "offset": delivery.offset}


def _batch_orders(doc: Any, limit: int) -> list[Any]:
    """The ``orders`` array of a batch envelope, or a 4xx naming what is wrong with the envelope."""
    if not isinstance(doc, dict):
        raise rejections.batch_problem(422, "invalid-batch", "the body must be an object {\"orders\": [...]}",
                                     "wrong_type", field="body")
    unknown = sorted(set(doc) - {"orders"})
    if unknown:
        raise rejections.batch_problem(422, "invalid-batch", f"unknown field {unknown[0]!r}", "unknown_field",
                                     field=str(unknown[0]))
    if "orders" not in doc:
        raise rejections.batch_problem(422, "invalid-batch", "field required", "missing_field")
    orders = doc["orders"]
    if not isinstance(orders, list):
        raise rejections.batch_problem(422, "invalid-batch", "orders must be an array", "wrong_type")
    if not orders:
        raise rejections.batch_problem(422, "invalid-batch", "orders must contain at least one order", "invalid_value")
    if len(orders) > limit:
        raise rejections.batch_problem(413, "batch-too-large", f"at most {limit} orders per batch, got {len(orders)}",
                                     "batch_too_large")
    return orders


def _watched_tokens(path: Path, metrics: Metrics) -> WatchedFile[Authenticator]:
    try:
        return WatchedFile(path, lambda text: Authenticator(parse_token_file(text)), what="token file",
                           on_outcome=lambda outcome: metrics.token_reloads.labels(outcome).inc())
    except OSError as exc:
        raise TokenFileError(f"cannot read token file {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise TokenFileError(f"token file {path} is not UTF-8") from None


def create_app(settings: IngestSettings | None = None) -> ASGIApp:
    return IngestService(settings or IngestSettings.from_env()).asgi()
