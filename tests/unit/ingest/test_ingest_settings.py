"""INGEST_* settings: typed, validated once, unknown variables refused."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from coffee_ingest.settings import IngestSettings, SettingsError


def test_defaults_with_a_token_file() -> None:
    s = IngestSettings.from_env({"INGEST_TOKENS_FILE": "/run/secrets/tokens.json", "PATH": "/bin"})
    assert s.tokens_file == Path("/run/secrets/tokens.json")
    assert (s.produce_timeout_s, s.retry_after_s, s.max_body_bytes, s.max_batch_orders) == (2.0, 2, 262144, 500)
    assert s.placed_at_horizon == timedelta(days=7)
    assert s.placed_at_max_future == timedelta(minutes=5)
    assert s.topic == "orders"
    assert s.ack_wakeup == "io-event"
    assert (s.internal_host, s.internal_port, s.tokens_reload_interval) == ("127.0.0.1", 9080, timedelta(seconds=5))
    limits = s.limits()
    assert (limits.header_timeout_s, limits.body_timeout_s, limits.max_connections, limits.max_requests,
            limits.max_header_bytes, limits.retry_after_s) == (10.0, 10.0, 768, 512, 32768, 2)


def test_the_public_port_s_limits_are_settings() -> None:
    s = IngestSettings.from_env({"INGEST_TOKENS_FILE": "/t", "INGEST_HEADER_TIMEOUT": "2s",
                                 "INGEST_BODY_TIMEOUT": "1500ms", "INGEST_MAX_CONNECTIONS": "100",
                                 "INGEST_MAX_REQUESTS": "50", "INGEST_RETRY_AFTER_S": "5"})
    limits = s.limits()
    assert (limits.header_timeout_s, limits.body_timeout_s, limits.max_connections, limits.max_requests,
            limits.retry_after_s) == (2.0, 1.5, 100, 50, 5)


def test_values_are_coerced_from_strings() -> None:
    s = IngestSettings.from_env({
        "INGEST_TOKENS": '{"tokens": []}', "INGEST_PORT": "9000", "INGEST_PRODUCE_TIMEOUT_S": "0.5",
        "INGEST_PLACED_AT_HORIZON": "P3D", "INGEST_KAFKA_CONFIG": '{"security.protocol": "SSL"}',
    })
    assert (s.port, s.produce_timeout_s, s.placed_at_horizon) == (9000, 0.5, timedelta(days=3))
    assert s.kafka_config == {"security.protocol": "SSL"}


@pytest.mark.parametrize(("env", "message"), [
    ({"INGEST_TOKENS_FILE": "/t", "INGEST_PROT": "1"}, "unknown setting INGEST_PROT; known: "),
    ({"INGEST_TOKENS_FILE": "/t", "INGEST_PORT": "http"},
     "invalid ingest settings: INGEST_PORT: Input should be a valid integer"),
    ({"INGEST_TOKENS_FILE": "/t", "INGEST_PRODUCE_TIMEOUT_S": "0"},
     "invalid ingest settings: INGEST_PRODUCE_TIMEOUT_S: Input should be greater than 0"),
    ({}, "invalid ingest settings: INGEST_SETTINGS: Value error, set exactly one of INGEST_TOKENS_FILE"),
    ({"INGEST_TOKENS_FILE": "/t", "INGEST_TOKENS": "{}"},
     "invalid ingest settings: INGEST_SETTINGS: Value error, set exactly one"),
    ({"INGEST_TOKENS_FILE": "/t", "INGEST_KAFKA_CONFIG": "{"}, "INGEST_KAFKA_CONFIG is not JSON"),
    ({"INGEST_TOKENS_FILE": "/t", "INGEST_ACK_WAKEUP": "thread"},
     "invalid ingest settings: INGEST_ACK_WAKEUP: Input should be 'io-event' or 'poll-thread'"),
    ({"INGEST_TOKENS_FILE": "/t", "INGEST_INTERNAL_PORT": "8080"},
     "invalid ingest settings: INGEST_SETTINGS: Value error, INGEST_INTERNAL_PORT must differ from INGEST_PORT"),
    ({"INGEST_TOKENS_FILE": "/t", "INGEST_HEADER_TIMEOUT": "50ms"},
     "invalid ingest settings: INGEST_SETTINGS: Value error, INGEST_HEADER_TIMEOUT must be between 100ms and 10min"),
    ({"INGEST_TOKENS_FILE": "/t", "INGEST_BODY_TIMEOUT": "1h"},
     "invalid ingest settings: INGEST_SETTINGS: Value error, INGEST_BODY_TIMEOUT must be between 100ms and 10min"),
    ({"INGEST_TOKENS_FILE": "/t", "INGEST_MAX_CONNECTIONS": "0"},
     "invalid ingest settings: INGEST_MAX_CONNECTIONS: Input should be greater than or equal to 1"),
])
def test_bad_settings_are_refused_with_the_variable_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError) as caught:
        IngestSettings.from_env(env)
    assert str(caught.value).startswith(message)


def test_token_content_is_not_in_errors_or_repr() -> None:
    secret = '{"tokens": [{"store_id": "store-01", "sha256": "' + "f" * 64 + '"}]}'
    s = IngestSettings.from_env({"INGEST_TOKENS": secret})
    assert "ffff" not in repr(s)
    with pytest.raises(SettingsError) as caught:
        IngestSettings.from_env({"INGEST_TOKENS": secret, "INGEST_PORT": "x"})
    assert "ffff" not in str(caught.value)
