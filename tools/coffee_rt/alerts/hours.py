"""Opening hours as Prometheus rules, for the "orders stopped arriving while the shops are open" alert.

Prometheus has no time zones (2.42's PromQL time functions are UTC), so local time is computed in
PromQL: a fixed UTC offset plus, for ``summer_time: eu``, one hour between the EU switch dates (last
Sunday of March and of October, 01:00 UTC). The opening hours live in alerts/business-hours.yaml,
typed and validated here; ``python -m coffee_rt.alerts.hours alerts/business-hours.yaml`` renders
alerts/business-hours.rules.yaml (a unit test keeps the two in step).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from coffee_rt.alerts.rules import RUNBOOK_BASE
from coffee_rt.errors import UsageError

DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")  # PromQL day_of_week()
OFFSET_RECORD = "coffee_rt:shop_utc_offset_seconds"
LOCAL_TIME_RECORD = "coffee_rt:shop_local_time_seconds"
EXPECTED_RECORD = "coffee_rt:orders_expected"
ALERT = "CoffeeRtOrdersStopped"
_WINDOW = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
_OFFSET = re.compile(r"^([+-])(\d\d):([0-5]\d)$")


class BusinessHours(BaseModel):
    """alerts/business-hours.yaml: when orders are expected at all."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    utc_offset: str = "+01:00"
    summer_time: Literal["eu", "none"] = "eu"
    quiet_minutes: int = Field(30, ge=5, le=240)
    hours: dict[str, str] = Field(default_factory=dict)

    @field_validator("utc_offset")
    @classmethod
    def _offset(cls, value: str) -> str:
        match = _OFFSET.match(value)
        if not match or int(match.group(2)) > 14:
            raise ValueError(f"utc_offset must look like +01:00 or -05:00 (at most 14 h), got {value!r}")
        return value

    @field_validator("hours")
    @classmethod
    def _hours(cls, value: dict[str, str]) -> dict[str, str]:
        for day, window in value.items():
            if day not in DAYS:
                raise ValueError(f"unknown day {day!r}; days are {', '.join(DAYS)}")
            match = _WINDOW.match(window)
            if not match:
                raise ValueError(f"{day}: opening hours must look like 07:00-19:00, got {window!r}")
            start = int(match.group(1)) * 60 + int(match.group(2))
            end = int(match.group(3)) * 60 + int(match.group(4))
            if end > 24 * 60 or end <= start:
                raise ValueError(f"{day}: closing time must be after opening time on the same day, got {window!r}")
        return value

    @model_validator(mode="after")
    def _some_day(self) -> BusinessHours:
        if not self.hours:
            raise ValueError("hours: name at least one open day (the alert would never fire)")
        return self

    @property
    def offset_seconds(self) -> int:
        match = _OFFSET.match(self.utc_offset)
        assert match is not None
        seconds = int(match.group(2)) * 3600 + int(match.group(3)) * 60
        return -seconds if match.group(1) == "-" else seconds

    def windows(self) -> dict[int, tuple[int, int]]:
        """day_of_week -> [first, last) local minute of the day in which orders are expected."""
        result = {}
        for day, window in self.hours.items():
            match = _WINDOW.match(window)
            assert match is not None
            start = int(match.group(1)) * 60 + int(match.group(2)) + self.quiet_minutes
            end = int(match.group(3)) * 60 + int(match.group(4))
            if start < end:
                result[DAYS.index(day)] = (start, end)
        return dict(sorted(result.items()))


def load(path: Path) -> BusinessHours:
    try:
        data = yaml.safe_load(path.read_text())
        return BusinessHours.model_validate(data or {})
    except (OSError, yaml.YAMLError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in exc.errors())
        raise UsageError(f"{path}: {problems}") from None


def offset_expr(cfg: BusinessHours) -> str:
    """Seconds to add to UTC for local time, as PromQL (0/1 factors multiplied for 'and')."""
    if cfg.summer_time == "none":
        return f"vector({cfg.offset_seconds})"
    summer = (
        "(month() > bool 3) * (month() < bool 10)\n"
        "  + (month() == bool 3) * ((day_of_month() - day_of_week()) >= bool 25)\n"
        "    * clamp_max((day_of_week() > bool 0) + (hour() >= bool 1), 1)\n"
        "  + (month() == bool 10) * clamp_max(((day_of_month() - day_of_week()) < bool 25)\n"
        "    + (day_of_week() == bool 0) * (hour() < bool 1), 1)"
    )
    return f"{cfg.offset_seconds} + 3600 * (\n  {summer}\n)"


def expected_expr(cfg: BusinessHours, local: str = LOCAL_TIME_RECORD) -> str:
    """1 while orders are expected (open for at least quiet_minutes), else 0."""
    minute = f"(hour({local}) * 60 + minute({local}))"
    terms = [
        f"(day_of_week({local}) == bool {day}) * ({minute} >= bool {start}) * ({minute} < bool {end})"
        for day, (start, end) in cfg.windows().items()
    ]
    return "\n+ ".join(terms) if terms else "vector(0)"


def render(cfg: BusinessHours) -> dict[str, Any]:
    window = f"{cfg.quiet_minutes}m"
    return {"groups": [{
        "name": "coffee-rt-business-hours",
        "rules": [
            {"record": OFFSET_RECORD, "expr": offset_expr(cfg) + "\n"},
            {"record": LOCAL_TIME_RECORD, "expr": f"vector(time()) + on() {OFFSET_RECORD}\n"},
            {"record": EXPECTED_RECORD, "expr": expected_expr(cfg) + "\n"},
            {
                "alert": ALERT,
                "expr": (f'sum(increase(coffee_ingest_orders_total{{outcome="accepted"}}[{window}])) == 0\n'
                         f"and on() {EXPECTED_RECORD} == 1\n"),
                "for": "5m",
                "labels": {"severity": "critical", "component": "ingest"},
                "annotations": {
                    "summary": "No orders accepted while the shops are open.",
                    "description": (
                        "coffee-ingest has accepted {{ $value | humanize }} orders in the last "
                        f"{cfg.quiet_minutes} minutes although the shops are open "
                        "(alerts/business-hours.yaml). Tills or the app may be failing to reach the "
                        "API: check 4xx rejections, tokens and the network path in front of ingest."),
                    "runbook_url": f"{RUNBOOK_BASE}/{ALERT}.md",
                },
            },
        ],
    }]}


def dump(cfg: BusinessHours) -> str:
    header = ("# Generated by `uv run python -m coffee_rt.alerts.hours alerts/business-hours.yaml`"
              " from alerts/business-hours.yaml.\n# Do not edit: change the opening hours there and regenerate.\n")

    class _Literal(yaml.SafeDumper):
        pass

    def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
        style = "|" if "\n" in value else None
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)

    _Literal.add_representer(str, _str)
    body: str = yaml.dump(render(cfg), Dumper=_Literal, sort_keys=False, width=120)
    return header + body


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] in ("-h", "--help"):
        print("usage: python -m coffee_rt.alerts.hours <business-hours.yaml>   (prints the rule file)",
              file=sys.stderr if args and args[0] not in ("-h", "--help") else sys.stdout)
        return 0 if args and args[0] in ("-h", "--help") else 2
    try:
        sys.stdout.write(dump(load(Path(args[0]))))
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
