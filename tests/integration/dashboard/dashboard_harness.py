"""A real job feeding clean Redis and Postgres, and the dashboard pointed at it (per test module).

Each module submits its own job (own consumer group, a zone where it is about noon, so no run
straddles midnight) after truncating Postgres and flushing Redis, so every number the dashboard
shows has an exact expected value computed here from what was sent. The local stack's own `job`
component is stopped first: it would write the all-stores keys too.
"""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import redis
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

from coffee_flink.lifecycle import submit
from coffee_flink.rest import FlinkRest
from coffee_flink.states import TERMINAL
from coffee_jobconfig.model import JobConfig
from coffee_rt.local.components.dashboard import Dashboard
from coffee_rt.local.jobconfig import local_job_config, write_job_secrets
from coffee_rt.local.stack import LocalStack

sys.path.insert(0, str(Path(__file__).parents[1] / "job"))
from job_harness import Expected, midday_zone

ARTIFACTS = Path(__file__).parents[3] / "test-artifacts"
JOB_PREFIX = "coffee-rt-dash-"


@dataclass
class FedDashboard:
    """The dashboard and the job feeding it."""

    stack: LocalStack
    url: str
    token: str
    cfg: JobConfig
    job_id: str
    zone: str
    day: str
    expected: Expected

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path: str, **params: str) -> httpx.Response:
        # No params argument at all when there are none: httpx would drop a query already in ``path``.
        extra: dict[str, Any] = {"params": params} if params else {}
        return httpx.get(f"{self.url}{path}", headers=self.headers, timeout=10, **extra)

    def json(self, path: str, **params: str) -> Any:
        response = self.get(path, **params)
        assert response.status_code == 200, response.text
        return response.json()

    def wait_json(self, path: str, ready: Callable[[Any], bool], timeout: float = 120, **params: str) -> Any:
        """GET ``path`` until ``ready(body)``; returns that body."""
        def probe() -> Any:
            body = self.json(path, **params)
            return body if ready(body) else None

        return self.wait_for(path, probe, timeout)

    def wait_for(self, what: str, probe: Callable[[], Any], timeout: float = 120) -> Any:
        """Poll ``probe`` until it returns something truthy (eventual consistency, not a timing check)."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            last = probe()
            if last:
                return last
            time.sleep(0.3)
        raise AssertionError(f"{what}: not reached after {timeout:.0f} s (last: {last!r})")


def _end_offsets(admin: AdminClient, topic: str) -> dict[int, int]:
    metadata = admin.list_topics(topic, timeout=30).topics[topic]
    futures = admin.list_offsets({TopicPartition(topic, p): OffsetSpec.latest() for p in metadata.partitions})
    return {tp.partition: f.result(timeout=30).offset for tp, f in futures.items()}


def start_fed_dashboard(stack: LocalStack, *, topic: str | None, overrides: dict[str, str],
                        checkpoint_interval: str = "2s") -> Iterator[FedDashboard]:
    """Clean Redis/Postgres, a job on ``topic`` (a fresh one when None; else from its current end),
    and the dashboard restarted with matching settings plus ``overrides``."""
    settings = stack.settings
    stack.up(["postgres", "redis", "kafka", "flink"])
    stack.down(["job"])
    rest = FlinkRest(settings.flink_rest_url, timeout=180)  # building the PyFlink job graph is slow on a busy machine
    _cancel(rest, lambda name: name.startswith(JOB_PREFIX))  # left by an interrupted run: it would write _all too
    suffix = uuid.uuid4().hex[:8]
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    group = f"coffee-rt-dash-{suffix}"
    if topic is None:
        topic = f"orders-dash-{suffix}"
        for future in admin.create_topics([NewTopic(topic, 3, 1)]).values():
            future.result(timeout=30)
    else:
        # Start the new group at the topic's end: only what this module sends is counted.
        ends = _end_offsets(admin, topic)
        request = [ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p, o) for p, o in ends.items()])]
        for future in admin.alter_consumer_group_offsets(request).values():
            future.result(timeout=30)
    dlq = f"orders-dash-dlq-{suffix}"
    for future in admin.create_topics([NewTopic(dlq, 1, 1)]).values():
        future.result(timeout=30)
    with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE orders, order_items, sales_by_minute, sales_by_hour")
    redis.Redis.from_url(settings.redis_url).flushdb()

    now = datetime.now(UTC)
    zone = midday_zone(now)
    write_job_secrets(settings)
    cfg = local_job_config(
        settings, job_name=f"{JOB_PREFIX}{suffix}", orders_topic=topic, dlq_topic=dlq, group_id=group,
        checkpoint_interval=checkpoint_interval, restart_initial_backoff="1s", default_timezone=zone,
    )
    job_id = uuid.uuid4().hex
    try:
        submit(rest, cfg, job_id)
        rest.wait_state(job_id, {"RUNNING"}, timeout=180)
        yield from _with_dashboard(stack, cfg, job_id, zone, now, overrides)
    finally:
        _cancel(rest, lambda name: name == cfg.job_name)  # also one whose submission timed out here but went through
        rest.close()


def _cancel(rest: FlinkRest, which: Callable[[str], bool]) -> None:
    for entry in rest.jobs():
        if which(entry["name"]) and entry["state"] not in TERMINAL:
            rest.cancel(entry["jid"])
            rest.wait_state(entry["jid"], set(TERMINAL), timeout=120)


def _with_dashboard(stack: LocalStack, cfg: JobConfig, job_id: str, zone: str, now: datetime,
                    overrides: dict[str, str]) -> Iterator[FedDashboard]:
    settings = stack.settings
    component = stack["dashboard"]
    assert isinstance(component, Dashboard)
    component.env_overrides = {
        "DASHBOARD_DEFAULT_TIMEZONE": zone,
        "DASHBOARD_STORE_TIMEZONES": "{}",
        "DASHBOARD_KAFKA_TOPIC": cfg.orders_topic,
        "DASHBOARD_KAFKA_GROUP": cfg.group_id,
        "DASHBOARD_FLINK_JOB_NAME": cfg.job_name,
        "DASHBOARD_OPS_INTERVAL_S": "1",
        **overrides,
    }
    stack.down(["dashboard"])
    stack.up(["dashboard"])
    fed = FedDashboard(stack, settings.dashboard_url, component.dev_token(), cfg, job_id, zone,
                       now.astimezone(ZoneInfo(zone)).date().isoformat(), Expected())
    try:
        yield fed
    finally:
        component.env_overrides = {}
        stack.down(["dashboard"])  # the next user starts it with the defaults
