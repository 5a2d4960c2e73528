"""Query parameters: every bad value is a 400 (or 404 for an unknown store) naming the parameter."""

from __future__ import annotations

from datetime import date

import pytest

from coffee_dashboard import query
from coffee_service.problems import Problem


def _fails(fn: object, *args: object) -> Problem:
    with pytest.raises(Problem) as info:
        fn(*args)  # type: ignore[operator]
    return info.value


def test_params_reject_unknown_and_repeated() -> None:
    assert query.params([("store", "store-01")], ["store"]) == {"store": "store-01"}
    problem = _fails(query.params, [("stor", "store-01")], ["store"])
    assert (problem.status, problem.param, problem.detail) == (400, "stor", "stor: unknown parameter (allowed: store)")
    problem = _fails(query.params, [("store", "a"), ("store", "b")], ["store"])
    assert (problem.status, problem.param, problem.detail) == (400, "store", "store: given more than once")
    assert _fails(query.params, [("x", "")], []).detail == "x: unknown parameter (allowed: none)"


@pytest.mark.parametrize("value", ["", "Store-01", "store_01", "-store", "a" * 64, "store 1", "../etc", "_ALL"])
def test_malformed_store_is_400(value: str) -> None:
    problem = _fails(query.store, value, {"store-01"})
    assert (problem.status, problem.param) == (400, "store")


def test_store_known_unknown_and_all() -> None:
    assert query.store(None, {"store-01"}) == "_all"
    assert query.store("_all", set()) == "_all"
    assert query.store("store-01", {"store-01"}) == "store-01"
    problem = _fails(query.store, "store-99", {"store-01"})
    assert (problem.status, problem.slug) == (404, "unknown-store")
    assert query.store("store-99", None) == "store-99"  # Redis down: the list is unknown


@pytest.mark.parametrize(("value", "detail"), [
    ("2025-02-30", "day: 2025-02-30 is not a calendar date"),
    ("2025-2-3", "day: must be a date YYYY-MM-DD"),
    ("yesterday", "day: must be a date YYYY-MM-DD"),
    ("20250203", "day: must be a date YYYY-MM-DD"),
    ("1999-12-31", "day: must be between 2000-01-01 and 2100-12-31"),
    ("２０２５-01-01", "day: must be a date YYYY-MM-DD"),
])
def test_bad_days(value: str, detail: str) -> None:
    problem = _fails(query.day, "day", value)
    assert (problem.status, problem.detail) == (400, detail)


def test_ranges() -> None:
    assert query.day("day", "2025-03-08") == date(2025, 3, 8)
    assert query.day_range(date(2025, 1, 1), date(2025, 1, 31), 31) == (date(2025, 1, 1), date(2025, 1, 31))
    assert _fails(query.day_range, date(2025, 1, 1), date(2025, 2, 1), 31).detail == \
        "to: a range of at most 31 days (got 32)"
    assert _fails(query.day_range, date(2025, 1, 2), date(2025, 1, 1), 31).detail == \
        "from: from (2025-01-02) is after to (2025-01-01)"
