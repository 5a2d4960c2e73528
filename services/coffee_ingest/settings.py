"""The service's configuration, typed and validated once from ``INGEST_*`` environment variables.

An unknown ``INGEST_*`` variable is an error too: a typo in a Kubernetes manifest should stop
the pod at start, not silently fall back to a default.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from coffee_orders.schema import DEFAULT_HORIZON, MAX_FUTURE
from coffee_service.serve import Limits
from coffee_settings.durations import SettingsDuration
from coffee_settings.env import SettingsError as SettingsError  # raised by from_env
from coffee_settings.env import settings_from_env

ENV_PREFIX = "INGEST_"


class IngestSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)  # the orders (and probes): the public port
    # /metrics, /openapi.json and the probes, for the monitoring only (docs/ingest.md#ports).
    internal_host: str = "127.0.0.1"
    internal_port: int = Field(9080, ge=1, le=65535)
    # The public port's limits (coffee_service.serve): a client has header_timeout to send a
    # request's headers and then body_timeout for its body; connections and requests are capped.
    header_timeout: SettingsDuration = timedelta(seconds=10)
    body_timeout: SettingsDuration = timedelta(seconds=10)
    max_connections: int = Field(768, ge=1, le=100_000)
    max_requests: int = Field(512, ge=1, le=100_000)
    max_header_bytes: int = Field(32 * 1024, ge=1024, le=1024 * 1024)
    kafka_bootstrap: str = Field("127.0.0.1:9092", min_length=1)
    topic: str = Field("orders", min_length=1)
    # Extra librdkafka settings as JSON, e.g. {"security.protocol": "SSL"}; ours win on conflict.
    kafka_config: dict[str, str | int | float | bool] = Field(default_factory=dict)
    # 0: a lone order goes out at once (p50 ~1 ms instead of ~2 at 1000/s, measured); records
    # still batch naturally while requests are in flight. Raise it for throughput over latency.
    linger_ms: float = Field(0.0, ge=0, le=1000)
    delivery_timeout_ms: int = Field(60_000, ge=1000)  # librdkafka gives up on a record after this
    produce_timeout_s: float = Field(2.0, gt=0, le=60)  # how long a client waits before a 503
    retry_after_s: int = Field(2, ge=1, le=3600)
    readiness_timeout_s: float = Field(1.0, gt=0, le=30)
    max_in_flight: int = Field(4000, ge=1)  # orders awaiting Kafka; above it a request gets 503 at once
    # How acks reach the event loop: librdkafka writes to a pipe the loop watches ("io-event",
    # falls back by itself where that can't be set up) or a thread blocks in poll() ("poll-thread").
    ack_wakeup: Literal["io-event", "poll-thread"] = "io-event"

    tokens_file: Path | None = None
    tokens: str | None = Field(None, repr=False)  # the token file's JSON content, for an env-only Secret
    tokens_reload_interval: SettingsDuration = timedelta(seconds=5)  # how often the token file is re-read

    # Durations (coffee_settings.durations): 7d, 36h, 5min, P7D, PT5M, or a number of seconds.
    placed_at_horizon: SettingsDuration = DEFAULT_HORIZON
    placed_at_max_future: SettingsDuration = MAX_FUTURE
    max_body_bytes: int = Field(256 * 1024, ge=1024)
    max_batch_orders: int = Field(500, ge=1, le=10_000)
    max_batch_body_bytes: int = Field(8 * 1024 * 1024, ge=1024)

    log_level: str = Field("info", pattern="^(critical|error|warning|info|debug)$")
    access_log: bool = False  # uvicorn's per-request line; off by default (CPU, and metrics say more)

    @model_validator(mode="after")
    def _one_token_source(self) -> IngestSettings:
        if (self.tokens_file is None) == (self.tokens is None):
            raise ValueError("set exactly one of INGEST_TOKENS_FILE (a mounted file) or INGEST_TOKENS (its JSON)")
        if self.internal_port == self.port:
            raise ValueError("INGEST_INTERNAL_PORT must differ from INGEST_PORT (metrics stay off the public port)")
        for name in ("header_timeout", "body_timeout", "tokens_reload_interval"):
            value = getattr(self, name)
            if not timedelta(milliseconds=100) <= value <= timedelta(minutes=10):
                raise ValueError(f"INGEST_{name.upper()} must be between 100ms and 10min")
        return self

    def limits(self) -> Limits:
        return Limits(header_timeout_s=self.header_timeout.total_seconds(),
                      body_timeout_s=self.body_timeout.total_seconds(), max_connections=self.max_connections,
                      max_requests=self.max_requests, max_header_bytes=self.max_header_bytes,
                      retry_after_s=self.retry_after_s)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> IngestSettings:
        return settings_from_env(cls, ENV_PREFIX, "ingest", env, json_fields=("kafka_config",))
