"""The Redis key layout of the live metrics, and the one function that writes a :class:`Flush`.

    coffee:live:{store}:{day}:summary          HASH  orders, revenue_cents, quantity, last_order_at, updated_at
    coffee:live:{store}:{day}:products         HASH  sku -> quantity
    coffee:live:{store}:{day}:product_revenue  HASH  sku -> revenue cents
    coffee:live:{store}:{day}:origins          HASH  coffee origin -> quantity
    coffee:live:{store}:{day}:per_minute       HASH  unix minute -> orders (last 60 minutes of order time)
    coffee:live:{store}:{day}:recent           ZSET  order JSON scored by placed_at ms (the 50 newest)
    coffee:live:{store}:current_day            STRING the business day the keys above are live for
    coffee:product_names                       HASH  sku -> product name
    coffee:stores                              SET   store ids seen
    channel coffee:updates                     PUBLISH {"store", "day", "orders", "revenue_cents", "updated_at"}

``{store}`` is a store id, or ``_all`` for all stores together; ``{day}`` is the business day
(YYYY-MM-DD) in the store's time zone. Day keys expire two days after their day ends.
"""

from __future__ import annotations

import json
from typing import Any

from coffee_job.live_metrics import ALL_STORES, Flush

PREFIX = "coffee:live"
UPDATES_CHANNEL = "coffee:updates"
PRODUCT_NAMES = "coffee:product_names"
STORES = "coffee:stores"


def day_key(store: str, day: str, part: str) -> str:
    return f"{PREFIX}:{store}:{day}:{part}"


def current_day_key(store: str) -> str:
    return f"{PREFIX}:{store}:current_day"


def write(pipe: Any, batch: Flush, now_ms: int) -> None:
    """Queue the commands for one flush on a redis-py pipeline (run as one MULTI/EXEC)."""
    def key(part: str) -> str:
        return day_key(batch.store, batch.day, part)

    s = batch.summary
    pipe.hset(key("summary"), mapping={
        "orders": s.orders, "revenue_cents": s.revenue_cents, "quantity": s.quantity,
        "last_order_at": s.last_order_ms, "updated_at": now_ms,
    })
    if batch.products:
        pipe.hset(key("products"), mapping={sku: q for sku, (q, _) in batch.products.items()})
        pipe.hset(key("product_revenue"), mapping={sku: c for sku, (_, c) in batch.products.items()})
    if batch.names:
        pipe.hset(PRODUCT_NAMES, mapping=batch.names)
    if batch.origins:
        pipe.hset(key("origins"), mapping=batch.origins)
    if batch.minutes:
        pipe.hset(key("per_minute"), mapping={str(m): n for m, n in batch.minutes.items()})
    if batch.stale_minutes:
        pipe.hdel(key("per_minute"), *[str(m) for m in batch.stale_minutes])
    if batch.recent:
        pipe.zadd(key("recent"), {member: score for score, member in batch.recent})
        pipe.zremrangebyrank(key("recent"), 0, -51)
    for part in ("summary", "products", "product_revenue", "origins", "per_minute", "recent"):
        pipe.expireat(key(part), batch.expire_at)
    pipe.set(current_day_key(batch.store), batch.day, exat=batch.expire_at)
    if batch.store != ALL_STORES:
        pipe.sadd(STORES, batch.store)
    pipe.publish(UPDATES_CHANNEL, json.dumps({
        "store": batch.store, "day": batch.day, "orders": s.orders,
        "revenue_cents": s.revenue_cents, "updated_at": now_ms,
    }, separators=(",", ":")))
