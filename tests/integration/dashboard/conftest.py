"""Module-scoped dashboards fed by a real job; see dashboard_harness for what they offer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dashboard_harness import FedDashboard, start_fed_dashboard

from coffee_orders import topics
from coffee_rt.local.stack import LocalStack


@pytest.fixture(scope="module")
def fed_dashboard(local_stack: LocalStack) -> Iterator[FedDashboard]:
    """On a fresh topic, orders sent straight to Kafka; the dashboard never goes stale on its own."""
    yield from start_fed_dashboard(local_stack, topic=None, overrides={"DASHBOARD_STALE_AFTER_S": "3600"})


@pytest.fixture(scope="module")
def fed_by_ingest(local_stack: LocalStack, ingest_url: str) -> Iterator[FedDashboard]:
    """On the ingest's topic, from its current end; stale after 4 s so a test can see it. The job's
    default checkpoint interval: a checkpoint briefly holds records back, as in production."""
    yield from start_fed_dashboard(local_stack, topic=topics.ORDERS.name, checkpoint_interval="10s",
                                   overrides={"DASHBOARD_STALE_AFTER_S": "4", "DASHBOARD_HEARTBEAT_S": "0.5"})
