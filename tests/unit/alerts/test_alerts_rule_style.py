"""The rule files follow the prometheus-operator mixins' house style, and alerts and runbooks pair up."""

from __future__ import annotations

import re

import pytest

from coffee_rt.alerts.rules import RUNBOOK_BASE, RUNBOOKS_DIR, alerts, load_rules, metric_names, rule_files

ALERTS = alerts()
# Events rather than states: they fire on the first occurrence and resolve when the window passes;
# and the heartbeat, which fires from the first evaluation on.
NO_FOR = {"CoffeeRtDeadLetters", "CoffeeRtPipelineRolledBack", "CoffeeRtWatchdog"}
HEARTBEAT = "CoffeeRtWatchdog"
SECTIONS = ["## Meaning", "## Impact", "## Diagnosis", "## Mitigation", "## Escalation"]
# What the issue asks to be covered, by alert.
REQUIRED = {
    "CoffeeRtIngestDown", "CoffeeRtIngestErrorRatioHigh", "CoffeeRtIngestLatencyHigh", "CoffeeRtOrdersStopped",
    "CoffeeRtKafkaLagHigh", "CoffeeRtFlinkJobNotRunning", "CoffeeRtFlinkJobRestarting", "CoffeeRtCheckpointsFailing",
    "CoffeeRtCheckpointTooOld", "CoffeeRtSavepointFailed", "CoffeeRtDeadLetters", "CoffeeRtLiveDataStale",
    "CoffeeRtPostgresDown", "CoffeeRtPostgresNearCapacity", "CoffeeRtRedisDown", "CoffeeRtRedisNearCapacity",
    "CoffeeRtOperatorReconcileErrors", "CoffeeRtPipelineRolledBack", "CoffeeRtLedgerMismatch",
    "CoffeeRtWatchdog", "CoffeeRtKafkaBrokerDown", "CoffeeRtKafkaUnderReplicatedPartitions",
    "CoffeeRtIngestTokenFileRejected", "CoffeeRtDashboardTokenFileRejected",
}


def test_rule_files_are_found() -> None:
    assert [p.name for p in rule_files()] == [
        "data.rules.yaml", "flink.rules.yaml", "ingest.rules.yaml", "kafka.rules.yaml", "ledger.rules.yaml",
        "operator.rules.yaml", "tokens.rules.yaml", "watchdog.rules.yaml"]
    assert len(ALERTS) == 26
    assert REQUIRED <= {a.alert for a in ALERTS}


def test_alert_names_are_unique_camel_case_with_the_prefix() -> None:
    names = [a.alert for a in ALERTS]
    assert len(names) == len(set(names))
    for name in names:
        assert name is not None and re.fullmatch(r"CoffeeRt(?:[A-Z][a-z0-9]*)+", name), name


@pytest.mark.parametrize("rule", ALERTS, ids=lambda r: r.alert)
def test_alert_style(rule) -> None:  # type: ignore[no-untyped-def]
    data = rule.data
    assert set(data) <= {"alert", "expr", "for", "labels", "annotations"}
    assert data["labels"]["severity"] in (("none",) if rule.alert == HEARTBEAT else ("critical", "warning"))
    assert data["labels"]["component"] in ("ingest", "flink", "kafka", "dashboard", "redis", "postgres", "operator",
                                           "monitoring")
    if rule.alert in NO_FOR:
        assert "for" not in data
    else:
        assert re.fullmatch(r"\d+m", data["for"]), data.get("for")
        assert int(data["for"][:-1]) >= 1
    notes = data["annotations"]
    assert set(notes) == {"summary", "description", "runbook_url"}
    assert notes["summary"].endswith(".") and "{{" not in notes["summary"]
    assert "$value" in notes["description"], "the description must say the actual value"
    assert notes["runbook_url"] == f"{RUNBOOK_BASE}/{rule.alert}.md"
    assert metric_names(rule.expr) or ":" in rule.expr or (rule.alert == HEARTBEAT and rule.expr == "vector(1)")


def test_every_alert_has_a_runbook_and_every_runbook_an_alert() -> None:
    names = {a.alert for a in ALERTS}
    runbooks = {p.stem for p in RUNBOOKS_DIR.glob("*.md")} - {"README"}
    assert runbooks == names


@pytest.mark.parametrize("rule", ALERTS, ids=lambda r: r.alert)
def test_runbook_sections(rule) -> None:  # type: ignore[no-untyped-def]
    text = (RUNBOOKS_DIR / f"{rule.alert}.md").read_text()
    assert text.startswith(f"# {rule.alert}\n")
    positions = [text.find(section) for section in SECTIONS]
    assert all(p > 0 for p in positions), [s for s, p in zip(SECTIONS, positions, strict=True) if p < 0]
    assert positions == sorted(positions)
    assert "```sh" in text, "a runbook has commands to copy"


def test_recording_rules_use_the_level_metric_operation_convention() -> None:
    records = [r.record for r in load_rules() if r.record]
    assert records and all(name is not None and name.startswith("coffee_rt:") for name in records)


def test_metric_names_of_expressions() -> None:
    expr = '''sum by (route, le) (rate(coffee_ingest_request_duration_seconds_bucket{route=~"/v1/orders.*"}[5m]))
      / on(job_name) group_left() max(x_total offset 1h) and absent(up{job="a"}) or vector(+Inf)
      # a comment naming not_a_metric
      > bool 3 unless coffee_rt:some:record'''
    assert metric_names(expr) == {"coffee_ingest_request_duration_seconds_bucket", "x_total", "up"}
