"""The JSON API behind the page (documented in docs/dashboard.md). GET only.

    GET /api/v1/stores                          stores with their time zone and currency
    GET /api/v1/summary?store=                  today's live numbers for a store or _all
    GET /api/v1/status                          live | stale | down, and why
    GET /api/v1/ops                             the ops panel's latest readings
    GET /api/v1/history/hourly?store=&day=      revenue by local hour vs the same weekday a week earlier
    GET /api/v1/history/daily?store=&from=&to=  daily totals over a range of local days
    GET /api/v1/stream?store=                   Server-Sent Events: hello, summary, status, ops, history
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import orjson
from redis.exceptions import RedisError
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from coffee_dashboard import query
from coffee_dashboard.history import History
from coffee_dashboard.live import LiveHub, LiveReader, local_today, redis_error_text
from coffee_dashboard.ops import OpsMonitor
from coffee_dashboard.settings import DashboardSettings
from coffee_service.problems import Problem, bad_param, unavailable


def json_response(body: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json",
                    headers={"Cache-Control": "no-store"})


class Api:
    def __init__(self, settings: DashboardSettings, reader: LiveReader, hub: LiveHub, history: History,
                 ops: OpsMonitor) -> None:
        self.s = settings
        self.reader = reader
        self.hub = hub
        self.history = history
        self.ops = ops

    async def _known(self) -> set[str] | None:
        try:
            return await self.reader.known_stores()
        except RedisError:
            return None  # cannot tell: accept any well-formed store id

    async def _store(self, args: dict[str, str]) -> str:
        return query.store(args.get("store"), await self._known())

    async def stores(self, request: Request) -> Response:
        query.params(request.query_params.multi_items(), ())
        return json_response({"stores": await self.hub.store_list()})

    async def summary(self, request: Request) -> Response:
        args = query.params(request.query_params.multi_items(), ("store",))
        store = await self._store(args)
        try:
            body = await self.reader.summary(store)
        except RedisError as exc:
            raise unavailable("live", redis_error_text(exc)) from None
        return json_response({**body, "status": self.hub.status.to_json()})

    async def status(self, request: Request) -> Response:
        query.params(request.query_params.multi_items(), ())
        return json_response(self.hub.status.to_json())

    async def ops_panel(self, request: Request) -> Response:
        query.params(request.query_params.multi_items(), ())
        return json_response(self.ops.latest)

    async def hourly(self, request: Request) -> Response:
        args = query.params(request.query_params.multi_items(), ("store", "day"))
        store = await self._store(args)
        return json_response(await self.hourly_for(store, query.day("day", args["day"]) if "day" in args else None))

    async def hourly_for(self, store: str, day: date | None = None) -> dict[str, Any]:
        zone = self.s.timezone_of(store)
        return await self.history.hourly(store, day or local_today(zone), zone)

    async def daily(self, request: Request) -> Response:
        args = query.params(request.query_params.multi_items(), ("store", "from", "to"))
        store = await self._store(args)
        zone = self.s.timezone_of(store)
        last = query.day("to", args["to"]) if "to" in args else local_today(zone)
        if "from" not in args:
            raise bad_param("from", "required (YYYY-MM-DD)")
        first = query.day("from", args["from"])
        first, last = query.day_range(first, last, self.s.history_max_days)
        return json_response(await self.history.daily(store, first, last, zone))

    async def stream(self, request: Request) -> Response:
        args = query.params(request.query_params.multi_items(), ("store",))
        store = await self._store(args)
        if self.hub.client_count >= self.s.max_clients:
            raise Problem(503, "too-many-streams", "Too many live connections",
                          f"at most {self.s.max_clients} live pages at once", headers={"Retry-After": "10"})

        async def events() -> AsyncIterator[bytes]:
            sub = self.hub.subscribe(store)  # here, so the finally below always pairs with it
            try:
                yield f"retry: {int(self.s.heartbeat_s * 2000)}\n\n".encode()
                for event in await self.hub.initial_events(sub):
                    yield event
                while True:
                    message = await sub.queue.get()
                    if message is None:
                        return
                    yield message
            finally:
                self.hub.unsubscribe(sub)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
