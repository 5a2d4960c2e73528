"""The Redis key layout of the live metrics: written by the Flink job, read by the dashboard.

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

PREFIX = "coffee:live"
UPDATES_CHANNEL = "coffee:updates"
PRODUCT_NAMES = "coffee:product_names"
STORES = "coffee:stores"
ALL_STORES = "_all"  # not a valid store id (the schema forbids '_'), so it can't clash with one
RECENT_ORDERS = 50  # orders kept in each recent ZSET


def day_key(store: str, day: str, part: str) -> str:
    return f"{PREFIX}:{store}:{day}:{part}"


def current_day_key(store: str) -> str:
    return f"{PREFIX}:{store}:current_day"
