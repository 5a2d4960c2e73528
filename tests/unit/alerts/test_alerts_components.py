"""The monitoring components' generated config: the project's files with only the local differences."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from coffee_rt.alerts.rules import RUNBOOK_BASE, load_rules, rule_files
from coffee_rt.errors import PrerequisiteError, UsageError
from coffee_rt.local.components.alertmanager import CONFIG, Alertmanager
from coffee_rt.local.components.exporters import built_binary
from coffee_rt.local.components.prometheus import Prometheus
from coffee_rt.local.settings import LocalSettings


@pytest.fixture()
def settings(tmp_path: Path) -> LocalSettings:
    return LocalSettings(state_dir=tmp_path / "state", cache_dir=tmp_path / "cache", prometheus_port=21190,
                         alertmanager_port=21193, redis_exporter_port=21121, postgres_exporter_port=21187,
                         ingest_port=21080, flink_aux_port_base=21130)


def test_alertmanager_config_is_the_projects_with_a_local_webhook_file(settings: LocalSettings) -> None:
    component = Alertmanager(settings)
    config = component.config()
    project = yaml.safe_load(CONFIG.read_text())
    assert config["global"]["slack_api_url_file"] == str(settings.state_dir / "alertmanager" / "slack-webhook-url")
    project["global"]["slack_api_url_file"] = config["global"]["slack_api_url_file"]
    assert config == project


def test_alertmanager_test_timings_touch_only_timings(settings: LocalSettings) -> None:
    component = Alertmanager(settings)
    component.route_timings = {"group_wait": "1s", "group_interval": "2s", "repeat_interval": "1h"}
    route = component.config()["route"]
    assert (route["group_wait"], route["group_interval"], route["repeat_interval"]) == ("1s", "2s", "1h")
    watchdog, orders_stopped, critical, warning = route["routes"]
    assert watchdog == {"receiver": "watchdog", "matchers": ['alertname="CoffeeRtWatchdog"'], "group_interval": "2s",
                        "repeat_interval": "1h"}
    assert orders_stopped == {"receiver": "slack-critical", "matchers": ['alertname="CoffeeRtOrdersStopped"'],
                              "active_time_intervals": ["shops-expecting-orders"], "repeat_interval": "1h"}
    assert critical == {"receiver": "slack-critical", "matchers": ['severity="critical"'], "repeat_interval": "1h"}
    assert warning == {"receiver": "slack-warning", "matchers": ['severity="warning"']}
    assert Alertmanager(settings).config()["route"]["group_wait"] == "30s"  # the class default is untouched


def test_alertmanager_test_time_intervals_replace_only_the_named_one(settings: LocalSettings) -> None:
    committed = Alertmanager(settings).config()["time_intervals"]
    assert [i["name"] for i in committed] == ["shops-expecting-orders"]
    component = Alertmanager(settings)
    now = [{"times": [{"start_time": "10:00", "end_time": "10:02"}], "location": "Europe/Amsterdam"}]
    component.time_intervals = {"shops-expecting-orders": now}
    config = component.config()
    assert config["time_intervals"] == [{"name": "shops-expecting-orders", "time_intervals": now}]
    assert {k: v for k, v in config.items() if k != "time_intervals"} == {
        k: v for k, v in Alertmanager(settings).config().items() if k != "time_intervals"}
    component.time_intervals = {"closed-days": now}
    with pytest.raises(KeyError, match="closed-days"):
        component.config()


def test_prometheus_scrapes_the_stack_with_operator_job_names(settings: LocalSettings) -> None:
    config = Prometheus(settings).config()
    jobs = {c["job_name"]: (c["metrics_path"], c["static_configs"][0]["targets"]) for c in config["scrape_configs"]}
    assert jobs == {
        "coffee-rt/coffee-rt-ingest": ("/metrics", ["127.0.0.1:18088"]),  # the internal port, not 21080
        "coffee-rt/coffee-rt-dashboard": ("/metrics", ["127.0.0.1:18098"]),
        "coffee-rt/coffee-rt-flink": ("/", ["127.0.0.1:21133", "127.0.0.1:21134"]),
        "redis-exporter": ("/metrics", ["127.0.0.1:21121"]),
        "postgres-exporter": ("/metrics", ["127.0.0.1:21187"]),
        "coffee-rt-auditor": ("/metrics", ["127.0.0.1:19195"]),
    }
    assert config["rule_files"] == [str(settings.state_dir / "prometheus" / "rules" / p.name) for p in rule_files()]
    assert config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:21193"]
    assert config["global"] == {"scrape_interval": "15s", "scrape_timeout": "10s", "evaluation_interval": "15s"}


def test_prometheus_loads_the_rules_with_the_runbook_setting(tmp_path: Path) -> None:
    base = "https://wiki.roastery.example/ops/runbooks"
    settings = LocalSettings.from_env({"COFFEE_RT_RUNBOOK_BASE_URL": base + "/"}, state_dir=tmp_path / "state")
    assert settings.runbook_base_url == base
    component = Prometheus(settings)
    written = component.write_rules()
    assert [str(p) for p in written] == component.config()["rule_files"]
    copies, committed = load_rules(written), load_rules(rule_files())
    assert len(copies) == len(committed) > 20
    for copy, real in zip(copies, committed, strict=True):
        if real.alert:
            assert real.data["annotations"]["runbook_url"] == f"{RUNBOOK_BASE}/{real.alert}.md"
            assert copy.data["annotations"]["runbook_url"] == f"{base}/{real.alert}.md"
            real.data["annotations"]["runbook_url"] = copy.data["annotations"]["runbook_url"]
        assert copy.data == real.data
    assert LocalSettings.from_env({}).runbook_base_url == RUNBOOK_BASE


@pytest.mark.parametrize("bad", [
    "ftp://wiki.example/runbooks", "wiki.example/runbooks", "https://", "https://wiki.example/r?page=1",
    "https://wiki.example/r#top", "https://wiki.example/run books",
])
def test_a_bad_runbook_setting_is_refused_naming_the_variable(bad: str) -> None:
    with pytest.raises(UsageError) as info:
        LocalSettings.from_env({"COFFEE_RT_RUNBOOK_BASE_URL": bad})
    assert str(info.value) == (
        "invalid local stack settings: COFFEE_RT_RUNBOOK_BASE_URL: Value error, must be the http(s) URL of the "
        f"folder holding the runbooks, without query or fragment (e.g. {RUNBOOK_BASE}), got {bad!r}")


def test_exporter_not_built_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PrerequisiteError, match=r"redis_exporter is not built yet \(`coffee-rt local up redis-exp"):
        built_binary(tmp_path, "redis_exporter")
