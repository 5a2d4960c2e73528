"""The local stack's own job component counting the test stack's real ``orders`` topic (fed through the real
ingest API) into a clean Postgres and Redis, and the ledger audit pointed at the same servers.

The topic may already hold orders of earlier test modules: the job starts with no state and no committed
offsets, so it reads the topic from the start, and the tests compare with the audit's first count plus
exactly what they send. The job is the component's (name, consumer group, job ids and state folder), so
`coffee-rt rebuild --live` and `local up job` act on it as on a developer's stack.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis
from ledger_harness import forget_group, forget_job_state

from coffee_jobconfig.model import JobConfig
from coffee_rt.local.jobconfig import local_job_config
from coffee_rt.local.stack import LocalStack

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "job"))


@pytest.fixture(scope="module")
def ledger_job(local_stack: LocalStack, postgres_dsn: str, redis_url: str, ingest_url: str) -> Iterator[JobConfig]:
    # A machine shared with other test runs may need longer than the default to start Flink and the job.
    for name in ("flink", "job"):
        local_stack[name].start_timeout = max(local_stack[name].start_timeout, 600.0)
    local_stack.up(["flink"])
    cfg = local_job_config(local_stack.settings)
    local_stack.down(["job"])  # one an earlier module left running
    forget_job_state(local_stack)
    forget_group(local_stack, cfg.group_id)
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        # and the auditor's tally of the topic: it counts the topic afresh
        conn.execute("TRUNCATE orders, order_items, sales_by_minute, sales_by_hour, "
                     "ledger_tally, ledger_positions, ledger_totals, ledger_seen")
    redis.Redis.from_url(redis_url).flushdb()
    try:
        local_stack.up(["job"])
        yield cfg
    finally:
        local_stack.down(["auditor", "job"])
