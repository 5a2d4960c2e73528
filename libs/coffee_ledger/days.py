"""Business days for the audit: today in a zone, a day's bounds, a ``--day`` argument.

The rule that files an order under its day is the job's own, ``coffee_live.days.business_day``
(re-exported here), so the audit counts each order under the day the job counted it in.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from coffee_live.days import business_day as business_day
from coffee_live.days import day_bounds as day_bounds


def today(now: datetime, tz: str) -> str:
    return now.astimezone(ZoneInfo(tz)).date().isoformat()


def parse_day(text: str) -> str:
    """A YYYY-MM-DD day, normalised; ValueError with a clear message otherwise."""
    try:
        return date.fromisoformat(text).isoformat() if len(text) == 10 else _bad(text)
    except ValueError:
        return _bad(text)


def _bad(text: str) -> str:
    raise ValueError(f"{text!r} is not a day (YYYY-MM-DD)")
