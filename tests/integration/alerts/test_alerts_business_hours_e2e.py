"""CoffeeRtOrdersStopped through the real Alertmanager: held back outside the time interval
shops-expecting-orders (here replaced by one a minute or two from now, written in Europe/Amsterdam
local time), sent to Slack once the interval begins while it still fires, and its resolve dropped
when it comes after the interval ended (what docs/alerts.md and the runbook tell the reader)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx
import pytest
from alerts_fake_slack import FakeSlack, Payload, is_message
from test_alerts_alertmanager_e2e import alert, post

from coffee_rt.local.components.alertmanager import Alertmanager

ZONE = ZoneInfo("Europe/Amsterdam")
INTERVAL = "shops-expecting-orders"
DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


def _window() -> tuple[datetime, datetime]:
    """[start, end): two whole minutes from at least 40 s ahead, on one local day."""
    while True:
        start = (datetime.now(UTC) + timedelta(seconds=100)).replace(second=0, microsecond=0)
        end = start + timedelta(minutes=1)
        if start.astimezone(ZONE).date() == (end - timedelta(seconds=1)).astimezone(ZONE).date() and \
                end.astimezone(ZONE).strftime("%H:%M") != "00:00":
            return start, end
        time.sleep(30)  # the local midnight is in the way: an interval cannot span it


@pytest.fixture()
def window(alertmanager: Alertmanager) -> Iterator[tuple[datetime, datetime]]:
    """The interval replaced by one in the next minutes (Europe/Amsterdam local time, that weekday
    only); the committed one again afterwards."""
    start, end = _window()
    local_start, local_end = start.astimezone(ZONE), end.astimezone(ZONE)
    alertmanager.time_intervals = {INTERVAL: [{
        "weekdays": [DAYS[local_start.weekday()]],
        "times": [{"start_time": local_start.strftime("%H:%M"), "end_time": local_end.strftime("%H:%M")}],
        "location": "Europe/Amsterdam"}]}
    alertmanager.prepare(lambda message: None)
    alertmanager.reload()
    yield start, end
    alertmanager.time_intervals = None
    alertmanager.prepare(lambda message: None)
    alertmanager.reload()


def _states(am: Alertmanager, namespace: str) -> dict[str, tuple[str, list[str]]]:
    found = httpx.get(f"{am.address()}/api/v2/alerts", params={"filter": f'namespace="{namespace}"'}, timeout=10)
    return {a["labels"]["alertname"]: (a["status"]["state"], [r["name"] for r in a["receivers"]])
            for a in found.json()}


def _stopped(payload: Payload, status: str, namespace: str) -> bool:
    return is_message(payload, status, "CoffeeRtOrdersStopped", namespace=namespace)


def test_orders_stopped_waits_for_the_interval_and_its_late_resolve_is_dropped(
        alertmanager: Alertmanager, fake_slack: FakeSlack, window: tuple[datetime, datetime]) -> None:
    start, end = window
    namespace = f"e2e-{uuid.uuid4().hex[:8]}"
    quiet = "coffee-ingest has accepted 0 orders in the last 30 minutes."
    dead = "Flink job coffee_rt_orders sent about 1 records to orders.dlq in the last 15 minutes."
    post(alertmanager, alert("CoffeeRtOrdersStopped", namespace, quiet),
         alert("CoffeeRtDeadLetters", namespace, dead, job_name="coffee_rt_orders"))

    # Outside the interval: the other alert reaches Slack, this one is held (active, routed, not sent).
    fake_slack.wait_for("firing CoffeeRtDeadLetters", lambda p: is_message(
        p, "FIRING", "CoffeeRtDeadLetters", namespace=namespace))
    assert _states(alertmanager, namespace) == {"CoffeeRtOrdersStopped": ("active", ["slack-critical"]),
                                                "CoffeeRtDeadLetters": ("active", ["slack-warning"])}
    while datetime.now(UTC) < start - timedelta(seconds=1):
        assert not any(_stopped(p, "FIRING", namespace) for p in fake_slack.snapshot())
        time.sleep(1)

    # The interval begins while it still fires: sent at the next flush (group_interval 2 s).
    message = fake_slack.wait_for("firing CoffeeRtOrdersStopped", lambda p: _stopped(p, "FIRING", namespace),
                                  timeout=50)
    assert datetime.now(UTC) >= start
    (attachment,) = message["attachments"]
    assert attachment["title"] == "[FIRING:1] CoffeeRtOrdersStopped (critical)"
    assert f"*What:* {quiet}" in attachment["text"]

    # Resolved after the interval ended: Alertmanager drops the resolve (prometheus/alertmanager#3617);
    # the other alert's resolve, on a route without interval, is sent.
    while datetime.now(UTC) < end + timedelta(seconds=2):
        time.sleep(1)
    now = datetime.now(UTC)
    post(alertmanager, alert("CoffeeRtOrdersStopped", namespace, quiet, ends=now),
         alert("CoffeeRtDeadLetters", namespace, dead, ends=now, job_name="coffee_rt_orders"))
    fake_slack.wait_for("resolved CoffeeRtDeadLetters", lambda p: is_message(
        p, "RESOLVED", "CoffeeRtDeadLetters", namespace=namespace))
    time.sleep(5)  # more than two group_intervals after the resolve
    assert [p for p in fake_slack.snapshot() if _stopped(p, "RESOLVED", namespace)] == []
    assert [p for p in fake_slack.snapshot() if _stopped(p, "FIRING", namespace)] == [message]
    assert _states(alertmanager, namespace) == {}
