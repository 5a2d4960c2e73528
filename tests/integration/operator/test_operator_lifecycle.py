"""The job lifecycle against the real Flink session cluster running the real job, phase by phase.

One pipeline goes through every transition in order (each submission costs ~30 s, so the
phases share one job): submit, savepoint nonce, upgrade in each mode, restart nonce,
suspend/resume, a job killed behind the operator's back, a broken spec rolled back, savepoint
history pruning (and a failed disposal), delete. After each, Postgres and Redis hold exactly the
totals of the orders sent: nothing lost, nothing counted twice.

The reconcile step is the one the Kopf timer runs (coffee_operator.reconcile.step); status lives
in memory with the status subresource's merge-patch semantics.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from job_harness import Expected, RunningJob
from operator_harness import Driver, SimulatedCrash, World

from coffee_flink import lifecycle
from coffee_flink.lifecycle import ACTIVE
from coffee_operator import metrics
from coffee_operator.act import job_config
from coffee_operator.status import PipelineStatus
from coffee_orders.schema import Order, from_wire

NAME = "roastery"
NS = "coffee-rt"


@pytest.fixture(scope="module")
def driver(world: World) -> Iterator[Driver]:
    d = Driver(NAME, str(uuid.uuid4()), world.pipeline_spec(), world.secrets, world.settings(), namespace=NS)
    yield d
    for job_id in world.active_jobs(f"coffee-rt-{NS}-{NAME}"):
        world.rest.cancel(job_id)
    d.flink.close()


@pytest.fixture(scope="module")
def feed(world: World, driver: Driver) -> RunningJob:
    return world.feed(NS, NAME, driver.spec)


def _local(path: str) -> Path:
    return Path("/" + path.removeprefix("file:").lstrip("/"))


def _wait_equal(what: str, fetch: Callable[[], dict[str, tuple[int, int, int]]],
                want: dict[str, tuple[int, int, int]], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    got: dict[str, tuple[int, int, int]] = {}
    while time.monotonic() < deadline:
        got = fetch()
        if got == want:
            return
        time.sleep(1)
    raise AssertionError(f"{what} not exact after {timeout:.0f} s:\nwant {want}\ngot  {got}")


def _conditions(status: PipelineStatus) -> dict[str, tuple[str, str]]:
    return {c.type: (c.status, c.reason) for c in status.conditions}


def _job(driver: Driver, n: int) -> str:
    return lifecycle.job_id(driver.uid, n)


def test_submit_runs_the_job_and_counts_exactly(driver: Driver, feed: RunningJob, world: World) -> None:
    driver.until("running", driver.running)
    status = driver.status
    assert status.submissions == 1
    assert (status.job_status.job_id, status.job_status.state, status.job_status.submission) == (
        _job(driver, 1), "RUNNING", 1)
    assert status.deployed is not None and status.deployed.restore_path is None
    assert status.last_stable_spec is not None and status.last_stable_spec.generation == 1
    assert _conditions(status) == {"Ready": ("True", "Running"), "Progressing": ("False", "Stable"),
                                   "Degraded": ("False", "Healthy")}
    assert status.observed_generation == 1
    assert world.active_jobs(feed.cfg.job_name) == [_job(driver, 1)]
    assert "JobSubmitted" in driver.reasons()
    feed.send(feed.make_orders(300), poison_every=50)
    feed.wait_until_exact()


def test_savepoint_nonce_takes_a_savepoint_without_restarting(driver: Driver, feed: RunningJob) -> None:
    driver.edit(lambda job: job.update(savepointTriggerNonce=1))
    driver.until("savepointed", lambda s: s.nonces.savepoint == 1)
    status = driver.status
    (entry,) = status.savepoint_history
    assert entry.trigger == "manual"
    assert status.job_status.last_savepoint is not None and status.job_status.last_savepoint.path == entry.path
    assert (_local(entry.path) / "_metadata").is_file()
    assert (status.submissions, status.job_status.job_id) == (1, _job(driver, 1))
    driver.step()  # a second look changes nothing: the nonce is handled
    assert len(driver.status.savepoint_history) == 1 and driver.status.submissions == 1


def test_upgrade_with_savepoint_mode(driver: Driver, feed: RunningJob, world: World) -> None:
    driver.edit(lambda job: job.update(checkpointInterval="3s"))
    driver.step()  # stop with a savepoint
    stopped = driver.status.stopped
    assert stopped is not None and (stopped.reason, stopped.restore_kind) == ("upgrade", "savepoint")
    assert world.rest.job_state(_job(driver, 1)) == "FINISHED"
    feed.send(feed.make_orders(200))  # while no job runs
    driver.until("upgraded", driver.running)
    status = driver.status
    assert status.submissions == 2 and status.job_status.job_id == _job(driver, 2)
    assert status.deployed is not None and status.deployed.restore_path == stopped.restore_path
    assert status.deployed.spec.checkpoint_interval == "3s"
    assert status.last_stable_spec is not None and status.last_stable_spec.generation == 3
    assert [s.trigger for s in status.savepoint_history] == ["manual", "upgrade"]
    assert {"StoppedForUpgrade", "UpgradeComplete"} <= set(driver.reasons())
    feed.send(feed.make_orders(200))
    feed.wait_until_exact()
    assert world.active_jobs(feed.cfg.job_name) == [_job(driver, 2)]


def test_upgrade_with_last_state_mode(driver: Driver, feed: RunningJob) -> None:
    feed.send(feed.make_orders(150))
    driver.edit(lambda job: job.update(upgradeMode="last-state", checkpointInterval="2s"))
    driver.step()  # cancel, keep the latest checkpoint
    stopped = driver.status.stopped
    assert stopped is not None and (stopped.reason, stopped.restore_kind) == ("upgrade", "checkpoint")
    assert stopped.restore_path is not None and "/chk-" in stopped.restore_path
    driver.until("upgraded", driver.running)
    status = driver.status
    assert status.submissions == 3
    assert status.deployed is not None and status.deployed.restore_path == stopped.restore_path
    assert len(status.savepoint_history) == 2  # no savepoint taken
    feed.send(feed.make_orders(150))
    feed.wait_until_exact()


def test_restart_nonce_restarts_from_the_latest_checkpoint(driver: Driver, feed: RunningJob) -> None:
    feed.send(feed.make_orders(100))
    generation_spec = driver.status.deployed.spec  # type: ignore[union-attr]
    driver.edit(lambda job: job.update(restartNonce=1))
    driver.until("restarted", lambda s: driver.running(s) and s.submissions == 4)
    status = driver.status
    assert status.nonces.restart == 1
    assert status.deployed is not None and status.deployed.spec == generation_spec
    assert status.deployed.restore_path is not None and "/chk-" in status.deployed.restore_path
    feed.send(feed.make_orders(100))
    feed.wait_until_exact()


def test_suspend_and_resume(driver: Driver, feed: RunningJob, world: World) -> None:
    before = feed.pg_totals()
    driver.edit(lambda job: job.update(state="suspended"))
    driver.until("suspended", lambda s: s.phase == "Suspended")
    status = driver.status
    assert status.stopped is not None and status.stopped.restore_kind == "savepoint"
    assert status.savepoint_history[-1].trigger == "suspend"
    assert world.active_jobs(feed.cfg.job_name) == []
    assert _conditions(status)["Ready"] == ("True", "Suspended")
    feed.send(feed.make_orders(120))
    driver.step()
    assert feed.pg_totals() == before  # suspended: nothing processed
    driver.edit(lambda job: job.update(state="running"))
    driver.until("resumed", driver.running)
    status = driver.status
    assert status.submissions == 5
    assert status.deployed is not None and status.deployed.restore_path == status.savepoint_history[-1].path
    feed.wait_until_exact()


def test_job_cancelled_behind_the_operators_back_is_resubmitted_from_its_checkpoint(
    driver: Driver, feed: RunningJob, world: World
) -> None:
    feed.send(feed.make_orders(150))
    victim = driver.status.job_status.job_id
    assert victim is not None
    world.rest.cancel(victim)
    world.rest.wait_state(victim, {"CANCELED"})
    driver.until("resubmitted", lambda s: driver.running(s) and s.submissions == 6)
    status = driver.status
    assert status.deployed is not None and status.deployed.restore_path is not None
    assert f"/{victim}/chk-" in status.deployed.restore_path
    assert "JobLost" in driver.reasons()
    feed.send(feed.make_orders(150))
    feed.wait_until_exact()
    assert world.active_jobs(feed.cfg.job_name) == [_job(driver, 6)]


def test_broken_spec_is_rolled_back_to_the_last_good_one(driver: Driver, feed: RunningJob, world: World) -> None:
    rollbacks = metrics.ROLLBACKS.labels(NS, NAME)._value.get()
    driver.edit(lambda job: job.update(upgradeMode="savepoint", entry={"module": "coffee_job.no_such_module"}))
    broken = driver.generation
    feed.send(feed.make_orders(100))
    driver.until("rolled back", lambda s: s.rollback is not None and driver.running(s), timeout=400, pause=2)
    status = driver.status
    assert status.rollback is not None
    # Back to the last spec that ran healthy: generation 4's (restart, suspend and resume kept that spec).
    assert (status.rollback.generation, status.rollback.to_generation) == (broken, 4)
    assert status.last_stable_spec is not None and status.last_stable_spec.generation == 4
    assert "did not reach a healthy RUNNING" in status.rollback.message
    assert status.phase == "RolledBack"
    assert _conditions(status)["Degraded"] == ("True", "RolledBack")
    assert status.deployed is not None and status.deployed.spec.entry.module == "coffee_job.main"
    upgrade_savepoint = [s for s in status.savepoint_history if s.trigger == "upgrade"][-1]
    assert status.deployed.restore_path == upgrade_savepoint.path
    assert status.observed_generation == broken
    assert {"SubmitFailed", "RolledBack"} <= set(driver.reasons())
    assert metrics.ROLLBACKS.labels(NS, NAME)._value.get() == rollbacks + 1
    feed.wait_until_exact()
    # Still the broken spec: no new attempt. Fixed (back to the good entry): healthy again, no restart.
    submissions = status.submissions
    driver.step()
    assert driver.status.submissions == submissions
    driver.edit(lambda job: job.update(entry={"module": "coffee_job.main"}))
    driver.step()
    status = driver.status
    assert (status.phase, status.submissions) == ("Running", submissions)
    assert _conditions(status)["Degraded"] == ("False", "Healthy")
    assert world.active_jobs(feed.cfg.job_name) == [status.job_status.job_id]


def test_history_is_pruned_and_a_failed_disposal_is_kept_with_its_reason(driver: Driver, world: World) -> None:
    status = driver.status
    assert len(status.savepoint_history) == 3  # maxCount 3: older ones were disposed of
    disposed = [e for e in driver.events if e.reason == "SavepointDisposed"]
    assert disposed
    for event in disposed:
        path = event.message.split("disposed of savepoint ", 1)[1].split(" ", 1)[0]
        assert not _local(path).exists()
    bogus = {"path": f"file:/tmp/coffee-rt-no-such-savepoint-{world.suffix}", "time": "2020-01-01T00:00:00Z",
             "trigger": "manual"}
    driver.store.document["savepointHistory"] = [bogus, *driver.store.document["savepointHistory"]]
    driver.step()
    history = driver.status.savepoint_history
    assert len(history) == 4 and history[0].path == bogus["path"]
    assert history[0].dispose_error == (f"java.io.FileNotFoundException: Cannot find checkpoint or savepoint "
                                        f"file/directory '{bogus['path']}' on file system 'file'.")
    assert "SavepointDisposalFailed" in driver.reasons()
    driver.step()  # not retried before the back-off
    assert driver.status.savepoint_history[0].dispose_failed_at == history[0].dispose_failed_at
    driver.store.document["savepointHistory"] = driver.store.document["savepointHistory"][1:]


def test_a_crash_after_submitting_is_healed_by_the_job_id_and_orphans_are_cancelled(
    driver: Driver, feed: RunningJob, world: World
) -> None:
    feed.send(feed.make_orders(100))
    driver.edit(lambda job: job.update(restartNonce=2))
    driver.step()  # cancel for the restart
    n = driver.status.submissions + 1
    # The operator dies after Flink accepted the job, before status recorded it.
    driver.store.fail_when = lambda patch: "deployed" in patch
    with pytest.raises(SimulatedCrash):
        driver.step()
    driver.store.fail_when = None
    assert driver.status.pending is not None and driver.status.pending.submission == n
    assert world.rest.job_state(_job(driver, n)) in ACTIVE
    driver.until("healed", lambda s: driver.running(s) and s.nonces.restart == 2)
    assert (driver.status.submissions, driver.status.job_status.job_id) == (n, _job(driver, n))
    assert driver.events[-1].reason != "SubmitFailed"
    assert any(e.reason == "JobSubmitted" and e.message.startswith(f"found job {_job(driver, n)}")
               for e in driver.events)
    assert world.active_jobs(feed.cfg.job_name) == [_job(driver, n)]
    feed.wait_until_exact()

    # A job with our next id that status does not know (a lost status write): cancelled as an orphan.
    orphan = _job(driver, n + 1)
    deployed = driver.status.deployed
    assert deployed is not None
    cfg = job_config(NS, NAME, deployed.spec, lambda k, v: world.secrets[(k, v)], driver.settings)
    lifecycle.submit(world.rest, cfg, orphan, timeout=300)
    driver.step()
    assert world.rest.wait_state(orphan, {"CANCELED"}) == "CANCELED"
    assert "OrphanCancelled" in driver.reasons()
    assert world.active_jobs(feed.cfg.job_name) == [_job(driver, n)]
    # Its id is burnt: the next submission skips it.
    driver.edit(lambda job: job.update(restartNonce=3))
    driver.until("restarted", lambda s: driver.running(s) and s.nonces.restart == 3)
    assert driver.status.job_status.job_id == _job(driver, n + 2)
    assert "JobIdInUse" in driver.reasons()
    feed.send(feed.make_orders(100))
    feed.wait_until_exact()


def test_upgrade_with_stateless_mode_starts_fresh_from_committed_offsets(
    driver: Driver, feed: RunningJob, world: World
) -> None:
    feed.wait_until_exact()
    driver.edit(lambda job: job.update(upgradeMode="stateless", checkpointInterval="3s"))
    driver.step()  # cancel, no state kept
    stopped = driver.status.stopped
    assert stopped is not None and (stopped.reason, stopped.restore_kind, stopped.restore_path) == (
        "upgrade", "none", None)
    # The fresh job reads from the group's committed offsets (committed on checkpoints, best effort):
    # it re-reads what lies after them, with empty keyed state. Exactly that is what Redis will count.
    replay = Expected()
    replay.add(_orders_after_committed_offsets(feed))
    driver.until("upgraded", lambda s: driver.running(s) and s.deployed is not None
                 and s.deployed.spec.checkpoint_interval == "3s")
    status = driver.status
    assert status.deployed is not None and status.deployed.restore_path is None
    assert status.job_status.restored_from is None
    orders = feed.make_orders(200)
    replay.add(orders)
    feed.send(orders)
    # Postgres: every order exactly once. Redis live totals: the fresh job's own (dedup state and
    # counts start empty), exactly the orders it read.
    _wait_equal("redis", feed.redis_totals, replay.by_store())
    _wait_equal("postgres", feed.pg_totals, feed.expected.by_store())


def _orders_after_committed_offsets(feed: RunningJob) -> list[Order]:
    """The orders in the topic after the job's consumer group's committed offsets (no job runs now)."""
    consumer = Consumer({"bootstrap.servers": feed.cfg.kafka_bootstrap, "group.id": feed.cfg.group_id,
                         "enable.auto.commit": False, "isolation.level": "read_committed"})
    try:
        metadata = consumer.list_topics(feed.cfg.orders_topic, timeout=30)
        partitions = [TopicPartition(feed.cfg.orders_topic, p)
                      for p in metadata.topics[feed.cfg.orders_topic].partitions]
        committed = consumer.committed(partitions, timeout=30)
        orders: list[Order] = []
        for tp in committed:
            low, high = consumer.get_watermark_offsets(tp, timeout=30)
            start = tp.offset if tp.offset >= 0 else low
            if start >= high:
                continue
            consumer.assign([TopicPartition(tp.topic, tp.partition, start)])
            position = start
            while position < high:
                message = consumer.poll(10)
                assert message is not None, f"no record at {tp.partition}:{position} below {high}"
                assert message.error() is None, message.error()
                position = message.offset() + 1
                try:
                    orders.append(from_wire(message.value()))
                except ValueError:
                    pass  # a poison record: the job sends it to the DLQ
        return orders
    finally:
        consumer.close()


def test_delete_with_a_running_job_takes_a_final_savepoint(driver: Driver, feed: RunningJob, world: World) -> None:
    """Even in stateless mode: the final savepoint is how the pipeline can come back with its state."""
    job_id = driver.status.job_status.job_id
    assert driver.finalize() is None
    assert world.rest.job_state(job_id) == "FINISHED"  # type: ignore[arg-type]
    final = driver.status.savepoint_history[-1]
    assert final.trigger == "delete" and (_local(final.path) / "_metadata").is_file()
    assert world.active_jobs(feed.cfg.job_name) == []
    assert "StoppedForDelete" in driver.reasons()


def test_delete_without_a_running_job_is_prompt(driver: Driver, world: World) -> None:
    events = len(driver.events)
    assert driver.finalize() is None  # the job is FINISHED: nothing to stop
    assert [e.reason for e in driver.events[events:]] == ["Deleted"]
    gone = Driver("never-ran", str(uuid.uuid4()), world.pipeline_spec(state="suspended"), world.secrets,
                  world.settings(), namespace=NS)
    gone.step()
    assert gone.status.phase == "Suspended" and gone.status.submissions == 0
    assert gone.finalize() is None
    unreachable = Driver("unreachable", str(uuid.uuid4()), world.pipeline_spec(restUrl="http://127.0.0.1:9"),
                         world.secrets, world.settings(), namespace=NS)
    problem = unreachable.finalize()
    assert problem is not None and "Flink REST at http://127.0.0.1:9" in problem
