"""Query-parameter validation: every bad value is a 400 naming the parameter, never a 500.

Strict on purpose: an unknown or repeated parameter is an error too, so a typo (``?stor=store-01``)
cannot silently show the all-stores view and pass for that store's numbers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import date

from coffee_orders.schema import STORE_ID_PATTERN
from coffee_service.problems import Problem, bad_param

ALL_STORES = "_all"
_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
MIN_DAY, MAX_DAY = date(2000, 1, 1), date(2100, 12, 31)


def params(pairs: Sequence[tuple[str, str]], allowed: Iterable[str]) -> dict[str, str]:
    allowed = set(allowed)
    seen: dict[str, str] = {}
    for key, value in pairs:
        if key not in allowed:
            names = ", ".join(sorted(allowed)) or "none"
            raise bad_param(key, f"unknown parameter (allowed: {names})")
        if key in seen:
            raise bad_param(key, "given more than once")
        seen[key] = value
    return seen


def store(value: str | None, known: set[str] | None) -> str:
    """A store id or ``_all`` (the default). ``known`` None means the list is not available
    (Redis down): a well-formed id is then accepted."""
    if value is None or value == ALL_STORES:
        return ALL_STORES
    if not re.fullmatch(STORE_ID_PATTERN, value):
        raise bad_param("store", f"not a store id (pattern {STORE_ID_PATTERN}, or {ALL_STORES} for all stores)")
    if known is not None and value not in known:
        raise Problem(404, "unknown-store", "Unknown store", f"no store {value!r} is configured or has sold anything",
                      param="store")
    return value


def day(name: str, value: str) -> date:
    if not _DAY.match(value):
        raise bad_param(name, "must be a date YYYY-MM-DD")
    try:
        parsed = date.fromisoformat(value)
    except ValueError:
        raise bad_param(name, f"{value} is not a calendar date") from None
    if not MIN_DAY <= parsed <= MAX_DAY:
        raise bad_param(name, f"must be between {MIN_DAY} and {MAX_DAY}")
    return parsed


def day_range(start: date, end: date, max_days: int) -> tuple[date, date]:
    if start > end:
        raise bad_param("from", f"from ({start}) is after to ({end})")
    days = (end - start).days + 1
    if days > max_days:
        raise bad_param("to", f"a range of at most {max_days} days (got {days})")
    return start, end
