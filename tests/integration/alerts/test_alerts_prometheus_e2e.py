"""A real Prometheus scraping the running local stack with the project's rules (test copies whose
``for:`` is 3 s and whose runbook links point under another folder; scrape and evaluation every
second): every metric the rules use is really exported; the runbooks' Flink REST calls work;
stopping the Flink job or the ingest service, or breaking the ingest's and the dashboard's token
files, brings its alert, with the configured runbook link, to the fake Slack, and starting it again
(the good files back) brings the resolve."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from alerts_fake_slack import FakeSlack, is_message
from alerts_traffic import post_orders, send_poison, wait_port_free

from coffee_rt.alerts.rules import RUNBOOK_BASE, copy_rules, load_rules, metric_names, rule_files
from coffee_rt.alerts.runbooks import commands
from coffee_rt.local.components.alertmanager import Alertmanager
from coffee_rt.local.components.prometheus import DASHBOARD_JOB, Prometheus
from coffee_rt.local.stack import LocalStack

PIPELINE = ["postgres", "redis", "kafka", "ingest", "flink", "job", "auditor", "redis-exporter", "postgres-exporter"]
RUNBOOKS = "http://runbooks.coffee-rt.test/ops/runbooks"  # not the committed folder: the setting is applied
# kafka_exporter v1.9.0 (infra's images.kafkaExporter) cannot be built here (the Go module proxy does
# not serve github.com/danielqsj/kafka_exporter), so the local stack runs none: these names are its
# (kafka_exporter.go, `prometheus.BuildFQName("kafka", ...)`), checked against the rules in tests/unit/alerts.
KAFKA_EXPORTER_METRICS = {"kafka_brokers", "kafka_topic_partition_replicas",
                          "kafka_topic_partition_under_replicated_partition"}
OPERATOR_METRICS = {"coffee_operator_job_state", "coffee_operator_last_savepoint_age_seconds",
                    "coffee_operator_reconcile_errors_total", "coffee_operator_rollbacks_total"}


@pytest.fixture(scope="module")
def prometheus(local_stack: LocalStack, alertmanager: Alertmanager, ingest_tokens: dict[str, str]) -> Iterator[str]:
    local_stack.up(PIPELINE)
    local_stack.up(["dashboard"])  # after the rest: started beside Flink's boot it can miss its 30 s on two cores
    component = local_stack["prometheus"]
    assert isinstance(component, Prometheus)
    local_stack.down(["prometheus"])
    wait_port_free(local_stack, local_stack.settings.prometheus_port)
    component.scrape_interval = component.scrape_timeout = component.evaluation_interval = "1s"
    component.rule_files = copy_rules(rule_files(), component.home / "test-rules", runbook_base=RUNBOOKS,
                                      alert_for="3s")
    local_stack.up(["prometheus"])
    post_orders(local_stack.settings.ingest_url, ingest_tokens, 12)
    send_poison(local_stack.settings.kafka_bootstrap)
    yield component.address()


def query(url: str, expr: str) -> list[dict[str, object]]:
    result: list[dict[str, object]] = httpx.get(f"{url}/api/v1/query", params={"query": expr},
                                                timeout=10).json()["data"]["result"]
    return result


def test_rules_loaded_with_the_test_for(prometheus: str) -> None:
    # A fresh Prometheus reports health "unknown" until a rule's first evaluation: wait for that.
    deadline = time.monotonic() + 60
    while True:
        groups = httpx.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        if (rules and all(r["health"] != "unknown" for r in rules)) or time.monotonic() > deadline:
            break
        time.sleep(1)
    alerts = {r["name"]: r for g in groups for r in g["rules"] if r["type"] == "alerting"}
    assert len(alerts) == 26
    assert alerts["CoffeeRtFlinkJobNotRunning"]["duration"] == 3
    assert all(g["interval"] == 1 for g in groups)
    assert all(r["health"] == "ok" for g in groups for r in g["rules"]), [
        (r["name"], r.get("lastError")) for g in groups for r in g["rules"] if r["health"] != "ok"]


def test_every_metric_the_rules_use_is_exported(prometheus: str) -> None:
    used = set().union(*(metric_names(rule.expr) for rule in load_rules()))
    assert KAFKA_EXPORTER_METRICS <= used
    expected = used - OPERATOR_METRICS - KAFKA_EXPORTER_METRICS - {"up"}
    deadline = time.monotonic() + 240
    missing = expected
    while time.monotonic() < deadline:
        names = set(httpx.get(f"{prometheus}/api/v1/label/__name__/values", timeout=10).json()["data"])
        missing = expected - names
        if not missing:
            break
        time.sleep(2)
    assert missing == set(), f"not exported by any running component: {sorted(missing)}"
    # Every target answers its scrape (a Prometheus restarted by the fixture may not have scraped each
    # one yet).
    expected_up = {"coffee-rt/coffee-rt-ingest", "coffee-rt/coffee-rt-flink", "coffee-rt-auditor", DASHBOARD_JOB,
                   "redis-exporter", "postgres-exporter"}
    deadline = time.monotonic() + 60
    while (up := {q["metric"]["job"] for q in query(prometheus, "up == 1")}) != expected_up \
            and time.monotonic() < deadline:  # type: ignore[index]
        time.sleep(1)
    assert up == expected_up
    # The freshness script reads what the job wrote for the fixture's orders: a timestamp in ms.
    fresh = 'time() - redis_script_values{key="coffee_live_updated_at_ms"} / 1000 < 120'
    deadline = time.monotonic() + 120
    while not query(prometheus, fresh) and time.monotonic() < deadline:
        time.sleep(1)
    assert query(prometheus, fresh), query(prometheus, 'redis_script_values{key="coffee_live_updated_at_ms"}')
    # Metric names outlive their series (a restarted job's are stale): wait for the recorded lag itself.
    deadline = time.monotonic() + 120
    while not (lags := query(prometheus, "coffee_rt:kafka_consumer_lag:records")) and time.monotonic() < deadline:
        time.sleep(1)
    assert len(lags) == 1, (lags, [q["metric"] for q in query(
        prometheus, '{__name__=~".*KafkaSourceReader_topic_partition_c.*Offset|.*pendingRecords"}')])
    (lag,) = lags
    assert lag["metric"] == {"__name__": "coffee_rt:kafka_consumer_lag:records", "job_name": "coffee_rt_orders"}


def test_operator_metrics_the_rules_use_are_the_operators() -> None:
    """The operator runs in Kubernetes only; its names come from its own module."""
    metrics = pytest.importorskip("coffee_operator.metrics")
    from prometheus_client.metrics import MetricWrapperBase

    names = set()
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            (family,) = value.describe()
            names.add(family.name + ("_total" if family.type == "counter" else ""))
    assert OPERATOR_METRICS <= names, OPERATOR_METRICS - names


def test_runbook_flink_rest_calls_work(local_stack: LocalStack, prometheus: str) -> None:
    job = local_stack["job"]
    active = job.active_job()  # type: ignore[attr-defined]
    assert active is not None
    env = {"FLINK": local_stack.settings.flink_rest_url, "JOB": active["jid"], "PATH": "/usr/bin:/bin"}
    calls = {c.line for c in commands() if c.kind == "curl"}
    assert len(calls) >= 5
    for line in sorted(calls):
        result = subprocess.run(["bash", "-c", f"{line} -w '\\n%{{http_code}}'"], env=env, capture_output=True,
                                text=True, timeout=60, check=False)
        body, _, status = result.stdout.rpartition("\n")
        assert result.returncode == 0 and status in ("200", "202"), f"{line}: {status} {body[:300]}"
        assert body.startswith("{") and '"errors"' not in body, f"{line}: {body[:300]}"


def wait_alert(prometheus: str, name: str, state: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alerts = httpx.get(f"{prometheus}/api/v1/alerts", timeout=10).json()["data"]["alerts"]
        if any(a["labels"]["alertname"] == name and a["state"] == state for a in alerts) == (state != "inactive"):
            return
        time.sleep(1)
    raise AssertionError(f"{name} not {state} within {timeout:.0f} s")


def since(slack: FakeSlack, start: int, what: str, status: str, alertname: str, timeout: float = 180) -> None:
    slack.wait_for(what, lambda p: p in slack.snapshot()[start:] and is_message(p, status, alertname), timeout)


def test_the_heartbeat_reaches_the_watchdog_receiver_and_never_slack(prometheus: str, alertmanager: Alertmanager,
                                                                      fake_slack: FakeSlack) -> None:
    wait_alert(prometheus, "CoffeeRtWatchdog", "firing", timeout=60)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        # Prometheus' own (the Alertmanager tests post theirs with a namespace label).
        found = httpx.get(f"{alertmanager.address()}/api/v2/alerts",
                          params={"filter": ['alertname="CoffeeRtWatchdog"', 'namespace=""']}, timeout=10).json()
        if found:
            break
        time.sleep(1)
    (heartbeat,) = found
    assert heartbeat["labels"] == {"alertname": "CoffeeRtWatchdog", "severity": "none", "component": "monitoring"}
    assert heartbeat["annotations"]["runbook_url"] == f"{RUNBOOKS}/CoffeeRtWatchdog.md"
    assert [r["name"] for r in heartbeat["receivers"]] == ["watchdog"]
    assert heartbeat["status"] == {"state": "active", "inhibitedBy": [], "silencedBy": []}
    time.sleep(4)  # past group_wait and group_interval: a Slack message would have been sent by now
    assert not any("CoffeeRtWatchdog" in str(p) for p in fake_slack.snapshot())


def test_stopping_the_job_alerts_and_starting_it_resolves(local_stack: LocalStack, prometheus: str,
                                                          fake_slack: FakeSlack) -> None:
    wait_alert(prometheus, "CoffeeRtFlinkJobNotRunning", "inactive")
    start = len(fake_slack.snapshot())
    local_stack.down(["job"])
    since(fake_slack, start, "firing CoffeeRtFlinkJobNotRunning", "FIRING", "CoffeeRtFlinkJobNotRunning")
    message = next(p for p in fake_slack.snapshot()[start:] if is_message(p, "FIRING", "CoffeeRtFlinkJobNotRunning"))
    (attachment,) = message["attachments"]
    runbook = f"{RUNBOOKS}/CoffeeRtFlinkJobNotRunning.md"
    assert {a["text"]: a["url"] for a in attachment["actions"]}["Runbook"] == runbook
    assert f"*Runbook:* <{runbook}|CoffeeRtFlinkJobNotRunning.md>" in attachment["text"]
    start = len(fake_slack.snapshot())
    local_stack.up(["job"])
    since(fake_slack, start, "resolved CoffeeRtFlinkJobNotRunning", "RESOLVED", "CoffeeRtFlinkJobNotRunning")


def test_stopping_ingest_alerts_and_starting_it_resolves(local_stack: LocalStack, prometheus: str,
                                                         fake_slack: FakeSlack) -> None:
    wait_alert(prometheus, "CoffeeRtIngestDown", "inactive")
    start = len(fake_slack.snapshot())
    local_stack.down(["ingest"])
    since(fake_slack, start, "firing CoffeeRtIngestDown", "FIRING", "CoffeeRtIngestDown")
    start = len(fake_slack.snapshot())
    local_stack.up(["ingest"])
    since(fake_slack, start, "resolved CoffeeRtIngestDown", "RESOLVED", "CoffeeRtIngestDown")


def test_a_bad_token_file_alerts_and_the_good_one_back_resolves(local_stack: LocalStack, prometheus: str,
                                                                fake_slack: FakeSlack) -> None:
    """The services keep their last good tokens and say so; the alerts name the instance."""
    files = {"CoffeeRtIngestTokenFileRejected": local_stack["ingest"].tokens_file,  # type: ignore[attr-defined]
             "CoffeeRtDashboardTokenFileRejected": local_stack["dashboard"].tokens_file}  # type: ignore[attr-defined]
    for name in files:
        wait_alert(prometheus, name, "inactive")
    good = {name: path.read_bytes() for name, path in files.items()}
    start = len(fake_slack.snapshot())
    try:
        for path in files.values():
            path.write_text("{not a token file\n")
        for name in files:
            since(fake_slack, start, f"firing {name}", "FIRING", name)
    finally:
        for name, path in files.items():
            path.write_bytes(good[name])
    s = local_stack.settings
    instances = {"CoffeeRtIngestTokenFileRejected": f"{s.host}:{s.ingest_internal_port}",
                 "CoffeeRtDashboardTokenFileRejected": f"{s.host}:{s.dashboard_internal_port}"}
    for name, instance in instances.items():
        message = next(p for p in fake_slack.snapshot()[start:] if is_message(p, "FIRING", name, instance=instance))
        (attachment,) = message["attachments"]
        assert {a["text"]: a["url"] for a in attachment["actions"]}["Runbook"] == f"{RUNBOOKS}/{name}.md"
        assert f"has coffee_{'ingest' if 'Ingest' in name else 'dashboard'}_token_file_ok 0 for" in attachment["text"]
    assert attachment["title"] == "[FIRING:1] CoffeeRtDashboardTokenFileRejected (warning)"
    start = len(fake_slack.snapshot())
    for name in files:
        since(fake_slack, start, f"resolved {name}", "RESOLVED", name)


def test_test_rule_copies_differ_only_in_for_and_runbook_folder(prometheus: str, local_stack: LocalStack) -> None:
    copies = sorted((local_stack["prometheus"].home / "test-rules").glob("*.rules.yaml"))
    assert [p.name for p in copies] == [p.name for p in rule_files()]

    def committed(rule: dict[str, object]) -> dict[str, object]:
        data = {k: v for k, v in rule.items() if k != "for"}
        if "annotations" in data:
            notes = dict(data["annotations"])  # type: ignore[call-overload]
            notes["runbook_url"] = notes["runbook_url"].replace(RUNBOOKS, RUNBOOK_BASE)
            data["annotations"] = notes
        return data

    for copy, real in zip(copies, rule_files(), strict=True):
        a, b = load_rules([copy]), load_rules([real])
        assert [r.expr for r in a] == [r.expr for r in b]
        assert [committed(r.data) for r in a] == [{k: v for k, v in r.data.items() if k != "for"} for r in b]
        assert all(r.data.get("for") in (None, "3s") for r in a)
        assert all(r.data["annotations"]["runbook_url"].startswith(RUNBOOKS + "/") for r in a if r.alert)
    assert isinstance(copies[0], Path)
