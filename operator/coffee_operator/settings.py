"""The operator's own settings, typed and validated once, from ``COFFEE_OPERATOR_*`` variables.

Loaded like every other settings model (``coffee_settings.env``): an unknown ``COFFEE_OPERATOR_*``
variable stops the operator at start, and every problem names its variable.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from coffee_jobconfig.secrets import CLUSTER_SECRETS_DIR
from coffee_settings.env import SettingsError as SettingsError  # raised by from_env
from coffee_settings.env import settings_from_env

ENV_PREFIX = "COFFEE_OPERATOR_"


class OperatorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # How often the timer observes each pipeline's job and takes the next lifecycle step.
    reconcile_interval: float = Field(5.0, gt=0, le=3600)
    # A new job spec must reach a healthy RUNNING within this, or it is rolled back.
    upgrade_deadline_seconds: float = Field(300.0, gt=0)
    # RUNNING counts as healthy after a completed checkpoint or after this long without restarts.
    stable_seconds: float = Field(30.0, ge=0)
    # Back-off before retrying a refused submission, a failed savepoint or a failed disposal.
    submit_retry_seconds: float = Field(30.0, ge=0)
    savepoint_retry_seconds: float = Field(60.0, ge=0)
    dispose_retry_seconds: float = Field(300.0, ge=0)
    savepoint_timeout_seconds: float = Field(180.0, gt=0)
    cancel_timeout_seconds: float = Field(120.0, gt=0)
    submit_timeout_seconds: float = Field(300.0, gt=0)
    # Deleting: how many attempts to reach Flink before the resource is released anyway.
    delete_flink_attempts: int = Field(3, ge=1)
    # Where the Flink session cluster mounts the Secrets a pipeline's sinks name (one folder per
    # Secret, one file per key): the job reads its credentials there, its program arguments name
    # only the files (coffee_jobconfig.secrets).
    secrets_dir: str = Field(CLUSTER_SECRETS_DIR, pattern=r"^/")
    # Extra JobConfig fields for every pipeline's job (e.g. {"state_backend": "rocksdb"}).
    job_config_overrides: dict[str, Any] = Field(default_factory=dict)
    # The flink-python jar uploaded to run PythonDriver; default: the one of the installed PyFlink.
    flink_python_jar: str | None = None
    metrics_port: int = Field(9090, ge=0, le=65535)  # 0: no metrics endpoint
    metrics_host: str = "0.0.0.0"  # noqa: S104 - the Pod's port, scraped by Prometheus

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> OperatorSettings:
        return settings_from_env(cls, ENV_PREFIX, "operator", env, json_fields=("job_config_overrides",))
