"""Kill a server with SIGKILL in the middle of a rush: every order that got a 202 ends up counted
exactly once in Postgres and in Redis, and no human restarts anything (issue 21): the local
stack's supervisor starts what died again, and the job resumes from its state. A sink's outage
fails the job's tasks, never the TaskManager process."""

from __future__ import annotations

import time

from coffee_flink.rest import FlinkRest
from coffee_rt.drill import Rush, expected_totals, settled_totals, taskmanager_pid, wait_exact
from coffee_rt.local import supervisor
from coffee_rt.local.stack import LocalStack

ORDERS = 3000
# How long a killed Postgres stays down before the supervisor may start it again: longer than the
# JDBC sinks' retries (one immediate reconnect), so that they fail the job's tasks for certain.
OUTAGE = 15.0


def _kill(stack: LocalStack, component: str) -> None:
    for process in stack[component].processes():
        process.kill()


def _restarts(stack: LocalStack, component: str) -> int:
    """How often the supervisor has started ``component`` again in this test session."""
    return int(str(supervisor.restarts(stack.settings).get(component, {}).get("count", 0)))


def _failed_tasks(stack: LocalStack, since: float) -> list[str]:
    """The tasks whose failure restarted the running job since ``since`` (epoch seconds), from its
    exception history (the scheduler's own record; the ``numRestarts`` metric read over REST can
    be one fetch interval stale)."""
    job = stack["job"].health().detail.split()[0]
    rest = FlinkRest(stack.settings.flink_rest_url)
    try:
        entries = rest.exceptions(job)["exceptionHistory"]["entries"]
    finally:
        rest.close()
    return [str(entry.get("taskName")) for entry in entries if entry["timestamp"] >= since * 1000]


def test_postgres_killed_mid_rush(pipeline: LocalStack, supervised: list[str], ingest_tokens: dict[str, str]) -> None:
    base = settled_totals(pipeline)
    taskmanager = taskmanager_pid(pipeline)
    postgres_restarts, flink_restarts = _restarts(pipeline, "postgres"), _restarts(pipeline, "flink")
    rush = Rush(pipeline.settings.ingest_url, ingest_tokens, ORDERS).start()
    rush.wait_accepted(ORDERS // 3)
    supervisor.unwatch(pipeline.settings, ["postgres"])
    try:
        killed_since = time.time()
        _kill(pipeline, "postgres")
        killed_at = time.monotonic()
        time.sleep(OUTAGE)
    finally:
        supervisor.watch(pipeline.settings, ["postgres"])
    rush.join()
    assert not rush.refused and len(rush.accepted) == ORDERS, rush.refused[:3]
    recovered = wait_exact(pipeline, expected_totals(rush.accepted, base), timeout=300)
    assert _restarts(pipeline, "postgres") == postgres_restarts + 1
    # The sinks' failure failed the job, which Flink restarted from its checkpoint in the same
    # TaskManager process: the supervisor started no Flink process again.
    failed = _failed_tasks(pipeline, killed_since)
    assert any(task.startswith("Sink: pg_") for task in failed), failed
    assert (taskmanager_pid(pipeline), _restarts(pipeline, "flink")) == (taskmanager, flink_restarts), supervised
    print(f"\npostgres killed: exact again {time.monotonic() - killed_at:.1f} s after the kill "
          f"({recovered:.1f} s after the rush ended; {rush.retries} client retries); the job restarted "
          f"after failures of {failed}; restarts: {supervisor.restarts(pipeline.settings)}")


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
