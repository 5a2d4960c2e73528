"""Monitoring from rule files, NetworkPolicy flows, external services, the policy rules, migrations,
and offline schema validation of everything the program creates."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from conftest import DEV_SECRETS, PROD_SECRETS, run_stack

from coffee_db.psql import psql_script
from infra import mockrun
from infra.components import monitoring
from infra.migrations import SCRIPT_NAME, configmap_data
from infra.policy.rules import check

FIXTURE_ALERTS = Path(__file__).parent / "fixtures" / "alerts"
CUSTOM_KINDS = {"CoffeePipeline", "PrometheusRule", "PodMonitor", "ServiceMonitor", "AlertmanagerConfig"}


# -- Monitoring -----------------------------------------------------------------------------------


def test_rule_files_are_read_from_the_folder_sorted(tmp_path: Path) -> None:
    assert monitoring.rule_files(tmp_path) == []
    found = monitoring.rule_files(FIXTURE_ALERTS)
    assert [name for name, _ in found] == ["coffee-rt-ops", "coffee-rt-pipeline"]
    assert found[1][1][0]["rules"][0]["alert"] == "CoffeeJobConsumerLagHigh"


@pytest.mark.parametrize(("text", "problem"), [
    ("groups: []\n", "needs a non-empty 'groups' list"),
    ("groups: [{rules: []}]\n", "groups[0] needs a 'name' and a 'rules' list"),
    ("groups: [{name: g, rules: [{alert: A}]}]\n", "groups[0].rules[0] needs 'expr' and exactly one of"),
    ("groups: [{name: g, rules: [{alert: A, record: b, expr: up}]}]\n", "groups[0].rules[0] needs 'expr'"),
    ("groups: [unclosed\n", "not YAML"),
])
def test_a_malformed_rule_file_is_named(tmp_path: Path, text: str, problem: str) -> None:
    (tmp_path / "bad.rules.yaml").write_text(text)
    with pytest.raises(monitoring.RuleFileError) as info:
        monitoring.rule_files(tmp_path)
    assert str(info.value).startswith(f"{tmp_path / 'bad.rules.yaml'}: ")
    assert problem in str(info.value)


def test_one_prometheus_rule_per_file_with_the_files_groups(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(monitoring, "ALERTS_DIR", FIXTURE_ALERTS)
    run = run_stack("prod", PROD_SECRETS)
    rules = {m["metadata"]["name"]: m for m in run.manifests() if m["kind"] == "PrometheusRule"}
    assert sorted(rules) == ["coffee-rt-ops", "coffee-rt-pipeline"]
    pipeline = rules["coffee-rt-pipeline"]
    assert pipeline["apiVersion"] == "monitoring.coreos.com/v1"
    assert pipeline["metadata"]["namespace"] == "coffee-rt"
    assert pipeline["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert pipeline["spec"] == yaml.safe_load((FIXTURE_ALERTS / "pipeline.rules.yaml").read_text())


def test_every_alert_links_its_runbook_under_the_configured_folder() -> None:
    base = "https://git.roastery.example/ops/coffee-rt/-/blob/main/runbooks"
    monitoring_cfg = json.loads(mockrun.stack_values("prod")["coffee-rt:monitoring"])
    run = run_stack("prod", PROD_SECRETS, {"coffee-rt:monitoring": json.dumps({**monitoring_cfg,
                                                                                "runbookBaseUrl": base + "/"})})
    rules = {m["metadata"]["name"]: m for m in run.manifests() if m["kind"] == "PrometheusRule"}
    alerts = [(rule, committed) for name, groups in monitoring.rule_files()
              for group, committed_group in zip(rules[name]["spec"]["groups"], groups, strict=True)
              for rule, committed in zip(group["rules"], committed_group["rules"], strict=True) if "alert" in rule]
    assert len(alerts) == 24
    for rule, committed in alerts:
        assert rule["annotations"]["runbook_url"] == f"{base}/{rule['alert']}.md"
        assert committed["annotations"]["runbook_url"] == f"{monitoring.RUNBOOK_BASE}/{rule['alert']}.md"
        assert {k: v for k, v in rule.items() if k != "annotations"} == \
            {k: v for k, v in committed.items() if k != "annotations"}
        assert {k: v for k, v in rule["annotations"].items() if k != "runbook_url"} == \
            {k: v for k, v in committed["annotations"].items() if k != "runbook_url"}


def test_no_rule_files_means_no_prometheus_rules(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(monitoring, "ALERTS_DIR", tmp_path)
    run = run_stack("prod", PROD_SECRETS)
    assert [m for m in run.manifests() if m["kind"] == "PrometheusRule"] == []
    assert len([m for m in run.manifests() if m["kind"] == "AlertmanagerConfig"]) == 1


def test_redis_exporter_runs_the_lua_scripts_of_alerts_exporters(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(monitoring, "ALERTS_DIR", FIXTURE_ALERTS)
    run = run_stack("dev", DEV_SECRETS)
    assert run.object("ConfigMap", "redis-exporter-scripts")["data"] == {
        "fixture.lua": (FIXTURE_ALERTS / "exporters" / "fixture.lua").read_text()}
    pod = run.object("Deployment", "redis-exporter")["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert {"name": "REDIS_EXPORTER_SCRIPT", "value": "/etc/redis-exporter/fixture.lua"} in c["env"]
    assert c["volumeMounts"] == [{"name": "scripts", "mountPath": "/etc/redis-exporter", "readOnly": True}]
    assert pod["volumes"] == [{"name": "scripts", "configMap": {"name": "redis-exporter-scripts"}}]


def test_alertmanager_routes_to_slack_with_the_webhook_in_a_secret(prod: mockrun.Run) -> None:
    amc = prod.object("AlertmanagerConfig", "coffee-rt-slack")
    assert amc["apiVersion"] == "monitoring.coreos.com/v1alpha1"
    (receiver,) = amc["spec"]["receivers"]
    (slack,) = receiver["slackConfigs"]
    assert (slack["channel"], slack["apiURL"], slack["sendResolved"]) == \
        ("#coffee-rt-alerts", {"name": "coffee-rt-alertmanager-slack", "key": "url"}, True)
    assert amc["spec"]["route"]["receiver"] == receiver["name"] == "slack"
    secret = prod.find("kubernetes:core/v1:Secret", "alertmanager-slack")
    assert secret.secret_inputs() == {"stringData"}
    assert secret.manifest["stringData"]["url"] == mockrun.PLACEHOLDER_SECRETS["slackWebhookUrl"]


def test_exporters_scrape_what_the_alerts_need(dev: mockrun.Run) -> None:
    lag = dev.object("Deployment", "kafka-exporter")["spec"]["template"]["spec"]["containers"][0]
    assert lag["args"] == ["--kafka.server=kafka.coffee-rt.svc:9092", "--web.listen-address=:9308"]
    pg = dev.object("Deployment", "postgres-exporter")["spec"]["template"]["spec"]["containers"][0]
    assert pg["env"] == [{"name": "DATA_SOURCE_NAME",
                          "valueFrom": {"secretKeyRef": {"name": "coffee-rt-postgres", "key": "dsn"}}}]
    rd = dev.object("Deployment", "redis-exporter")["spec"]["template"]["spec"]["containers"][0]
    assert rd["env"][0] == {"name": "REDIS_ADDR", "value": "redis://redis.coffee-rt.svc:6379"}


def test_prometheus_objects_are_well_formed(prod: mockrun.Run) -> None:
    """No Prometheus Operator CRDs on the test API server: these are checked by shape here."""
    for m in prod.manifests():
        if m["kind"] in ("PodMonitor", "ServiceMonitor"):
            assert m["apiVersion"] == "monitoring.coreos.com/v1"
            assert m["spec"]["selector"]
            endpoints = m["spec"].get("podMetricsEndpoints") or m["spec"]["endpoints"]
            assert all(e["port"] for e in endpoints)


# -- NetworkPolicies ------------------------------------------------------------------------------


def policy(run: mockrun.Run, name: str) -> dict[str, Any]:
    return run.object("NetworkPolicy", name)["spec"]  # type: ignore[no-any-return]


def pods(app: str) -> dict[str, Any]:
    return {"podSelector": {"matchLabels": {"app.kubernetes.io/name": app}}}


def tcp(*ports: int) -> list[dict[str, Any]]:
    return [{"protocol": "TCP", "port": p} for p in ports]


def test_default_deny_and_dns(dev: mockrun.Run) -> None:
    assert policy(dev, "default-deny") == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    assert policy(dev, "allow-dns")["egress"][0]["ports"] == [{"protocol": "UDP", "port": 53},
                                                             {"protocol": "TCP", "port": 53}]


def test_ingest_talks_only_to_kafka(dev: mockrun.Run) -> None:
    spec = policy(dev, "allow-coffee-ingest")
    assert spec["egress"] == [{"to": [pods("kafka")], "ports": tcp(9092)}]
    assert spec["ingress"] == [{"ports": tcp(8080)}]


def test_kafka_accepts_its_clients_and_itself(dev: mockrun.Run) -> None:
    spec = policy(dev, "allow-kafka")
    assert spec["ingress"] == [{"ports": tcp(9092), "from": [pods(a)]} for a in
                               ("coffee-ingest", "flink", "kafka-topics", "kafka-exporter")] + \
        [{"ports": tcp(9092, 9093), "from": [pods("kafka")]}]


def test_job_reaches_kafka_postgres_redis_and_its_own_pods(dev: mockrun.Run) -> None:
    egress = policy(dev, "allow-flink")["egress"]
    assert egress == [{"to": [pods("kafka")], "ports": tcp(9092)}, {"to": [pods("postgres")], "ports": tcp(5432)},
                      {"to": [pods("redis")], "ports": tcp(6379)},
                      {"to": [pods("flink")], "ports": tcp(6121, 6122, 6123, 6124)}]


def test_dashboard_and_operator_egress(dev: mockrun.Run) -> None:
    assert policy(dev, "allow-coffee-dashboard")["egress"] == [
        {"to": [pods("postgres")], "ports": tcp(5432)}, {"to": [pods("redis")], "ports": tcp(6379)},
        {"to": [pods("flink")], "ports": tcp(8081)}]
    assert policy(dev, "allow-coffee-rt-operator")["egress"] == [
        {"to": [pods("flink")], "ports": tcp(8081)},
        {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": tcp(443, 6443)}]
    flink_rest = [r for r in policy(dev, "allow-flink")["ingress"] if r["ports"] == tcp(8081)]
    assert [r["from"] for r in flink_rest] == [[pods("coffee-rt-operator")], [pods("coffee-dashboard")]]


def test_prometheus_namespace_may_scrape_metrics_ports(dev: mockrun.Run) -> None:
    scrape = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    assert {"ports": tcp(9249), "from": [scrape]} in policy(dev, "allow-flink")["ingress"]
    assert {"ports": tcp(9308), "from": [scrape]} in policy(dev, "allow-kafka-exporter")["ingress"]


# -- External services ---------------------------------------------------------------------------


def test_external_kafka_postgres_redis_replace_the_in_cluster_ones() -> None:
    values, secrets = mockrun.with_placeholder_secrets(
        mockrun.stack_values("dev"), ["postgresDsn", "redisUrl", "ingestTokens", "dashboardTokensSha256"])
    values.update({"coffee-rt:kafka": json.dumps({"mode": "external", "bootstrap": "b1.example:9094,b2.example:9094"}),
                   "coffee-rt:postgres": json.dumps({"mode": "external"}),
                   "coffee-rt:redis": json.dumps({"mode": "external"})})
    run = mockrun.run(values, secrets, "dev")
    kinds = {(m["kind"], m["metadata"]["name"]) for m in run.manifests()}
    assert not {("StatefulSet", "kafka"), ("StatefulSet", "postgres"), ("StatefulSet", "redis"),
                ("Service", "kafka"), ("Service", "postgres"), ("Service", "redis")} & kinds
    assert run.outputs["kafkaBootstrap"] == "b1.example:9094,b2.example:9094"
    assert run.object("CoffeePipeline", "roastery")["spec"]["kafka"]["bootstrap"] == "b1.example:9094,b2.example:9094"
    assert run.object("Secret", "coffee-rt-postgres")["stringData"] == {
        "dsn": mockrun.PLACEHOLDER_SECRETS["postgresDsn"], "password": "placeholder-postgres-password"}
    assert run.object("Secret", "coffee-rt-redis")["stringData"] == {
        "url": mockrun.PLACEHOLDER_SECRETS["redisUrl"], "password": "placeholder-redis-password"}
    everywhere = [{"ipBlock": {"cidr": "0.0.0.0/0"}}]
    assert policy(run, "allow-coffee-ingest")["egress"] == [{"to": everywhere, "ports": tcp(9094)}]
    assert policy(run, "allow-flink")["egress"][:3] == [{"to": everywhere, "ports": tcp(9094)},
                                                        {"to": everywhere, "ports": tcp(5432)},
                                                        {"to": everywhere, "ports": tcp(6379)}]
    assert ("Job", "kafka-topics") in {(m["kind"], m["metadata"]["name"].rsplit("-", 1)[0]) for m in run.manifests()}
    assert [str(v) for m in run.manifests() for v in check(m)] == []


# -- Policy rules: they catch what they should ---------------------------------------------------


def deployment(**container: Any) -> dict[str, Any]:
    c = {"name": "app", "image": "example/app:1.0",
         "resources": {"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
         "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "allowPrivilegeEscalation": False}}
    c.update(container)
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"template": {"spec": {"containers": [c]}}}}


def test_a_good_deployment_passes() -> None:
    assert check(deployment()) == []


@pytest.mark.parametrize(("change", "expected"), [
    ({"resources": {"requests": {"cpu": "1", "memory": "1Gi"}}},
     "limits: Deployment/d containers[app]: resources.limits lacks cpu, memory"),
    ({"securityContext": {"runAsUser": 0, "allowPrivilegeEscalation": False}},
     "non-root: Deployment/d containers[app]: runAsNonRoot must be true"),
    ({"env": [{"name": "DB_PASSWORD", "value": "hunter2"}]},
     "plaintext-secret: Deployment/d containers[app]: env DB_PASSWORD has an inline value; use valueFrom.secretKeyRef"),
    ({"env": [{"name": "CACHE", "value": "redis://:pw@cache:6379/0"}]},
     "plaintext-secret: Deployment/d containers[app]: env CACHE holds a URL with a password; use "
     "valueFrom.secretKeyRef"),
    ({"image": "example/app:latest"}, "pinned-image: Deployment/d containers[app]: image 'example/app:latest' uses "
                                      "the latest tag"),
    ({"image": "example/app"}, "pinned-image: Deployment/d containers[app]: image 'example/app' has no tag "
                               "(means latest)"),
])
def test_each_rule_catches_its_violation(change: dict[str, Any], expected: str) -> None:
    violations = [str(v) for v in check(deployment(**change))]
    assert expected in violations


def test_secret_refs_and_non_credential_env_pass() -> None:
    env = [{"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
           {"name": "KAFKA_BOOTSTRAP", "value": "kafka:9092"}, {"name": "DASHBOARD_AUTH", "value": "token"}]
    assert check(deployment(env=env)) == []


def test_objects_that_run_nothing_have_nothing_to_check() -> None:
    assert check({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}}) == []


# -- Migrations script ----------------------------------------------------------------------------


def test_migrations_configmap_holds_the_sql_unchanged_and_the_script() -> None:
    from coffee_db.migrate import MIGRATIONS_DIR, discover

    data = configmap_data()
    for m in discover():
        assert data[m.path.name] == (MIGRATIONS_DIR / m.path.name).read_text()
        assert f"\\ir {m.path.name}" in data[SCRIPT_NAME]
        assert f"VALUES ('{m.version}', '{m.checksum}')" in data[SCRIPT_NAME]
    assert data[SCRIPT_NAME] == psql_script(discover())
    assert data[SCRIPT_NAME].count("BEGIN;") == len(discover()) == 2


# -- Offline schema validation ---------------------------------------------------------------------


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_core_object_validates_against_the_kubernetes_schemas(stack: str, dev: mockrun.Run,
                                                                    prod: mockrun.Run) -> None:
    run = dev if stack == "dev" else prod
    version = kubernetes_validate.latest_version()
    checked = 0
    for m in run.manifests():
        if m["kind"] in CUSTOM_KINDS:
            continue
        kubernetes_validate.validate(m, version, strict=True)
        checked += 1
    scripts = 1 if monitoring.exporter_scripts() else 0
    assert checked == {"dev": 47, "prod": 54}[stack] + scripts
    assert version == "1.37.0"


def test_placeholders_cover_every_secret_key() -> None:
    from infra.config import SECRET_KEYS

    assert set(mockrun.PLACEHOLDER_SECRETS) == SECRET_KEYS
    assert set(DEV_SECRETS) < set(PROD_SECRETS) < SECRET_KEYS
