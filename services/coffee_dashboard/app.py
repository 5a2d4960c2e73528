"""The dashboard service (Starlette): the page, its static files and the JSON API, behind read-only
auth, on the public port; its metrics and the probes on the internal port."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import redis.asyncio as aioredis
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from coffee_dashboard.api import Api, json_response
from coffee_dashboard.auth import Authenticator, AuthMiddleware
from coffee_dashboard.history import History
from coffee_dashboard.live import LiveHub, LiveReader
from coffee_dashboard.metrics import DashboardMetrics
from coffee_dashboard.ops import OpsMonitor
from coffee_dashboard.settings import DashboardSettings
from coffee_service.problems import Problem

log = logging.getLogger("coffee_dashboard")
STATIC = Path(__file__).parent / "static"
VENDORED = ("vendor/uPlot.iife.min.js", "vendor/uPlot.min.css")


class MissingAssets(RuntimeError):
    """The vendored chart library was not built (services/coffee_dashboard/web/build.sh)."""


class DashboardService:
    def __init__(self, settings: DashboardSettings) -> None:
        missing = [name for name in VENDORED if not (STATIC / name).is_file()]
        if missing:
            raise MissingAssets(f"missing {', '.join(missing)}: run services/coffee_dashboard/web/build.sh")
        self.settings = settings
        self.redis = aioredis.Redis.from_url(settings.redis_url.get_secret_value(), decode_responses=True,
                                             socket_timeout=2, socket_connect_timeout=1)
        self.http = httpx.AsyncClient(timeout=3)
        self.reader = LiveReader(self.redis, settings)
        self.history = History(settings.postgres_dsn.get_secret_value())
        self.ops = OpsMonitor(settings, self.http)
        self.api: Api
        self.hub = LiveHub(self.reader, settings, lambda store: self.api.hourly_for(store),
                           self.ops.pipeline_evidence)
        self.api = Api(settings, self.reader, self.hub, self.history, self.ops)
        self.metrics = DashboardMetrics()
        self.auth = Authenticator(settings, self.metrics)

    async def index(self, request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def healthz(self, request: Request) -> Response:
        return json_response({"status": "ok"})

    async def readyz(self, request: Request) -> Response:
        """Ready when the page can show live numbers: Redis answers."""
        if self.hub.redis_error is not None:
            raise Problem(503, "not-ready", "Not ready", "Redis is not reachable", headers={"Retry-After": "2"})
        return json_response({"status": "ready"})

    async def metrics_endpoint(self, request: Request) -> Response:
        return Response(generate_latest(self.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    def internal_asgi(self) -> Starlette:
        """Metrics and the probes, for the monitoring only (no auth: the port is not public)."""
        return Starlette(routes=[Route("/healthz", self.healthz, methods=["GET"]),
                                 Route("/readyz", _problems(self.readyz), methods=["GET"]),
                                 Route("/metrics", self.metrics_endpoint, methods=["GET"])],
                         exception_handlers={HTTPException: _http_error, Exception: _internal_error})

    def asgi(self) -> Starlette:
        @asynccontextmanager
        async def lifespan(_: Starlette) -> AsyncIterator[None]:
            self.hub.start()
            tasks = [asyncio.create_task(self.ops.run(self.hub.on_ops), name="ops")]
            token_file = self.auth.token_file
            if token_file is not None:
                tasks.append(asyncio.create_task(token_file.watch(
                    self.settings.tokens_reload_interval.total_seconds(), self.auth.set_tokens), name="tokens"))
            log.info("dashboard ready (auth %s, stale after %.0f s)", self.settings.auth, self.settings.stale_after_s)
            try:
                yield
            finally:
                for task in tasks:
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await self.hub.stop()
                await self.history.close()
                await self.http.aclose()
                await self.redis.aclose()

        api = self.api
        routes = [
            Route("/", self.index, methods=["GET"]),
            Route("/healthz", self.healthz, methods=["GET"]),
            Route("/readyz", _problems(self.readyz), methods=["GET"]),
            Route("/api/v1/stores", _problems(api.stores), methods=["GET"]),
            Route("/api/v1/summary", _problems(api.summary), methods=["GET"]),
            Route("/api/v1/status", _problems(api.status), methods=["GET"]),
            Route("/api/v1/ops", _problems(api.ops_panel), methods=["GET"]),
            Route("/api/v1/history/hourly", _problems(api.hourly), methods=["GET"]),
            Route("/api/v1/history/daily", _problems(api.daily), methods=["GET"]),
            Route("/api/v1/stream", _problems(api.stream), methods=["GET"]),
            Mount("/static", StaticFiles(directory=STATIC), name="static"),
        ]
        return Starlette(
            routes=routes,
            middleware=[Middleware(AuthMiddleware, authenticator=self.auth)],
            exception_handlers={HTTPException: _http_error, Exception: _internal_error},
            lifespan=lifespan,
        )


def _problems(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except Problem as problem:
            return problem.response(request.url.path)

    return endpoint


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
    problem = Problem(exc.status_code, slug, str(exc.detail), str(exc.detail), headers=dict(exc.headers or {}))
    return problem.response(request.url.path)


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return Problem(500, "internal", "Internal error", "an unexpected error").response(request.url.path)


def create_app(settings: DashboardSettings | None = None) -> Starlette:
    return DashboardService(settings or DashboardSettings.from_env()).asgi()
