"""How a :class:`JobConfig` travels to the job: PyFlink ``PythonDriver`` program arguments.

Without secrets, the cluster must provide ``COFFEE_JOB_POSTGRES_PASSWORD`` and
``COFFEE_JOB_REDIS_URL`` to the job (``load`` reads them), since Flink shows program arguments in
its UI and logs.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from coffee_jobconfig.model import JobConfig

ENTRY_MODULE = "coffee_job.main"
SECRET_FIELDS = ("postgres_password", "redis_url")


def entry_args(module: str | None = ENTRY_MODULE, file: str | None = None) -> list[str]:
    """PythonDriver's way of naming the program: a module on the job's path, or a file."""
    if module:
        return ["-pym", module]
    if file:
        return ["-py", file]
    raise ValueError("the job's entry needs a module or a file")


def program_args(cfg: JobConfig, *, include_secrets: bool, entry: Sequence[str] | None = None) -> list[str]:
    """The PythonDriver arguments that run the job with ``cfg``."""
    values = cfg.model_dump(mode="json")
    for field in SECRET_FIELDS:
        if include_secrets:
            values[field] = getattr(cfg, field).get_secret_value()
        else:
            values.pop(field)
    return [*(entry or entry_args()), "--config-json", json.dumps(values, sort_keys=True)]
