"""Monitoring from rule files, NetworkPolicy flows, external services, the policy rules, migrations,
and offline schema validation of everything the program creates."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from conftest import DEV_SECRETS, PROD_SECRETS, run_stack

from coffee_db.psql import psql_script
from infra import credentials, mockrun
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


def alerts_dir(tmp_path: Path, rules: Path | None) -> Path:
    """A folder with ``rules``' files (none: no rule file) and the project's Alertmanager config."""
    folder = tmp_path / "alerts"
    if rules is not None:
        shutil.copytree(rules, folder)
    shutil.copytree(monitoring.ALERTS_DIR / "templates", folder / "templates")
    shutil.copy(monitoring.ALERTS_DIR / "alertmanager.yaml", folder)
    return folder


def test_one_prometheus_rule_per_file_with_the_files_groups(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(monitoring, "ALERTS_DIR", alerts_dir(tmp_path, FIXTURE_ALERTS))
    run = run_stack("prod", PROD_SECRETS)
    rules = {m["metadata"]["name"]: m for m in run.manifests() if m["kind"] == "PrometheusRule"}
    assert sorted(rules) == ["coffee-rt-ops", "coffee-rt-pipeline"]
    pipeline = rules["coffee-rt-pipeline"]
    assert pipeline["apiVersion"] == "monitoring.coreos.com/v1"
    assert pipeline["metadata"]["namespace"] == "coffee-rt"
    assert pipeline["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    committed = yaml.safe_load((FIXTURE_ALERTS / "pipeline.rules.yaml").read_text())
    committed["groups"][0]["rules"][0]["labels"]["namespace"] = "coffee-rt"  # the alert; not the recording rule
    assert pipeline["spec"] == committed


def test_every_alert_links_its_runbook_under_the_configured_folder() -> None:
    base = "https://git.roastery.example/ops/coffee-rt/-/blob/main/runbooks"
    monitoring_cfg = json.loads(mockrun.stack_values("prod")["coffee-rt:monitoring"])
    run = run_stack("prod", PROD_SECRETS, {"coffee-rt:monitoring": json.dumps({**monitoring_cfg,
                                                                                "runbookBaseUrl": base + "/"})})
    rules = {m["metadata"]["name"]: m for m in run.manifests() if m["kind"] == "PrometheusRule"}
    alerts = [(rule, committed) for name, groups in monitoring.rule_files()
              for group, committed_group in zip(rules[name]["spec"]["groups"], groups, strict=True)
              for rule, committed in zip(group["rules"], committed_group["rules"], strict=True) if "alert" in rule]
    assert len(alerts) == 26
    for rule, committed in alerts:
        assert rule["annotations"]["runbook_url"] == f"{base}/{rule['alert']}.md"
        assert committed["annotations"]["runbook_url"] == f"{monitoring.RUNBOOK_BASE}/{rule['alert']}.md"
        assert rule["labels"] == {**committed["labels"], "namespace": "coffee-rt"}
        assert {k: v for k, v in rule.items() if k not in ("annotations", "labels")} == \
            {k: v for k, v in committed.items() if k not in ("annotations", "labels")}
        assert {k: v for k, v in rule["annotations"].items() if k != "runbook_url"} == \
            {k: v for k, v in committed["annotations"].items() if k != "runbook_url"}


def test_no_rule_files_means_no_prometheus_rules(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(monitoring, "ALERTS_DIR", alerts_dir(tmp_path, None))
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
    assert c["volumeMounts"] == [{"name": "auth", "mountPath": "/etc/coffee-rt/monitor", "readOnly": True},
                                 {"name": "scripts", "mountPath": "/etc/redis-exporter", "readOnly": True}]
    assert pod["volumes"] == [{"name": "auth", "secret": {"secretName": "coffee-rt-redis-monitor", "defaultMode": 0o440,
                                                          "items": [{"key": "passwords.json",
                                                                     "path": "passwords.json"}]}},
                              {"name": "scripts", "configMap": {"name": "redis-exporter-scripts"}}]


def test_alertmanager_routes_to_slack_with_the_webhook_in_a_secret(prod: mockrun.Run) -> None:
    amc = prod.object("AlertmanagerConfig", "coffee-rt-slack")
    assert amc["apiVersion"] == "monitoring.coreos.com/v1alpha1"
    watchdog, critical, warning = amc["spec"]["receivers"]
    assert watchdog == {"name": "watchdog"}
    for receiver in (critical, warning):
        (slack,) = receiver["slackConfigs"]
        assert (slack["channel"], slack["apiURL"], slack["sendResolved"]) == \
            ("#coffee-rt-alerts", {"name": "coffee-rt-alertmanager-slack", "key": "url"}, True)
    assert (critical["name"], warning["name"]) == ("slack-critical", "slack-warning")
    secret = prod.find("kubernetes:core/v1:Secret", "alertmanager-slack")
    assert secret.secret_inputs() == {"stringData"}
    assert secret.manifest["stringData"]["url"] == mockrun.PLACEHOLDER_SECRETS["slackWebhookUrl"]


def _file_matcher(m: dict[str, str]) -> str:
    return f'{m["name"]}{m["matchType"]}"{m["value"]}"'


def _file_route(route: dict[str, Any]) -> dict[str, Any]:
    """An AlertmanagerConfig route back in alertmanager.yaml's schema (written here, not by the program)."""
    names = {"receiver": "receiver", "groupBy": "group_by", "groupWait": "group_wait",
             "groupInterval": "group_interval", "repeatInterval": "repeat_interval",
             "activeTimeIntervals": "active_time_intervals"}
    out: dict[str, Any] = {names[k]: v for k, v in route.items() if k in names}
    assert set(route) - set(names) <= {"matchers", "routes"}, route
    if "matchers" in route:
        out["matchers"] = [_file_matcher(m) for m in route["matchers"]]
    if "routes" in route:
        out["routes"] = [_file_route(r) for r in route["routes"]]
    return out


def test_the_alertmanager_config_is_the_tested_file_tree(prod: mockrun.Run) -> None:
    """Routes, receivers and inhibitions: alerts/alertmanager.yaml, the file the local Alertmanager runs
    and tests/unit/alerts checks with amtool, converted key by key; only where the webhook comes from differs."""
    spec = prod.object("AlertmanagerConfig", "coffee-rt-slack")["spec"]
    file = yaml.safe_load((monitoring.ALERTS_DIR / "alertmanager.yaml").read_text())
    assert _file_route(spec["route"]) == file["route"]
    assert [{"source_matchers": [_file_matcher(m) for m in r["sourceMatch"]],
             "target_matchers": [_file_matcher(m) for m in r["targetMatch"]],
             **({"equal": r["equal"]} if "equal" in r else {})} for r in spec["inhibitRules"]] == file["inhibit_rules"]
    definitions = monitoring.template_definitions(monitoring.ALERTS_DIR / "templates")
    assert definitions.count("{{ define ") == 8
    snake = {"sendResolved": "send_resolved", "titleLink": "title_link", "mrkdwnIn": "mrkdwn_in"}
    receivers = []
    for receiver in spec["receivers"]:
        back: dict[str, Any] = {"name": receiver["name"]}
        if "slackConfigs" in receiver:
            back["slack_configs"] = []
            for slack in receiver["slackConfigs"]:
                assert slack.pop("apiURL") == {"name": "coffee-rt-alertmanager-slack", "key": "url"}
                back["slack_configs"].append({snake.get(k, k): v.removeprefix(definitions) if isinstance(v, str) else v
                                              for k, v in slack.items() if k != "actions"})
                back["slack_configs"][-1]["actions"] = [{k: v.removeprefix(definitions) for k, v in a.items()}
                                                        for a in slack["actions"]]
        receivers.append(back)
    for receiver in file["receivers"]:
        for slack in receiver.get("slack_configs", []):
            slack["actions"] = [dict(a) for a in slack["actions"]]
    assert receivers == file["receivers"]
    assert file["global"] == {"resolve_timeout": "5m",
                              "slack_api_url_file": "/etc/alertmanager/secrets/slack-webhook-url"}
    # The file's time interval has a location; the AlertmanagerConfig carries its UTC rendering
    # (tests/unit/infra/test_infra_time_intervals.py).
    assert [i["name"] for i in spec["muteTimeIntervals"]] == [i["name"] for i in file["time_intervals"]]


def test_the_routing_tree_as_the_operator_reads_it(prod: mockrun.Run) -> None:
    route = prod.object("AlertmanagerConfig", "coffee-rt-slack")["spec"]["route"]
    assert route == {
        "receiver": "slack-warning", "groupBy": ["alertname", "job_name", "namespace", "name"], "groupWait": "30s",
        "groupInterval": "5m", "repeatInterval": "12h",
        "routes": [
            {"receiver": "watchdog", "matchers": [{"name": "alertname", "value": "CoffeeRtWatchdog", "matchType": "="}],
             "groupInterval": "1m", "repeatInterval": "5m"},
            {"receiver": "slack-critical",
             "matchers": [{"name": "alertname", "value": "CoffeeRtOrdersStopped", "matchType": "="}],
             "activeTimeIntervals": ["shops-expecting-orders"], "repeatInterval": "1h"},
            {"receiver": "slack-critical", "matchers": [{"name": "severity", "value": "critical", "matchType": "="}],
             "repeatInterval": "1h"},
            {"receiver": "slack-warning", "matchers": [{"name": "severity", "value": "warning", "matchType": "="}]},
        ]}
    inhibit = prod.object("AlertmanagerConfig", "coffee-rt-slack")["spec"]["inhibitRules"]
    assert inhibit[0] == {
        "sourceMatch": [{"name": "alertname", "value": "CoffeeRtFlinkJobNotRunning", "matchType": "="}],
        "targetMatch": [{"name": "alertname", "matchType": "=~", "value": "CoffeeRtKafkaLagHigh|CoffeeRtLiveDataStale|"
                                                                       "CoffeeRtCheckpointTooOld|CoffeeRtCheckpointsFailing"}]}
    assert inhibit[-1] == {"sourceMatch": [{"name": "severity", "value": "critical", "matchType": "="}],
                           "targetMatch": [{"name": "severity", "value": "warning", "matchType": "="}],
                           "equal": ["alertname", "job_name", "namespace", "name"]}


def _render(amtool: str, text: str, glob: str, data: Path) -> str:
    result = subprocess.run([amtool, "template", "render", f"--template.glob={glob}", f"--template.text={text}",
                             f"--template.data={data}"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.parametrize("status", ["firing", "resolved"])
def test_inlined_templates_render_the_slack_message_of_the_template_files(prod: mockrun.Run, tmp_path: Path,
                                                                          status: str) -> None:
    amtool = shutil.which("amtool")
    if amtool is None:
        pytest.skip("amtool (Debian prometheus-alertmanager) is not installed")
    alert = {"status": status, "labels": {"alertname": "CoffeeRtIngestDown", "severity": "critical",
                                          "component": "ingest", "namespace": "coffee-rt"},
             "annotations": {"summary": "The order-ingest API is down.", "description": "0 instances answer.",
                             "runbook_url": "https://runbooks.example/CoffeeRtIngestDown.md"},
             "startsAt": "2026-03-01T10:00:00Z", "endsAt": "2026-03-01T10:05:00Z",
             "generatorURL": "http://prometheus.example/graph", "fingerprint": "1"}
    data = tmp_path / "data.json"
    data.write_text(json.dumps({
        "receiver": "slack-critical", "status": status, "alerts": [alert],
        "groupLabels": {"alertname": "CoffeeRtIngestDown", "namespace": "coffee-rt"},
        "commonLabels": alert["labels"], "commonAnnotations": alert["annotations"],
        "externalURL": "http://alertmanager.example"}))
    (tmp_path / "none.tmpl").write_text("")
    file = yaml.safe_load((monitoring.ALERTS_DIR / "alertmanager.yaml").read_text())
    (file_slack,) = file["receivers"][1]["slack_configs"]
    (slack,) = prod.object("AlertmanagerConfig", "coffee-rt-slack")["spec"]["receivers"][1]["slackConfigs"]
    fields = [("color", "color"), ("title", "title"), ("pretext", "pretext"), ("text", "text"),
              ("title_link", "titleLink"), ("fallback", "fallback")]
    rendered = {}
    for key, camel in fields:
        expected = _render(amtool, file_slack[key], str(monitoring.ALERTS_DIR / "templates" / "*.tmpl"), data)
        assert _render(amtool, slack[camel], str(tmp_path / "none.tmpl"), data) == expected
        rendered[key] = expected.strip()
    for file_action, action in zip(file_slack["actions"], slack["actions"], strict=True):
        expected = _render(amtool, file_action["url"], str(monitoring.ALERTS_DIR / "templates" / "*.tmpl"), data)
        assert _render(amtool, action["url"], str(tmp_path / "none.tmpl"), data) == expected
    assert rendered["title"] == ("[FIRING:1] CoffeeRtIngestDown (critical)" if status == "firing"
                                 else "[RESOLVED] CoffeeRtIngestDown (critical)")
    assert rendered["color"] == ("danger" if status == "firing" else "good")
    assert "*What:* 0 instances answer." in rendered["text"]


def test_every_alert_carries_the_stacks_namespace(prod: mockrun.Run) -> None:
    """The operator routes an AlertmanagerConfig's alerts only when namespace=<its namespace>."""
    alerts = [rule for m in prod.manifests() if m["kind"] == "PrometheusRule"
              for group in m["spec"]["groups"] for rule in group["rules"] if "alert" in rule]
    assert len(alerts) == 26
    assert {rule["labels"]["namespace"] for rule in alerts} == {"coffee-rt"}
    records = [rule for m in prod.manifests() if m["kind"] == "PrometheusRule"
               for group in m["spec"]["groups"] for rule in group["rules"] if "record" in rule]
    assert records and all("labels" not in rule for rule in records)


@pytest.mark.parametrize(("text", "expected"), [
    ('severity="critical"', {"name": "severity", "value": "critical", "matchType": "="}),
    ('alertname =~ "A|B"', {"name": "alertname", "value": "A|B", "matchType": "=~"}),
    ("severity!=none", {"name": "severity", "value": "none", "matchType": "!="}),
    (r'summary!~"say \"hi\""', {"name": "summary", "value": 'say "hi"', "matchType": "!~"}),
])
def test_matchers_convert(text: str, expected: dict[str, str]) -> None:
    assert monitoring.matcher(text) == expected


@pytest.mark.parametrize(("change", "problem"), [
    (lambda c: c["route"]["routes"][0].update(match={"severity": "critical"}) or c,
     "route.routes[0]: match not supported in the AlertmanagerConfig conversion"),
    (lambda c: c.update(templates=["other/*.tmpl"]) or c, "templates must be [templates/*.tmpl]"),
    (lambda c: c["route"].update(group_byy=["x"]) or c,
     "route: group_byy not supported in the AlertmanagerConfig conversion"),
    (lambda c: c["receivers"].append({"name": "pager", "pagerduty_configs": [{}]}) or c,
     "receiver pager: pagerduty_configs not supported"),
    (lambda c: c["global"].update(smtp_from="a@b") or c, "global: smtp_from not supported"),
    (lambda c: c["inhibit_rules"][0].update(source_matchers=["severity critical"]) or c,
     "matcher 'severity critical': expected name, one of = != =~ !~, and a value"),
    (lambda c: c.update(mute_time_intervals=[]) or c, "mute_time_intervals not supported"),
    (lambda c: c["time_intervals"][0]["time_intervals"][0].update(location="Europe/Amsterdm") or c,
     "time_intervals shops-expecting-orders[0]: location 'Europe/Amsterdm' is not an IANA time zone"),
])
def test_what_the_conversion_does_not_know_stops_it(tmp_path: Path, change: Any, problem: str) -> None:
    shutil.copytree(monitoring.ALERTS_DIR / "templates", tmp_path / "templates")
    config = change(yaml.safe_load((monitoring.ALERTS_DIR / "alertmanager.yaml").read_text()))
    (tmp_path / "alertmanager.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(monitoring.AlertmanagerFileError, match=re.escape(problem)):
        monitoring.alertmanager_config_spec(tmp_path, "s", "#c")


def test_exporters_scrape_what_the_alerts_need(dev: mockrun.Run) -> None:
    lag = dev.object("Deployment", "kafka-exporter")["spec"]["template"]["spec"]["containers"][0]
    assert lag["args"] == ["--kafka.server=kafka.coffee-rt.svc:9092", "--web.listen-address=:9308"]
    # Each exporter logs in as its monitoring role, its password a file of its own Secret.
    pg_pod = dev.object("Deployment", "postgres-exporter")["spec"]["template"]["spec"]
    (pg,) = pg_pod["containers"]
    assert pg["env"] == [{"name": "DATA_SOURCE_URI", "value": "postgres.coffee-rt.svc:5432/coffee?sslmode=disable"},
                         {"name": "DATA_SOURCE_USER", "value": "coffee_monitor"},
                         {"name": "DATA_SOURCE_PASS_FILE", "value": "/etc/coffee-rt/monitor/password"}]
    assert pg["volumeMounts"] == [{"name": "auth", "mountPath": "/etc/coffee-rt/monitor", "readOnly": True}]
    assert pg_pod["volumes"] == [{"name": "auth", "secret": {"secretName": "coffee-rt-postgres-monitor",
                                                             "defaultMode": 0o440,
                                                             "items": [{"key": "password", "path": "password"}]}}]
    assert pg_pod["securityContext"]["fsGroup"] == 65534
    rd = dev.object("Deployment", "redis-exporter")["spec"]["template"]["spec"]["containers"][0]
    assert rd["env"][:3] == [{"name": "REDIS_ADDR", "value": "redis://redis.coffee-rt.svc:6379"},
                             {"name": "REDIS_USER", "value": "coffee-monitor"},
                             {"name": "REDIS_PASSWORD_FILE", "value": "/etc/coffee-rt/monitor/passwords.json"}]


def test_a_null_kafka_exporter_image_leaves_out_its_deployment_and_policy(dev: mockrun.Run) -> None:
    images = {**json.loads(mockrun.stack_values("dev")["coffee-rt:images"]), "kafkaExporter": None}
    run = run_stack("dev", DEV_SECRETS, {"coffee-rt:images": json.dumps(images)})
    names = {(m["kind"], m["metadata"]["name"]) for m in run.manifests()}
    assert not [name for name in names if "kafka-exporter" in name[1]]
    assert {("Deployment", "postgres-exporter"), ("Deployment", "redis-exporter")} <= names
    assert json.dumps(pods("kafka-exporter")) not in json.dumps(policy(run, "allow-kafka"))
    assert json.dumps(pods("kafka-exporter")) in json.dumps(policy(dev, "allow-kafka"))


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
    scrape = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    assert spec["ingress"] == [{"ports": tcp(8080)}, {"ports": tcp(9080), "from": [scrape]}]


def test_only_the_monitoring_reaches_the_internal_ports(dev: mockrun.Run) -> None:
    scrape = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    assert policy(dev, "allow-coffee-dashboard")["ingress"] == [{"ports": tcp(8090)},
                                                                {"ports": tcp(9090), "from": [scrape]}]
    assert policy(dev, "allow-coffee-ingest")["ingress"][1] == {"ports": tcp(9080), "from": [scrape]}


def test_kafka_accepts_its_clients_and_itself(dev: mockrun.Run) -> None:
    spec = policy(dev, "allow-kafka")
    assert spec["ingress"] == [{"ports": tcp(9092), "from": [pods(a)]} for a in
                               ("coffee-ingest", "flink", "kafka-topics", "coffee-auditor", "coffee-rebuild",
                                "kafka-exporter")] + \
        [{"ports": tcp(9092, 9093), "from": [pods("kafka")]}]


def test_job_reaches_kafka_postgres_redis_and_its_own_pods(dev: mockrun.Run) -> None:
    egress = policy(dev, "allow-flink")["egress"]
    assert egress == [{"to": [pods("kafka")], "ports": tcp(9092)}, {"to": [pods("postgres")], "ports": tcp(5432)},
                      {"to": [pods("redis")], "ports": tcp(6379)},
                      {"to": [pods("flink")], "ports": tcp(6121, 6122, 6123, 6124)}]


def test_dashboard_and_operator_egress(dev: mockrun.Run) -> None:
    assert policy(dev, "allow-coffee-dashboard")["egress"] == [
        {"to": [pods("postgres")], "ports": tcp(5432)}, {"to": [pods("redis")], "ports": tcp(6379)},
        {"to": [pods("flink")], "ports": tcp(9249)}, {"to": [pods("coffee-auditor")], "ports": tcp(9195)}]
    assert policy(dev, "allow-coffee-rt-operator")["egress"] == [
        {"to": [pods("flink")], "ports": tcp(8081)},
        {"to": [{"ipBlock": {"cidr": "0.0.0.0/0"}}], "ports": tcp(443, 6443)}]
    flink_rest = [r for r in policy(dev, "allow-flink")["ingress"] if r["ports"] == tcp(8081)]
    assert [r["from"] for r in flink_rest] == [[pods("coffee-rt-operator")]]  # the dashboard reads metrics only


def test_the_auditor_reaches_the_three_stores_and_is_scraped(dev: mockrun.Run) -> None:
    auditor = policy(dev, "allow-coffee-auditor")
    assert auditor["egress"] == [{"to": [pods("kafka")], "ports": tcp(9092)},
                                 {"to": [pods("postgres")], "ports": tcp(5432)},
                                 {"to": [pods("redis")], "ports": tcp(6379)}]
    scrape = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    assert auditor["ingress"] == [{"ports": tcp(9195), "from": [pods("coffee-dashboard")]},
                                  {"ports": tcp(9195), "from": [scrape]}]
    # The operator's rebuild Jobs (spec.rebuild) run the auditor image against the same three stores.
    assert policy(dev, "allow-coffee-rebuild")["egress"] == auditor["egress"]
    assert policy(dev, "allow-coffee-rebuild")["ingress"] == []  # nothing calls a rebuild Pod
    for store, port in (("kafka", 9092), ("postgres", 5432), ("redis", 6379)):
        assert any(pods("coffee-rebuild") in r["from"] for r in policy(dev, f"allow-{store}")["ingress"]
                   if r["ports"] == tcp(port)), store
    dashboard = dev.object("Deployment", "coffee-dashboard")["spec"]["template"]["spec"]["containers"][0]
    assert {"name": "DASHBOARD_AUDITOR_METRICS_URL",
            "value": "http://roastery-auditor.coffee-rt.svc:9195/metrics"} in dashboard["env"]


def test_prometheus_namespace_may_scrape_metrics_ports(dev: mockrun.Run) -> None:
    scrape = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}
    assert {"ports": tcp(9249), "from": [scrape]} in policy(dev, "allow-flink")["ingress"]
    assert {"ports": tcp(9308), "from": [scrape]} in policy(dev, "allow-kafka-exporter")["ingress"]


# -- External services ---------------------------------------------------------------------------


def test_external_kafka_postgres_redis_replace_the_in_cluster_ones() -> None:
    values, secrets = mockrun.with_placeholder_secrets(
        mockrun.stack_values("dev"), ["postgresDsn", "redisUrl", "ingestTokens", "dashboardTokensSha256",
                                      "credentialsKey"])
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
    # Each Postgres role gets its own DSN to the managed server (the migrations Job sets its password);
    # a managed Redis's one URL goes to each client's own Secret, and no Redis users are made.
    key = mockrun.PLACEHOLDER_SECRETS["credentialsKey"]
    job_password = credentials.postgres_password(key, "coffee_job")
    assert run.object("Secret", "coffee-rt-postgres-job")["stringData"] == {
        "dsn": f"postgresql://coffee_job:{job_password}@db.example.internal:5432/coffee", "password": job_password,
        "user": "coffee_job"}
    assert run.object("Deployment", "postgres-exporter")["spec"]["template"]["spec"]["containers"][0]["env"][0] == {
        "name": "DATA_SOURCE_URI", "value": "db.example.internal:5432/coffee"}
    for name in ("job", "auditor", "dashboard"):
        assert run.object("Secret", f"coffee-rt-redis-{name}")["stringData"] == {
            "url": mockrun.PLACEHOLDER_SECRETS["redisUrl"], "password": "placeholder-redis-password",
            "user": "default"}
    assert ("Secret", "coffee-rt-redis-server") not in kinds
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
         "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "allowPrivilegeEscalation": False,
                             "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}}
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


RESTRICTED = {"runAsNonRoot": True, "runAsUser": 1000, "allowPrivilegeEscalation": False,
              "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}


@pytest.mark.parametrize(("context", "pod", "expected"), [
    ({k: v for k, v in RESTRICTED.items() if k != "seccompProfile"}, {},
     "seccompProfile must be RuntimeDefault or Localhost (the container's or the Pod's)"),
    ({**RESTRICTED, "seccompProfile": {"type": "Unconfined"}}, {},
     "seccompProfile must be RuntimeDefault or Localhost (the container's or the Pod's)"),
    ({**RESTRICTED, "capabilities": {"drop": ["NET_RAW"]}}, {}, "capabilities.drop must include ALL"),
    ({**RESTRICTED, "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE", "SYS_ADMIN"]}}, {},
     "capabilities.add may only hold NET_BIND_SERVICE, not SYS_ADMIN"),
    ({**RESTRICTED, "privileged": True}, {}, "privileged must not be true"),
    ({k: v for k, v in RESTRICTED.items() if k != "allowPrivilegeEscalation"}, {},
     "allowPrivilegeEscalation must be false"),
    ({**RESTRICTED, "procMount": "Unmasked"}, {}, "procMount must be Default"),
    (RESTRICTED, {"hostNetwork": True}, "hostNetwork must not be true"),
    (RESTRICTED, {"volumes": [{"name": "root", "hostPath": {"path": "/"}}]},
     "volume root: hostPath is not a restricted volume type"),
    (RESTRICTED, {"securityContext": {"sysctls": [{"name": "net.core.somaxconn", "value": "1024"}]}},
     "sysctl net.core.somaxconn is not allowed"),
])
def test_the_restricted_pod_security_rule(context: dict[str, Any], pod: dict[str, Any], expected: str) -> None:
    manifest = deployment(securityContext=context)
    manifest["spec"]["template"]["spec"].update(pod)
    assert [v.message for v in check(manifest) if v.rule == "restricted"] == [expected]


def test_the_pod_level_security_context_counts_for_every_container() -> None:
    manifest = deployment(securityContext={"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}})
    manifest["spec"]["template"]["spec"]["securityContext"] = {
        "runAsNonRoot": True, "runAsUser": 1000, "seccompProfile": {"type": "RuntimeDefault"}}
    assert check(manifest) == []


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
    assert data[SCRIPT_NAME].count("BEGIN;") == len(discover()) == 5


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
    assert checked == {"dev": 59, "prod": 66}[stack] + scripts
    assert version == "1.37.0"


def test_placeholders_cover_every_secret_key() -> None:
    from infra.config import SECRET_KEYS

    assert set(mockrun.PLACEHOLDER_SECRETS) == SECRET_KEYS
    assert set(DEV_SECRETS) < set(PROD_SECRETS) < SECRET_KEYS


# -- The dashboard's and the ingest's token Secrets: files, checksums that roll the Pods ------------


def test_the_dashboard_reads_its_tokens_and_session_key_as_files(dev: mockrun.Run, prod: mockrun.Run) -> None:
    secret = prod.object("Secret", "coffee-rt-dashboard-auth")
    assert sorted(secret["stringData"]) == ["session-key", "tokens-sha256"]
    for run, secure, key_file in ((dev, "false", []), (prod, "true", [
            {"name": "DASHBOARD_SESSION_KEY_FILE", "value": "/etc/coffee-dashboard/session-key"}])):
        template = run.object("Deployment", "coffee-dashboard")["spec"]["template"]
        (container,) = template["spec"]["containers"]
        env = {e["name"]: e for e in container["env"]}
        assert "DASHBOARD_TOKENS_SHA256" not in env
        assert [env[n] for n in ("DASHBOARD_TOKENS_FILE", "DASHBOARD_SESSION_TTL", "DASHBOARD_COOKIE_SECURE")] == [
            {"name": "DASHBOARD_TOKENS_FILE", "value": "/etc/coffee-dashboard/tokens-sha256"},
            {"name": "DASHBOARD_SESSION_TTL", "value": "12h"}, {"name": "DASHBOARD_COOKIE_SECURE", "value": secure}]
        assert [e for e in container["env"] if e["name"] == "DASHBOARD_SESSION_KEY_FILE"] == key_file
        assert [(e["name"], e["value"]) for e in container["env"] if e["name"].endswith(("_PORT", "_HOST"))] == [
            ("DASHBOARD_HOST", "0.0.0.0"), ("DASHBOARD_PORT", "8090"), ("DASHBOARD_INTERNAL_HOST", "0.0.0.0"),
            ("DASHBOARD_INTERNAL_PORT", "9090")]
        assert container["ports"] == [{"name": "http", "containerPort": 8090},
                                      {"name": "internal", "containerPort": 9090}]
        assert {"name": "auth", "mountPath": "/etc/coffee-dashboard", "readOnly": True} in container["volumeMounts"]
        assert {"name": "auth", "secret": {"secretName": "coffee-rt-dashboard-auth", "defaultMode": 0o440}} in \
            template["spec"]["volumes"]
        assert template["spec"]["securityContext"]["fsGroup"] == 10001
        assert re.fullmatch(r"[0-9a-f]{32}", template["metadata"]["annotations"]["coffee-rt.dev/auth-secret-checksum"])
    service = dev.object("Service", "coffee-dashboard")
    assert service["spec"]["ports"] == [{"name": "http", "port": 80, "targetPort": "http"}]  # not the internal one


def _annotation(run: mockrun.Run) -> str:
    template = run.object("Deployment", "coffee-dashboard")["spec"]["template"]
    return str(template["metadata"]["annotations"]["coffee-rt.dev/auth-secret-checksum"])


def _ingest_checksum(run: mockrun.Run) -> str:
    return str(run.object("CoffeePipeline", "roastery")["spec"]["ingest"]["authSecretChecksum"])


def test_a_changed_token_secret_changes_the_checksums_that_roll_the_pods(dev: mockrun.Run) -> None:
    other_dashboard = run_stack("dev", DEV_SECRETS, {"coffee-rt:dashboardTokensSha256": "2" * 64})
    other_ingest = run_stack("dev", DEV_SECRETS, {"coffee-rt:ingestTokens": json.dumps(
        {"tokens": [{"store_id": "store-01", "sha256": "3" * 64, "label": "new till"}]})})
    assert _annotation(other_dashboard) != _annotation(dev) == _annotation(other_ingest)
    assert _ingest_checksum(other_ingest) != _ingest_checksum(dev) == _ingest_checksum(other_dashboard)
    assert re.fullmatch(r"[0-9a-f]{32}", _ingest_checksum(dev))
    for run in (dev, other_dashboard, other_ingest):  # the checksum says nothing of the content
        for value in (mockrun.PLACEHOLDER_SECRETS["dashboardTokensSha256"], "2" * 64, "3" * 64):
            assert value not in json.dumps(run.object("CoffeePipeline", "roastery")["spec"])
            assert value not in _annotation(run)


def test_the_ingest_and_dashboard_metrics_are_scraped_on_their_internal_ports(prod: mockrun.Run) -> None:
    for name, app in (("coffee-rt-ingest", "coffee-ingest"), ("coffee-rt-dashboard", "coffee-dashboard")):
        spec = prod.object("PodMonitor", name)["spec"]
        assert spec == {"selector": {"matchLabels": {"app.kubernetes.io/name": app}},
                        "podMetricsEndpoints": [{"port": "internal", "path": "/metrics", "interval": "15s"}]}
