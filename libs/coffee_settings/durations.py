"""The one duration grammar of coffee-rt, for settings, the job's config and the CRD.

Accepted (surrounding blanks ignored):

* ``<n><unit>`` with unit ``ms``, ``s``, ``min`` (or ``m``), ``h``, ``d``: ``500ms``, ``10s``,
  ``5min``, ``36h``, ``7d``. The CRD's own pattern, and Flink's strings in the units we document.
* ISO 8601 ``P[nW][nD][T[nH][nM][n[.f]S]]``: ``P7D``, ``PT5M``, ``PT0.5S`` (what the ingest's
  ``INGEST_PLACED_AT_*`` settings were documented with).
* A bare number only where the caller says what it counts (``bare_seconds=True``: the ingest's
  settings were documented as "ISO 8601 or seconds"). Elsewhere it is refused, because Flink reads
  a bare number as milliseconds and a reader of the job config could not tell which was meant.

Every malformed text gets the same message, :data:`MESSAGE`.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator

MESSAGE = "{text!r} is not a duration like 500ms, 10s, 5min, 36h, 7d or PT5M"

_UNIT_MS = {"ms": 1, "s": 1000, "min": 60_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_SHORT = re.compile(r"([0-9]+)(ms|s|min|m|h|d)")
_ISO = re.compile(r"P(?:([0-9]+)W)?(?:([0-9]+)D)?(?:T(?:([0-9]+)H)?(?:([0-9]+)M)?(?:([0-9]+(?:\.[0-9]+)?)S)?)?")
_BARE = re.compile(r"[0-9]+(?:\.[0-9]+)?")


class DurationError(ValueError):
    """A text that is not a duration; the message is :data:`MESSAGE`."""

    def __init__(self, text: str) -> None:
        super().__init__(MESSAGE.format(text=text))


def parse_duration(text: str, *, bare_seconds: bool = False, allow_zero: bool = True) -> timedelta:
    """``'10s'`` -> ``timedelta(seconds=10)``; ``allow_zero=False`` for intervals that must tick (the CRD's)."""
    stripped = text.strip()
    value: timedelta | None = None
    if match := _SHORT.fullmatch(stripped):
        value = timedelta(milliseconds=int(match.group(1)) * _UNIT_MS[match.group(2)])
    elif (match := _ISO.fullmatch(stripped)) and stripped not in ("P", "PT") and not stripped.endswith("T"):
        weeks, days, hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
        value = timedelta(weeks=weeks, days=days, hours=hours, minutes=minutes, seconds=seconds)
    elif bare_seconds and _BARE.fullmatch(stripped):
        value = timedelta(seconds=float(stripped))
    if value is None or (not allow_zero and not value):
        raise DurationError(text)
    return value


def duration_ms(text: str) -> int:
    """``'10s'`` -> ``10000`` (whole milliseconds, as Flink's options take them)."""
    return parse_duration(text) // timedelta(milliseconds=1)


def duration_seconds(text: str, *, allow_zero: bool = True) -> float:
    return parse_duration(text, allow_zero=allow_zero).total_seconds()


def _settings_duration(value: Any) -> Any:
    if isinstance(value, str):
        return parse_duration(value, bare_seconds=True)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    return value  # a timedelta (a default, a test) or something pydantic refuses with its own message


# A settings field holding a duration: any form above, a bare number being seconds.
SettingsDuration = Annotated[timedelta, BeforeValidator(_settings_duration)]
