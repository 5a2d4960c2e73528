"""The dashboard's configuration, typed and validated once from ``DASHBOARD_*`` environment variables.

An unknown ``DASHBOARD_*`` variable is an error: a typo in a manifest should stop the pod at
start, not silently fall back to a default. Dicts are JSON; lists are comma-separated.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from coffee_orders.schema import STORE_ID_PATTERN
from coffee_service.serve import Limits
from coffee_settings.durations import SettingsDuration
from coffee_settings.env import SettingsError as SettingsError  # raised by from_env
from coffee_settings.env import settings_from_env
from coffee_settings.zones import check_zone

ENV_PREFIX = "DASHBOARD_"
_JSON_FIELDS = ("store_timezones", "store_currencies")
_LIST_FIELDS = ("stores", "tokens_sha256", "flink_metrics_urls")


class DashboardSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(8090, ge=1, le=65535)  # the page and its API: the public port
    # /metrics and the probes, for the monitoring only (docs/dashboard.md#ports).
    internal_host: str = "127.0.0.1"
    internal_port: int = Field(9090, ge=1, le=65535)
    # The public port's limits (coffee_service.serve). Each open page holds one request (its event
    # stream), so max_requests stays above max_clients.
    header_timeout: SettingsDuration = timedelta(seconds=10)
    body_timeout: SettingsDuration = timedelta(seconds=10)
    max_connections: int = Field(512, ge=1, le=100_000)
    max_requests: int = Field(300, ge=1, le=100_000)
    max_header_bytes: int = Field(16 * 1024, ge=1024, le=1024 * 1024)
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    postgres_dsn: SecretStr = SecretStr("postgresql://coffee@127.0.0.1:5432/coffee")

    # Business days: must agree with the Flink job's default_timezone / store_timezones, or
    # "today" here would not be the job's today.
    default_timezone: str = "UTC"
    store_timezones: dict[str, str] = Field(default_factory=dict)
    stores: list[str] = Field(default_factory=list)  # shown even before their first order
    currency: str = Field("EUR", pattern=r"^[A-Z]{3}$")
    store_currencies: dict[str, str] = Field(default_factory=dict)

    # Live and stale: see docs/dashboard.md.
    stale_after_s: float = Field(120.0, gt=0, le=86_400)
    heartbeat_s: float = Field(1.0, ge=0.1, le=30)
    coalesce_s: float = Field(0.05, ge=0, le=5)  # a burst of job flushes becomes one push
    history_refresh_s: float = Field(10.0, ge=1, le=3600)
    top_products: int = Field(8, ge=1, le=100)
    recent_orders: int = Field(15, ge=1, le=50)
    history_max_days: int = Field(93, ge=1, le=3660)
    max_clients: int = Field(200, ge=1)

    # Read-only auth: "token" (bearer token or the session cookie set by /?token=) or "basic".
    auth: Literal["none", "token", "basic"] = "token"
    tokens_sha256: list[str] = Field(default_factory=list, repr=False)
    # The same digests in a file (one per line or comma-separated; a mounted Secret), re-read
    # every tokens_reload_interval when it changes: a removed token stops working, sessions included.
    tokens_file: Path | None = None
    tokens_reload_interval: SettingsDuration = timedelta(seconds=5)
    basic_user: str | None = None
    basic_password_sha256: str | None = Field(None, repr=False)
    # The session cookie: signed with the key in session_key_file (at least 32 bytes; shared by
    # every replica), or with a random key per process when unset (sessions then end with the process).
    session_key_file: Path | None = None
    session_ttl: SettingsDuration = timedelta(hours=12)
    cookie_secure: bool = False  # set behind HTTPS: the browser then sends the cookie over HTTPS only

    # Ops panel sources (each optional; unset means "not configured" on the panel).
    ops_interval_s: float = Field(5.0, ge=0.5, le=300)
    ingest_metrics_url: str | None = None
    ingest_route: str = "/v1/orders"
    p99_window_s: float = Field(300.0, ge=10, le=86_400)
    # The JobManager's Prometheus endpoint (job state and checkpoints; Flink started with
    # metrics.job.status.enable: STATE); the TaskManagers' (the DLQ count) in flink_metrics_urls.
    flink_jobmanager_metrics_url: str | None = None
    flink_job_name: str = "coffee-rt-orders"
    flink_metrics_urls: list[str] = Field(default_factory=list)
    kafka_bootstrap: str | None = None
    kafka_topic: str = "orders"
    kafka_group: str = "coffee-rt-job"
    # The ledger auditor's /metrics (its verdict: topic vs Postgres vs Redis); a verdict older than
    # ledger_stale_after_s (the auditor's round is 30 s) shows as unknown.
    auditor_metrics_url: str | None = None
    ledger_stale_after_s: float = Field(120.0, ge=10, le=86_400)

    log_level: str = Field("info", pattern="^(critical|error|warning|info|debug)$")
    access_log: bool = False

    @field_validator("default_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        check_zone(value)
        return value

    @field_validator("store_timezones")
    @classmethod
    def _zones(cls, value: dict[str, str]) -> dict[str, str]:
        for store, zone in value.items():
            _check_store(store)
            check_zone(zone)
        return value

    @field_validator("stores")
    @classmethod
    def _stores(cls, value: list[str]) -> list[str]:
        for store in value:
            _check_store(store)
        return value

    @field_validator("store_currencies")
    @classmethod
    def _currencies(cls, value: dict[str, str]) -> dict[str, str]:
        for store, code in value.items():
            _check_store(store)
            if not (len(code) == 3 and code.isascii() and code.isupper() and code.isalpha()):
                raise ValueError(f"{code!r} is not an ISO 4217 code like EUR")
        return value

    @field_validator("tokens_sha256", "basic_password_sha256")
    @classmethod
    def _digests(cls, value: Any) -> Any:
        for digest in [value] if isinstance(value, str) else (value or []):
            if not (len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)):
                raise ValueError("must be SHA-256 digests: 64 lower-case hex digits")
        return value

    @model_validator(mode="after")
    def _auth_complete(self) -> DashboardSettings:
        if self.auth == "token" and (not self.tokens_sha256) == (self.tokens_file is None):
            raise ValueError("auth 'token' needs exactly one of DASHBOARD_TOKENS_SHA256 (comma-separated SHA-256 "
                             "of the tokens) or DASHBOARD_TOKENS_FILE (a file of them)")
        if self.internal_port == self.port:
            raise ValueError("DASHBOARD_INTERNAL_PORT must differ from DASHBOARD_PORT "
                             "(metrics stay off the public port)")
        if not timedelta(minutes=1) <= self.session_ttl <= timedelta(days=30):
            raise ValueError("DASHBOARD_SESSION_TTL must be between 1min and 30d")
        for name in ("header_timeout", "body_timeout", "tokens_reload_interval"):
            if not timedelta(milliseconds=100) <= getattr(self, name) <= timedelta(minutes=10):
                raise ValueError(f"DASHBOARD_{name.upper()} must be between 100ms and 10min")
        if self.max_requests <= self.max_clients:
            raise ValueError(f"DASHBOARD_MAX_REQUESTS ({self.max_requests}) must be above DASHBOARD_MAX_CLIENTS "
                             f"({self.max_clients}): each open page holds a request")
        if self.auth == "basic" and not (self.basic_user and self.basic_password_sha256):
            raise ValueError("auth 'basic' needs DASHBOARD_BASIC_USER and DASHBOARD_BASIC_PASSWORD_SHA256")
        return self

    def limits(self) -> Limits:
        return Limits(header_timeout_s=self.header_timeout.total_seconds(),
                      body_timeout_s=self.body_timeout.total_seconds(), max_connections=self.max_connections,
                      max_requests=self.max_requests, max_header_bytes=self.max_header_bytes)

    def timezone_of(self, store: str) -> str:
        return self.store_timezones.get(store, self.default_timezone)

    def currency_of(self, store: str) -> str:
        return self.store_currencies.get(store, self.currency)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> DashboardSettings:
        return settings_from_env(cls, ENV_PREFIX, "dashboard", env, json_fields=_JSON_FIELDS,
                                 list_fields=_LIST_FIELDS)


def _check_store(store: str) -> None:
    if not re.fullmatch(STORE_ID_PATTERN, store):
        raise ValueError(f"{store!r} is not a store id ({STORE_ID_PATTERN})")
