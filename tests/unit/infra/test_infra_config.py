"""Bad stack config stops the program before any resource is registered, naming the key."""

from __future__ import annotations

import json

import pytest
from conftest import DEV_SECRETS, PROD_SECRETS, run_stack

from infra import config, mockrun


def error_of(stack: str, secrets: list[str], overrides: dict[str, str] | None = None,
             drop: tuple[str, ...] = ()) -> str:
    with pytest.raises(config.ConfigError) as info:
        run_stack(stack, secrets, overrides, drop)
    return str(info.value)


def kafka(stack: str, **changes: object) -> str:
    values = json.loads(mockrun.stack_values(stack)["coffee-rt:kafka"])
    values.update(changes)
    return json.dumps(values)


def test_missing_secret_names_the_key_and_the_command() -> None:
    message = error_of("dev", [s for s in DEV_SECRETS if s != "postgresPassword"])
    assert message == ("invalid stack config:\n  coffee-rt:postgresPassword: missing: set it with "
                       "`pulumi config set --secret coffee-rt:postgresPassword <value>`")


def test_prod_missing_slack_webhook() -> None:
    message = error_of("prod", [s for s in PROD_SECRETS if s != "slackWebhookUrl"])
    assert "coffee-rt:slackWebhookUrl: missing" in message


def test_plaintext_secret_is_refused_and_its_value_not_echoed() -> None:
    values, secrets = mockrun.with_placeholder_secrets(mockrun.stack_values("dev"), DEV_SECRETS)
    secrets.discard("coffee-rt:redisPassword")
    with pytest.raises(config.ConfigError) as info:
        mockrun.run(values, secrets, "dev")
    assert "coffee-rt:redisPassword: must be a secret" in str(info.value)
    assert mockrun.PLACEHOLDER_SECRETS["redisPassword"] not in str(info.value)


def test_negative_replicas() -> None:
    message = error_of("dev", DEV_SECRETS, {"coffee-rt:flink": json.dumps({"taskManagers": -1})})
    assert message == ("invalid stack config:\n  coffee-rt:flink.taskManagers: Input should be greater than or "
                       "equal to 1 (got -1)")
    message = error_of("dev", DEV_SECRETS, {"coffee-rt:pipeline": json.dumps({"ingestReplicas": -2})})
    assert "coffee-rt:pipeline.ingestReplicas: Input should be greater than or equal to 0 (got -2)" in message


def test_unknown_top_level_and_nested_options() -> None:
    message = error_of("dev", DEV_SECRETS, {"coffee-rt:kafkaa": "{}"})
    assert message.startswith("invalid stack config:\n  coffee-rt:kafkaa: unknown key (known: ")
    message = error_of("dev", DEV_SECRETS, {"coffee-rt:kafka": kafka("dev", brokerz=3)})
    assert message == "invalid stack config:\n  coffee-rt:kafka.brokerz: unknown key"


def test_prod_with_one_broker() -> None:
    message = error_of("prod", PROD_SECRETS, {"coffee-rt:kafka": kafka("prod", brokers=1)})
    assert "coffee-rt:kafka.brokers: prod needs at least 3 brokers (got 1)" in message
    assert "coffee-rt:kafka.replicationFactor: 3 is more than kafka.brokers (1)" in message


def test_prod_min_isr_must_leave_room_for_a_broker_down() -> None:
    message = error_of("prod", PROD_SECRETS, {"coffee-rt:kafka": kafka("prod", minInsyncReplicas=3)})
    assert message == ("invalid stack config:\n  coffee-rt:kafka.minInsyncReplicas: prod needs at least 2 and "
                       "fewer than the replication factor (got 3)")


def test_latest_and_untagged_images() -> None:
    images = json.loads(mockrun.stack_values("dev")["coffee-rt:images"])
    message = error_of("dev", DEV_SECRETS, {"coffee-rt:images": json.dumps({**images, "flink": "coffee-rt/flink:latest",
                                                                           "kafka": "apache/kafka"})})
    assert "coffee-rt:images.flink: 'coffee-rt/flink:latest': 'latest' is not a pin" in message
    assert "coffee-rt:images.kafka: 'apache/kafka' has no tag" in message


def test_registry_port_is_not_a_tag() -> None:
    assert config._image("registry.local:5000/coffee-rt/flink:0.1.0") == "registry.local:5000/coffee-rt/flink:0.1.0"
    with pytest.raises(ValueError, match="has no tag"):
        config._image("registry.local:5000/coffee-rt/flink")
    assert config._image("apache/kafka@sha256:" + "a" * 64).endswith("a" * 64)


def test_missing_profile_and_required_image() -> None:
    message = error_of("dev", DEV_SECRETS, drop=("coffee-rt:profile",))
    assert "coffee-rt:profile: missing (required)" in message
    message = error_of("dev", DEV_SECRETS, {"coffee-rt:images": json.dumps({"ingest": "a/b:1", "flink": "a/c:1"})})
    assert "coffee-rt:images.operator: missing (required)" in message


def test_weak_password_and_bad_dsn() -> None:
    values, secrets = mockrun.with_placeholder_secrets(mockrun.stack_values("dev"), DEV_SECRETS)
    values["coffee-rt:postgresPassword"] = "short"
    with pytest.raises(config.ConfigError, match="coffee-rt:postgresPassword: must be 16 to 128 characters"):
        mockrun.run(values, secrets, "dev")
    overrides = {"coffee-rt:postgres": json.dumps({"mode": "external"})}
    values.update(overrides)
    del values["coffee-rt:postgresPassword"]
    values["coffee-rt:postgresDsn"] = "mysql://x@y/z"
    secrets |= {"coffee-rt:postgresDsn"}
    with pytest.raises(config.ConfigError, match="coffee-rt:postgresDsn: must look like postgresql://"):
        mockrun.run(values, secrets, "dev")


def test_unused_secret_is_refused() -> None:
    message = error_of("dev", [*DEV_SECRETS, "slackWebhookUrl"])
    assert message == "invalid stack config:\n  coffee-rt:slackWebhookUrl: set but not used with this configuration " \
                      "(remove it)"


def test_parallelism_beyond_slots() -> None:
    message = error_of("dev", DEV_SECRETS, {"coffee-rt:pipeline": json.dumps({"parallelism": 3})})
    assert message == ("invalid stack config:\n  coffee-rt:pipeline.parallelism: 3 is more than the cluster's "
                       "slots (1 x 2)")


def test_object_key_given_as_a_scalar() -> None:
    message = error_of("dev", DEV_SECRETS, {"coffee-rt:kafka": "three brokers"})
    assert message == "invalid stack config:\n  coffee-rt:kafka: must be a map of settings (got 'three brokers')"


def test_external_kafka_needs_bootstrap() -> None:
    message = error_of("dev", DEV_SECRETS, {"coffee-rt:kafka": json.dumps({"mode": "external"})})
    assert message == ("invalid stack config:\n  coffee-rt:kafka.bootstrap: required when kafka.mode is external "
                       "(host:port[,host:port])")


def test_the_prometheus_operator_needs_the_kafka_exporter() -> None:
    images = {**json.loads(mockrun.stack_values("prod")["coffee-rt:images"]), "kafkaExporter": None}
    message = error_of("prod", PROD_SECRETS, {"coffee-rt:images": json.dumps(images)})
    assert message == ("invalid stack config:\n  coffee-rt:images.kafkaExporter: required when "
                       "monitoring.prometheusOperator is true (the lag alerts read it)")


def test_other_namespaces_are_ignored() -> None:
    values, secrets = mockrun.with_placeholder_secrets(mockrun.stack_values("dev"), DEV_SECRETS)
    values["kubernetes:context"] = "kind-coffee"
    assert config.parse(values, secrets).profile == "dev"


def test_a_failed_config_registers_nothing() -> None:
    values, secrets = mockrun.with_placeholder_secrets(mockrun.stack_values("dev"), [])
    result = mockrun.Run()
    with pytest.raises(config.ConfigError):
        mockrun.run(values, secrets, "dev", into=result)
    assert result.resources == []
    mockrun.run(*mockrun.with_placeholder_secrets(values, DEV_SECRETS), "dev", into=result)
    assert len(result.kubernetes()) >= 48  # the same recorder sees a good run's registrations


def monitoring(stack: str, **changes: object) -> str:
    values = json.loads(mockrun.stack_values(stack)["coffee-rt:monitoring"])
    values.update(changes)
    return json.dumps(values)


@pytest.mark.parametrize("bad", [
    "ftp://git.example.com/runbooks", "git.example.com/runbooks", "https://", "https://git.example.com/r?x=1",
    "https://git.example.com/r#top", "https://git.example.com/run books", "",
])
def test_runbook_base_url_must_be_an_http_folder(bad: str) -> None:
    message = error_of("prod", PROD_SECRETS, {"coffee-rt:monitoring": monitoring("prod", runbookBaseUrl=bad)})
    assert message == ("invalid stack config:\n  coffee-rt:monitoring.runbookBaseUrl: must be the http(s) URL of the "
                       "folder holding the runbooks, without query or fragment (e.g. "
                       f"https://github.com/coffee-rt/coffee-rt/blob/main/runbooks), got {bad!r}")


def test_runbook_base_url_default_and_trailing_slash() -> None:
    values, secrets = mockrun.with_placeholder_secrets(mockrun.stack_values("prod"), PROD_SECRETS)
    assert config.parse(values, secrets).monitoring.runbook_base_url == config.RUNBOOK_BASE
    values["coffee-rt:monitoring"] = monitoring("prod", runbookBaseUrl="http://wiki.roastery.internal/ops/runbooks/")
    assert config.parse(values, secrets).monitoring.runbook_base_url == "http://wiki.roastery.internal/ops/runbooks"


def dashboard(stack: str, **changes: object) -> str:
    values = json.loads(mockrun.stack_values(stack)["coffee-rt:dashboard"])
    values.update(changes)
    return json.dumps(values)


def test_the_dashboard_session_settings_are_validated() -> None:
    assert error_of("dev", DEV_SECRETS, {"coffee-rt:dashboard": dashboard("dev", sessionTtl="12 hours")}) == (
        "invalid stack config:\n  coffee-rt:dashboard.sessionTtl: String should match pattern "
        "'^[1-9][0-9]*(ms|s|min|m|h|d)$' (got '12 hours')")
    for ttl in ("30s", "31d"):
        message = error_of("dev", DEV_SECRETS, {"coffee-rt:dashboard": dashboard("dev", sessionTtl=ttl)})
        assert message == f"invalid stack config:\n  coffee-rt:dashboard.sessionTtl: must be between 1min and 30d " \
                          f"(got {ttl})"
    message = error_of("dev", DEV_SECRETS, {"coffee-rt:dashboard": dashboard("dev", cookieSecure="sometimes")})
    assert "coffee-rt:dashboard.cookieSecure: Input should be a valid boolean" in message
    message = error_of("prod", PROD_SECRETS, {"coffee-rt:dashboard": dashboard("prod", cookieSecure=False)})
    assert message == ("invalid stack config:\n  coffee-rt:dashboard.cookieSecure: prod serves the dashboard "
                       "behind HTTPS: set it to true")


def test_several_dashboard_replicas_need_a_shared_session_key() -> None:
    message = error_of("prod", [s for s in PROD_SECRETS if s != "dashboardSessionKey"])
    assert message == ("invalid stack config:\n  coffee-rt:dashboardSessionKey: missing: set it with "
                       "`pulumi config set --secret coffee-rt:dashboardSessionKey <value>`")
    run_stack("dev", [*DEV_SECRETS, "dashboardSessionKey"])  # one replica: allowed, not needed
    values, secrets = mockrun.with_placeholder_secrets(mockrun.stack_values("dev"),
                                                       [*DEV_SECRETS, "dashboardSessionKey"])
    values["coffee-rt:dashboardSessionKey"] = "short"
    with pytest.raises(config.ConfigError) as info:
        mockrun.run(values, secrets, "dev")
    assert str(info.value) == ("invalid stack config:\n  coffee-rt:dashboardSessionKey: must be 32 to 256 characters "
                               "of A-Z a-z 0-9 . _ ~ + / = - (e.g. openssl rand -hex 32)")
    message = error_of("dev", [*DEV_SECRETS, "dashboardSessionKey"], {"coffee-rt:dashboard": dashboard(
        "dev", enabled=False)}, drop=("coffee-rt:dashboardTokensSha256",))
    assert "coffee-rt:dashboardSessionKey: set but not used with this configuration (remove it)" in message
