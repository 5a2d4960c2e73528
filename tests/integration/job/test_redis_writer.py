"""The live metrics' Redis writer (one Lua script per flush batch) against the real Redis.

It uses a Redis database of its own, so the job's and the dashboard's keys are not touched.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import redis

from coffee_job.live_metrics import ALL_STORES, Flush, Summary
from coffee_job.redis_writer import Writer
from coffee_live.layout import PRODUCT_NAMES, STORES, UPDATES_CHANNEL, current_day_key, day_key

DAY = "2001-02-03"
EXPIRE_AT = 4_102_444_800  # 2100-01-01: far enough that the TTL is positive whenever this runs


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url.rsplit("/", 1)[0] + "/7", decode_responses=True)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


def flush(store: str, orders: int, **changes: object) -> Flush:
    values: dict[str, object] = dict(
        store=store, day=DAY, expire_at=EXPIRE_AT,
        summary=Summary(DAY, orders=orders, revenue_cents=123_456_789_012_345, quantity=7,
                        last_order_ms=981_158_400_123),
        products={"ESP-1": (5, 1250), "GUA-250": (2, 3600)}, names={"ESP-1": "Espresso", "GUA-250": "Guatemala"},
        origins={"Guatemala Honey": 2}, minutes={16_352_640: 3, 16_352_641: 4}, stale_minutes=[],
        recent=[(981_158_400_000 + n, json.dumps({"n": n})) for n in range(3)], new_day=False)
    values.update(changes)
    return Flush(**values)  # type: ignore[arg-type]


def test_a_batch_writes_every_key_exactly_and_announces_each_store(client: redis.Redis) -> None:
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(UPDATES_CHANNEL)
    Writer(client)([flush("store-1", 3), flush(ALL_STORES, 9, names={"CROIS": "Croissant"})], 1_000_000)

    summary = client.hgetall(day_key("store-1", DAY, "summary"))
    # Exact, not rounded: a Lua number would have turned 123456789012345 into 1.2345678901234e+14.
    assert summary == {"orders": "3", "revenue_cents": "123456789012345", "quantity": "7",
                       "last_order_at": "981158400123", "updated_at": "1000000"}
    assert client.hgetall(day_key("store-1", DAY, "products")) == {"ESP-1": "5", "GUA-250": "2"}
    assert client.hgetall(day_key("store-1", DAY, "product_revenue")) == {"ESP-1": "1250", "GUA-250": "3600"}
    assert client.hgetall(day_key("store-1", DAY, "origins")) == {"Guatemala Honey": "2"}
    assert client.hgetall(day_key("store-1", DAY, "per_minute")) == {"16352640": "3", "16352641": "4"}
    assert client.zrange(day_key("store-1", DAY, "recent"), 0, -1, withscores=True) == [
        (json.dumps({"n": n}), 981_158_400_000 + n) for n in range(3)]
    for part in ("summary", "products", "product_revenue", "origins", "per_minute", "recent"):
        assert client.expiretime(day_key("store-1", DAY, part)) == EXPIRE_AT
    assert client.get(current_day_key("store-1")) == DAY
    assert client.expiretime(current_day_key("store-1")) == EXPIRE_AT
    assert client.smembers(STORES) == {"store-1"}  # never "_all"
    assert client.hgetall(PRODUCT_NAMES) == {"ESP-1": "Espresso", "GUA-250": "Guatemala", "CROIS": "Croissant"}
    assert client.hget(day_key(ALL_STORES, DAY, "summary"), "orders") == "9"

    notices = []
    deadline = time.monotonic() + 5
    while len(notices) < 2 and time.monotonic() < deadline:
        # None also for the ignored subscribe confirmation: keep reading until the deadline.
        if (message := pubsub.get_message(timeout=0.5)) is not None:
            notices.append(json.loads(message["data"]))
    assert notices == [
        {"store": "store-1", "day": DAY, "orders": 3, "revenue_cents": 123_456_789_012_345, "updated_at": 1_000_000},
        {"store": ALL_STORES, "day": DAY, "orders": 9, "revenue_cents": 123_456_789_012_345,
         "updated_at": 1_000_000}]
    pubsub.close()


def test_a_later_flush_drops_stale_minutes_and_keeps_the_fifty_newest_orders(client: redis.Redis) -> None:
    write = Writer(client)
    write([flush("store-1", 3)], 1)
    recent = [(981_158_500_000 + n, json.dumps({"m": n})) for n in range(60)]
    write([flush("store-1", 63, minutes={16_352_700: 1}, stale_minutes=[16_352_640, 16_352_641],
                 recent=recent, products={}, names={}, origins={})], 2)

    assert client.hgetall(day_key("store-1", DAY, "per_minute")) == {"16352700": "1"}
    kept = client.zrange(day_key("store-1", DAY, "recent"), 0, -1)
    assert kept == [json.dumps({"m": n}) for n in range(10, 60)]
    assert client.hgetall(day_key("store-1", DAY, "products")) == {"ESP-1": "5", "GUA-250": "2"}  # untouched
    assert client.hget(day_key("store-1", DAY, "summary"), "orders") == "63"


def test_the_script_is_loaded_again_after_redis_forgot_it(client: redis.Redis) -> None:
    write = Writer(client)
    write([flush("store-1", 1)], 1)
    client.script_flush()  # what a Redis restart does to loaded scripts
    write([flush("store-1", 2)], 2)
    assert client.hget(day_key("store-1", DAY, "summary"), "orders") == "2"


def test_an_empty_batch_sends_nothing(client: redis.Redis) -> None:
    Writer(client)([], 1)
    assert client.dbsize() == 0
