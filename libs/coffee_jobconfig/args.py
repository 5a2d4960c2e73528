"""How a :class:`JobConfig` travels to the job: PyFlink ``PythonDriver`` program arguments.

Flink logs and shows program arguments; they hold no secret, only the paths of the files that do
(:mod:`coffee_jobconfig.model`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from coffee_jobconfig.model import JobConfig

ENTRY_MODULE = "coffee_job.main"


def entry_args(module: str | None = ENTRY_MODULE, file: str | None = None) -> list[str]:
    """PythonDriver's way of naming the program: a module on the job's path, or a file."""
    if module:
        return ["-pym", module]
    if file:
        return ["-py", file]
    raise ValueError("the job's entry needs a module or a file")


def program_args(cfg: JobConfig, *, entry: Sequence[str] | None = None) -> list[str]:
    """The PythonDriver arguments that run the job with ``cfg``."""
    values = cfg.model_dump(mode="json")
    return [*(entry or entry_args()), "--config-json", json.dumps(values, sort_keys=True)]
