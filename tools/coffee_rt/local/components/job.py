"""The coffee-rt streaming job, deployed into the local Flink session cluster.

``down`` stops it with a savepoint and remembers where; the next ``up`` resumes from there, so
orders sent while the stack was down are counted once, neither lost nor twice.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

from coffee_rt.errors import StartupError
from coffee_rt.flink.rest import FlinkRest, FlinkRestError
from coffee_rt.local.components.base import Component, Health, Progress
from coffee_rt.local.process import ManagedProcess

ACTIVE = {"CREATED", "INITIALIZING", "RUNNING", "RESTARTING"}


class FlinkJob(Component):
    name = "job"
    start_timeout = 180.0
    runs_inside_another = True

    @property
    def savepoint_file(self) -> Any:
        return self.home / "last-savepoint"

    def _config(self) -> Any:
        from coffee_job.local import local_job_config

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

    def after_start(self, progress: Progress) -> None:
        from coffee_job.submit import submit

        existing = self.active_job()
        if existing is not None:
            # Starting, restarting or failing over: never submit a second copy, wait for this one.
            progress(f"job: {existing['jid']} is {existing['state']}; waiting for it")
            return
        self.home.mkdir(parents=True, exist_ok=True)
        savepoint = self.savepoint_file.read_text().strip() if self.savepoint_file.exists() else None
        rest = FlinkRest(self.settings.flink_rest_url)
        try:
            job_id = submit(rest, self._config(), uuid.uuid4().hex, savepoint_path=savepoint)
        except FlinkRestError as exc:
            log = self.settings.state_dir / "logs" / "flink-jobmanager.log"
            hint = (f" It was resuming from {savepoint}; if that savepoint no longer fits the job, remove "
                    f"{self.savepoint_file} to start from the committed Kafka offsets (today's live totals "
                    "then restart from zero)." if savepoint else "")
            raise StartupError(f"job: Flink refused the job: {exc.cause}. The job's own output is in {log}.{hint}") \
                from None
        finally:
            rest.close()
        progress(f"job: submitted {job_id}" + (f" from savepoint {savepoint}" if savepoint else ""))

    def stop(self, progress: Progress) -> bool:
        try:
            job = self.active_job()
        except (httpx.HTTPError, FlinkRestError):
            return False
        if job is None:
            return False
        rest = FlinkRest(self.settings.flink_rest_url)
        try:
            path = self._stop_with_savepoint(rest, job["jid"], progress)
            # The savepoint completes a moment before the job leaves RUNNING: down means stopped.
            rest.wait_state(job["jid"], {"FINISHED", "CANCELED", "FAILED"}, timeout=60)
            progress(f"job: stopped {job['jid']} with savepoint {path}")
        except (FlinkRestError, TimeoutError) as exc:
            # Never restart from nothing (that would reset the live totals): fall back to the
            # latest retained checkpoint, and say so.
            latest = rest.checkpoints(job["jid"]).get("latest", {}).get("completed") or {}
            path = latest.get("external_path", "")
            rest.cancel(job["jid"])
            progress(f"job: savepoint failed ({exc}); cancelled {job['jid']}, will resume from "
                     f"checkpoint {path or '(none: the next up starts from committed offsets)'}")
        finally:
            rest.close()
        self.home.mkdir(parents=True, exist_ok=True)
        if path:
            self.savepoint_file.write_text(path + "\n")
        return True

    @staticmethod
    def _stop_with_savepoint(rest: FlinkRest, job_id: str, progress: Progress, attempts: int = 5) -> str:
        """Stop with a savepoint, first waiting (bounded) for a just-started job to deploy its tasks
        (Flink refuses a savepoint until every task runs), then retrying a few times."""
        deadline = time.monotonic() + 90
        while (pending := rest.pending_vertices(job_id)) and time.monotonic() < deadline:
            progress(f"job: waiting for tasks to run before the savepoint: {'; '.join(pending[:3])}")
            time.sleep(2)
        for attempt in range(1, attempts + 1):
            try:
                trigger = rest.stop_with_savepoint(job_id)
                return rest.wait_savepoint(job_id, trigger)
            except FlinkRestError as exc:
                if attempt == attempts or rest.job_state(job_id) not in ACTIVE:
                    raise
                progress(f"job: savepoint attempt {attempt} failed ({exc.cause[:200]}); retrying")
                time.sleep(3)
        raise AssertionError("unreachable")
