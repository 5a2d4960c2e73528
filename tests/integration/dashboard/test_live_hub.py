"""The live hub on real Redis: the status follows new numbers at once, not a heartbeat later."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import orjson
import redis.asyncio as aioredis

from coffee_dashboard.live import LiveHub, LiveReader
from coffee_dashboard.ops import Evidence
from coffee_dashboard.settings import DashboardSettings


async def _events(queue: asyncio.Queue[bytes | None], timeout: float, until_status: bool = True
                  ) -> list[tuple[str, Any]]:
    """What the subscriber receives within ``timeout`` s (up to the first status event, if asked)."""
    events: list[tuple[str, Any]] = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = await asyncio.wait_for(queue.get(), left)
        except TimeoutError:
            break
        assert message is not None
        head, data = message.decode().split("\n", 1)
        events.append((head.removeprefix("event: "), orjson.loads(data.removeprefix("data: "))))
        if until_status and events[-1][0] == "status":
            break
    return events


async def _first_update_flips_the_status(redis_url: str) -> None:
    # A database of its own: no job's updated_at, so the hub starts with "No live data yet".
    client = aioredis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/9")
    await client.flushdb()
    store = f"store-{uuid.uuid4().hex[:6]}"
    settings = DashboardSettings(auth="none", heartbeat_s=30, stale_after_s=60, coalesce_s=0,
                                  history_refresh_s=3600, stores=[store])

    async def history(_: str) -> dict[str, Any]:
        return {}

    hub = LiveHub(LiveReader(client, settings), settings, history,
                  lambda: Evidence("RUNNING", 0, "", None, None))
    sub = hub.subscribe(store)
    # The pump and the heartbeat, not the pub/sub listener: other tests' jobs publish on this server
    # (pub/sub ignores the database), and their updates would move the status.
    tasks = [asyncio.create_task(hub._pump()), asyncio.create_task(hub._heartbeat())]
    try:
        # The first heartbeat finds Redis up: its status, then every store re-read once.
        first = await _events(sub.queue, 3, until_status=False)
        assert [name for name, _ in first] == ["status", "summary"]
        assert (first[0][1]["state"], first[0][1]["headline"]) == ("stale", "No live data yet")

        updated_at = int(time.time() * 1000)
        hub._on_update(orjson.dumps({"store": store, "updated_at": updated_at}))  # as the pub/sub listener does
        events = await _events(sub.queue, 5)  # the next heartbeat is 30 s away
        assert [name for name, _ in events] == ["summary", "status"]
        assert events[0][1]["orders"] == 0
        assert (events[1][1]["state"], events[1][1]["last_update_ms"]) == ("live", updated_at)

        hub._on_update(orjson.dumps({"store": store, "updated_at": updated_at + 1}))
        again = await _events(sub.queue, 2)  # still live: the numbers alone, no extra status
        assert [name for name, _ in again] == ["summary"]
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await client.aclose()


def test_new_numbers_push_a_changed_status_at_once(redis_url: str) -> None:
    # A loop of its own, not asyncio.run: that leaves the thread's event loop unset, and later
    # tests whose libraries call asyncio.get_event_loop() (Pulumi's mocks) then fail.
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(_first_update_flips_the_status(redis_url))
    finally:
        loop.close()
