"""The job's one typed configuration, passed by the operator (or a test) as JSON program args.

Flink shows and logs program arguments (and PyFlink logs the environment of the Python process it
starts), so the configuration holds no secret: it names the files that hold them
(``postgres_password_file``, ``redis_url_file``), and the job reads them where it connects, in
the TaskManager. :func:`load` also reads each once when the job starts, so a missing, unreadable
or empty file stops the submission with its path named. Locally the job component writes the
files (mode 0600 in the job's state folder); in Kubernetes they are the mounted Secrets
(:mod:`coffee_jobconfig.secrets`).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from coffee_settings.durations import duration_ms as duration_ms  # the job reads its durations with it
from coffee_settings.zones import check_zone


class GroupOffsets(BaseModel):
    """Start from the consumer group's committed offsets (the earliest offset when it has none)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    mode: Literal["group-offsets"] = "group-offsets"


class FromTimestamp(BaseModel):
    """Start each partition at its first record written at or after ``timestamp_ms`` (Kafka time,
    ms since the epoch; a partition with none starts at its end): a replay of a day."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    mode: Literal["timestamp"] = "timestamp"
    timestamp_ms: int = Field(ge=0)


# Where the Kafka source starts when the job is submitted WITHOUT state. A restore from a checkpoint
# or savepoint always resumes from the offsets in that state; this setting is then not read.
StartupPosition = Annotated[GroupOffsets | FromTimestamp, Field(discriminator="mode")]


class JobConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    job_name: str = "coffee-rt-orders"
    kafka_bootstrap: str = Field(min_length=1)
    orders_topic: str = "orders"
    dlq_topic: str = "orders.dlq"
    group_id: str = "coffee-rt-job"
    startup: StartupPosition = GroupOffsets()
    postgres_jdbc_url: str = Field(pattern=r"^jdbc:postgresql://")
    postgres_user: str = Field(min_length=1)
    # Files holding the secrets, absolute paths valid in the JobManager and every TaskManager.
    postgres_password_file: str
    redis_url_file: str

    parallelism: int = Field(1, ge=1, le=64)
    checkpoint_interval: str = "10s"
    state_backend: Literal["hashmap", "rocksdb"] = "hashmap"
    # Exponential-delay restarts (Flink 2's default kind): a sink outage of minutes is ridden out
    # without a human, and a job that keeps failing backs off to one try per max backoff. None:
    # attempts never run out; a number: the job fails for good after that many restarts in a row.
    restart_initial_backoff: str = "1s"
    restart_max_backoff: str = "1min"
    restart_backoff_multiplier: float = Field(2.0, ge=1.0, le=10.0)
    restart_reset_after: str = "10min"  # this long without a failure starts the back-off again at the initial one
    restart_jitter: float = Field(0.1, ge=0.0, le=1.0)
    restart_attempts: int | None = Field(None, ge=1)
    dedup_ttl: str = "36h"
    watermark_out_of_orderness: str = "5s"
    # Latency knobs: Flink's default 100 ms network buffer timeout alone would miss a 50 ms p99.
    buffer_timeout: str = "5ms"
    python_bundle_time: str = "5ms"
    # The source's fetches: the broker answers once this many bytes wait or this time passed.
    # With the Kafka consumer's default (1 byte) every order is a fetch of its own; the broker and
    # the source then spend more CPU per order than the ingest service does, on the same cores.
    # 2 KiB is about four orders: at 1,000/s a fetch every ~4 ms, as often as 16 KiB / 5 ms gave.
    # The wait is what an idle stack pays for: an empty fetch a wait (5 ms: 200 a second, a tenth of
    # a core between the broker and the source); 25 ms keeps a lone order within the 50 ms target.
    source_fetch_min_bytes: int = Field(2_048, ge=1, le=52_428_800)
    source_fetch_max_wait: str = "25ms"
    # "thread": Python runs inside the TaskManager JVM (pemja), no Beam/gRPC hop per record: at
    # 100 orders/s p50 went from ~480 ms (process mode) to ~20 ms. Needs flink-python in the
    # cluster's lib/ and pemja loaded parent-first (the local stack and the image do both).
    python_execution_mode: Literal["process", "thread"] = "thread"
    # The live metrics' window: its orders reach Redis in one transaction when it closes.
    redis_flush_interval: str = "10ms"
    jdbc_flush_interval: str = "200ms"
    rollup_batch_interval: str = "500ms"  # Postgres rollups aggregate in mini-batches this long
    jdbc_batch_size: int = Field(500, ge=1)

    default_timezone: str = "UTC"
    store_timezones: dict[str, str] = Field(default_factory=dict)

    @field_validator("checkpoint_interval", "restart_initial_backoff", "restart_max_backoff",
                     "restart_reset_after", "dedup_ttl", "watermark_out_of_orderness",
                     "buffer_timeout", "python_bundle_time", "source_fetch_max_wait", "redis_flush_interval",
                     "jdbc_flush_interval", "rollup_batch_interval")
    @classmethod
    def _duration(cls, value: str) -> str:
        duration_ms(value)
        return value

    @field_validator("restart_initial_backoff")
    @classmethod
    def _backoff_positive(cls, value: str) -> str:
        return _within(value, 1, 3_600_000, "must be between 1ms and 1h")

    @model_validator(mode="after")
    def _backoffs_ordered(self) -> JobConfig:
        if duration_ms(self.restart_max_backoff) < duration_ms(self.restart_initial_backoff):
            raise ValueError("restart_max_backoff must be at least restart_initial_backoff")
        return self

    @field_validator("redis_flush_interval")
    @classmethod
    def _window_in_range(cls, value: str) -> str:
        return _within(value, 1, 60_000, "must be between 1ms and 60s: it is the live metrics' window length")

    @field_validator("source_fetch_max_wait")
    @classmethod
    def _fetch_wait_in_range(cls, value: str) -> str:
        return _within(value, 1, 500, "must be between 1ms (0 would make the source spin) and 500ms (Kafka's default)")

    @field_validator("dedup_ttl")
    @classmethod
    def _dedup_at_least_a_day(cls, value: str) -> str:
        if duration_ms(value) < 24 * 3_600_000:
            raise ValueError("must be at least 24h: a duplicate may arrive a day later (a POS catching up)")
        return value

    @field_validator("postgres_password_file", "redis_url_file")
    @classmethod
    def _absolute(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must be an absolute path: the job reads it in other processes than the one submitting it")
        return value

    @field_validator("default_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        check_zone(value)
        return value

    @field_validator("store_timezones")
    @classmethod
    def _zones(cls, value: dict[str, str]) -> dict[str, str]:
        for zone in value.values():
            check_zone(zone)
        return value

    def timezone_of(self, store_id: str) -> str:
        return self.store_timezones.get(store_id, self.default_timezone)

    def postgres_password(self) -> SecretStr:
        """The Postgres password, read from ``postgres_password_file`` now."""
        return read_secret(self.postgres_password_file, "the Postgres password file")

    def redis_url(self) -> SecretStr:
        """The Redis URL (with its password), read from ``redis_url_file`` now."""
        url = read_secret(self.redis_url_file, "the Redis URL file")
        if urlsplit(url.get_secret_value()).scheme not in ("redis", "rediss", "unix"):
            raise ConfigError(f"the Redis URL file {self.redis_url_file} does not hold a redis://, rediss:// "
                              "or unix:// URL")
        return url


def _within(value: str, low_ms: int, high_ms: int, message: str) -> str:
    if not low_ms <= duration_ms(value) <= high_ms:
        raise ValueError(message)
    return value


class ConfigError(ValueError):
    pass


def read_secret(path: str, what: str) -> SecretStr:
    """The content of a secret file (one trailing line break dropped); a missing, unreadable or
    empty file is a :class:`ConfigError` naming ``what`` and the path, never the content."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(65_537)
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist") from None
    except IsADirectoryError:
        raise ConfigError(f"{what} {path} is a directory, not a file") from None
    except OSError as exc:
        raise ConfigError(f"{what} {path} cannot be read: {exc.strerror or type(exc).__name__}") from None
    if len(raw) > 65_536:
        raise ConfigError(f"{what} {path} is larger than 64 KiB: not a secret value")
    try:
        text = raw.decode()
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not UTF-8 text") from None
    text = text.removesuffix("\n").removesuffix("\r")
    if not text.strip():
        raise ConfigError(f"{what} {path} is empty")
    return SecretStr(text)


def load(argv: Sequence[str] | None = None) -> JobConfig:
    """``--config-json '{...}'`` (or ``--config-file``); reads each secret file once, so a missing,
    unreadable or empty one is an error here, where the job starts, naming the file."""
    parser = argparse.ArgumentParser(prog="coffee_job", description="coffee-rt streaming job")
    parser.add_argument("--config-json", help="JobConfig as a JSON object")
    parser.add_argument("--config-file", help="path of a JSON file holding the JobConfig")
    args = parser.parse_args(argv)
    if not args.config_json and not args.config_file:
        raise ConfigError("the job config is missing: pass --config-json or --config-file")
    try:
        if args.config_file:
            with open(args.config_file) as handle:
                values = json.load(handle)
        else:
            values = json.loads(args.config_json)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the job config: {exc}") from None
    if not isinstance(values, dict):
        raise ConfigError("the job config must be a JSON object")
    try:
        cfg = JobConfig(**values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"invalid job config: {problems}") from None
    cfg.postgres_password()
    cfg.redis_url()
    return cfg
