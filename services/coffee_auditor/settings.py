"""The auditor's configuration, typed and validated once from ``AUDITOR_*`` environment variables.

An unknown ``AUDITOR_*`` variable is an error: a typo in a manifest stops the pod at start. The
servers have no defaults (an auditor pointed at the wrong Postgres would report a wrong verdict);
``AUDITOR_POSTGRES_DSN`` and ``AUDITOR_REDIS_URL`` hold credentials and come from a Secret. The
time zones and the dedup window must be the job's (``JobConfig.default_timezone``,
``store_timezones``, ``dedup_ttl``), or the audit files orders under other days than the job does.

Each credential can instead come from a file (``AUDITOR_POSTGRES_DSN_FILE``, ``AUDITOR_REDIS_URL_FILE``:
a mounted Secret key), read once at start; a missing, unreadable or empty file is an error naming it.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from coffee_auditor.engine import KafkaValue, Targets
from coffee_orders.schema import STORE_ID_PATTERN
from coffee_settings.durations import SettingsDuration
from coffee_settings.env import SettingsError as SettingsError  # raised by from_env
from coffee_settings.env import settings_from_env
from coffee_settings.zones import check_zone

ENV_PREFIX = "AUDITOR_"
DEFAULT_PORT = 9195


class AuditorSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(DEFAULT_PORT, ge=1, le=65535)  # /metrics and /healthz
    interval: SettingsDuration = timedelta(seconds=30)  # from the end of one round to the start of the next

    kafka_bootstrap: str = Field(min_length=1)
    topic: str = Field("orders", pattern=r"^[a-zA-Z0-9._-]{1,249}$")
    kafka_config: dict[str, KafkaValue] = Field(default_factory=dict)  # extra librdkafka settings, JSON
    postgres_dsn: SecretStr
    redis_url: SecretStr
    postgres_dsn_file: str | None = None  # instead of postgres_dsn: the file holding it
    redis_url_file: str | None = None  # instead of redis_url

    default_timezone: str = "UTC"
    store_timezones: dict[str, str] = Field(default_factory=dict)
    dedup_ttl: SettingsDuration = timedelta(hours=36)

    @model_validator(mode="before")
    @classmethod
    def _from_files(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        values = dict(values)
        for name in ("postgres_dsn", "redis_url"):
            path = values.get(f"{name}_file")
            if path is None:
                continue
            variable = f"{ENV_PREFIX}{name.upper()}"
            if values.get(name) is not None:
                raise ValueError(f"{variable} and {variable}_FILE are both set: give one")
            values[name] = _read_secret(str(path), f"{variable}_FILE")
        return values

    @field_validator("interval")
    @classmethod
    def _interval(cls, value: timedelta) -> timedelta:
        if not timedelta(seconds=1) <= value <= timedelta(hours=1):
            raise ValueError("must be between 1s and 1h")
        return value

    @field_validator("dedup_ttl")
    @classmethod
    def _dedup(cls, value: timedelta) -> timedelta:
        if value < timedelta(hours=24):
            raise ValueError("must be at least 24h, as the job's (JobConfig.dedup_ttl)")
        return value

    @field_validator("default_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        check_zone(value)
        return value

    @field_validator("store_timezones")
    @classmethod
    def _zones(cls, value: dict[str, str]) -> dict[str, str]:
        for store, zone in value.items():
            if not re.fullmatch(STORE_ID_PATTERN, store):
                raise ValueError(f"{store!r} is not a store id ({STORE_ID_PATTERN})")
            check_zone(zone)
        return value

    def targets(self) -> Targets:
        return Targets(
            kafka_bootstrap=self.kafka_bootstrap, topic=self.topic, postgres_dsn=self.postgres_dsn.get_secret_value(),
            redis_url=self.redis_url.get_secret_value(), default_timezone=self.default_timezone,
            store_timezones=dict(self.store_timezones), dedup_ttl_ms=self.dedup_ttl // timedelta(milliseconds=1),
            kafka_config=dict(self.kafka_config))

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> AuditorSettings:
        return settings_from_env(cls, ENV_PREFIX, "auditor", env, json_fields=("kafka_config", "store_timezones"))


MAX_SECRET_BYTES = 4096


def _read_secret(path: str, variable: str) -> str:
    """A mounted Secret key: its text without the trailing newline; errors name the file, never its content."""
    try:
        with open(path, "rb") as file:
            raw = file.read(MAX_SECRET_BYTES + 1)
    except OSError as exc:
        raise ValueError(f"{variable}: cannot read {path}: {exc.strerror}") from None
    if len(raw) > MAX_SECRET_BYTES:
        raise ValueError(f"{variable}: {path} is larger than {MAX_SECRET_BYTES} bytes")
    try:
        text = raw.decode().strip()
    except UnicodeDecodeError:
        raise ValueError(f"{variable}: {path} is not UTF-8 text") from None
    if not text:
        raise ValueError(f"{variable}: {path} is empty")
    return text
