"""A small typed client for the Flink REST API (the parts coffee-rt uses).

Submitting a PyFlink program over REST means uploading the flink-python jar once and running
its ``PythonDriver`` entry class with ``-py``/``-pym``; we pass the job id ourselves so that a
retried submission can never start a second copy of the job.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any

import httpx

from coffee_flink.states import TERMINAL

PYTHON_DRIVER = "org.apache.flink.client.python.PythonDriver"


class FlinkRestError(Exception):
    def __init__(self, method: str, url: str, status: int, body: str) -> None:
        self.status = status
        self.body = body
        self.cause = root_cause(body)
        super().__init__(f"Flink REST {method} {url} answered {status}: {self.cause}")


def root_cause(body: str) -> str:
    """The innermost 'Caused by' of a Java stack trace in an error body (what a person needs)."""
    try:
        text = "\n".join(json.loads(body).get("errors", [])) or body
    except (ValueError, AttributeError):
        text = body
    causes = [line.strip()[len("Caused by: "):] for line in text.splitlines() if line.strip().startswith("Caused by: ")]
    first = text.strip().splitlines()[0] if text.strip() else ""
    return (causes[-1] if causes else first)[:1000]


@cache
def tls_context() -> ssl.SSLContext:
    """httpx's default TLS context, built once per process: each build reads the CA bundle (about 60 ms
    of CPU), and a health check every half second built two."""
    return httpx.create_ssl_context()


class FlinkRest:
    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, verify=tls_context())

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise FlinkRestError(method, path, response.status_code, response.text)
        return response.json() if response.content else {}

    # Cluster
    def overview(self) -> dict[str, Any]:
        return self._call("GET", "/overview")  # type: ignore[no-any-return]

    # Jars
    def upload_jar(self, jar: Path) -> str:
        """Upload a jar; returns the jar id used by :meth:`run_jar`."""
        with jar.open("rb") as handle:
            body = self._call("POST", "/jars/upload",
                              files={"jarfile": (jar.name, handle, "application/x-java-archive")})
        return str(body["filename"]).rsplit("/", 1)[-1]

    def list_jars(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/jars").get("files", []))

    def run_jar(
        self,
        jar_id: str,
        *,
        entry_class: str,
        program_args: Sequence[str],
        job_id: str | None = None,
        parallelism: int | None = None,
        savepoint_path: str | None = None,
        allow_non_restored_state: bool = False,
        flink_configuration: dict[str, str] | None = None,
        timeout: float | None = None,
    ) -> str:
        """Run a jar's entry class; returns the job id.

        A PyFlink submission plans the job in a Python process on the JobManager (tens of seconds),
        so this call waits up to ``timeout`` (default 300 s), longer than the client's default.
        """
        body: dict[str, Any] = {"entryClass": entry_class, "programArgsList": list(program_args)}
        if job_id:
            body["jobId"] = job_id
        if parallelism:
            body["parallelism"] = parallelism
        if savepoint_path:
            body["savepointPath"] = savepoint_path
            body["allowNonRestoredState"] = allow_non_restored_state
        if flink_configuration:
            body["flinkConfiguration"] = flink_configuration
        extra: dict[str, Any] = {"timeout": 300.0 if timeout is None else timeout}
        return str(self._call("POST", f"/jars/{jar_id}/run", json=body, **extra)["jobid"])

    # Jobs
    def jobs(self) -> list[dict[str, Any]]:
        return list(self._call("GET", "/jobs/overview").get("jobs", []))

    def job(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/jobs/{job_id}")  # type: ignore[no-any-return]

    def job_state(self, job_id: str) -> str | None:
        try:
            return str(self.job(job_id)["state"])
        except FlinkRestError as exc:
            if exc.status == 404:
                return None
            raise

    def pending_vertices(self, job_id: str) -> list[str]:
        """Names and states of the job's vertices not yet RUNNING (a RUNNING job may still wait for slots)."""
        return [f"{v['name'][:60]} {v['status']}" for v in self.job(job_id).get("vertices", [])
                if v.get("status") != "RUNNING"]

    def checkpoints(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/jobs/{job_id}/checkpoints")  # type: ignore[no-any-return]

    def exceptions(self, job_id: str) -> dict[str, Any]:
        return self._call("GET", f"/jobs/{job_id}/exceptions")  # type: ignore[no-any-return]

    def job_metric(self, job_id: str, name: str) -> str | None:
        """One job-level metric's current value (e.g. ``numRestarts``), None when Flink has none."""
        values = self._call("GET", f"/jobs/{job_id}/metrics", params={"get": name})
        for entry in values if isinstance(values, list) else []:
            if entry.get("id") == name:
                return str(entry.get("value"))
        return None

    def vertex_metrics(self, job_id: str, vertex_id: str, names: list[str] | None = None) -> list[dict[str, Any]]:
        """A vertex's metric names, or with ``names`` their values (read by the TaskManagers' metric service)."""
        params = {"get": ",".join(names)} if names else None
        values = self._call("GET", f"/jobs/{job_id}/vertices/{vertex_id}/metrics", params=params)
        return list(values) if isinstance(values, list) else []

    def cancel(self, job_id: str) -> None:
        self._call("PATCH", f"/jobs/{job_id}", params={"mode": "cancel"})

    def stop_with_savepoint(self, job_id: str, target_directory: str | None = None, drain: bool = False) -> str:
        """Start stop-with-savepoint; returns the trigger id for :meth:`savepoint_status`."""
        body: dict[str, Any] = {"drain": drain}
        if target_directory:
            body["targetDirectory"] = target_directory
        return str(self._call("POST", f"/jobs/{job_id}/stop", json=body)["request-id"])

    def trigger_savepoint(self, job_id: str, target_directory: str | None = None, cancel_job: bool = False) -> str:
        body: dict[str, Any] = {"cancel-job": cancel_job}
        if target_directory:
            body["target-directory"] = target_directory
        return str(self._call("POST", f"/jobs/{job_id}/savepoints", json=body)["request-id"])

    def savepoint_status(self, job_id: str, trigger_id: str) -> dict[str, Any]:
        return self._call("GET", f"/jobs/{job_id}/savepoints/{trigger_id}")  # type: ignore[no-any-return]

    def wait_savepoint(self, job_id: str, trigger_id: str, timeout: float = 120.0) -> str:
        """Wait for a savepoint; returns its path or raises with Flink's failure cause."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.savepoint_status(job_id, trigger_id)
            if status["status"]["id"] == "COMPLETED":
                operation = status.get("operation", {})
                if "failure-cause" in operation:
                    raise FlinkRestError("GET", f"savepoint {trigger_id}", 500,
                                         str(operation["failure-cause"].get("stack-trace", "")))
                return str(operation["location"])
            time.sleep(0.5)
        raise TimeoutError(f"savepoint {trigger_id} of job {job_id} not done after {timeout:.0f} s")

    def dispose_savepoint(self, path: str) -> str:
        return str(self._call("POST", "/savepoint-disposal", json={"savepoint-path": path})["request-id"])

    def wait_disposal(self, trigger_id: str, timeout: float = 60.0) -> None:
        """Wait for a savepoint disposal; raises with Flink's failure cause if it failed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self._call("GET", f"/savepoint-disposal/{trigger_id}")
            if status["status"]["id"] == "COMPLETED":
                failure = status.get("operation", {}).get("failure-cause")
                if failure:
                    raise FlinkRestError("GET", f"savepoint disposal {trigger_id}", 500,
                                         str(failure.get("stack-trace", failure)))
                return
            time.sleep(0.5)
        raise TimeoutError(f"savepoint disposal {trigger_id} not done after {timeout:.0f} s")

    def wait_state(self, job_id: str, states: set[str], timeout: float = 120.0) -> str:
        deadline = time.monotonic() + timeout
        state: str | None = None
        while time.monotonic() < deadline:
            state = self.job_state(job_id)
            if state in states:
                return state
            if state in TERMINAL - states:
                raise FlinkRestError("GET", f"/jobs/{job_id}", 200, f"job reached {state}, wanted {states}")
            time.sleep(0.5)
        raise TimeoutError(f"job {job_id} is {state}, not {states}, after {timeout:.0f} s")
