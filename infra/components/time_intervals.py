"""Alertmanager time intervals with a ``location`` as UTC intervals an AlertmanagerConfig can carry.

Alertmanager (0.25 and later) evaluates a time interval in its ``location``, an IANA zone; the
Prometheus Operator's AlertmanagerConfig (v1alpha1 and v1beta1, up to 0.93 at least) has no such field
and writes every interval without one, so Alertmanager evaluates it in UTC (prometheus-operator#5512).
Opening hours in a zone with summer time would be an hour off half of the year. So an interval with a
location is rendered here as the UTC minutes it covers, worked out day by day from the zone database
(``zoneinfo``) for the years ``first_year`` .. ``first_year + years - 1``, and compressed into UTC
intervals (times, weekdays, days of the month, months, years). After the last year the intervals
match nothing: ``pulumi up`` renders them again from its own year (docs/alerts.md).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

WEEKDAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")  # Alertmanager's 0..6
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december")
DAY = 24 * 60
_TIME = re.compile(r"^(?:([01]\d|2[0-3]):([0-5]\d)|(24):(00))$")
_KEYS = {"times", "weekdays", "days_of_month", "months", "years", "location"}

Ranges = tuple[tuple[int, int], ...]  # [start, end) minutes of a day, sorted, disjoint


class TimeIntervalError(ValueError):
    pass


def _minute(text: Any, where: str) -> int:
    found = _TIME.match(str(text))
    if not found:
        raise TimeIntervalError(f"{where}: a time must look like 07:30 (00:00 to 24:00), got {text!r}")
    hour, minute = (found.group(1), found.group(2)) if found.group(1) else (found.group(3), found.group(4))
    return int(hour) * 60 + int(minute)


def _bound(text: str, names: tuple[str, ...], where: str, base: int = 0) -> int:
    word = text.strip().lower()
    if word in names:
        return names.index(word) + base
    if re.fullmatch(r"-?\d+", word):
        return int(word)
    raise TimeIntervalError(f"{where}: {text!r} is not one of {', '.join(names)}" if names else
                            f"{where}: {text!r} is not a number")


def _ranges(values: Any, names: tuple[str, ...], where: str, base: int = 0) -> list[tuple[int, int]]:
    if not isinstance(values, list):
        raise TimeIntervalError(f"{where}: expected a list")
    out = []
    for value in values:
        first, _, last = str(value).partition(":")
        begin = _bound(first, names, where, base)
        end = _bound(last, names, where, base) if last else begin
        if (names or (begin > 0) == (end > 0)) and end < begin:
            raise TimeIntervalError(f"{where}: {value!r} ends before it begins")
        out.append((begin, end))
    return out


@dataclass(frozen=True)
class Interval:
    """One entry of a ``time_intervals`` list, as Alertmanager reads it (empty lists match everything)."""

    times: Ranges
    weekdays: tuple[tuple[int, int], ...]
    days_of_month: tuple[tuple[int, int], ...]
    months: tuple[tuple[int, int], ...]
    years: tuple[tuple[int, int], ...]
    zone: ZoneInfo | None

    @classmethod
    def parse(cls, data: dict[str, Any], where: str) -> Interval:
        extra = sorted(set(data) - _KEYS)
        if extra:
            raise TimeIntervalError(f"{where}: {', '.join(extra)} not supported (known: {', '.join(sorted(_KEYS))})")
        times = []
        for i, item in enumerate(data.get("times") or []):
            start, end = (_minute(item.get("start_time"), f"{where}.times[{i}]"),
                          _minute(item.get("end_time"), f"{where}.times[{i}]"))
            if end <= start:
                raise TimeIntervalError(f"{where}.times[{i}]: end_time must be after start_time")
            times.append((start, end))
        zone = None
        if data.get("location") is not None:
            name = str(data["location"])
            try:
                zone = ZoneInfo(name) if name != "Local" else None
            except (ZoneInfoNotFoundError, ValueError):
                zone = None
            if zone is None:
                raise TimeIntervalError(f"{where}: location {name!r} is not an IANA time zone (e.g. Europe/Amsterdam)")
        return cls(times=tuple(sorted(times)),
                   weekdays=tuple(_ranges(data.get("weekdays") or [], WEEKDAYS, f"{where}.weekdays")),
                   days_of_month=tuple(_ranges(data.get("days_of_month") or [], (), f"{where}.days_of_month")),
                   months=tuple(_ranges(data.get("months") or [], MONTHS, f"{where}.months", base=1)),
                   years=tuple(_ranges(data.get("years") or [], (), f"{where}.years")),
                   zone=zone)

    def on(self, day: date) -> bool:
        """Whether the interval's day conditions hold on ``day`` (a date where the interval is evaluated)."""
        weekday = (day.weekday() + 1) % 7
        if self.weekdays and not any(b <= weekday <= e for b, e in self.weekdays):
            return False
        if self.days_of_month:
            size = calendar.monthrange(day.year, day.month)[1]
            hit = False
            for b, e in self.days_of_month:  # negative days count from the month's end, as Alertmanager's
                begin, end = (size + b + 1 if b < 0 else b), (size + e + 1 if e < 0 else e)
                if begin <= size and max(begin, -size) <= day.day <= min(end, size):
                    hit = True
            if not hit:
                return False
        if self.months and not any(b <= day.month <= e for b, e in self.months):
            return False
        return not self.years or any(b <= day.year <= e for b, e in self.years)

    def minutes(self) -> Ranges:
        return self.times or ((0, DAY),)


def _merge(ranges: list[tuple[int, int]]) -> Ranges:
    out: list[tuple[int, int]] = []
    for start, end in sorted(r for r in ranges if r[0] < r[1]):
        if out and start <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return tuple(out)


def _offset(zone: ZoneInfo, minute: int) -> int:
    """The zone's UTC offset in minutes at ``minute`` minutes after the epoch (UTC)."""
    at = datetime.fromtimestamp(minute * 60, UTC).astimezone(zone)
    delta = at.utcoffset()
    assert delta is not None
    return int(delta.total_seconds()) // 60


def utc_day(intervals: list[Interval], day: date) -> Ranges:
    """The minutes of the UTC day ``day`` in which any of ``intervals`` is active."""
    start = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) // 60
    found: list[tuple[int, int]] = []
    for interval in intervals:
        zone = interval.zone
        # Stretches of the day with one offset (a zone changes its offset at most once a day).
        if zone is None:
            stretches = [(0, DAY, 0)]
        else:
            first, last = _offset(zone, start), _offset(zone, start + DAY - 1)
            if first == last:
                stretches = [(0, DAY, first)]
            else:
                low, high = 0, DAY - 1  # the first minute with the new offset
                while low < high:
                    mid = (low + high) // 2
                    low, high = (mid + 1, high) if _offset(zone, start + mid) == first else (low, mid)
                stretches = [(0, low, first), (low, DAY, last)]
        for a, b, offset in stretches:
            wall_a, wall_b = start + a + offset, start + b + offset  # local wall-clock minutes since the epoch
            for wall_day in range(wall_a // DAY, (wall_b - 1) // DAY + 1):
                local = date(1970, 1, 1) + timedelta(days=wall_day)
                if not interval.on(local):
                    continue
                for s, e in interval.minutes():
                    lo, hi = max(wall_day * DAY + s, wall_a), min(wall_day * DAY + e, wall_b)
                    if lo < hi:
                        found.append((lo - offset - start, hi - offset - start))
    return _merge(found)


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def _runs(values: list[int]) -> list[tuple[int, int]]:
    """Sorted integers as inclusive runs: [1, 2, 3, 5] -> [(1, 3), (5, 5)]."""
    out: list[tuple[int, int]] = []
    for value in values:
        if out and value == out[-1][1] + 1:
            out[-1] = (out[-1][0], value)
        else:
            out.append((value, value))
    return out


def _span(values: list[int], names: tuple[str, ...] | None, base: int = 0) -> list[str]:
    """Sorted integers as Alertmanager ranges: [1, 2, 3, 5] -> ["monday:wednesday", "friday"]."""
    def name(v: int) -> str:
        return names[v - base] if names else str(v)

    return [name(a) if a == b else f"{name(a)}:{name(b)}" for a, b in _runs(values)]


def utc_intervals(intervals: list[Interval], first_year: int, years: int) -> list[dict[str, Any]]:
    """``intervals`` as UTC time intervals (Alertmanager's file syntax) for ``years`` years from ``first_year``."""
    # (times, weekdays, days or None for the whole month, month, year) per stretch of a month in which
    # every day of a weekday has the same UTC minutes.
    entries: list[tuple[Ranges, tuple[int, ...], tuple[int, int] | None, int, int]] = []
    for year in range(first_year, first_year + years):
        for month in range(1, 13):
            size = calendar.monthrange(year, month)[1]
            stretch_start, by_weekday = 1, dict[int, Ranges]()
            for day in range(1, size + 2):
                if day <= size:
                    current = date(year, month, day)
                    weekday, minutes = (current.weekday() + 1) % 7, utc_day(intervals, current)
                    if by_weekday.get(weekday, minutes) == minutes:
                        by_weekday[weekday] = minutes
                        continue
                days = None if (stretch_start, day - 1) == (1, size) else (stretch_start, day - 1)
                for times in sorted({m for m in by_weekday.values() if m}):
                    weekdays = tuple(sorted(w for w, m in by_weekday.items() if m == times))
                    entries.append((times, weekdays, days, month, year))
                if day <= size:
                    stretch_start, by_weekday = day, {weekday: minutes}
    # Whole months in a row, then the same months in consecutive years, as ranges.
    whole: dict[tuple[Ranges, tuple[int, ...], int], list[int]] = {}
    stretches: list[tuple[Ranges, tuple[int, ...], tuple[int, int] | None, tuple[int, int], int]] = []
    for times, weekdays, days, month, year in entries:
        if days is None:
            whole.setdefault((times, weekdays, year), []).append(month)
        else:
            stretches.append((times, weekdays, days, (month, month), year))
    for (times, weekdays, year), in_months in whole.items():
        stretches += [(times, weekdays, None, run, year) for run in _runs(in_months)]
    merged: dict[tuple[Ranges, tuple[int, ...], tuple[int, int] | None, tuple[int, int]], list[int]] = {}
    for times, weekdays, days, month_run, year in sorted(stretches, key=lambda s: (s[4], s[3], s[2] or (0, 0), s[1])):
        merged.setdefault((times, weekdays, days, month_run), []).append(year)
    out = []
    for (times, weekdays, days, month_run), in_years in merged.items():
        for years_text in _span(sorted(in_years), None):
            item: dict[str, Any] = {
                "times": [{"start_time": _hhmm(s), "end_time": _hhmm(e)} for s, e in times],
                "weekdays": _span(list(weekdays), WEEKDAYS)}
            if days is not None:
                item["days_of_month"] = [f"{days[0]}:{days[1]}" if days[0] != days[1] else str(days[0])]
            item["months"] = _span(list(range(month_run[0], month_run[1] + 1)), MONTHS, base=1)
            item["years"] = [years_text]
            out.append(item)
    return out


def crd_interval(item: dict[str, Any]) -> dict[str, Any]:
    """A UTC time interval of the file's syntax as the AlertmanagerConfig's (v1alpha1 TimeInterval)."""
    out: dict[str, Any] = {}
    if "times" in item:
        out["times"] = [{"startTime": t["start_time"], "endTime": t["end_time"]} for t in item["times"]]
    if "weekdays" in item:
        out["weekdays"] = list(item["weekdays"])
    if "days_of_month" in item:
        out["daysOfMonth"] = []
        for text in item["days_of_month"]:
            first, _, last = str(text).partition(":")
            out["daysOfMonth"].append({"start": int(first), "end": int(last or first)})
    for key in ("months", "years"):
        if key in item:
            out[key] = [str(v) for v in item[key]]
    return out


def render(name: str, items: list[dict[str, Any]], first_year: int, years: int) -> dict[str, Any]:
    """A named ``time_intervals`` entry of alertmanager.yaml as an AlertmanagerConfig ``muteTimeIntervals``
    entry (the list both ``muteTimeIntervals`` and ``activeTimeIntervals`` of a route name)."""
    parsed = [Interval.parse(item, f"time_intervals {name}[{i}]") for i, item in enumerate(items)]
    if any(i.zone is not None for i in parsed):
        items = utc_intervals(parsed, first_year, years)
    return {"name": name, "timeIntervals": [crd_interval(item) for item in items]}
