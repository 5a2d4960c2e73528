"""promtool on the real rule files: syntax, and unit tests with a firing and a quiet case per alert."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from coffee_rt.alerts.rules import ALERTS_DIR, alerts, rule_files
from coffee_rt.local.installers import ensure_binary

TESTS = sorted((ALERTS_DIR / "tests").glob("*.test.yaml"))


@pytest.fixture(scope="module")
def promtool() -> str:
    return ensure_binary("promtool", "prometheus")


def run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(argv), capture_output=True, text=True, check=False, cwd=ALERTS_DIR)


def test_check_rules(promtool: str) -> None:
    result = run(promtool, "check", "rules", *map(str, rule_files()))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(rule_files())


def test_check_rules_rejects_a_broken_file(promtool: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad.rules.yaml"
    bad.write_text("groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: sum(rate(x[5m])\n")
    result = run(promtool, "check", "rules", str(bad))
    assert result.returncode == 1
    assert "parse error" in result.stdout + result.stderr


def test_unit_tests_pass(promtool: str) -> None:
    result = run(promtool, "test", "rules", *map(str, TESTS))
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(TESTS)


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    covered_files: set[str] = set()
    for path in TESTS:
        doc = yaml.safe_load(path.read_text())
        covered_files |= {Path(f).name for f in doc["rule_files"]}
        for test in doc["tests"]:
            for case in test.get("alert_rule_test", []):
                (firing if case["exp_alerts"] else quiet).add(case["alertname"])
                for alert in case["exp_alerts"]:
                    assert "exp_annotations" in alert, f"{path.name}: {case['alertname']} without annotations"
    names = {a.alert for a in alerts()}
    assert names - firing == set()
    assert names - quiet == {"CoffeeRtWatchdog"}  # the heartbeat is never quiet
    assert covered_files == {p.name for p in rule_files()}
