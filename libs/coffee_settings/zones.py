"""The one time-zone check: a business day is only as right as its IANA zone name.

The dashboard and the job must agree on each store's zone (or the dashboard's "today" is not the
job's), so both validate names the same way, against the same tz database (``zoneinfo``).
"""

from __future__ import annotations

from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def check_zone(name: str) -> str:
    """``name`` itself when ``zoneinfo`` knows it; else ``ValueError("unknown time zone 'Mars/X'")``."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None
    return name
