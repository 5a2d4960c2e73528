"""amtool on alerts/alertmanager.yaml: valid, routes by severity, no secret in the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from coffee_rt.alerts.rules import ALERTS_DIR, alerts
from coffee_rt.local.installers import ensure_binary

CONFIG = ALERTS_DIR / "alertmanager.yaml"


@pytest.fixture(scope="module")
def amtool() -> str:
    return ensure_binary("amtool", "prometheus-alertmanager")


def route(amtool: str, *labels: str) -> str:
    result = subprocess.run([amtool, "config", "routes", "test", f"--config.file={CONFIG}", *labels],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_check_config(amtool: str) -> None:
    result = subprocess.run([amtool, "check-config", str(CONFIG)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "7 inhibit rules" in result.stdout and "3 receivers" in result.stdout


def test_check_config_rejects_an_unknown_receiver(amtool: str, tmp_path: Path) -> None:
    config = yaml.safe_load(CONFIG.read_text())
    config["route"]["routes"][0]["receiver"] = "pagerduty"
    bad = tmp_path / "am.yaml"
    bad.write_text(yaml.safe_dump(config))
    result = subprocess.run([amtool, "check-config", str(bad)], capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert 'undefined receiver "pagerduty"' in result.stdout + result.stderr


def test_routes_by_severity(amtool: str) -> None:
    assert route(amtool, "alertname=CoffeeRtFlinkJobNotRunning", "severity=critical") == "slack-critical"
    assert route(amtool, "alertname=CoffeeRtDeadLetters", "severity=warning") == "slack-warning"
    assert route(amtool, "alertname=SomethingElse") == "slack-warning"


def test_every_project_alert_reaches_slack_and_the_heartbeat_only_the_watchdog(amtool: str) -> None:
    for rule in alerts():
        severity = rule.data["labels"]["severity"]
        expected = "watchdog" if rule.alert == "CoffeeRtWatchdog" else f"slack-{severity}"
        assert route(amtool, f"alertname={rule.alert}", f"severity={severity}") == expected


def test_the_watchdog_receiver_is_not_slack_and_nothing_inhibits_the_heartbeat() -> None:
    config = yaml.safe_load(CONFIG.read_text())
    receivers = {r["name"]: r for r in config["receivers"]}
    assert receivers["watchdog"] == {"name": "watchdog"}
    assert config["route"]["routes"][0] == {"receiver": "watchdog", "matchers": ['alertname="CoffeeRtWatchdog"'],
                                            "group_interval": "1m", "repeat_interval": "5m"}
    heartbeat = next(a for a in alerts() if a.alert == "CoffeeRtWatchdog").data["labels"]
    for rule in config["inhibit_rules"]:
        for matcher in rule["target_matchers"]:
            name, value = matcher.split("=", 1)
            value = value.lstrip("~").strip('"')
            label = {"alertname": "CoffeeRtWatchdog", **heartbeat}.get(name.rstrip("!"))
            assert label is None or not re.fullmatch(value, label), rule


def test_slack_receivers_and_no_secret() -> None:
    text = CONFIG.read_text()
    config = yaml.safe_load(text)
    assert "hooks.slack.com" not in text and "api_url:" not in text
    assert config["global"]["slack_api_url_file"].startswith("/")
    assert [r["name"] for r in config["receivers"]] == ["watchdog", "slack-critical", "slack-warning"]
    for receiver in config["receivers"][1:]:
        (slack,) = receiver["slack_configs"]
        assert slack["channel"] == "#coffee-rt-alerts"
        assert slack["send_resolved"] is True
        assert [a["text"] for a in slack["actions"]] == ["Runbook", "Dashboard", "Silence"]
    assert config["route"]["group_by"] == ["alertname", "job_name", "namespace", "name"]


def test_inhibition_names_only_existing_alerts() -> None:
    names = {a.alert for a in alerts()}
    config = yaml.safe_load(CONFIG.read_text())
    for rule in config["inhibit_rules"]:
        for matcher in [*rule["source_matchers"], *rule["target_matchers"]]:
            if matcher.startswith("alertname"):
                listed = matcher.split("=", 1)[1].lstrip("~").strip('"').split("|")
                assert set(listed) <= names, listed


def test_template_renders(amtool: str) -> None:
    text = ('{{ template "coffee_rt.slack.title" . }}|{{ template "coffee_rt.dashboard_url" . }}|'
            '{{ template "coffee_rt.silence_url" . }}')
    result = subprocess.run([amtool, "template", "render", f"--template.glob={ALERTS_DIR}/templates/*.tmpl",
                             f"--template.text={text}"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    _title, dashboard, silence = result.stdout.strip().split("|")
    assert dashboard == "http://coffee-dashboard.coffee-rt.svc/"
    assert silence.startswith("https://example.com/#/silences/new?filter=%7B")


def test_orders_stopped_is_sent_only_while_the_shops_expect_orders(amtool: str) -> None:
    """Its own route, before the critical one: same receiver and repeat, active only in the shops' hours."""
    config = yaml.safe_load(CONFIG.read_text())
    assert config["route"]["routes"][1] == {
        "receiver": "slack-critical", "matchers": ['alertname="CoffeeRtOrdersStopped"'],
        "active_time_intervals": ["shops-expecting-orders"], "repeat_interval": "1h"}
    assert config["route"]["routes"][2]["matchers"] == ['severity="critical"']
    assert config["time_intervals"] == [{"name": "shops-expecting-orders", "time_intervals": [
        {"weekdays": ["monday:friday"], "times": [{"start_time": "07:30", "end_time": "19:00"}],
         "location": "Europe/Amsterdam"},
        {"weekdays": ["saturday"], "times": [{"start_time": "08:30", "end_time": "18:00"}],
         "location": "Europe/Amsterdam"},
        {"weekdays": ["sunday"], "times": [{"start_time": "09:30", "end_time": "17:00"}],
         "location": "Europe/Amsterdam"}]}]
    # The interval starts 30 minutes after opening: the rule's window must lie inside opening hours.
    (rule,) = [a for a in alerts() if a.alert == "CoffeeRtOrdersStopped"]
    assert '[30m])) == 0' in rule.expr
    assert route(amtool, "alertname=CoffeeRtOrdersStopped", "severity=critical") == "slack-critical"


@pytest.mark.parametrize(("change", "problem"), [
    (lambda i: i.update(location="Europe/Amsterdm"), "unknown time zone Europe/Amsterdm"),
    (lambda i: i.update(times=[{"start_time": "19:00", "end_time": "07:30"}]), "start time cannot be equal or greater"),
])
def test_check_config_rejects_a_bad_time_interval(amtool: str, tmp_path: Path, change: Any, problem: str) -> None:
    config = yaml.safe_load(CONFIG.read_text())
    change(config["time_intervals"][0]["time_intervals"][0])
    bad = tmp_path / "am.yaml"
    bad.write_text(yaml.safe_dump(config))
    result = subprocess.run([amtool, "check-config", str(bad)], capture_output=True, text=True, check=False)
    assert result.returncode == 1
    assert problem in result.stdout + result.stderr, result.stdout + result.stderr
