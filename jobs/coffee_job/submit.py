"""Submitting the job to a Flink session cluster over REST, with a job id chosen by the caller.

Choosing the id makes a retried submission harmless: Flink refuses a second job with the same
id, and whoever retries can find the running job by it.
"""

from __future__ import annotations

import json

from coffee_job.config import JobConfig
from coffee_rt.flink.rest import PYTHON_DRIVER, FlinkRest
from coffee_rt.local.components.flink import flink_python_jar

ENTRY_MODULE = "coffee_job.main"


def program_args(cfg: JobConfig, include_secrets: bool = True) -> list[str]:
    """PythonDriver arguments. Without secrets, the cluster must provide COFFEE_JOB_* env vars."""
    values = cfg.model_dump(mode="json")
    for field in ("postgres_password", "redis_url"):
        if include_secrets:
            values[field] = getattr(cfg, field).get_secret_value()
        else:
            values.pop(field)
    return ["-pym", ENTRY_MODULE, "--config-json", json.dumps(values, sort_keys=True)]


def python_jar_id(rest: FlinkRest) -> str:
    """The id of the uploaded flink-python jar, uploading it once."""
    jar = flink_python_jar()
    for entry in rest.list_jars():
        if entry.get("name") == jar.name:
            return str(entry["id"])
    return rest.upload_jar(jar)


def submit(
    rest: FlinkRest,
    cfg: JobConfig,
    job_id: str,
    savepoint_path: str | None = None,
    allow_non_restored_state: bool = False,
) -> str:
    return rest.run_jar(
        python_jar_id(rest),
        entry_class=PYTHON_DRIVER,
        program_args=program_args(cfg),
        job_id=job_id,
        parallelism=cfg.parallelism,
        savepoint_path=savepoint_path,
        allow_non_restored_state=allow_non_restored_state,
    )
