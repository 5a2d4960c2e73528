"""The auditor children of a pipeline (``spec.audit``): a Deployment and a Service, every field exact."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from operator_builders import BASE

from coffee_auditor.settings import AuditorSettings
from coffee_jobconfig.model import JobConfig
from coffee_operator import children
from coffee_operator.spec import parse_spec

LABELS = {"app.kubernetes.io/name": "coffee-auditor", "app.kubernetes.io/instance": "roastery",
          "app.kubernetes.io/part-of": "coffee-rt", "app.kubernetes.io/managed-by": "coffee-rt-operator"}
SELECTOR = {"app.kubernetes.io/name": "coffee-auditor", "app.kubernetes.io/instance": "roastery"}
ZONES = {"default_timezone": "Europe/Amsterdam", "store_timezones": {"store-02": "Europe/London"},
         "dedup_ttl": "48h", "state_backend": "rocksdb"}


def audited(**audit: Any) -> dict[str, Any]:
    raw = copy.deepcopy(BASE)
    raw["audit"] = {"image": "coffee-rt/auditor:0.1.0", **audit}
    return raw


def test_the_auditor_is_a_deployment_and_a_service_after_the_ingest_children() -> None:
    raw = audited(interval="1m", resources={"requests": {"cpu": "50m"}})
    objects = children.render("roastery", parse_spec(raw), ZONES)
    assert [(o["kind"], o["metadata"]["name"]) for o in objects] == [
        ("ConfigMap", "roastery-ingest"), ("Deployment", "roastery-ingest"), ("Service", "roastery-ingest"),
        ("PodDisruptionBudget", "roastery-ingest"), ("Deployment", "roastery-auditor"),
        ("Service", "roastery-auditor")]
    deployment, service = objects[-2:]
    probe = {"httpGet": {"path": "/healthz", "port": "metrics"}, "periodSeconds": 10}
    assert deployment == {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "roastery-auditor", "labels": LABELS},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": SELECTOR},
            "strategy": {"type": "Recreate"},
            "template": {"metadata": {"labels": LABELS}, "spec": {
                "automountServiceAccountToken": False,
                "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
                                    "seccompProfile": {"type": "RuntimeDefault"}, "fsGroup": 10001},
                "volumes": [
                    {"name": "postgres", "secret": {"secretName": "pg", "defaultMode": 0o440,
                                                    "items": [{"key": "dsn", "path": "dsn"}]}},
                    {"name": "redis", "secret": {"secretName": "rd", "defaultMode": 0o440,
                                                 "items": [{"key": "url", "path": "url"}]}},
                ],
                "containers": [{
                "name": "auditor",
                "image": "coffee-rt/auditor:0.1.0",
                "ports": [{"name": "metrics", "containerPort": 9195}],
                "env": [
                    {"name": "AUDITOR_HOST", "value": "0.0.0.0"},
                    {"name": "AUDITOR_PORT", "value": "9195"},
                    {"name": "AUDITOR_INTERVAL", "value": "1m"},
                    {"name": "AUDITOR_KAFKA_BOOTSTRAP", "value": "kafka:9092"},
                    {"name": "AUDITOR_TOPIC", "value": "orders"},
                    {"name": "AUDITOR_DEFAULT_TIMEZONE", "value": "Europe/Amsterdam"},
                    {"name": "AUDITOR_STORE_TIMEZONES", "value": '{"store-02": "Europe/London"}'},
                    {"name": "AUDITOR_DEDUP_TTL", "value": "48h"},
                    # The credentials as files of their Secrets, never in the environment.
                    {"name": "AUDITOR_POSTGRES_DSN_FILE", "value": "/etc/coffee-auditor/secrets/postgres/dsn"},
                    {"name": "AUDITOR_REDIS_URL_FILE", "value": "/etc/coffee-auditor/secrets/redis/url"},
                ],
                "volumeMounts": [
                    {"name": "postgres", "mountPath": "/etc/coffee-auditor/secrets/postgres", "readOnly": True},
                    {"name": "redis", "mountPath": "/etc/coffee-auditor/secrets/redis", "readOnly": True},
                ],
                "readinessProbe": probe,
                "livenessProbe": {**probe, "failureThreshold": 3},
                "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
                                    "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
                "resources": {"requests": {"cpu": "50m"}},
            }]}},
        },
    }
    assert service == {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "roastery-auditor", "labels": LABELS},
        "spec": {"type": "ClusterIP", "selector": SELECTOR,
                 "ports": [{"name": "metrics", "port": 9195, "targetPort": "metrics", "protocol": "TCP"}]}}


def test_without_overrides_the_auditor_has_the_jobs_defaults() -> None:
    (container,) = children.auditor_deployment("p", parse_spec(audited()), {})["spec"]["template"]["spec"][
        "containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert (env["AUDITOR_INTERVAL"], env["AUDITOR_DEFAULT_TIMEZONE"], env["AUDITOR_STORE_TIMEZONES"],
            env["AUDITOR_DEDUP_TTL"]) == ("30s", "UTC", "{}", "36h")
    defaults = JobConfig.model_fields
    assert (defaults["default_timezone"].default, defaults["dedup_ttl"].default) == ("UTC", "36h")


def test_the_rendered_environment_is_valid_auditor_settings(tmp_path: Path) -> None:
    """What the Pod gets (the Secrets' files where it mounts them) is what ``python -m coffee_auditor`` accepts."""
    (container,) = children.auditor_deployment("roastery", parse_spec(audited()), ZONES)["spec"]["template"][
        "spec"]["containers"]
    files = {"/etc/coffee-auditor/secrets/postgres/dsn": "postgresql://coffee:pw@pg:5432/coffee",
             "/etc/coffee-auditor/secrets/redis/url": "redis://rd:6379/0"}
    env = {e["name"]: e["value"] for e in container["env"]}
    for name in ("AUDITOR_POSTGRES_DSN_FILE", "AUDITOR_REDIS_URL_FILE"):
        local = tmp_path / name
        local.write_text(files[env[name]])
        env[name] = str(local)
    settings = AuditorSettings.from_env(env)
    assert (settings.postgres_dsn.get_secret_value(), settings.redis_url.get_secret_value()) == (
        "postgresql://coffee:pw@pg:5432/coffee", "redis://rd:6379/0")
    targets = settings.targets()
    assert (settings.host, settings.port, settings.interval.total_seconds()) == ("0.0.0.0", 9195, 30.0)
    assert (targets.kafka_bootstrap, targets.topic, targets.default_timezone, dict(targets.store_timezones),
            targets.dedup_ttl_ms) == ("kafka:9092", "orders", "Europe/Amsterdam", {"store-02": "Europe/London"},
                                      48 * 3_600_000)


def test_disabled_scales_the_auditor_to_zero_and_no_block_means_none() -> None:
    assert children.auditor_deployment("p", parse_spec(audited(enabled=False)), {})["spec"]["replicas"] == 0
    assert [o["metadata"]["name"] for o in children.render("p", parse_spec(BASE), {})] == [
        "p-ingest", "p-ingest", "p-ingest", "p-ingest"]


def test_an_audit_without_sinks_is_refused_naming_them() -> None:
    raw = audited()
    del raw["sinks"]["redis"]
    with pytest.raises(ValueError) as caught:
        children.render("p", parse_spec(raw), {})
    assert str(caught.value) == ("spec.audit needs spec.sinks.postgres.secretRef and spec.sinks.redis.secretRef: "
                                 "the views it audits")
