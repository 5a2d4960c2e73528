"""DASHBOARD_* settings: typed, validated once, every mistake named."""

from __future__ import annotations

import pytest

from coffee_dashboard.settings import DashboardSettings, SettingsError

DIGEST = "a" * 64


def test_defaults_need_a_token_for_the_default_auth() -> None:
    with pytest.raises(SettingsError, match="DASHBOARD_TOKENS_SHA256"):
        DashboardSettings.from_env({})
    settings = DashboardSettings.from_env({"DASHBOARD_TOKENS_SHA256": DIGEST})
    assert (settings.auth, settings.port, settings.default_timezone, settings.stale_after_s) == ("token", 8090, "UTC",
                                                                                              120.0)


def test_lists_and_json_fields() -> None:
    settings = DashboardSettings.from_env({
        "DASHBOARD_AUTH": "none",
        "DASHBOARD_STORES": "store-01, store-02,",
        "DASHBOARD_STORE_TIMEZONES": '{"store-01": "Europe/Amsterdam"}',
        "DASHBOARD_STORE_CURRENCIES": '{"store-02": "GBP"}',
        "DASHBOARD_FLINK_METRICS_URLS": "http://a:1/,http://b:2/",
        "DASHBOARD_STALE_AFTER_S": "4.5",
    })
    assert settings.stores == ["store-01", "store-02"]
    assert settings.timezone_of("store-01") == "Europe/Amsterdam"
    assert settings.timezone_of("store-02") == "UTC"
    assert (settings.currency_of("store-02"), settings.currency_of("_all")) == ("GBP", "EUR")
    assert settings.flink_metrics_urls == ["http://a:1/", "http://b:2/"]
    assert settings.stale_after_s == 4.5


@pytest.mark.parametrize(("env", "message"), [
    ({"DASHBOARD_PORTT": "1"}, "unknown setting DASHBOARD_PORTT"),
    ({"DASHBOARD_DEFAULT_TIMEZONE": "Mars/Olympus"}, "DASHBOARD_DEFAULT_TIMEZONE: .*unknown time zone"),
    ({"DASHBOARD_STORE_TIMEZONES": '{"store-01": "Nowhere/X"}'}, "unknown time zone 'Nowhere/X'"),
    ({"DASHBOARD_STORE_TIMEZONES": "{not json"}, "DASHBOARD_STORE_TIMEZONES is not JSON"),
    ({"DASHBOARD_STORES": "Store_1"}, "not a store id"),
    ({"DASHBOARD_STORE_CURRENCIES": '{"store-01": "euro"}'}, "ISO 4217"),
    ({"DASHBOARD_STALE_AFTER_S": "0"}, "DASHBOARD_STALE_AFTER_S"),
    ({"DASHBOARD_PORT": "http"}, "DASHBOARD_PORT"),
    ({"DASHBOARD_AUTH": "oauth"}, "DASHBOARD_AUTH"),
    ({"DASHBOARD_AUTH": "basic", "DASHBOARD_BASIC_USER": "owner"}, "DASHBOARD_BASIC_PASSWORD_SHA256"),
    ({"DASHBOARD_TOKENS_SHA256": "secret-in-plain"}, "SHA-256 digests"),
])
def test_bad_settings_are_named(env: dict[str, str], message: str) -> None:
    env = {"DASHBOARD_AUTH": "none", **env}
    with pytest.raises(SettingsError, match=message):
        DashboardSettings.from_env(env)


def test_secrets_stay_out_of_repr() -> None:
    settings = DashboardSettings.from_env({"DASHBOARD_TOKENS_SHA256": DIGEST,
                                           "DASHBOARD_REDIS_URL": "redis://:hunter2@r:6379/0"})
    assert "hunter2" not in repr(settings) and DIGEST not in repr(settings)
