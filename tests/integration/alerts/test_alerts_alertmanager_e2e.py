"""The real Alertmanager with the project's config: alerts posted to its API reach a local stand-in for
Slack's incoming webhook as #coffee-rt-alerts messages with severity, what, where, value, runbook,
dashboard and silence links; the job-down alert inhibits the lag alert; resolves are sent."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from alerts_fake_slack import FakeSlack, is_message, titles

from coffee_rt.alerts.rules import alerts
from coffee_rt.local.components.alertmanager import Alertmanager

RULES = {rule.alert: rule for rule in alerts()}


def alert(name: str, namespace: str, description: str, ends: datetime | None = None, **labels: str) -> dict[str, Any]:
    rule = RULES[name]
    now = datetime.now(UTC)
    return {
        "labels": {"alertname": name, **rule.data["labels"], "namespace": namespace, **labels},
        "annotations": {"summary": rule.data["annotations"]["summary"], "description": description,
                        "runbook_url": rule.data["annotations"]["runbook_url"]},
        "startsAt": (now - timedelta(minutes=3)).isoformat(),
        "endsAt": (ends or now + timedelta(hours=1)).isoformat(),
        "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=up",
    }


def post(am: Alertmanager, *items: dict[str, Any]) -> None:
    response = httpx.post(f"{am.address()}/api/v2/alerts", json=list(items), timeout=10)
    assert response.status_code == 200, response.text


@pytest.fixture()
def namespace() -> str:
    """A namespace label of this test's own, so its alerts group apart from anything else firing."""
    return f"e2e-{uuid.uuid4().hex[:8]}"


def test_job_down_reaches_slack_inhibits_lag_and_resolves(alertmanager: Alertmanager, fake_slack: FakeSlack,
                                                          namespace: str) -> None:
    down = "Flink job coffee_rt_orders is in Flink's job list but not RUNNING (runningState 0)."
    lag = "Flink job coffee_rt_orders has at least 420 orders it has not committed."
    post(alertmanager, alert("CoffeeRtFlinkJobNotRunning", namespace, down, job_name="coffee_rt_orders"))
    firing = fake_slack.wait_for("firing CoffeeRtFlinkJobNotRunning", lambda p: is_message(
        p, "FIRING", "CoffeeRtFlinkJobNotRunning", namespace=namespace))
    assert firing["channel"] == "#coffee-rt-alerts"
    assert firing["username"] == "coffee-rt alerts"
    (attachment,) = firing["attachments"]
    assert attachment["title"] == "[FIRING:1] CoffeeRtFlinkJobNotRunning (critical)"
    assert attachment["color"] == "danger"
    assert attachment["pretext"] == "<!here> " + RULES["CoffeeRtFlinkJobNotRunning"].data["annotations"]["summary"]
    runbook = "https://github.com/coffee-rt/coffee-rt/blob/main/runbooks/CoffeeRtFlinkJobNotRunning.md"
    text = attachment["text"]
    assert ":rotating_light: *CRITICAL* CoffeeRtFlinkJobNotRunning" in text
    assert f"*What:* {down}" in text
    assert f"`namespace={namespace}` `job_name=coffee_rt_orders` `component=flink`" in text
    assert f"*Runbook:* <{runbook}|CoffeeRtFlinkJobNotRunning.md>" in text
    dashboard = alertmanager.settings.dashboard_url + "/"
    assert attachment["title_link"] == dashboard
    buttons = {a["text"]: a["url"] for a in attachment["actions"]}
    assert buttons["Runbook"] == runbook
    assert buttons["Dashboard"] == dashboard
    assert buttons["Silence"] == (
        f"{alertmanager.address()}/#/silences/new?filter=%7Balertname%3D%22CoffeeRtFlinkJobNotRunning%22%2C"
        f"job_name%3D%22coffee_rt_orders%22%2Cnamespace%3D%22{namespace}%22%7D")

    # The silence link opens Alertmanager's UI with the group's matchers.
    assert httpx.get(buttons["Silence"].split("#")[0], timeout=10).status_code == 200

    # The lag alert follows (its for: is 10m against the job alert's 2m, so it always comes later;
    # Alertmanager does not promise inhibition for a source and target that arrive in the same instant).
    post(alertmanager, alert("CoffeeRtKafkaLagHigh", namespace, lag, job_name="coffee_rt_orders"))
    time.sleep(5)  # more than group_wait + group_interval: a notification would have been sent by now
    # Inhibited: the lag alert is active in Alertmanager but never sent while the job is down.
    groups = httpx.get(f"{alertmanager.address()}/api/v2/alerts", params={"filter": f'namespace="{namespace}"'},
                       timeout=10).json()
    states = {a["labels"]["alertname"]: (a["status"]["state"], a["status"]["inhibitedBy"]) for a in groups}
    assert states["CoffeeRtKafkaLagHigh"][0] == "suppressed" and states["CoffeeRtKafkaLagHigh"][1]
    assert states["CoffeeRtFlinkJobNotRunning"] == ("active", [])
    assert not any(is_message(p, "FIRING", "CoffeeRtKafkaLagHigh", namespace=namespace) for p in fake_slack.snapshot())

    # The job is back: the resolve is sent, and the lag alert (still firing) is no longer inhibited.
    post(alertmanager, alert("CoffeeRtFlinkJobNotRunning", namespace, down, ends=datetime.now(UTC),
                             job_name="coffee_rt_orders"))
    resolved = fake_slack.wait_for("resolved CoffeeRtFlinkJobNotRunning", lambda p: is_message(
        p, "RESOLVED", "CoffeeRtFlinkJobNotRunning", namespace=namespace))
    (attachment,) = resolved["attachments"]
    assert attachment["title"] == "[RESOLVED] CoffeeRtFlinkJobNotRunning (critical)"
    assert attachment["color"] == "good"
    assert attachment["pretext"].startswith("Resolved: ") and "<!here>" not in attachment["pretext"]
    assert ":white_check_mark: *Resolved* CoffeeRtFlinkJobNotRunning" in attachment["text"]
    lag_message = fake_slack.wait_for("firing CoffeeRtKafkaLagHigh", lambda p: is_message(
        p, "FIRING", "CoffeeRtKafkaLagHigh", namespace=namespace))
    assert f"*What:* {lag}" in lag_message["attachments"][0]["text"]


def test_warning_goes_to_the_channel_without_a_mention(alertmanager: Alertmanager, fake_slack: FakeSlack,
                                                       namespace: str) -> None:
    what = "Flink job coffee_rt_orders sent about 3 records to orders.dlq in the last 15 minutes."
    post(alertmanager, alert("CoffeeRtDeadLetters", namespace, what, job_name="coffee_rt_orders"))
    message = fake_slack.wait_for("firing CoffeeRtDeadLetters", lambda p: is_message(
        p, "FIRING", "CoffeeRtDeadLetters", namespace=namespace))
    (attachment,) = message["attachments"]
    assert message["channel"] == "#coffee-rt-alerts"
    assert attachment["title"] == "[FIRING:1] CoffeeRtDeadLetters (warning)"
    assert attachment["color"] == "warning"
    assert "<!here>" not in attachment["pretext"]
    assert "about 3 records" in attachment["text"]
    post(alertmanager, alert("CoffeeRtDeadLetters", namespace, what, ends=datetime.now(UTC),
                             job_name="coffee_rt_orders"))
    fake_slack.wait_for("resolved CoffeeRtDeadLetters", lambda p: is_message(
        p, "RESOLVED", "CoffeeRtDeadLetters", namespace=namespace))
    assert titles(message) == ["[FIRING:1] CoffeeRtDeadLetters (warning)"]


def test_a_critical_alert_does_not_inhibit_the_heartbeat(alertmanager: Alertmanager, fake_slack: FakeSlack,
                                                          namespace: str) -> None:
    down = "0 coffee-ingest instances answer Prometheus' scrape of /metrics."
    post(alertmanager, alert("CoffeeRtIngestDown", namespace, down))
    fake_slack.wait_for("firing CoffeeRtIngestDown", lambda p: is_message(
        p, "FIRING", "CoffeeRtIngestDown", namespace=namespace))
    post(alertmanager, alert("CoffeeRtWatchdog", namespace, "Always firing (value 1)."))
    time.sleep(5)  # more than group_wait + group_interval: a Slack message would have been sent by now
    found = httpx.get(f"{alertmanager.address()}/api/v2/alerts", params={"filter": f'namespace="{namespace}"'},
                      timeout=10).json()
    states = {a["labels"]["alertname"]: (a["status"]["state"], a["status"]["inhibitedBy"],
                                         [r["name"] for r in a["receivers"]]) for a in found}
    assert states == {"CoffeeRtIngestDown": ("active", [], ["slack-critical"]),
                      "CoffeeRtWatchdog": ("active", [], ["watchdog"])}
    assert not any("CoffeeRtWatchdog" in str(p) for p in fake_slack.snapshot())
    post(alertmanager, alert("CoffeeRtWatchdog", namespace, "Always firing (value 1).", ends=datetime.now(UTC)))
    post(alertmanager, alert("CoffeeRtIngestDown", namespace, down, ends=datetime.now(UTC)))
    fake_slack.wait_for("resolved CoffeeRtIngestDown", lambda p: is_message(
        p, "RESOLVED", "CoffeeRtIngestDown", namespace=namespace))


def test_bad_alert_is_refused_and_changes_nothing(alertmanager: Alertmanager, fake_slack: FakeSlack,
                                                  namespace: str) -> None:
    before = len(fake_slack.snapshot())
    response = httpx.post(f"{alertmanager.address()}/api/v2/alerts",
                          json=[{"labels": {}, "annotations": {"summary": "no labels"}}], timeout=10)
    assert response.status_code == 400
    assert response.json() == "at least one label pair required"
    active = httpx.get(f"{alertmanager.address()}/api/v2/alerts", params={"filter": 'summary="no labels"'},
                       timeout=10).json()
    assert active == []
    time.sleep(3)  # past group_wait: nothing may be sent for it
    assert all("no labels" not in str(p) for p in fake_slack.snapshot()[before:])
