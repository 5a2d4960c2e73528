"""AUDITOR_* settings: typed, validated once, unknown or missing variables refused with the variable named."""

from __future__ import annotations

from datetime import timedelta

import pytest

from coffee_auditor.settings import AuditorSettings, SettingsError
from coffee_jobconfig.model import JobConfig, duration_ms

SERVERS = {"AUDITOR_KAFKA_BOOTSTRAP": "kafka:9092", "AUDITOR_POSTGRES_DSN": "postgresql://coffee:pw@pg:5432/coffee",
           "AUDITOR_REDIS_URL": "redis://:secret@redis:6379/0"}


def test_defaults_are_the_jobs() -> None:
    s = AuditorSettings.from_env({**SERVERS, "PATH": "/bin"})
    assert (s.host, s.port, s.interval, s.topic, s.kafka_config) == (
        "127.0.0.1", 9195, timedelta(seconds=30), "orders", {})
    job = JobConfig.model_fields
    assert (s.default_timezone, s.store_timezones) == (job["default_timezone"].default, {}) == ("UTC", {})
    assert s.dedup_ttl // timedelta(milliseconds=1) == duration_ms(str(job["dedup_ttl"].default)) == 36 * 3_600_000
    assert "secret" not in repr(s) and "pw@" not in repr(s)  # the credentials stay out of logs


def test_the_targets_are_the_settings() -> None:
    s = AuditorSettings.from_env({
        **SERVERS, "AUDITOR_TOPIC": "orders-eu", "AUDITOR_INTERVAL": "2min", "AUDITOR_DEDUP_TTL": "2d",
        "AUDITOR_DEFAULT_TIMEZONE": "Europe/Amsterdam", "AUDITOR_STORE_TIMEZONES": '{"store-02": "Europe/London"}',
        "AUDITOR_KAFKA_CONFIG": '{"security.protocol": "SSL"}'})
    t = s.targets()
    assert s.interval == timedelta(minutes=2)
    assert (t.kafka_bootstrap, t.topic, t.postgres_dsn, t.redis_url) == (
        "kafka:9092", "orders-eu", "postgresql://coffee:pw@pg:5432/coffee", "redis://:secret@redis:6379/0")
    assert (t.default_timezone, dict(t.store_timezones), t.dedup_ttl_ms) == (
        "Europe/Amsterdam", {"store-02": "Europe/London"}, 48 * 3_600_000)
    assert (t.timezone_of("store-02"), t.timezone_of("store-01"), t.timezone_of("_all")) == (
        "Europe/London", "Europe/Amsterdam", "Europe/Amsterdam")
    assert t.consumer_config() == {
        "security.protocol": "SSL", "bootstrap.servers": "kafka:9092", "group.id": "coffee-rt-ledger",
        "enable.auto.commit": False, "isolation.level": "read_committed", "enable.partition.eof": False}


@pytest.mark.parametrize(("env", "message"), [
    ({**SERVERS, "AUDITOR_INTERVALL": "1s"}, "unknown setting AUDITOR_INTERVALL; known: "),
    ({"AUDITOR_KAFKA_BOOTSTRAP": "kafka:9092", "AUDITOR_REDIS_URL": "redis://r"},
     "invalid auditor settings: AUDITOR_POSTGRES_DSN: Field required"),
    ({**SERVERS, "AUDITOR_KAFKA_BOOTSTRAP": ""},
     "invalid auditor settings: AUDITOR_KAFKA_BOOTSTRAP: String should have at least 1 character"),
    ({**SERVERS, "AUDITOR_INTERVAL": "0s"}, "invalid auditor settings: AUDITOR_INTERVAL: Value error, must be "
                                            "between 1s and 1h"),
    ({**SERVERS, "AUDITOR_INTERVAL": "soon"}, "invalid auditor settings: AUDITOR_INTERVAL: Value error, 'soon' is "
                                              "not a duration"),
    ({**SERVERS, "AUDITOR_DEDUP_TTL": "12h"}, "invalid auditor settings: AUDITOR_DEDUP_TTL: Value error, must be "
                                              "at least 24h"),
    ({**SERVERS, "AUDITOR_DEFAULT_TIMEZONE": "Mars/Olympus"}, "invalid auditor settings: AUDITOR_DEFAULT_TIMEZONE"),
    ({**SERVERS, "AUDITOR_STORE_TIMEZONES": '{"Store 1": "UTC"}'},
     "invalid auditor settings: AUDITOR_STORE_TIMEZONES: Value error, 'Store 1' is not a store id"),
    ({**SERVERS, "AUDITOR_STORE_TIMEZONES": "{"}, "AUDITOR_STORE_TIMEZONES is not JSON"),
    ({**SERVERS, "AUDITOR_TOPIC": "orders topic"}, "invalid auditor settings: AUDITOR_TOPIC: String should match"),
    ({**SERVERS, "AUDITOR_PORT": "70000"}, "invalid auditor settings: AUDITOR_PORT: Input should be less than or "
                                           "equal to 65535"),
])
def test_bad_settings_are_refused_with_the_variable_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        AuditorSettings.from_env(env)
    assert str(caught.value).startswith(message), str(caught.value)
