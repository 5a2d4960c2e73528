"""The day rules of ``spec.rebuild`` and the name of its Job: pure functions, no servers, no clock.

A rebuild itself runs in the auditor's image (``python -m coffee_auditor rebuild``, the code `coffee-rt
rebuild` runs locally); the operator only checks a request against the clock, chooses where the live
rebuild's replay starts, and names the Job. Business days are the job's: the calendar day in the
store's zone (``JobConfig.default_timezone``, ``store_timezones``). Where a replay of a day starts is the
same instant as ``coffee_auditor.rebuild.replay_start`` (tests/unit/operator/test_rebuild.py holds them
equal): the day's first instant in the earliest of the zones, minus the clock skew a till may have.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

MAX_FUTURE = timedelta(minutes=5)  # a till's tolerated clock skew (coffee_orders.schema.MAX_FUTURE)
MAX_DAYS = 62  # a history rebuild's longest range after its first day (the CRD's rule)
JOB_NAME_PREFIX_MAX = 40  # <pipeline>-rebuild-<10 hex>: at most 63 characters, a label value


def job_name(pipeline: str, nonce: str) -> str:
    """The rebuild Job of ``nonce``: one name per nonce, so creating it again finds the first one."""
    digest = hashlib.sha256(nonce.encode()).hexdigest()[:10]
    return f"{pipeline[:JOB_NAME_PREFIX_MAX].rstrip('-.')}-rebuild-{digest}"


def today(now: datetime, zone: str) -> date:
    return now.astimezone(ZoneInfo(zone)).date()


def first_instant(day: date, zone: str) -> datetime:
    return datetime.combine(day, time(0), tzinfo=ZoneInfo(zone))


def replay_start_ms(day: date, zones: Collection[str]) -> int:
    """Where the live rebuild's replay of ``day`` starts, in ms since the epoch."""
    start = min(first_instant(day, zone) for zone in zones) - MAX_FUTURE
    return int(start.timestamp() * 1000)


def live_day_problem(day: date, zones: Collection[str], now: datetime) -> str | None:
    """Why the live numbers of ``day`` cannot be rebuilt now (None: they can): they hold each store's
    current business day, and yesterday's until its keys expire."""
    todays = sorted(today(now, zone) for zone in zones)
    if day > todays[-1]:
        return f"spec.rebuild.live.day {day} has not begun in any store's zone (today is {todays[-1]} at the latest)"
    oldest = todays[0] - timedelta(days=1)
    if day < oldest:
        return (f"spec.rebuild.live.day {day}: the live numbers hold only the current business day (and "
                f"yesterday's until its keys expire), so live takes {oldest} or later; rebuild older days with "
                f"spec.rebuild.history")
    return None


def history_problem(first: date, last: date, zones: Collection[str], now: datetime) -> str | None:
    """Why the history of ``first``..``last`` cannot be rebuilt (None: it can)."""
    if last < first:
        return f"spec.rebuild.history.to {last} is before from {first}"
    if (last - first).days > MAX_DAYS:
        return f"spec.rebuild.history covers at most {MAX_DAYS} days after from"
    latest = max(today(now, zone) for zone in zones)
    if first > latest:
        return f"spec.rebuild.history.from {first} has not begun in any store's zone (today is {latest} at the latest)"
    return None
