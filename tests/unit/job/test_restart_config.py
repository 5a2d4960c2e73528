"""The job's restart strategy: exponential delay that never gives up unless told to."""

from __future__ import annotations

import json

import pytest

from coffee_job.pipeline import UNLIMITED_ATTEMPTS, flink_configuration, restart_configuration
from coffee_jobconfig.model import ConfigError, JobConfig, load

BASE = {"kafka_bootstrap": "127.0.0.1:9092", "postgres_jdbc_url": "jdbc:postgresql://db:5432/coffee",
        "postgres_user": "coffee", "postgres_password_file": "/run/secrets/postgres-password",
        "redis_url_file": "/run/secrets/redis-url"}


def test_defaults_back_off_exponentially_without_a_limit() -> None:
    conf = flink_configuration(JobConfig(**BASE))  # type: ignore[arg-type]
    restart = {key: value for key, value in conf.items() if key.startswith("restart-strategy")}
    assert restart == {
        "restart-strategy.type": "exponential-delay",
        "restart-strategy.exponential-delay.initial-backoff": "1000 ms",
        "restart-strategy.exponential-delay.max-backoff": "60000 ms",
        "restart-strategy.exponential-delay.backoff-multiplier": "2.0",
        "restart-strategy.exponential-delay.reset-backoff-threshold": "600000 ms",
        "restart-strategy.exponential-delay.jitter-factor": "0.1",
        "restart-strategy.exponential-delay.attempts-before-reset-backoff": "2147483647",
    }
    assert UNLIMITED_ATTEMPTS == 2**31 - 1  # Java's Integer.MAX_VALUE: Flink reads an int


def test_every_setting_reaches_flink() -> None:
    cfg = JobConfig(**{**BASE, "restart_initial_backoff": "500ms", "restart_max_backoff": "2min",  # type: ignore[arg-type]
                       "restart_backoff_multiplier": 1.5, "restart_reset_after": "1h", "restart_jitter": 0,
                       "restart_attempts": 50})
    assert restart_configuration(cfg) == {
        "restart-strategy.type": "exponential-delay",
        "restart-strategy.exponential-delay.initial-backoff": "500 ms",
        "restart-strategy.exponential-delay.max-backoff": "120000 ms",
        "restart-strategy.exponential-delay.backoff-multiplier": "1.5",
        "restart-strategy.exponential-delay.reset-backoff-threshold": "3600000 ms",
        "restart-strategy.exponential-delay.jitter-factor": "0.0",
        "restart-strategy.exponential-delay.attempts-before-reset-backoff": "50",
    }


@pytest.mark.parametrize(("change", "field"), [
    ({"restart_initial_backoff": "0ms"}, "restart_initial_backoff"),
    ({"restart_initial_backoff": "soon"}, "restart_initial_backoff"),
    ({"restart_max_backoff": "forever"}, "restart_max_backoff"),
    ({"restart_backoff_multiplier": 0.5}, "restart_backoff_multiplier"),
    ({"restart_jitter": 1.5}, "restart_jitter"),
    ({"restart_attempts": 0}, "restart_attempts"),
    ({"restart_delay": "5s"}, "restart_delay"),  # the fixed-delay settings are gone, not ignored
])
def test_bad_restart_settings_are_refused_by_name(change: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=field):
        load(["--config-json", json.dumps({**BASE, **change})])


def test_max_backoff_below_initial_is_refused() -> None:
    with pytest.raises(ConfigError, match="restart_max_backoff must be at least restart_initial_backoff"):
        load(["--config-json", json.dumps(
            {**BASE, "restart_initial_backoff": "2min", "restart_max_backoff": "1min"})])
