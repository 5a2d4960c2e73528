"""Opening hours -> rules: the committed file is the generated one, bad input is refused, and the
PromQL local time (UTC offset + EU summer time) agrees with the IANA zone all year round."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from coffee_rt.alerts import hours
from coffee_rt.alerts.rules import ALERTS_DIR
from coffee_rt.errors import UsageError
from coffee_rt.local.installers import ensure_binary

CONFIG = ALERTS_DIR / "business-hours.yaml"
RULES = ALERTS_DIR / "business-hours.rules.yaml"


def test_committed_rules_are_generated_from_the_config() -> None:
    assert RULES.read_text() == hours.dump(hours.load(CONFIG)), (
        "regenerate: uv run python -m coffee_rt.alerts.hours alerts/business-hours.yaml "
        "> alerts/business-hours.rules.yaml")


def test_cli_prints_the_rules(capsys: pytest.CaptureFixture[str]) -> None:
    assert hours.main([str(CONFIG)]) == 0
    assert capsys.readouterr().out == RULES.read_text()


@pytest.mark.parametrize(("content", "message"), [
    ("hours: {monday: '7-19'}", "monday: opening hours must look like 07:00-19:00"),
    ("hours: {monday: '19:00-07:00'}", "closing time must be after opening time"),
    ("hours: {funday: '07:00-19:00'}", "unknown day 'funday'"),
    ("hours: {}", "name at least one open day"),
    ("utc_offset: '+1'\nhours: {monday: '07:00-19:00'}", "utc_offset must look like +01:00"),
    ("summer_time: us\nhours: {monday: '07:00-19:00'}", "summer_time"),
    ("quiet_minutes: 1\nhours: {monday: '07:00-19:00'}", "quiet_minutes"),
    ("opening: 7\nhours: {monday: '07:00-19:00'}", "opening"),
    ("hours: [", "cannot read"),
])
def test_bad_config_is_refused_with_the_field_named(tmp_path: Path, content: str, message: str,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "hours.yaml"
    path.write_text(content)
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace("+", r"\+")):
        hours.load(path)
    assert hours.main([str(path)]) == 2
    out = capsys.readouterr()
    assert out.out == "" and "error:" in out.err


def test_cli_usage() -> None:
    assert hours.main([]) == 2
    assert hours.main(["--help"]) == 0


def expected_open(cfg: hours.BusinessHours, when: datetime, zone: ZoneInfo) -> int:
    local = when.astimezone(zone)
    day = hours.DAYS[(local.weekday() + 1) % 7]
    window = cfg.windows().get(hours.DAYS.index(day))
    minute = local.hour * 60 + local.minute
    return int(window is not None and window[0] <= minute < window[1])


def instants(zone: ZoneInfo) -> list[datetime]:
    """The edges of the windows on a day of every month (weekdays of all kinds), a winter and a summer
    weekend, and the minutes around each EU summer-time switch (promtool needs ~75 ms per instant)."""
    local_times = [(7, 29), (7, 30), (8, 29), (8, 30), (9, 29), (9, 30), (16, 59), (17, 0), (18, 59), (19, 0)]
    days = [datetime(2026, month, 10) for month in range(1, 13)]
    days += [datetime(2026, 1, 10), datetime(2026, 1, 11), datetime(2026, 7, 11), datetime(2026, 7, 12)]
    result = [day.replace(hour=h, minute=m, tzinfo=zone).astimezone(UTC) for day in days for h, m in local_times]
    for switch in ("2026-03-29T01:00", "2026-10-25T01:00", "2027-03-28T01:00", "2027-10-31T01:00"):
        at = datetime.fromisoformat(switch).replace(tzinfo=UTC)
        result += [at - timedelta(minutes=1), at, at + timedelta(hours=7, minutes=30)]
    return result


def test_promql_local_time_matches_the_zone_all_year(tmp_path: Path) -> None:
    cfg = hours.load(CONFIG)
    zone = ZoneInfo("Europe/Amsterdam")
    local = f"(vector(time()) + ({hours.offset_expr(cfg)}))"
    expr = hours.expected_expr(cfg, local=local)
    cases = []
    for when in instants(zone):
        minutes = int(when.timestamp()) // 60
        assert minutes * 60 == when.timestamp()
        cases.append({"expr": expr, "eval_time": f"{minutes}m",
                      "exp_samples": [{"labels": "{}", "value": expected_open(cfg, when, zone)}]})
    test_file = tmp_path / "hours.test.yaml"
    test_file.write_text(yaml.safe_dump({"rule_files": [], "evaluation_interval": "24h", "tests": [
        {"interval": "24h", "input_series": [], "promql_expr_test": cases}]}))
    result = subprocess.run([ensure_binary("promtool", "prometheus"), "test", "rules", str(test_file)],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert len(cases) == 172
    assert 40 < sum(c["exp_samples"][0]["value"] for c in cases) < 130  # both states are exercised
