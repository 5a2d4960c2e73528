"""The orders topic's retention comes from the stack config (`kafka.ordersRetentionDays`), default 35 days."""

from __future__ import annotations

import json

import pytest
from conftest import DEV_SECRETS, run_stack

from infra import config, mockrun

DAY_MS = 24 * 3600 * 1000


def _kafka(**changes: object) -> dict[str, str]:
    values = json.loads(mockrun.stack_values("dev")["coffee-rt:kafka"])
    values.update(changes)
    return {"coffee-rt:kafka": json.dumps(values)}


def _topics_script(run: mockrun.Run) -> str:
    (job,) = [m for m in run.manifests() if m["kind"] == "Job" and m["metadata"]["name"].startswith("kafka-topics")]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return str(container["command"][2])


def test_the_default_keeps_orders_35_days(dev: mockrun.Run) -> None:
    script = _topics_script(dev)
    assert f"--topic orders --partitions 3 --replication-factor 1 --config min.insync.replicas=1 " \
           f"--config retention.ms={35 * DAY_MS}" in script
    # an existing topic is converged to it too
    assert f"--entity-name orders --add-config min.insync.replicas=1,retention.ms={35 * DAY_MS}" in script


def test_a_configured_retention_reaches_the_orders_topic_only(dev: mockrun.Run) -> None:
    run = run_stack("dev", DEV_SECRETS, _kafka(ordersRetentionDays=90))
    script = _topics_script(run)
    assert f"--topic orders --partitions 3 --replication-factor 1 --config min.insync.replicas=1 " \
           f"--config retention.ms={90 * DAY_MS}" in script
    assert f"--entity-name orders --add-config min.insync.replicas=1,retention.ms={90 * DAY_MS}" in script
    assert f"--entity-name orders.dlq --add-config min.insync.replicas=1,retention.ms={30 * DAY_MS}" in script
    assert f"retention.ms={35 * DAY_MS}" not in script
    # a new script is a new Job (Jobs are immutable)
    names = {m["metadata"]["name"] for r in (dev, run) for m in r.manifests()
             if m["kind"] == "Job" and m["metadata"]["name"].startswith("kafka-topics")}
    assert len(names) == 2


@pytest.mark.parametrize(("value", "message"), [
    (1, "coffee-rt:kafka.ordersRetentionDays: Input should be greater than or equal to 2 (got 1)"),
    (3651, "coffee-rt:kafka.ordersRetentionDays: Input should be less than or equal to 3650 (got 3651)"),
    ("a month", "coffee-rt:kafka.ordersRetentionDays: Input should be a valid integer, unable to parse string as an "
                "integer (got 'a month')"),
])
def test_a_bad_retention_is_refused_naming_the_key(value: object, message: str) -> None:
    with pytest.raises(config.ConfigError) as info:
        run_stack("dev", DEV_SECRETS, _kafka(ordersRetentionDays=value))
    assert str(info.value) == f"invalid stack config:\n  {message}"
