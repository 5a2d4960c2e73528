"""The one duration grammar and the one time-zone check (coffee_settings), and their one message each."""

from __future__ import annotations

from datetime import timedelta

import pytest

from coffee_settings.durations import DurationError, duration_ms, duration_seconds, parse_duration
from coffee_settings.zones import check_zone


@pytest.mark.parametrize(("text", "expected"), [
    ("500ms", timedelta(milliseconds=500)), ("10s", timedelta(seconds=10)), ("5min", timedelta(minutes=5)),
    ("5m", timedelta(minutes=5)), ("36h", timedelta(hours=36)), ("7d", timedelta(days=7)), ("0s", timedelta(0)),
    (" 10s ", timedelta(seconds=10)), ("P7D", timedelta(days=7)), ("PT5M", timedelta(minutes=5)),
    ("P1DT12H", timedelta(hours=36)), ("PT0.5S", timedelta(milliseconds=500)), ("P1W", timedelta(weeks=1)),
])
def test_every_documented_form_parses(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "10", "10 s", "1w", "10 parsecs", "-1s", "1.5s", "P", "PT", "P1DT", "PT5m"])
def test_a_malformed_duration_has_the_one_message(text: str) -> None:
    with pytest.raises(DurationError) as caught:
        parse_duration(text)
    assert str(caught.value) == f"{text!r} is not a duration like 500ms, 10s, 5min, 36h, 7d or PT5M"


def test_a_bare_number_is_seconds_only_where_the_caller_says_so() -> None:
    assert parse_duration("90", bare_seconds=True) == timedelta(seconds=90)
    assert parse_duration("2.5", bare_seconds=True) == timedelta(seconds=2.5)
    with pytest.raises(DurationError):
        parse_duration("90")  # Flink would read it as milliseconds: ambiguous, so refused


def test_zero_is_refused_where_an_interval_must_tick() -> None:
    with pytest.raises(DurationError, match=r"^'0s' is not a duration like"):
        parse_duration("0s", allow_zero=False)
    assert duration_seconds("500ms", allow_zero=False) == 0.5


def test_milliseconds_are_whole() -> None:
    assert [duration_ms(t) for t in ("5ms", "10s", "5min", "36h", "2d", "PT0.0015S")] == [
        5, 10_000, 300_000, 129_600_000, 172_800_000, 1]


def test_time_zones() -> None:
    assert check_zone("Europe/Vienna") == "Europe/Vienna"
    for bad in ("Mars/Olympus", "", "../etc/passwd"):
        with pytest.raises(ValueError) as caught:
            check_zone(bad)
        assert str(caught.value) == f"unknown time zone {bad!r}"
