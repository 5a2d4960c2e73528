"""Kill a server with SIGKILL in the middle of a rush: every order that got a 202 ends up counted
exactly once in Postgres and in Redis, and no human restarts anything (issue 21): the local
stack's supervisor starts what died again, and the job resumes from its state."""

from __future__ import annotations

import time

from coffee_flink.rest import FlinkRest
from coffee_rt.drill import Rush, expected_totals, settled_totals, wait_exact
from coffee_rt.local import supervisor
from coffee_rt.local.stack import LocalStack

ORDERS = 3000


def _kill(stack: LocalStack, component: str) -> None:
    for process in stack[component].processes():
        process.kill()


def test_postgres_killed_mid_rush(pipeline: LocalStack, supervised: list[str], ingest_tokens: dict[str, str]) -> None:
    base = settled_totals(pipeline)
    rush = Rush(pipeline.settings.ingest_url, ingest_tokens, ORDERS).start()
    rush.wait_accepted(ORDERS // 3)
    _kill(pipeline, "postgres")
    killed_at = time.monotonic()
    rush.join()
    assert not rush.refused and len(rush.accepted) == ORDERS, rush.refused[:3]
    recovered = wait_exact(pipeline, expected_totals(rush.accepted, base), timeout=300)
    assert supervisor.restarts(pipeline.settings)["postgres"]["count"] == 1
    print(f"\npostgres killed: exact again {time.monotonic() - killed_at:.1f} s after the kill "
          f"({recovered:.1f} s after the rush ended; {rush.retries} client retries); "
          f"restarts: {supervisor.restarts(pipeline.settings)}")


def test_flink_killed_mid_rush_resumes_from_its_checkpoint(pipeline: LocalStack, supervised: list[str],
                                                           ingest_tokens: dict[str, str]) -> None:
    base = settled_totals(pipeline)
    time.sleep(12)  # a checkpoint (10 s interval) of the settled state
    rush = Rush(pipeline.settings.ingest_url, ingest_tokens, ORDERS).start()
    rush.wait_accepted(ORDERS // 2)
    _kill(pipeline, "flink")
    killed_at = time.monotonic()
    rush.join()
    assert not rush.refused and len(rush.accepted) == ORDERS, rush.refused[:3]
    recovered = wait_exact(pipeline, expected_totals(rush.accepted, base), timeout=300)
    resumed = [m for m in supervised if "resuming from checkpoint file:" in m]
    assert resumed, supervised
    job = pipeline["job"].health().detail.split()[0]
    restored = FlinkRest(pipeline.settings.flink_rest_url).checkpoints(job)["latest"]["restored"]
    assert "/chk-" in restored["external_path"], restored
    print(f"\nflink killed: exact again {time.monotonic() - killed_at:.1f} s after the kill "
          f"({recovered:.1f} s after the rush ended; {rush.retries} client retries); {resumed[-1]}")
