"""Live numbers: Redis reads, and the one pub/sub subscription fanned out to every browser (SSE).

The job PUBLISHes on ``coffee:updates`` after each write. One listener per process marks the
store (and ``_all``) dirty; a pump re-reads each dirty store once (a burst of flushes within
``coalesce_s`` is one read) and pushes it to that store's subscribers. A heartbeat every
``heartbeat_s`` pings Redis, works out the pipeline status (:mod:`coffee_dashboard.staleness`)
and pushes it to everyone, so the page knows its age and "down" without asking; new numbers that
change the status (the first update after a quiet spell) push it at once. After Redis
comes back every subscribed store is re-read: messages published while we were away are lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from coffee_dashboard import staleness, summary
from coffee_dashboard.ops import Evidence
from coffee_dashboard.query import ALL_STORES
from coffee_dashboard.settings import DashboardSettings
from coffee_live.layout import PRODUCT_NAMES, STORES, UPDATES_CHANNEL, current_day_key, day_key

log = logging.getLogger("coffee_dashboard.live")
CLOCK_MARGIN_MS = 1000  # the job's clock (updated_at) against ours
PARTS = ("summary", "products", "product_revenue", "origins", "per_minute")


def now_ms() -> int:
    return int(time.time() * 1000)


def local_today(zone: str, at_ms: int | None = None) -> date:
    at = datetime.fromtimestamp((at_ms if at_ms is not None else now_ms()) / 1000, UTC)
    return at.astimezone(ZoneInfo(zone)).date()


def redis_error_text(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return f"Redis: {text.splitlines()[0][:200]}"


class LiveReader:
    def __init__(self, client: aioredis.Redis, settings: DashboardSettings) -> None:
        self.client = client
        self.s = settings

    async def known_stores(self) -> set[str]:
        seen: set[Any] = await self.client.smembers(STORES)  # type: ignore[misc]
        return set(self.s.stores) | {str(s) for s in seen}

    async def summary(self, store: str, at_ms: int | None = None) -> dict[str, Any]:
        at_ms = at_ms if at_ms is not None else now_ms()
        zone = self.s.timezone_of(store)
        today = local_today(zone, at_ms).isoformat()
        current = await self.client.get(current_day_key(store))
        day = summary.choose_day(today, current)
        pipe = self.client.pipeline(transaction=True)  # one MULTI: the job writes a flush in one too
        for part in PARTS:
            pipe.hgetall(day_key(store, day, part))
        pipe.zrevrange(day_key(store, day, "recent"), 0, self.s.recent_orders - 1)
        results = await pipe.execute()
        raw = summary.RawLive(*results)
        skus = sorted(raw.products)
        names: dict[str, str] = {}
        if skus:
            values = await self.client.hmget(PRODUCT_NAMES, skus)  # type: ignore[misc]
            names = {sku: name for sku, name in zip(skus, values, strict=True) if name}
        return summary.build(store, zone, self.s.currency_of(store), today, day, raw, names, at_ms,
                             self.s.top_products, self.s.recent_orders)

    async def last_update_ms(self) -> int | None:
        """When the job last wrote anything (the all-stores summary's ``updated_at``)."""
        day = await self.client.get(current_day_key(ALL_STORES))
        if not day:
            return None
        value = await self.client.hget(day_key(ALL_STORES, day, "summary"), "updated_at")  # type: ignore[misc]
        return int(value) if value else None


def sse(event: str, data: Any) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


@dataclass(eq=False)
class Subscriber:
    store: str
    queue: asyncio.Queue[bytes | None] = field(default_factory=lambda: asyncio.Queue(maxsize=256))

    def push(self, message: bytes) -> bool:
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            return False
        return True


History = Callable[[str], Awaitable[dict[str, Any]]]


class LiveHub:
    def __init__(self, reader: LiveReader, settings: DashboardSettings, history: History,
                 evidence: Callable[[], Evidence]) -> None:
        self.reader = reader
        self.s = settings
        self.history = history
        self.evidence = evidence
        self.subscribers: dict[str, set[Subscriber]] = {}
        self.dirty: set[str] = set()
        self.history_dirty: set[str] = set()
        self.wake = asyncio.Event()
        self.redis_error: str | None = "not checked yet"
        self.last_update_ms: int | None = None
        self.status = staleness.assess(now_ms(), self.redis_error, None, settings.stale_after_s)
        self.ops: dict[str, Any] = {}
        # The orders topic's size as first measured after the latest live update.
        self._baseline: tuple[int | None, int | None] = (None, None)  # (update ms, end offsets)
        self._tasks: list[asyncio.Task[None]] = []

    # -- subscribers ---------------------------------------------------------------------
    @property
    def client_count(self) -> int:
        return sum(len(s) for s in self.subscribers.values())

    def subscribe(self, store: str) -> Subscriber:
        sub = Subscriber(store)
        self.subscribers.setdefault(store, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        subs = self.subscribers.get(sub.store)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self.subscribers[sub.store]

    def _send(self, subs: set[Subscriber], message: bytes) -> None:
        for sub in list(subs):
            if not sub.push(message):  # a client that cannot keep up is dropped; its browser reconnects
                log.warning("dropping a slow stream client of store %s", sub.store)
                self.unsubscribe(sub)
                with contextlib.suppress(asyncio.QueueFull):
                    sub.queue.get_nowait()
                    sub.queue.put_nowait(None)

    def broadcast(self, event: str, data: Any, store: str | None = None) -> None:
        message = sse(event, data)
        if store is None:
            for subs in list(self.subscribers.values()):
                self._send(subs, message)
        elif store in self.subscribers:
            self._send(self.subscribers[store], message)

    async def initial_events(self, sub: Subscriber) -> list[bytes]:
        """What a new stream starts with: the full picture, then only changes."""
        events = [sse("hello", {"store": sub.store, "stale_after_s": self.s.stale_after_s,
                                "heartbeat_s": self.s.heartbeat_s, "stores": await self.store_list()})]
        try:
            events.append(sse("summary", await self.reader.summary(sub.store)))
        except RedisError:
            pass  # the status event says down
        events.append(sse("status", self.status.to_json()))
        if self.ops:
            events.append(sse("ops", self.ops))
        events.append(sse("history", await self._history(sub.store)))
        return events

    async def store_list(self) -> list[dict[str, str]]:
        try:
            stores = sorted(await self.reader.known_stores())
        except RedisError:
            stores = sorted(self.s.stores)
        return [{"store": store, "timezone": self.s.timezone_of(store), "currency": self.s.currency_of(store)}
                for store in [ALL_STORES, *stores]]

    async def _history(self, store: str) -> dict[str, Any]:
        from coffee_service.problems import Problem

        try:
            return await self.history(store)
        except Problem as problem:
            return {"store": store, "error": problem.detail}

    # -- loops -----------------------------------------------------------------------------
    def start(self) -> None:
        for loop in (self._listen, self._pump, self._heartbeat, self._history_loop):
            self._tasks.append(asyncio.create_task(loop(), name=f"live-{loop.__name__}"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for subs in list(self.subscribers.values()):
            for sub in list(subs):
                with contextlib.suppress(asyncio.QueueFull):
                    sub.queue.put_nowait(None)

    def mark_all_dirty(self) -> None:
        self.dirty |= set(self.subscribers)
        self.history_dirty |= set(self.subscribers)
        self.wake.set()

    async def _listen(self) -> None:
        while True:
            pubsub = self.reader.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(UPDATES_CHANNEL)
                self.mark_all_dirty()  # whatever was published while we were not listening
                while True:
                    message = await pubsub.get_message(timeout=5.0)
                    if message is not None:
                        self._on_update(message.get("data"))
            except (RedisError, OSError) as exc:
                log.debug("pub/sub lost: %s", exc)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
            await asyncio.sleep(1.0)

    def _on_update(self, data: Any) -> None:
        try:
            update = orjson.loads(data)
            store = str(update["store"])
            updated = int(update.get("updated_at") or 0)
        except (ValueError, TypeError, KeyError):
            log.warning("ignoring a malformed update message: %.200r", data)
            return
        if updated:
            self.last_update_ms = max(self.last_update_ms or 0, updated)
        self.dirty.add(store)
        self.history_dirty.add(store)
        if store != ALL_STORES:
            self.history_dirty.add(ALL_STORES)
        self.wake.set()

    async def _pump(self) -> None:
        while True:
            await self.wake.wait()
            self.wake.clear()
            if self.s.coalesce_s:
                await asyncio.sleep(self.s.coalesce_s)
            dirty, self.dirty = self.dirty, set()
            for store in sorted(dirty & set(self.subscribers)):
                try:
                    self.broadcast("summary", await self.reader.summary(store), store)
                except RedisError as exc:
                    log.debug("summary of %s not read: %s", store, exc)
                    self.dirty.add(store)  # read again once Redis answers
            # New numbers are fresh numbers: a page must not show them under the last beat's
            # "stale" (the first update after a quiet spell would wait up to a heartbeat).
            self._publish_status(only_if_changed=True)

    async def _heartbeat(self) -> None:
        while True:
            was_down = self.redis_error is not None
            try:
                last = await self.reader.last_update_ms()
                self.redis_error = None
                if last is not None:
                    self.last_update_ms = max(self.last_update_ms or 0, last)
            except (RedisError, OSError) as exc:
                self.redis_error = redis_error_text(exc)
            if was_down and self.redis_error is None:
                self.mark_all_dirty()
            self._publish_status()
            await asyncio.sleep(self.s.heartbeat_s)

    def _publish_status(self, only_if_changed: bool = False) -> None:
        evidence = self.evidence()
        before = self.status
        self.status = staleness.assess(now_ms(), self.redis_error, self.last_update_ms, self.s.stale_after_s,
                                       evidence.job_state, evidence.lag, evidence.note, self._arrived(evidence))
        if not only_if_changed or (self.status.state, self.status.severity, self.status.headline) != \
                (before.state, before.severity, before.headline):
            self.broadcast("status", self.status.to_json())

    def _arrived(self, evidence: Evidence) -> int | None:
        """Records written to the orders topic since the first Kafka reading begun (a margin) after
        the latest live update, so the baseline holds every order that update counted. Records that
        came just before that reading are missed: fine, a stuck job keeps receiving them."""
        update, end = self._baseline
        if update != self.last_update_ms:
            self._baseline = update, end = self.last_update_ms, None
        after, current = evidence.measured_after_ms, evidence.end_offsets
        if current is None or after is None or self.last_update_ms is None \
                or after < self.last_update_ms + CLOCK_MARGIN_MS:
            return None
        if end is None:
            self._baseline = self.last_update_ms, current
            return 0
        return max(0, current - end)

    async def _history_loop(self) -> None:
        while True:
            await asyncio.sleep(self.s.history_refresh_s)
            dirty, self.history_dirty = self.history_dirty, set()
            for store in sorted(dirty & set(self.subscribers)):
                self.broadcast("history", await self._history(store), store)

    async def on_ops(self, snapshot: dict[str, Any]) -> None:
        self.ops = snapshot
        self.broadcast("ops", snapshot)
