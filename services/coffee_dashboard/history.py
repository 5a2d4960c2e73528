"""Sales history from Postgres (the job's ``sales_by_hour`` rollup, one row per store and UTC hour).

Hours are stored in UTC; people think in the store's local day. A local day is 23, 24 or 25 UTC
hours long (DST), so rows are fetched for the day's UTC span and bucketed by their local hour:
on the autumn change the repeated local hour gets both UTC hours, in spring the skipped one
stays empty. In zones with a half-hour offset a UTC hour is counted in the local hour it starts in.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from coffee_dashboard.query import ALL_STORES
from coffee_service.problems import unavailable

Row = tuple[datetime, int, int, int]  # UTC hour, orders, revenue cents, quantity


def day_span(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants [start, end) of a local day, widened to whole UTC hours."""
    # In UTC: arithmetic on two datetimes of one ZoneInfo is wall-clock arithmetic (a DST day
    # would come out 24 hours long), and the widening must be to whole *UTC* hours.
    start = datetime.combine(day, time.min, zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time.min, zone).astimezone(UTC)
    return start.replace(minute=0, second=0, microsecond=0), end


def bucket_hours(rows: Sequence[Row], day: date, zone: ZoneInfo) -> list[dict[str, int]]:
    hours = [{"hour": h, "orders": 0, "revenue_cents": 0, "quantity": 0} for h in range(24)]
    for hour, orders, revenue, quantity in rows:
        local = hour.astimezone(zone)
        if local.date() != day:
            continue
        bucket = hours[local.hour]
        bucket["orders"] += int(orders)
        bucket["revenue_cents"] += int(revenue)
        bucket["quantity"] += int(quantity)
    return hours


def bucket_days(rows: Sequence[Row], start: date, end: date, zone: ZoneInfo) -> list[dict[str, Any]]:
    days: dict[date, dict[str, Any]] = {}
    current = start
    while current <= end:
        days[current] = {"day": current.isoformat(), "orders": 0, "revenue_cents": 0, "quantity": 0}
        current += timedelta(days=1)
    for hour, orders, revenue, quantity in rows:
        bucket = days.get(hour.astimezone(zone).date())
        if bucket is not None:
            bucket["orders"] += int(orders)
            bucket["revenue_cents"] += int(revenue)
            bucket["quantity"] += int(quantity)
    return list(days.values())


def totals(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {k: sum(int(r[k]) for r in rows) for k in ("orders", "revenue_cents", "quantity")}


class History:
    """One lazily (re)opened connection; queries are small and serialized."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._conn: psycopg.AsyncConnection[Any] | None = None
        self._lock = asyncio.Lock()

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def _rows(self, store: str, start: datetime, end: datetime) -> list[Row]:
        sql = ("SELECT hour, sum(order_count), sum(revenue_cents), sum(quantity) FROM sales_by_hour "
               "WHERE hour >= %s AND hour < %s")
        args: list[Any] = [start, end]
        if store != ALL_STORES:
            sql += " AND store_id = %s"
            args.append(store)
        sql += " GROUP BY hour ORDER BY hour"
        async with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = await psycopg.AsyncConnection.connect(self._dsn, autocommit=True, connect_timeout=3)
                cursor = await self._conn.execute(sql, args)
                return [(r[0], int(r[1]), int(r[2]), int(r[3])) for r in await cursor.fetchall()]
            except psycopg.Error as exc:
                await self.close()
                raise unavailable("history", f"Postgres: {str(exc).strip().splitlines()[0][:300]}") from None

    async def hourly(self, store: str, day: date, zone_name: str, compare_days: int = 7) -> dict[str, Any]:
        """A day's revenue by local hour next to the same weekday ``compare_days`` earlier."""
        zone = ZoneInfo(zone_name)
        other = day - timedelta(days=compare_days)
        start, end = day_span(day, zone)
        other_start, other_end = day_span(other, zone)
        this_rows = bucket_hours(await self._rows(store, start, end), day, zone)
        other_rows = bucket_hours(await self._rows(store, other_start, other_end), other, zone)
        hours = [
            {**mine, "compare_orders": theirs["orders"], "compare_revenue_cents": theirs["revenue_cents"]}
            for mine, theirs in zip(this_rows, other_rows, strict=True)
        ]
        return {"store": store, "timezone": zone_name, "day": day.isoformat(), "compare_day": other.isoformat(),
                "hours": hours, "totals": totals(this_rows), "compare_totals": totals(other_rows)}

    async def daily(self, store: str, first: date, last: date, zone_name: str) -> dict[str, Any]:
        zone = ZoneInfo(zone_name)
        start, _ = day_span(first, zone)
        _, end = day_span(last, zone)
        days = bucket_days(await self._rows(store, start, end), first, last, zone)
        return {"store": store, "timezone": zone_name, "from": first.isoformat(), "to": last.isoformat(),
                "days": days, "totals": totals(days)}
