"""Fixtures of the alerting tests: a fake Slack, the real Alertmanager with the project's config
pointed at it (route timings shortened so a resolve arrives in seconds)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alerts_fake_slack import FakeSlack
from alerts_traffic import wait_port_free

from coffee_rt.local.components.alertmanager import Alertmanager
from coffee_rt.local.stack import LocalStack

TEST_TIMINGS = {"group_wait": "1s", "group_interval": "2s", "repeat_interval": "1h"}


@pytest.fixture(scope="session")
def fake_slack() -> Iterator[FakeSlack]:
    slack = FakeSlack()
    yield slack
    slack.close()


@pytest.fixture(scope="session")
def alertmanager(local_stack: LocalStack, fake_slack: FakeSlack) -> Alertmanager:
    """The stack's alertmanager, restarted with short route timings and the fake Slack's URL."""
    component = local_stack["alertmanager"]
    assert isinstance(component, Alertmanager)
    local_stack.down(["prometheus", "alertmanager"])  # a kept stack's may run with other timings
    wait_port_free(local_stack, local_stack.settings.alertmanager_port)
    component.route_timings = TEST_TIMINGS
    component.home.mkdir(parents=True, exist_ok=True)
    component.webhook_file.write_text(fake_slack.url + "\n")
    local_stack.up(["alertmanager"])
    return component
