"""Every settings loader refuses malformed input the same way, with a message naming the variable.

One loader (``coffee_settings.env``) behind ingest, dashboard, operator and the local stack; the
job's JSON config (``coffee_jobconfig.model.load``) has its own path but the same duration and
time-zone checks.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from coffee_dashboard.settings import DashboardSettings
from coffee_ingest.settings import IngestSettings
from coffee_jobconfig.model import ConfigError, load
from coffee_operator.settings import OperatorSettings
from coffee_operator.spec import duration_seconds, flink_duration
from coffee_rt.cli import main
from coffee_rt.errors import UsageError
from coffee_rt.local.settings import LocalSettings
from coffee_settings.env import SettingsError, settings_from_env

NOT_A_DURATION = "is not a duration like 500ms, 10s, 5min, 36h, 7d or PT5M"
INGEST = {"INGEST_TOKENS": '{"tokens": []}'}
DASHBOARD = {"DASHBOARD_AUTH": "none"}


def known(model: type, prefix: str, *extra: str) -> str:
    return ", ".join(sorted({f"{prefix}{name.upper()}" for name in model.model_fields} | set(extra)))


# ---- ingest ------------------------------------------------------------------------------------

def test_ingest_durations_in_every_documented_form() -> None:
    for text, expected in (("P3D", timedelta(days=3)), ("PT5M", timedelta(minutes=5)), ("36h", timedelta(hours=36)),
                           ("600", timedelta(minutes=10))):
        assert IngestSettings.from_env({**INGEST, "INGEST_PLACED_AT_HORIZON": text}).placed_at_horizon == expected


def test_ingest_bad_duration() -> None:
    with pytest.raises(SettingsError) as caught:
        IngestSettings.from_env({**INGEST, "INGEST_PLACED_AT_MAX_FUTURE": "5 minutes"})
    assert str(caught.value) == (
        f"invalid ingest settings: INGEST_PLACED_AT_MAX_FUTURE: Value error, '5 minutes' {NOT_A_DURATION}")


def test_ingest_unknown_variable() -> None:
    with pytest.raises(SettingsError) as caught:
        IngestSettings.from_env({**INGEST, "INGEST_PLACED_AT_HORIZN": "7d"})
    assert str(caught.value) == f"unknown setting INGEST_PLACED_AT_HORIZN; known: {known(IngestSettings, 'INGEST_')}"


# ---- dashboard ---------------------------------------------------------------------------------

def test_dashboard_unknown_variable() -> None:
    with pytest.raises(SettingsError) as caught:
        DashboardSettings.from_env({**DASHBOARD, "DASHBOARD_TIMEZONE": "UTC"})
    assert str(caught.value) == (
        f"unknown setting DASHBOARD_TIMEZONE; known: {known(DashboardSettings, 'DASHBOARD_')}")


@pytest.mark.parametrize(("variable", "value", "zone"), [
    ("DASHBOARD_DEFAULT_TIMEZONE", "Mars/Olympus", "Mars/Olympus"),
    ("DASHBOARD_STORE_TIMEZONES", '{"store-01": "Nowhere/X"}', "Nowhere/X"),
])
def test_dashboard_bad_zone(variable: str, value: str, zone: str) -> None:
    with pytest.raises(SettingsError) as caught:
        DashboardSettings.from_env({**DASHBOARD, variable: value})
    assert str(caught.value) == f"invalid dashboard settings: {variable}: Value error, unknown time zone {zone!r}"


def test_dashboard_store_ids_follow_the_order_schema() -> None:
    with pytest.raises(SettingsError) as caught:
        DashboardSettings.from_env({**DASHBOARD, "DASHBOARD_STORES": "store-01,Store_2"})
    assert str(caught.value) == ("invalid dashboard settings: DASHBOARD_STORES: Value error, "
                                 "'Store_2' is not a store id (^[a-z0-9][a-z0-9-]{0,62}$)")


# ---- operator ----------------------------------------------------------------------------------

def test_operator_unknown_variable() -> None:
    with pytest.raises(SettingsError) as caught:
        OperatorSettings.from_env({"COFFEE_OPERATOR_RECONCILE_INTERVALL": "5"})
    assert str(caught.value) == (f"unknown setting COFFEE_OPERATOR_RECONCILE_INTERVALL; known: "
                                 f"{known(OperatorSettings, 'COFFEE_OPERATOR_')}")


def test_operator_bad_value() -> None:
    with pytest.raises(SettingsError) as caught:
        OperatorSettings.from_env({"COFFEE_OPERATOR_RECONCILE_INTERVAL": "5s"})
    assert str(caught.value) == ("invalid operator settings: COFFEE_OPERATOR_RECONCILE_INTERVAL: "
                                 "Input should be a valid number, unable to parse string as a number")


@pytest.mark.parametrize("text", ["0s", "10 s", "1w", "10"])
def test_operator_bad_crd_duration(text: str) -> None:
    for parse in (duration_seconds, flink_duration):
        with pytest.raises(ValueError) as caught:
            parse(text)
        assert str(caught.value) == f"{text!r} {NOT_A_DURATION}"


def test_operator_crd_durations_in_the_job_configs_units() -> None:
    assert [flink_duration(t) for t in ("500ms", "5m", "5min", "2d", "PT90S")] == [
        "500ms", "5min", "5min", "48h", "90000ms"]


# ---- the local stack (coffee-rt) ---------------------------------------------------------------

def test_local_unknown_variable_is_refused_not_ignored() -> None:
    with pytest.raises(UsageError) as caught:
        LocalSettings.from_env({"COFFEE_RT_KAFKA_PROT": "29092"})
    elsewhere = ("COFFEE_RT_AWAIT_READY_TIMEOUT", "COFFEE_RT_CACHE", "COFFEE_RT_FAILURE_MATRIX", "COFFEE_RT_STATE",
                 "COFFEE_RT_TEST_KEEP", "COFFEE_RT_TEST_PORT_OFFSET")
    assert str(caught.value) == (
        f"unknown setting COFFEE_RT_KAFKA_PROT; known: {known(LocalSettings, 'COFFEE_RT_', *elsewhere)}")


def test_local_variables_read_elsewhere_pass() -> None:
    s = LocalSettings.from_env({"COFFEE_RT_STATE": "/tmp/s", "COFFEE_RT_CACHE": "/tmp/c", "COFFEE_RT_TEST_KEEP": "1",
                                "COFFEE_RT_TEST_PORT_OFFSET": "35000", "COFFEE_RT_AWAIT_READY_TIMEOUT": "60",
                                "COFFEE_RT_KAFKA_PORT": "29092"}, host="127.0.0.2")
    assert (s.kafka_port, s.host) == (29092, "127.0.0.2")


def test_a_shifted_stack_takes_its_other_settings_from_the_environment() -> None:
    shifted = LocalSettings.shifted(20000, Path("/tmp/bench"))
    s = shifted.with_env({"COFFEE_RT_BACKGROUND_CPU": "idle", "COFFEE_RT_KAFKA_PORT": "29999"})
    assert (s.background_cpu, s.kafka_port, s.ingest_port, s.state_dir, s.cluster_bridge) == \
        ("idle", shifted.kafka_port, 38080, Path("/tmp/bench"), "coffeert2")
    assert shifted.with_env({}) == shifted
    with pytest.raises(UsageError, match="COFFEE_RT_BACKGROUND_CPU"):
        shifted.with_env({"COFFEE_RT_BACKGROUND_CPU": "fast"})


def test_cli_turns_an_unknown_variable_into_exit_code_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("COFFEE_RT_STATE", str(tmp_path))
    monkeypatch.setenv("COFFEE_RT_REDIS_PROT", "41379")
    assert main(["local", "status"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("coffee-rt: error: unknown setting COFFEE_RT_REDIS_PROT; known: ")
    assert "Traceback" not in err


# ---- the job's config (JSON program args naming the secret files) -------------------------------

JOB = {"kafka_bootstrap": "k:9092", "postgres_jdbc_url": "jdbc:postgresql://p/c", "postgres_user": "u"}


@pytest.fixture
def job(tmp_path: Path) -> Callable[..., list[str]]:
    (tmp_path / "pw").write_text("p")
    (tmp_path / "url").write_text("redis://r")
    files = {"postgres_password_file": str(tmp_path / "pw"), "redis_url_file": str(tmp_path / "url")}

    def args(**extra: str) -> list[str]:
        return ["--config-json", json.dumps({**JOB, **files, **extra})]

    return args


def test_job_bad_duration(job: Callable[..., list[str]]) -> None:
    with pytest.raises(ConfigError) as caught:
        load(job(checkpoint_interval="10 parsecs"))
    assert str(caught.value) == f"invalid job config: checkpoint_interval: Value error, '10 parsecs' {NOT_A_DURATION}"


def test_job_bad_zone(job: Callable[..., list[str]]) -> None:
    with pytest.raises(ConfigError) as caught:
        load(job(default_timezone="Mars/Olympus"))
    assert str(caught.value) == "invalid job config: default_timezone: Value error, unknown time zone 'Mars/Olympus'"


def test_job_unknown_field(job: Callable[..., list[str]]) -> None:
    with pytest.raises(ConfigError) as caught:
        load(job(checkpoint_intervall="10s"))
    assert str(caught.value) == "invalid job config: checkpoint_intervall: Extra inputs are not permitted"


def test_job_takes_the_crd_units_too(job: Callable[..., list[str]]) -> None:
    cfg = load(job(dedup_ttl="2d", checkpoint_interval="1m"))
    assert (cfg.dedup_ttl, cfg.checkpoint_interval) == ("2d", "1m")


def test_job_secret_file_must_be_absolute(job: Callable[..., list[str]]) -> None:
    with pytest.raises(ConfigError) as caught:
        load(job(redis_url_file="url"))
    assert str(caught.value) == ("invalid job config: redis_url_file: Value error, must be an absolute path: "
                                 "the job reads it in other processes than the one submitting it")


# ---- the loader itself -------------------------------------------------------------------------

def test_overrides_win_over_the_environment() -> None:
    s = settings_from_env(OperatorSettings, "COFFEE_OPERATOR_", "operator",
                          {"COFFEE_OPERATOR_METRICS_PORT": "1"}, overrides={"metrics_port": 2})
    assert s.metrics_port == 2
