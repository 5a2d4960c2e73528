"""The coffee-rt streaming job, deployed into the local Flink session cluster.

``down`` stops it with a savepoint and remembers where; the next ``up`` resumes from there, so
orders sent while the stack was down are counted once, neither lost nor twice. After a crash (no
savepoint newer than the job's last checkpoint) ``up`` resumes from the newest checkpoint Flink
retained for one of our job ids: starting without state would count from the committed offsets
and overwrite today's live totals with partial counts. With no state at all while Postgres holds
orders of today, it replays today from the orders topic instead (``coffee_rt.rebuild``, as
``coffee-rt rebuild --live`` does). Job ids are
deterministic (the state folder and a submission number kept beside the savepoint), as in the
operator: a retried ``up`` finds the job it already submitted instead of starting a second one.
The job's credentials are files in its state folder (``job/secrets/``, mode 0600), written before
each submission; its program arguments name them (coffee_jobconfig.model).
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

from coffee_flink import lifecycle
from coffee_flink.lifecycle import ACTIVE
from coffee_flink.rest import FlinkRest, FlinkRestError
from coffee_jobconfig.model import FromTimestamp
from coffee_rt.errors import StartupError
from coffee_rt.local.components.base import Component, Health, Progress
from coffee_rt.local.components.flink import Flink
from coffee_rt.local.process import ManagedProcess


class FlinkJob(Component):
    name = "job"
    start_timeout = 180.0
    runs_inside_another = True

    @property
    def savepoint_file(self) -> Any:
        return self.home / "last-savepoint"

    @property
    def submissions_file(self) -> Any:
        return self.home / "submissions"

    def _next_job_id(self) -> tuple[int, str]:
        """Write the next submission number before submitting: a crash after it retries that id."""
        done = int(self.submissions_file.read_text()) if self.submissions_file.exists() else 0
        self.submissions_file.write_text(f"{done + 1}\n")
        return done + 1, lifecycle.job_id(str(self.home.resolve()), done + 1)

    def restore_point(self) -> tuple[str, str] | None:
        """What the next submission resumes from: ("savepoint" | "checkpoint", path), or None.

        The savepoint ``down`` wrote, unless a checkpoint of ours was written after it (the
        resumed job ran on, then crashed): the newer state wins, so nothing is counted again."""
        submissions = int(self.submissions_file.read_text()) if self.submissions_file.exists() else 0
        checkpoint = lifecycle.newest_checkpoint(Flink(self.settings).checkpoint_dir,
                                                 lifecycle.known_ids(str(self.home.resolve()), submissions))
        savepoint = self.savepoint_file.read_text().strip() if self.savepoint_file.exists() else ""
        if savepoint and (checkpoint is None or _mtime_ns(savepoint) >= (checkpoint / "_metadata").stat().st_mtime_ns):
            return "savepoint", savepoint
        return ("checkpoint", checkpoint.as_uri()) if checkpoint is not None else None

    def _config(self) -> Any:
        from coffee_rt.local.jobconfig import local_job_config

        return local_job_config(self.settings)

    def ports(self) -> list[int]:
        return []

    def processes(self) -> list[ManagedProcess]:
        return []

    def address(self) -> str:
        return f"{self.settings.flink_rest_url}/#/job/running"

    def active_job(self) -> dict[str, Any] | None:
        """Our job among the cluster's active ones (found by name), or None."""
        rest = FlinkRest(self.settings.flink_rest_url, timeout=3)
        try:
            jobs = rest.jobs()
            name = self._config().job_name
            job = next((j for j in jobs if j["name"] == name and j["state"] in ACTIVE), None)
            if job is not None and job["state"] == "RUNNING":
                job = {**job, "pending": rest.pending_vertices(job["jid"])}
            return job
        finally:
            rest.close()

    def health(self) -> Health:
        try:
            job = self.active_job()
        except (httpx.HTTPError, FlinkRestError) as exc:
            return Health(False, f"Flink REST not reachable: {exc}")
        if job is None:
            return Health(False, "not running")
        if job["state"] != "RUNNING":
            return Health(False, f"{job['jid']} {job['state']}")
        if job["pending"]:
            # RUNNING while tasks still wait for a slot or deploy: not usable (and no savepoint possible) yet.
            return Health(False, f"{job['jid']} RUNNING, tasks not yet running: {'; '.join(job['pending'][:3])}")
        return Health(True, f"{job['jid']} RUNNING")

    @contextmanager
    def submit_lock(self) -> Iterator[None]:
        """One submitter at a time (`up`, the supervisor and `coffee-rt rebuild --live`)."""
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / "submit.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield

    def after_start(self, progress: Progress) -> None:
        with self.submit_lock():
            self.submit(progress)

    def submit(self, progress: Progress, replay_from_ms: int | None = None) -> str | None:
        """Submit the job unless it is active (hold ``submit_lock``); returns the new job id.

        ``replay_from_ms``: without state, from the orders written since then (``rebuild --live``)."""
        try:
            return self._submit_unless_active(progress, replay_from_ms)
        except httpx.HTTPError as exc:
            raise StartupError(self._no_answer(exc)) from None

    def _no_answer(self, exc: httpx.HTTPError) -> str:
        """What Flink did not answer, where, and where to look (a slow submission on a busy
        machine may still run: the job id is fixed, so the next ``up`` finds it)."""
        try:
            url = str(exc.request.url)
        except RuntimeError:
            url = self.settings.flink_rest_url
        waited = ("the job's submission (it may still start: `coffee-rt local status job` shows it, "
                  "`coffee-rt local up job` waits for it)" if url.endswith("/run")
                  else "the upload of the job's jar" if "/jars/upload" in url else "its list of jobs")
        log = self.settings.state_dir / "logs" / "flink-jobmanager.log"
        return (f"job: Flink REST at {url} did not answer {waited}: {type(exc).__name__}"
                f"{': ' + str(exc) if str(exc) else ''}; read its log: {log}")

    def _submit_unless_active(self, progress: Progress, replay_from_ms: int | None = None) -> str | None:
        existing = self.active_job()
        if existing is not None:
            # Starting, restarting or failing over: never submit a second copy, wait for this one.
            progress(f"job: {existing['jid']} is {existing['state']}; waiting for it")
            return None
        self.home.mkdir(parents=True, exist_ok=True)
        restore = self.restore_point() if replay_from_ms is None else None
        from coffee_rt.local.jobconfig import write_job_secrets

        write_job_secrets(self.settings)  # the files the config names; read by the job, never passed to it
        cfg = self._config()
        if restore is None and replay_from_ms is None:
            from coffee_rt.rebuild import no_state_replay_from

            # No state at all: from the committed offsets the live numbers would be overwritten with
            # partial counts, so when Postgres has orders of today, today is replayed instead.
            replay_from_ms = no_state_replay_from(self.settings, cfg, progress)
        if replay_from_ms is not None:
            cfg = cfg.model_copy(update={"startup": FromTimestamp(timestamp_ms=replay_from_ms)})
        rest = FlinkRest(self.settings.flink_rest_url)
        try:
            _, job_id = self._next_job_id()
            lifecycle.submit(rest, cfg, job_id, restore_path=restore[1] if restore else None)
        except FlinkRestError as exc:
            log = self.settings.state_dir / "logs" / "flink-jobmanager.log"
            hint = (f" It was resuming from {restore[0]} {restore[1]}; if that state no longer fits the job, "
                    f"remove {self.savepoint_file} and the checkpoints in {Flink(self.settings).checkpoint_dir} "
                    "to start without state (today's live numbers are then replayed from the orders topic)."
                    if restore else "")
            raise StartupError(f"job: Flink refused the job: {exc.cause}. The job's own output is in {log}.{hint}") \
                from None
        finally:
            rest.close()
        progress(f"job: submitted {job_id}, " + (
            f"resuming from {restore[0]} {restore[1]}" if restore
            else f"with no state, reading the orders topic from {_utc(replay_from_ms)}" if replay_from_ms is not None
            else "with no state: no savepoint or checkpoint exists"))
        return job_id

    def stop(self, progress: Progress) -> bool:
        try:
            job = self.active_job()
        except (httpx.HTTPError, FlinkRestError):
            return False
        if job is None:
            return False
        rest = FlinkRest(self.settings.flink_rest_url)
        try:
            # With the lifecycle's fallback: no savepoint means cancel and keep the newest checkpoint.
            stopped = lifecycle.stop(rest, job["jid"], progress=lambda message: progress(f"job: {message}"))
        finally:
            rest.close()
        if stopped.how == "savepoint":
            progress(f"job: stopped {job['jid']} with savepoint {stopped.path}")
        else:
            progress(f"job: savepoint failed ({stopped.failure}); cancelled {job['jid']}, will resume from "
                     f"checkpoint {stopped.path or '(none: Flink retained no checkpoint of it)'}")
        self.home.mkdir(parents=True, exist_ok=True)
        if stopped.path:
            self.savepoint_file.write_text(stopped.path + "\n")
        return True


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _mtime_ns(location: str) -> int:
    """When a savepoint (a ``file:`` URI or a path) was written; 0 when it is not on this disk."""
    path = Path(urlparse(location).path if location.startswith("file:") else location)
    for candidate in (path / "_metadata", path):
        try:
            return candidate.stat().st_mtime_ns
        except OSError:
            continue
    return 0
