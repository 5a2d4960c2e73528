"""Business days: the calendar day of an order's ``placed_at`` in its store's time zone.

The Redis key layout is per business day (``coffee:live:{store}:{day}:...``), so the rule lives
beside it: the job files each order under this day, and the ledger audit counts it under the same
one. Standard library only (``zoneinfo``; the time-zone data comes from the system or ``tzdata``).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo


def business_day(placed_at_ms: int, tz: str) -> str:
    """The business day (YYYY-MM-DD) of an order placed at ``placed_at_ms`` (Unix ms) in zone ``tz``."""
    return _business_day_of_minute(placed_at_ms // 60_000, tz)


@lru_cache(maxsize=4096)
def _business_day_of_minute(minute: int, tz: str) -> str:
    # Every zone's offset is a whole number of minutes, so a day never starts inside a minute.
    return datetime.fromtimestamp(minute * 60, ZoneInfo(tz)).date().isoformat()


def day_bounds(day: str, tz: str) -> tuple[datetime, datetime]:
    """[start, end) of ``day`` in ``tz`` as aware datetimes (23 or 25 hours long on DST changes)."""
    start = datetime.combine(date.fromisoformat(day), datetime.min.time(), ZoneInfo(tz))
    end = datetime.combine(date.fromisoformat(day) + timedelta(days=1), datetime.min.time(), ZoneInfo(tz))
    return start, end
