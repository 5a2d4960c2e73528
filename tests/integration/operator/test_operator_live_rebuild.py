"""spec.rebuild.live through the operator's own job lifecycle, against the real Flink running the real job and the
real Kafka, Postgres and Redis (the reconcile step the Kopf timer runs; the Job controller's verdict is given by
the test, tests/integration/operator/test_operator_rebuild.py has the real one).

A pipeline runs and counts exactly; a store's live summary is then corrupted (the job writes a store's numbers
only when it counts one of its orders, so nothing repairs it). A live rebuild request: the operator stops the job
with a savepoint and submits it without state, its Kafka source from the day's first instant; it then creates
the follow Job, whose command (``python -m coffee_auditor`` with the Job's arguments and environment, the
Secret files written where the Job mounts them) runs here against the same servers: it follows the replay,
audits, and exits 0 with the live numbers exact. The Job's success is the rebuild's.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import redis
from job_harness import RunningJob
from operator_harness import Driver, World

from coffee_flink import lifecycle
from coffee_operator.observation import RebuildJobObservation
from coffee_operator.rebuild import job_name, replay_start_ms
from coffee_rt.local.secret_files import write_secret
from coffee_rt.paths import REPO_ROOT

NAME = "brewbar"
NS = "coffee-rt"
AUDIT = {"image": "localhost/coffee-rt/auditor:test", "enabled": True, "interval": "30s"}


@pytest.fixture(scope="module")
def driver(world: World) -> Iterator[Driver]:
    spec = world.pipeline_spec()
    spec["audit"] = AUDIT
    d = Driver(NAME, str(uuid.uuid4()), spec, world.secrets, world.settings(), namespace=NS)
    yield d
    for job_id in world.active_jobs(f"coffee-rt-{NS}-{NAME}"):
        world.rest.cancel(job_id)
    d.flink.close()


@pytest.fixture(scope="module")
def feed(world: World, driver: Driver) -> RunningJob:
    return world.feed(NS, NAME, driver.spec)


def _run_job_command(job: dict[str, object], world: World, folder: Path) -> subprocess.CompletedProcess[str]:
    """The Job's container as a local process: its arguments and AUDITOR_* environment, its Secret volumes as
    files in ``folder`` (the same keys, the same file names)."""
    pod = job["spec"]["template"]["spec"]  # type: ignore[index]
    (container,) = pod["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    values = {(v["secret"]["secretName"], item["key"]): (v["name"], item["path"])
              for v in pod["volumes"] for item in v["secret"]["items"]}
    local: dict[str, str] = {}
    for (secret, key), (volume, path) in values.items():
        write_secret(folder / volume / path, world.secrets[(secret, key)])
        local[f"{mounts[volume]}/{path}"] = str(folder / volume / path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUDITOR_")}
    env.update({e["name"]: local.get(e["value"], e["value"]) for e in container["env"]})
    return subprocess.run([sys.executable, "-m", "coffee_auditor", *container["args"]], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=1200, check=False)


def test_a_live_rebuild_replays_the_day_into_a_fresh_job_and_its_job_makes_redis_exact(
    driver: Driver, feed: RunningJob, world: World, tmp_path: Path
) -> None:
    driver.until("running", driver.running)
    feed.send(feed.make_orders(200), poison_every=40)
    feed.wait_until_exact()
    store = world.stores[0].store_id
    client = redis.Redis.from_url(world.stack.settings.redis_url)
    client.hset(f"coffee:live:{store}:{world.day}:summary", mapping={"orders": 1, "revenue_cents": 1})
    assert feed.redis_totals()[store][:2] == (1, 1)

    driver.spec["rebuild"] = {"nonce": "live-1", "live": {"day": world.day}}
    driver.generation += 1
    name = job_name(NAME, "live-1")
    driver.until("the follow Job created", lambda s: s.rebuild is not None and s.rebuild.job == name, timeout=600)
    status = driver.status
    replay_ms = replay_start_ms(date.fromisoformat(world.day), {world.zone})
    assert status.rebuild is not None
    assert (status.rebuild.kind, status.rebuild.phase, status.rebuild.step, status.rebuild.replay_from_ms) == (
        "live", "Running", "follow", replay_ms)
    # the job was replaced: submission 2, without state, its source from the replay start
    assert status.deployed is not None
    assert (status.submissions, status.job_status.job_id, status.deployed.restore_path, status.deployed.startup_ms
            ) == (2, lifecycle.job_id(driver.uid, 2), None, replay_ms)
    assert world.active_jobs(feed.cfg.job_name) == [lifecycle.job_id(driver.uid, 2)]
    assert world.rest.job_state(lifecycle.job_id(driver.uid, 1)) == "FINISHED"  # stopped with a savepoint
    assert status.job_status.last_savepoint is not None and status.job_status.last_savepoint.trigger == "rebuild"
    reasons = driver.reasons()
    assert reasons.index("RebuildStarted") < reasons.index("StoppedForRebuild") < reasons.index("RebuildJobCreated")
    (job,) = driver.jobs
    assert job["metadata"]["name"] == name  # type: ignore[index]
    assert job["spec"]["template"]["spec"]["containers"][0]["args"] == [  # type: ignore[index]
        "rebuild", "--live", "--day", world.day, "--replay-from-ms", str(replay_ms), "--group", feed.cfg.group_id]

    done = _run_job_command(job, world, tmp_path)
    assert done.returncode == 0, f"{done.stdout}\n{done.stderr[-3000:]}"
    assert "the live numbers agree with the orders topic" in done.stdout
    feed.wait_until_exact()  # Redis exact again, Postgres untouched

    driver.job_states[name] = RebuildJobObservation(name, "succeeded")
    driver.until("the rebuild's end", lambda s: s.rebuild is not None and s.rebuild.phase == "Succeeded")
    assert driver.status.rebuild is not None and driver.status.rebuild.message == f"Job {name} succeeded"
    assert "RebuildSucceeded" in driver.reasons()
    # the same nonce again: nothing (no stop, no Job)
    for _ in range(3):
        driver.step()
    assert (driver.status.submissions, len(driver.jobs)) == (2, 1)
    # later orders count on from the rebuilt state
    feed.send(feed.make_orders(50))
    feed.wait_until_exact()
