"""Turn the job's raw Redis hashes into the summary the page and the API show. Pure functions.

Which day is "today": the store's local date, unless the job's ``current_day`` for the store is
later (the job's zone runs ahead of ours). A ``current_day`` that is earlier means the job has
not counted an order for today yet: today's numbers are then zero, and the staleness banner,
not a silent zero, tells whether that is a quiet morning or a stuck pipeline.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

MINUTES = 60


@dataclass(frozen=True)
class RawLive:
    """What Redis holds for one store and day (strings as redis-py returns them)."""

    summary: dict[str, str] = field(default_factory=dict)
    products: dict[str, str] = field(default_factory=dict)
    product_revenue: dict[str, str] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)
    per_minute: dict[str, str] = field(default_factory=dict)
    recent: list[str] = field(default_factory=list)  # newest first


def choose_day(today: str, current_day: str | None) -> str:
    return current_day if current_day and current_day > today else today


def iso_ms(ms: int | None) -> str | None:
    if not ms:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _int(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


def minute_series(per_minute: dict[str, str], now_ms: int, minutes: int = MINUTES) -> list[list[int]]:
    """``[[minute start ms, orders], ...]`` for the ``minutes`` minutes up to and including now's,
    zeros filled in (the job keeps only minutes that had orders)."""
    last = now_ms // 60_000
    counts = {_int(k): _int(v) for k, v in per_minute.items()}
    # An order placed up to a few minutes in the future (till clock skew) still counts: extend.
    last = max([last, *(m for m in counts if m <= last + 5)])
    return [[m * 60_000, counts.get(m, 0)] for m in range(last - minutes + 1, last + 1)]


def top_products(raw: RawLive, names: dict[str, str], limit: int) -> list[dict[str, Any]]:
    rows = sorted(((_int(qty), _int(raw.product_revenue.get(sku)), sku) for sku, qty in raw.products.items()),
                  key=lambda r: (-r[0], -r[1], r[2]))
    return [{"sku": sku, "name": names.get(sku) or sku, "quantity": qty, "revenue_cents": cents}
            for qty, cents, sku in rows[:limit]]


def origins(raw: RawLive) -> list[dict[str, Any]]:
    rows = sorted(((_int(qty), name) for name, qty in raw.origins.items()), key=lambda r: (-r[0], r[1]))
    total = sum(qty for qty, _ in rows)
    return [{"origin": name, "quantity": qty, "share": round(qty / total, 4) if total else 0.0} for qty, name in rows]


def recent(raw: RawLive) -> list[dict[str, Any]]:
    out = []
    for member in raw.recent:
        try:
            order = json.loads(member)
        except ValueError:
            continue
        if isinstance(order, dict):
            out.append(order)
    return out


def build(store: str, timezone: str, currency: str, today: str, day: str, raw: RawLive, names: dict[str, str],
          now_ms: int, top: int, recent_limit: int) -> dict[str, Any]:
    s = raw.summary
    orders, revenue = _int(s.get("orders")), _int(s.get("revenue_cents"))
    updated = _int(s.get("updated_at")) or None
    return {
        "store": store,
        "timezone": timezone,
        "currency": currency,
        "today": today,
        "day": day,
        "orders": orders,
        "revenue_cents": revenue,
        "quantity": _int(s.get("quantity")),
        "average_order_cents": round(revenue / orders) if orders else 0,
        "last_order_at": iso_ms(_int(s.get("last_order_at"))),
        "updated_at": iso_ms(updated),
        "updated_at_ms": updated,
        "top_products": top_products(raw, names, top),
        "origins": origins(raw),
        "per_minute": minute_series(raw.per_minute, now_ms),
        "recent": recent(raw)[:recent_limit],
        "generated_at": iso_ms(now_ms),
    }
