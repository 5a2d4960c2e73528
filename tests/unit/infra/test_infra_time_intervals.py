"""Time intervals with a location rendered as the UTC intervals of an AlertmanagerConfig: at every
instant checked, the rendered intervals are active exactly when the file's are in their zone (read
here with zoneinfo, independently of the renderer), also across summer-time switches."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from infra.components import monitoring, time_intervals

CONFIG = yaml.safe_load((monitoring.ALERTS_DIR / "alertmanager.yaml").read_text())
DAYS = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]
MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december"]
# The v1alpha1 field patterns (pkg/apis/monitoring/v1alpha1/alertmanager_config_types.go, v0.93.0).
CRD_TIME = r"^((([01][0-9])|(2[0-3])):[0-5][0-9])$|(^24:00$)"
CRD_WEEKDAY = r"^((?i)sun|mon|tues|wednes|thurs|fri|satur)day(?:((:(sun|mon|tues|wednes|thurs|fri|satur)day)$)|$)"
CRD_MONTH = (r"^((?i)january|february|march|april|may|june|july|august|september|october|november|december|"
             r"1[0-2]|[1-9])(?:((:((?i)january|february|march|april|may|june|july|august|september|october|"
             r"november|december|1[0-2]|[1-9]))$)|$)")
CRD_YEAR = r"^2\d{3}(?::2\d{3}|$)"


def _go_regex(pattern: str) -> re.Pattern[str]:
    """Go's inline (?i) mid-pattern as Python's scoped (?i:...) over the rest of its group: close enough
    for these all-lowercase values, so just drop it."""
    return re.compile(pattern.replace("(?i)", ""))


def _hhmm(text: str) -> int:
    return int(text[:2]) * 60 + int(text[3:])


def _names(values: list[str], names: list[str], base: int = 0) -> set[int]:
    out: set[int] = set()
    for value in values:
        first, _, last = value.partition(":")
        begin = names.index(first) + base if first in names else int(first)
        end = (names.index(last) + base if last in names else int(last)) if last else begin
        out |= set(range(begin, end + 1))
    return out


def shops_open(items: list[dict[str, Any]], at: datetime) -> bool:
    """The file's intervals (weekdays, times, location) at ``at``, the way Alertmanager documents them."""
    for item in items:
        local = at.astimezone(ZoneInfo(item["location"]))
        minute = local.hour * 60 + local.minute
        if (local.weekday() + 1) % 7 in _names(item["weekdays"], DAYS) and any(
                _hhmm(t["start_time"]) <= minute < _hhmm(t["end_time"]) for t in item["times"]):
            return True
    return False


def crd_active(items: list[dict[str, Any]], at: datetime) -> bool:
    """The AlertmanagerConfig's intervals (UTC, no location) at ``at``."""
    minute = at.hour * 60 + at.minute
    for item in items:
        if not any(_hhmm(t["startTime"]) <= minute < _hhmm(t["endTime"]) for t in item["times"]):
            continue
        if (at.weekday() + 1) % 7 not in _names(item["weekdays"], DAYS):
            continue
        if "daysOfMonth" in item and not any(d["start"] <= at.day <= d["end"] for d in item["daysOfMonth"]):
            continue
        if at.month in _names(item["months"], MONTHS, base=1) and at.year in _names(item["years"], []):
            return True
    return False


def instants(zone: ZoneInfo, items: list[dict[str, Any]], first: int, years: int) -> list[datetime]:
    """Each day of the years: a minute either side of every local start and end time; plus every
    30 minutes around each of the zone's offset changes."""
    edges = sorted({_hhmm(t[k]) for item in items for t in item["times"] for k in ("start_time", "end_time")})
    out = []
    day = date(first, 1, 1)
    while day.year < first + years:
        for edge in edges:
            for minute in (edge - 1, edge):
                wall = datetime(day.year, day.month, day.day) + timedelta(minutes=minute)
                out.append(wall.replace(tzinfo=zone).astimezone(UTC))
        noon = datetime(day.year, day.month, day.day, 12, tzinfo=UTC)
        if noon.astimezone(zone).utcoffset() != (noon + timedelta(days=1)).astimezone(zone).utcoffset():
            out += [noon + timedelta(minutes=30 * i) for i in range(-48, 96)]
        day += timedelta(days=1)
    return [at for at in out if first <= at.year < first + years]  # the rendered years are UTC years


def _render(items: list[dict[str, Any]], first: int, years: int) -> list[dict[str, Any]]:
    rendered = time_intervals.render("open", items, first, years)
    assert rendered["name"] == "open"
    return list(rendered["timeIntervals"])


def test_the_shops_opening_hours_render_exactly_for_ten_years() -> None:
    (entry,) = CONFIG["time_intervals"]
    assert entry["name"] == "shops-expecting-orders"
    items = entry["time_intervals"]
    rendered = _render(items, 2026, 10)
    assert len(rendered) == 109
    # Winter (UTC+1) until Sunday 29 March 2026, 01:00 UTC; summer (UTC+2) from then on.
    assert rendered[3:8] == [
        {"times": [{"startTime": "08:30", "endTime": "16:00"}], "weekdays": ["sunday"],
         "daysOfMonth": [{"start": 1, "end": 28}], "months": ["march"], "years": ["2026"]},
        {"times": [{"startTime": "06:30", "endTime": "18:00"}], "weekdays": ["monday:friday"],
         "daysOfMonth": [{"start": 1, "end": 28}], "months": ["march"], "years": ["2026"]},
        {"times": [{"startTime": "07:30", "endTime": "17:00"}], "weekdays": ["saturday"],
         "daysOfMonth": [{"start": 1, "end": 28}], "months": ["march"], "years": ["2026"]},
        {"times": [{"startTime": "07:30", "endTime": "15:00"}], "weekdays": ["sunday"],
         "daysOfMonth": [{"start": 29, "end": 31}], "months": ["march"], "years": ["2026"]},
        {"times": [{"startTime": "05:30", "endTime": "17:00"}], "weekdays": ["monday:tuesday"],
         "daysOfMonth": [{"start": 29, "end": 31}], "months": ["march"], "years": ["2026"]}]
    assert {"times": [{"startTime": "05:30", "endTime": "17:00"}], "weekdays": ["monday:friday"],
            "months": ["april:september"], "years": ["2026:2035"]} in rendered
    zone = ZoneInfo("Europe/Amsterdam")
    checked = instants(zone, items, 2026, 10)
    assert len(checked) == 3652 * 6 * 2 + 20 * 144  # six local edges a day, 20 offset changes
    wrong = [at for at in checked if crd_active(rendered, at) != shops_open(items, at)]
    assert wrong == []
    assert 40_000 > sum(shops_open(items, at) for at in checked) > 10_000  # both states are exercised
    # After the rendered years nothing is active: the next `pulumi up` renders from its own year.
    monday_noon = datetime(2036, 1, 7, 11, tzinfo=UTC)
    assert shops_open(items, monday_noon) and not crd_active(rendered, monday_noon)


@pytest.mark.parametrize(("zone", "hours"), [
    ("Asia/Tokyo", [("monday:friday", "07:30", "19:00")]),  # UTC+9: the UTC day before for the morning
    ("America/New_York", [("monday:saturday", "06:00", "23:30"), ("sunday", "00:00", "24:00")]),
    ("Asia/Kolkata", [("tuesday:thursday", "09:15", "17:45")]),  # UTC+05:30
    ("Australia/Lord_Howe", [("sunday", "01:00", "03:00"), ("friday:saturday", "01:00", "03:00"),
                             ("wednesday", "10:00", "12:00")]),  # summer time of 30 minutes
])
def test_any_zone_renders_exactly(zone: str, hours: list[tuple[str, str, str]]) -> None:
    items = [{"weekdays": [days], "times": [{"start_time": a, "end_time": b}], "location": zone}
             for days, a, b in hours]
    rendered = _render(items, 2027, 3)
    checked = instants(ZoneInfo(zone), items, 2027, 3)
    assert [at for at in checked if crd_active(rendered, at) != shops_open(items, at)] == []
    assert any(shops_open(items, at) for at in checked) and not all(shops_open(items, at) for at in checked)


def test_rendered_fields_match_the_crd_patterns() -> None:
    rendered = _render(CONFIG["time_intervals"][0]["time_intervals"], 2026, 10)
    rendered += _render([{"weekdays": ["sunday"], "times": [{"start_time": "00:00", "end_time": "24:00"}],
                          "location": "America/New_York"}], 2026, 1)
    for item in rendered:
        assert set(item) <= {"times", "weekdays", "daysOfMonth", "months", "years"}
        assert all(_go_regex(CRD_TIME).match(t[k]) for t in item["times"] for k in ("startTime", "endTime"))
        assert all(_go_regex(CRD_WEEKDAY).match(w) for w in item["weekdays"])
        assert all(_go_regex(CRD_MONTH).match(m) for m in item["months"])
        assert all(_go_regex(CRD_YEAR).match(y) for y in item["years"])
        assert all(1 <= d["start"] <= d["end"] <= 31 for d in item.get("daysOfMonth", []))


def test_an_interval_without_location_is_converted_as_it_is() -> None:
    items = [{"weekdays": ["monday:friday", "sunday"], "times": [{"start_time": "22:00", "end_time": "24:00"}],
              "days_of_month": ["1:7", "-1"], "months": ["december"], "years": ["2026:2027"]}]
    assert _render(items, 2026, 10) == [
        {"times": [{"startTime": "22:00", "endTime": "24:00"}], "weekdays": ["monday:friday", "sunday"],
         "daysOfMonth": [{"start": 1, "end": 7}, {"start": -1, "end": -1}], "months": ["december"],
         "years": ["2026:2027"]}]


def test_the_utc_intervals_are_valid_alertmanager_config(tmp_path: Path) -> None:
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.skip("amtool (Debian prometheus-alertmanager) is not installed")
    parsed = [time_intervals.Interval.parse(i, "x") for i in CONFIG["time_intervals"][0]["time_intervals"]]
    config = {"route": {"receiver": "r", "routes": [{"receiver": "r", "active_time_intervals": ["open"]}]},
              "receivers": [{"name": "r"}],
              "time_intervals": [{"name": "open", "time_intervals": time_intervals.utc_intervals(parsed, 2026, 10)}]}
    (tmp_path / "am.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run([amtool, "check-config", str(tmp_path / "am.yaml")], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("item", "problem"), [
    ({"location": "Europe/Amsterdm"}, "location 'Europe/Amsterdm' is not an IANA time zone"),
    ({"location": "Local"}, "location 'Local' is not an IANA time zone"),
    ({"times": [{"start_time": "25:00", "end_time": "26:00"}]}, "a time must look like 07:30"),
    ({"times": [{"start_time": "19:00", "end_time": "07:00"}]}, "end_time must be after start_time"),
    ({"weekdays": ["funday"]}, "'funday' is not one of sunday"),
    ({"weekdays": ["friday:monday"]}, "'friday:monday' ends before it begins"),
    ({"timezone": "UTC"}, "timezone not supported"),
])
def test_bad_intervals_are_refused_with_the_field_named(item: dict[str, Any], problem: str) -> None:
    with pytest.raises(time_intervals.TimeIntervalError, match=re.escape(problem)):
        time_intervals.render("open", [item], 2026, 1)


def test_the_alertmanager_config_carries_the_rendered_intervals() -> None:
    spec = monitoring.alertmanager_config_spec(monitoring.ALERTS_DIR, "s", "#c", first_year=2026)
    (intervals,) = spec["muteTimeIntervals"]
    assert intervals == time_intervals.render("shops-expecting-orders", CONFIG["time_intervals"][0]["time_intervals"],
                                              2026, monitoring.TIME_INTERVAL_YEARS)
    assert monitoring.TIME_INTERVAL_YEARS == 10
    routes = [r for r in spec["route"]["routes"] if "activeTimeIntervals" in r]
    assert routes == [{"receiver": "slack-critical", "repeatInterval": "1h",
                       "matchers": [{"name": "alertname", "value": "CoffeeRtOrdersStopped", "matchType": "="}],
                       "activeTimeIntervals": ["shops-expecting-orders"]}]
