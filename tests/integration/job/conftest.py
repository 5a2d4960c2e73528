"""The module-scoped running job; see job_harness for what it offers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from job_harness import RunningJob, fresh_topics_and_sinks, midday_zone

from coffee_flink.lifecycle import submit
from coffee_flink.rest import FlinkRest
from coffee_orders.loadgen import Store
from coffee_rt.local.jobconfig import local_job_config, write_job_secrets
from coffee_rt.local.stack import LocalStack


@pytest.fixture(scope="module")
def running_job(local_stack: LocalStack, kafka_bootstrap: str, postgres_dsn: str, redis_url: str,
                flink_rest_url: str) -> Iterator[RunningJob]:
    orders_topic, dlq_topic = fresh_topics_and_sinks(kafka_bootstrap, postgres_dsn, redis_url, "orders")
    suffix = orders_topic.rsplit("-", 1)[1]

    now = datetime.now(UTC)
    zone = midday_zone(now)
    write_job_secrets(local_stack.settings)
    cfg = local_job_config(
        local_stack.settings, job_name=f"coffee-rt-test-{suffix}", orders_topic=orders_topic, dlq_topic=dlq_topic,
        group_id=f"coffee-rt-test-{suffix}", checkpoint_interval="2s", restart_initial_backoff="1s",
        default_timezone=zone,
    )
    rest = FlinkRest(flink_rest_url)
    job_id = uuid.uuid4().hex
    stores = [Store(f"store-{n}", zone) for n in range(1, 5)]
    day = now.astimezone(ZoneInfo(zone)).date().isoformat()
    job = RunningJob(local_stack, rest, cfg, job_id, zone, day, stores)
    try:
        submit(rest, cfg, job_id)
        rest.wait_state(job_id, {"RUNNING"}, timeout=180)
        yield job
    finally:
        # Every job of this module (a resubmission has another id), even when submitting failed half way.
        for entry in rest.jobs():
            if entry["name"] == cfg.job_name and entry["state"] not in ("FINISHED", "FAILED", "CANCELED"):
                rest.cancel(entry["jid"])
        rest.close()
