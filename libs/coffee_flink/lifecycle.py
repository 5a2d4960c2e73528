"""The one Flink job lifecycle: deterministic job ids, submit, savepoints (stopping or not) with
their one retry policy, stopping a job with its fallback, the newest retained checkpoint, and the
job-state sets everyone reads (defined in :mod:`coffee_flink.states`).

The operator and the local stack both run the job through these functions, so a job submitted
by one is understood by the other and a retried step can never start a second copy: the caller
chooses the job id (uuid5 of an owner id and a submission number), and Flink refuses a second job
with an id it already knows.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from coffee_flink.dist import flink_python_jar
from coffee_flink.rest import PYTHON_DRIVER, FlinkRest, FlinkRestError
from coffee_flink.states import ACTIVE as ACTIVE  # re-exported: the lifecycle's callers read the states here
from coffee_flink.states import TERMINAL as TERMINAL
from coffee_flink.states import TRANSITIONAL as TRANSITIONAL
from coffee_jobconfig.args import program_args
from coffee_jobconfig.model import JobConfig

# Flink refuses a savepoint while a checkpoint is in flight or a task is still deploying: a few
# tries, seconds apart, and only while the job stays active. The operator and the local stack alike.
SAVEPOINT_ATTEMPTS = 3
SAVEPOINT_RETRY_DELAY_S = 3.0

JOB_ID_NAMESPACE = uuid.UUID("6f1c2b0e-6c1e-5b8e-9a51-c0ffee000001")

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def job_id(owner: str, submission: int) -> str:
    """The 32-hex Flink job id of submission ``submission`` (1, 2, ...) of an owner (a resource uid,
    or the local stack's state folder)."""
    if submission < 1:
        raise ValueError(f"submission numbers start at 1, got {submission}")
    if not owner:
        raise ValueError("an owner id is required")
    return uuid.uuid5(JOB_ID_NAMESPACE, f"{owner}/{submission}").hex


def known_ids(owner: str, submissions: int) -> dict[str, int]:
    """Every id this owner may have used so far, plus the next one (a submission in flight)."""
    return {job_id(owner, n): n for n in range(1, submissions + 2)}


_JAR_IDS: dict[str, str] = {}


def python_jar_id(rest: FlinkRest, jar: Path | None = None) -> str:
    """The id of the flink-python jar on this cluster, uploaded once per cluster and process."""
    cached = _JAR_IDS.get(rest.base_url)
    listed = rest.list_jars()
    if cached and any(entry.get("id") == cached for entry in listed):
        return cached
    jar = jar or flink_python_jar()
    found = next((str(entry["id"]) for entry in listed if entry.get("name") == jar.name), None)
    _JAR_IDS[rest.base_url] = found or rest.upload_jar(jar)
    return _JAR_IDS[rest.base_url]


def submit(
    rest: FlinkRest,
    cfg: JobConfig,
    job_id: str,
    *,
    restore_path: str | None = None,
    allow_non_restored_state: bool = False,
    entry: Sequence[str] | None = None,
    jar: Path | None = None,
    timeout: float | None = None,
) -> str:
    """Run the job under ``job_id`` (from ``restore_path`` when given); returns the job id.

    Raises :class:`FlinkRestError` when Flink refuses, including when it already knows the id:
    the caller checks :meth:`FlinkRest.job_state` first when it retries.
    """
    return rest.run_jar(
        python_jar_id(rest, jar),
        entry_class=PYTHON_DRIVER,
        program_args=program_args(cfg, entry=entry),
        job_id=job_id,
        parallelism=cfg.parallelism,
        savepoint_path=restore_path,
        allow_non_restored_state=allow_non_restored_state,
        timeout=timeout,
    )


def wait_tasks_running(rest: FlinkRest, job_id: str, timeout: float, progress: Progress = _quiet) -> None:
    """Wait (bounded) until every task of a RUNNING job runs: Flink refuses a savepoint before that."""
    if timeout <= 0:
        return
    deadline = time.monotonic() + timeout
    while (pending := rest.pending_vertices(job_id)) and time.monotonic() < deadline:
        progress(f"waiting for tasks to run before the savepoint: {'; '.join(pending[:3])}")
        time.sleep(2)


def savepoint(
    rest: FlinkRest,
    job_id: str,
    *,
    stop: bool,
    savepoint_timeout: float = 120.0,
    stop_timeout: float = 60.0,
    tasks_timeout: float = 90.0,
    progress: Progress = _quiet,
) -> str:
    """A savepoint of ``job_id``, stopping the job with it when ``stop``; returns its path.

    Waits for a just-started job's tasks first, retries (``SAVEPOINT_ATTEMPTS`` tries) while the job
    stays active (a checkpoint in flight or a task still deploying makes Flink refuse), and with
    ``stop`` returns only once the job has left RUNNING: stopped means stopped. Raises :class:`FlinkRestError` or
    ``TimeoutError`` when no savepoint could be taken.
    """
    wait_tasks_running(rest, job_id, tasks_timeout, progress)
    for attempt in range(1, SAVEPOINT_ATTEMPTS + 1):
        try:
            trigger = rest.stop_with_savepoint(job_id) if stop else rest.trigger_savepoint(job_id)
            path = rest.wait_savepoint(job_id, trigger, timeout=savepoint_timeout)
            if stop:
                rest.wait_state(job_id, set(TERMINAL), timeout=stop_timeout)
            return path
        except FlinkRestError as exc:
            if attempt == SAVEPOINT_ATTEMPTS or rest.job_state(job_id) not in ACTIVE:
                raise
            progress(f"savepoint attempt {attempt} of job {job_id} failed ({exc.cause[:200]}); retrying")
            time.sleep(SAVEPOINT_RETRY_DELAY_S)
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Stopped:
    """What a job was stopped with, for the next submission to resume from.

    ``how``: ``savepoint`` (``path`` is it), ``checkpoint`` (the savepoint failed, the job was
    cancelled, ``path`` is its newest retained checkpoint) or ``cancelled`` (the savepoint failed
    and no checkpoint is retained: ``path`` is None). ``state`` is the job's final state (None when
    Flink no longer knows the job), ``failure`` why the savepoint failed.
    """

    how: Literal["savepoint", "checkpoint", "cancelled"]
    path: str | None
    state: str | None
    failure: str | None = None


def stop(
    rest: FlinkRest,
    job_id: str,
    *,
    fallback: bool = True,
    savepoint_timeout: float = 120.0,
    stop_timeout: float = 60.0,
    tasks_timeout: float = 90.0,
    cancel_timeout: float = 60.0,
    progress: Progress = _quiet,
) -> Stopped:
    """Stop ``job_id`` with a savepoint (:func:`savepoint`, its retries); when none can be taken and
    ``fallback``, cancel the job and return its newest retained checkpoint instead.

    A stopped job must never restart from nothing (that would reset the live totals), so the
    fallback is the newest state Flink kept, read after the cancel (a checkpoint that completes
    while it cancels counts). Without ``fallback`` a failed savepoint raises and the job keeps
    running: the caller decides (the operator's savepoint upgrade mode waits rather than lose it).
    """
    try:
        path = savepoint(rest, job_id, stop=True, savepoint_timeout=savepoint_timeout, stop_timeout=stop_timeout,
                         tasks_timeout=tasks_timeout, progress=progress)
        return Stopped("savepoint", path, rest.job_state(job_id))
    except (FlinkRestError, TimeoutError) as exc:
        if not fallback:
            raise
        failure = exc.cause if isinstance(exc, FlinkRestError) else str(exc)
    progress(f"no savepoint of job {job_id} ({failure[:200]}); cancelling it")
    state = cancel(rest, job_id, timeout=cancel_timeout)
    checkpoint = latest_retained_checkpoint(rest, job_id)
    return Stopped("checkpoint" if checkpoint else "cancelled", checkpoint, state, failure)


def latest_retained_checkpoint(rest: FlinkRest, job_id: str) -> str | None:
    """The external path of the job's newest completed checkpoint, None when it has none."""
    try:
        latest = rest.checkpoints(job_id).get("latest") or {}
    except FlinkRestError as exc:
        if exc.status == 404:
            return None
        raise
    completed = latest.get("completed") or {}
    return str(completed["external_path"]) if completed.get("external_path") else None


def newest_checkpoint(checkpoints_dir: Path, job_ids: Iterable[str]) -> Path | None:
    """The newest completed retained checkpoint (its ``chk-N`` folder) of any of ``job_ids`` in a
    checkpoint folder laid out by Flink (``<dir>/<job id>/chk-N/_metadata``), or None.

    For after a crash, when Flink no longer knows the job: only the folder remains. A ``chk-N``
    without ``_metadata`` (or with an empty one) never completed and is skipped. Newest means the
    latest written metadata, since a resumed job has a new id; the checkpoint number breaks ties.
    """
    found: list[tuple[int, int, Path]] = []
    for jid in job_ids:
        for metadata in (checkpoints_dir / jid).glob("chk-*/_metadata"):
            number = metadata.parent.name.removeprefix("chk-")
            try:
                stat = metadata.stat()
            except OSError:
                continue  # subsumed and deleted while we looked
            if stat.st_size > 0 and number.isdigit():
                found.append((stat.st_mtime_ns, int(number), metadata.parent))
    return max(found, key=lambda entry: entry[:2])[2] if found else None


def cancel(rest: FlinkRest, job_id: str, timeout: float = 60.0) -> str | None:
    """Cancel ``job_id`` unless it is already over, and wait until it is; returns its final state
    (None when Flink does not know the job)."""
    state = rest.job_state(job_id)
    if state is None or state in TERMINAL:
        return state
    try:
        rest.cancel(job_id)
    except FlinkRestError as exc:
        if exc.status != 404:
            raise
    return rest.wait_state(job_id, set(TERMINAL), timeout=timeout)
