"""The resource graph and the properties that matter, for the dev and prod example stacks (mocks)."""

from __future__ import annotations

import copy
import json
from collections import Counter
from typing import Any

import jsonschema
import yaml

from coffee_orders import topics
from coffee_rt.paths import REPO_ROOT
from infra import credentials, mockrun
from infra.components import kafka as kf
from infra.components.postgres import VERIFIERS_DIR
from infra.context import (
    INGEST_AUTH_SECRET,
    POSTGRES_JOB_SECRET,
    POSTGRES_ROLES_SECRET,
    POSTGRES_SECRET,
    REDIS_JOB_SECRET,
    REDIS_SECRET,
)

COMPONENTS = {"coffee-rt:infra:Postgres", "coffee-rt:infra:Redis", "coffee-rt:infra:Kafka", "coffee-rt:infra:Flink",
              "coffee-rt:infra:PipelineOperator", "coffee-rt:infra:Dashboard", "coffee-rt:infra:Monitoring",
              "coffee-rt:infra:NetworkPolicies"}

DEV_OBJECTS = {
    ("Namespace", "coffee-rt"),
    ("Secret", "coffee-rt-postgres"), ("Service", "postgres"), ("StatefulSet", "postgres"),
    ("Secret", "coffee-rt-postgres-roles"), ("Secret", "coffee-rt-postgres-job"),
    ("Secret", "coffee-rt-postgres-auditor"), ("Secret", "coffee-rt-postgres-dashboard"),
    ("Secret", "coffee-rt-postgres-monitor"),
    ("Secret", "coffee-rt-redis-server"), ("Secret", "coffee-rt-redis-job"), ("Secret", "coffee-rt-redis-auditor"),
    ("Secret", "coffee-rt-redis-dashboard"), ("Secret", "coffee-rt-redis-monitor"),
    ("ConfigMap", "postgres-migrations-*"), ("Job", "postgres-migrate-*"),
    ("Secret", "coffee-rt-redis"), ("Service", "redis"), ("StatefulSet", "redis"),
    ("Service", "kafka"), ("Service", "kafka-headless"), ("StatefulSet", "kafka"), ("Job", "kafka-topics-*"),
    ("ConfigMap", "flink-config"), ("PersistentVolumeClaim", "flink-state"),
    ("Deployment", "flink-jobmanager"), ("Service", "flink-jobmanager"), ("Deployment", "flink-taskmanager"),
    ("CustomResourceDefinition", "coffeepipelines.coffee-rt.dev"), ("ServiceAccount", "coffee-rt-operator"),
    ("Role", "coffee-rt-operator"), ("RoleBinding", "coffee-rt-operator"), ("Secret", "coffee-rt-ingest-auth"),
    ("Deployment", "coffee-rt-operator"), ("CoffeePipeline", "roastery"),
    ("Secret", "coffee-rt-dashboard-auth"), ("Deployment", "coffee-dashboard"), ("Service", "coffee-dashboard"),
    ("Deployment", "kafka-exporter"), ("Service", "kafka-exporter"),
    ("Deployment", "postgres-exporter"), ("Service", "postgres-exporter"),
    ("Deployment", "redis-exporter"), ("Service", "redis-exporter"),
    *{("NetworkPolicy", n) for n in (
        "default-deny", "allow-dns", "allow-kafka", "allow-flink", "allow-postgres", "allow-redis",
        "allow-coffee-ingest", "allow-coffee-dashboard", "allow-coffee-rt-operator", "allow-kafka-topics",
        "allow-postgres-migrate", "allow-kafka-exporter", "allow-postgres-exporter", "allow-redis-exporter",
        "allow-coffee-auditor", "allow-coffee-rebuild")},
}
PROD_EXTRA = {
    ("PodDisruptionBudget", "kafka"), ("PodDisruptionBudget", "flink-taskmanager"),
    ("PodDisruptionBudget", "coffee-dashboard"),
    ("ServiceAccount", "flink"), ("Role", "flink-ha"), ("RoleBinding", "flink-ha"), ("Secret", "coffee-rt-flink-s3"),
    ("PodMonitor", "coffee-rt-flink"), ("PodMonitor", "coffee-rt-ingest"), ("PodMonitor", "coffee-rt-operator"),
    ("PodMonitor", "coffee-rt-auditor"), ("PodMonitor", "coffee-rt-dashboard"),
    ("ServiceMonitor", "coffee-rt-exporters"), ("Secret", "coffee-rt-alertmanager-slack"),
    ("AlertmanagerConfig", "coffee-rt-slack"),
}


def objects(run: mockrun.Run) -> Counter[tuple[str, str]]:
    """(kind, name) of every Kubernetes object, content-hashed names shown as name-*."""
    out: Counter[tuple[str, str]] = Counter()
    for m in run.manifests():
        name = m["metadata"]["name"]
        if name.startswith(("postgres-migrations-", "postgres-migrate-", "kafka-topics-")):
            name = name.rsplit("-", 1)[0] + "-*"
        out[(m["kind"], name)] += 1
    return out


def container(m: dict[str, Any], name: str) -> dict[str, Any]:
    spec = m["spec"]["template"]["spec"]
    return next(c for c in [*spec.get("initContainers", []), *spec["containers"]] if c["name"] == name)


def env(c: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}


# -- the graph ---------------------------------------------------------------------------------


def exporter_scripts() -> set[tuple[str, str]]:
    """alerts/exporters/*.lua (the alerts issue's) add a ConfigMap for redis_exporter when present."""
    from infra.components.monitoring import exporter_scripts

    return {("ConfigMap", "redis-exporter-scripts")} if exporter_scripts() else set()


def test_dev_creates_exactly_these_objects(dev: mockrun.Run) -> None:
    assert objects(dev) == Counter(DEV_OBJECTS | exporter_scripts())
    assert len(DEV_OBJECTS) == 60


def test_prod_adds_pdbs_ha_s3_and_prometheus_objects_and_drops_the_state_pvc(prod: mockrun.Run) -> None:
    from infra.components.monitoring import rule_files

    rules = {("PrometheusRule", name) for name, _ in rule_files()}
    expected = (DEV_OBJECTS | PROD_EXTRA | rules | exporter_scripts()) - {("PersistentVolumeClaim", "flink-state")}
    assert objects(prod) == Counter(expected)


def test_every_object_is_parented_by_its_component_and_components_by_the_stack(dev: mockrun.Run,
                                                                                prod: mockrun.Run) -> None:
    for run in (dev, prod):
        components = [r for r in run.resources if not r.custom]
        assert {r.type for r in components} == COMPONENTS
        for comp in components:
            assert comp.parent.endswith("::coffee-rt-" + ("dev" if run is dev else "prod"))
        component_urns = {r.urn for r in components}
        for r in run.kubernetes():
            if r.type == "kubernetes:core/v1:Namespace":
                assert r.parent.endswith("pulumi:pulumi:Stack::coffee-rt-" + ("dev" if run is dev else "prod"))
            else:
                assert r.parent in component_urns, r.name


def test_children_sit_under_the_component_of_their_concern(dev: mockrun.Run) -> None:
    owner = {r.urn: r.type.rsplit(":", 1)[1] for r in dev.resources if not r.custom}
    by_kind = {(r.manifest["kind"], r.manifest["metadata"]["name"]): owner[r.parent]
               for r in dev.kubernetes() if r.parent in owner}
    assert by_kind[("StatefulSet", "kafka")] == "Kafka"
    assert by_kind[("StatefulSet", "postgres")] == "Postgres"
    assert by_kind[("StatefulSet", "redis")] == "Redis"
    assert by_kind[("Deployment", "flink-taskmanager")] == "Flink"
    assert by_kind[("CoffeePipeline", "roastery")] == "PipelineOperator"
    assert by_kind[("Deployment", "kafka-exporter")] == "Monitoring"
    assert by_kind[("NetworkPolicy", "allow-kafka")] == "NetworkPolicies"


def test_ordering_the_pipeline_waits_for_topics_migrations_and_flink(dev: mockrun.Run) -> None:
    pipeline = dev.find("kubernetes:coffee-rt.dev/v1alpha1:CoffeePipeline", "coffeepipeline")
    deps = {dev.by_urn(u).name for u in pipeline.dependencies}
    assert {"coffeepipelines", "coffee-rt-operator", "ingest-auth", "postgres-migrate", "kafka-topics",
            "flink-jobmanager", "flink-taskmanager"} <= deps
    migrate = dev.find("kubernetes:batch/v1:Job", "postgres-migrate")
    assert {dev.by_urn(u).name for u in migrate.dependencies} == {"postgres-migrations", "postgres", "postgres-roles"}


def test_stack_outputs(dev: mockrun.Run, prod: mockrun.Run) -> None:
    expected = {"namespace": "coffee-rt", "ingestUrl": "http://roastery-ingest.coffee-rt.svc",
                "dashboardUrl": "http://coffee-dashboard.coffee-rt.svc",
                "flinkUiUrl": "http://flink-jobmanager.coffee-rt.svc:8081",
                "kafkaBootstrap": "kafka.coffee-rt.svc:9092"}
    assert dev.outputs == expected
    assert prod.outputs == expected


# -- Kafka -----------------------------------------------------------------------------------------


def test_kafka_dev_is_one_broker_rf1(dev: mockrun.Run) -> None:
    sts = dev.object("StatefulSet", "kafka")
    assert sts["spec"]["replicas"] == 1
    e = env(container(sts, "kafka"))
    assert (e["KAFKA_DEFAULT_REPLICATION_FACTOR"], e["KAFKA_MIN_INSYNC_REPLICAS"]) == ("1", "1")
    assert e["KAFKA_CONTROLLER_QUORUM_VOTERS"] == "0@kafka-0.kafka-headless.coffee-rt.svc:9093"


def test_kafka_prod_is_three_brokers_rf3_min_isr2(prod: mockrun.Run) -> None:
    sts = prod.object("StatefulSet", "kafka")
    spec = sts["spec"]
    assert (spec["replicas"], spec["podManagementPolicy"], spec["serviceName"]) == (3, "Parallel", "kafka-headless")
    c = container(sts, "kafka")
    assert c["image"] == "apache/kafka:4.1.1"
    e = env(c)
    assert e["KAFKA_CONTROLLER_QUORUM_VOTERS"] == ",".join(
        f"{i}@kafka-{i}.kafka-headless.coffee-rt.svc:9093" for i in range(3))
    for key in ("KAFKA_DEFAULT_REPLICATION_FACTOR", "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
                "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"):
        assert e[key] == "3"
    assert (e["KAFKA_MIN_INSYNC_REPLICAS"], e["KAFKA_TRANSACTION_STATE_LOG_MIN_ISR"]) == ("2", "2")
    assert e["KAFKA_NODE_ID"] == {"fieldRef": {"fieldPath": "metadata.labels['apps.kubernetes.io/pod-index']"}}
    assert e["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://$(POD_NAME).kafka-headless.coffee-rt.svc:9092"
    assert e["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert e["KAFKA_HEAP_OPTS"] == "-Xms2g -Xmx2g"
    assert e["CLUSTER_ID"] == kf.cluster_id("prod", "coffee-rt") and len(e["CLUSTER_ID"]) == 22
    assert c["resources"] == {"requests": {"cpu": "1", "memory": "4Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}}
    (claim,) = spec["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"]["storage"] == "100Gi"
    assert prod.object("PodDisruptionBudget", "kafka")["spec"] == {
        "maxUnavailable": 1, "selector": {"matchLabels": {"app.kubernetes.io/name": "kafka",
                                                          "app.kubernetes.io/component": "broker"}}}
    affinity = spec["template"]["spec"]["affinity"]["podAntiAffinity"]
    assert affinity["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]["topologyKey"] == \
        "kubernetes.io/hostname"
    assert prod.object("Service", "kafka-headless")["spec"]["publishNotReadyAddresses"] is True


def test_topics_job_creates_every_topic_with_rf_min_isr_and_retention(prod: mockrun.Run) -> None:
    (job,) = [m for m in prod.manifests() if m["kind"] == "Job" and m["metadata"]["name"].startswith("kafka-topics")]
    script = container(job, "topics")["command"][2]
    assert script == kf.topic_script("kafka.coffee-rt.svc:9092", 3, 2)
    for t in topics.ALL:
        assert (f"--topic {t.name} --partitions {t.partitions} --replication-factor 3 "
                f"--config min.insync.replicas=2 --config retention.ms={t.config['retention.ms']}") in script
    assert script.count("--create --if-not-exists") == 2
    # kafka-topics.sh takes one --topic per call (a second one fails the Job)
    assert [line.count("--topic ") for line in script.splitlines() if "--topic" in line] == [1] * 4
    assert script.count("--describe --topic") == 2
    assert "retention.ms=3024000000" in script and "retention.ms=2592000000" in script


# -- Flink -----------------------------------------------------------------------------------------


def flink_conf(run: mockrun.Run) -> dict[str, Any]:
    return yaml.safe_load(run.object("ConfigMap", "flink-config")["data"]["config.yaml"])  # type: ignore[no-any-return]


def test_flink_dev_checkpoints_on_a_pvc_without_ha(dev: mockrun.Run) -> None:
    conf = flink_conf(dev)
    assert conf["execution.checkpointing.dir"] == "file:///flink-state/checkpoints"
    assert conf["execution.checkpointing.savepoint-dir"] == "file:///flink-state/savepoints"
    assert "high-availability.type" not in conf
    assert conf["metrics.reporter.prom.factory.class"] == \
        "org.apache.flink.metrics.prometheus.PrometheusReporterFactory"
    assert (conf["python.executable"], conf["rest.port"], conf["taskmanager.numberOfTaskSlots"]) == \
        ("/opt/venv/bin/python", 8081, 2)
    jm = dev.object("Deployment", "flink-jobmanager")
    assert container(jm, "jobmanager")["args"] == ["jobmanager"]
    assert {"name": "state", "persistentVolumeClaim": {"claimName": "flink-state"}} in \
        jm["spec"]["template"]["spec"]["volumes"]
    assert jm["spec"]["template"]["spec"]["automountServiceAccountToken"] is False
    assert dev.object("Service", "flink-jobmanager")["spec"]["ports"][2] == {"name": "rest", "port": 8081}


def test_flink_prod_uses_s3_and_kubernetes_ha(prod: mockrun.Run) -> None:
    conf = flink_conf(prod)
    assert conf["execution.checkpointing.dir"] == "s3://coffee-rt-flink-state/prod/checkpoints"
    assert conf["high-availability.type"] == "kubernetes"
    assert conf["high-availability.storageDir"] == "s3://coffee-rt-flink-state/prod/ha"
    assert conf["kubernetes.cluster-id"] == "coffee-rt-coffee-rt"
    assert conf["state.backend.type"] == "rocksdb"
    jm, tm = prod.object("Deployment", "flink-jobmanager"), prod.object("Deployment", "flink-taskmanager")
    assert container(jm, "jobmanager")["args"] == ["jobmanager", "$(POD_IP)"]
    assert (jm["spec"]["replicas"], tm["spec"]["replicas"]) == (1, 2)
    for d in (jm, tm):
        pod = d["spec"]["template"]["spec"]
        assert (pod["serviceAccountName"], pod["automountServiceAccountToken"]) == ("flink", True)
    e = env(container(tm, "taskmanager"))
    assert e["AWS_SECRET_ACCESS_KEY"] == {"secretKeyRef": {"name": "coffee-rt-flink-s3",
                                                           "key": "AWS_SECRET_ACCESS_KEY"}}
    assert e["ENABLE_BUILT_IN_PLUGINS"] == "flink-s3-fs-presto-2.2.1.jar"
    assert prod.object("Role", "flink-ha")["rules"][0]["resources"] == ["configmaps"]


def test_flink_gets_job_secrets_as_mounted_files_only(dev: mockrun.Run, prod: mockrun.Run) -> None:
    for run in (dev, prod):
        for name, comp in (("flink-jobmanager", "jobmanager"), ("flink-taskmanager", "taskmanager")):
            deployment = run.object("Deployment", name)
            volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
            # The job's own role's Secrets only (Postgres coffee_job, Redis coffee-job).
            assert {v["secret"]["secretName"] for v in volumes.values() if "secret" in v} == {
                POSTGRES_JOB_SECRET, REDIS_JOB_SECRET}
            assert volumes[POSTGRES_JOB_SECRET] == {"name": POSTGRES_JOB_SECRET, "secret": {
                "secretName": POSTGRES_JOB_SECRET, "items": [{"key": "password", "path": "password"}],
                "defaultMode": 0o440}}
            assert volumes[REDIS_JOB_SECRET] == {"name": REDIS_JOB_SECRET, "secret": {
                "secretName": REDIS_JOB_SECRET, "items": [{"key": "url", "path": "url"}], "defaultMode": 0o440}}
            c = container(deployment, comp)
            mounts = {m["name"]: m for m in c["volumeMounts"]}
            assert mounts[POSTGRES_JOB_SECRET] == {"name": POSTGRES_JOB_SECRET, "readOnly": True,
                                                   "mountPath": "/etc/coffee-rt/secrets/coffee-rt-postgres-job"}
            assert mounts[REDIS_JOB_SECRET] == {"name": REDIS_JOB_SECRET, "readOnly": True,
                                                "mountPath": "/etc/coffee-rt/secrets/coffee-rt-redis-job"}
            # PyFlink logs the environment of the Python processes it starts: no job credential there.
            refs = {(v["secretKeyRef"]["name"], v["secretKeyRef"]["key"])
                    for v in env(c).values() if isinstance(v, dict) and "secretKeyRef" in v}
            assert not refs & {(POSTGRES_SECRET, "password"), (POSTGRES_SECRET, "dsn"), (REDIS_SECRET, "url"),
                               (REDIS_SECRET, "password")}


# -- Postgres, Redis ------------------------------------------------------------------------------


def test_postgres_and_redis_secrets_and_services(dev: mockrun.Run) -> None:
    pg = dev.object("Secret", "coffee-rt-postgres")["stringData"]
    assert pg == {"dsn": "postgresql://coffee:placeholder-postgres-password@postgres.coffee-rt.svc:5432/coffee"
                         "?sslmode=disable",
                  "password": "placeholder-postgres-password", "user": "coffee", "database": "coffee"}
    rd = dev.object("Secret", "coffee-rt-redis")["stringData"]
    assert rd == {"url": "redis://:placeholder-redis-password@redis.coffee-rt.svc:6379/0",
                  "password": "placeholder-redis-password"}
    sts = dev.object("StatefulSet", "postgres")
    c = container(sts, "postgres")
    assert env(c)["POSTGRES_PASSWORD_FILE"] == "/etc/coffee-rt/postgres-owner/password"
    assert "POSTGRES_PASSWORD" not in env(c)
    assert {"name": "owner", "secret": {"secretName": POSTGRES_SECRET, "defaultMode": 0o440, "items": [
        {"key": "password", "path": "password"}]}} in sts["spec"]["template"]["spec"]["volumes"]
    assert c["readinessProbe"]["exec"]["command"] == ["pg_isready", "-h", "127.0.0.1", "-U", "coffee", "-d", "coffee"]
    sts = dev.object("StatefulSet", "redis")
    redis = container(sts, "redis")
    assert redis["command"] == ["sh", "-c", (
        'exec redis-server /etc/coffee-redis/users.conf --port "$REDIS_PORT" --dir "$REDIS_DATA_DIR" --appendonly yes '
        '--appendfsync everysec --maxmemory "$REDIS_MAXMEMORY" --maxmemory-policy noeviction --protected-mode no')]
    assert redis["readinessProbe"]["exec"]["command"] == [
        "sh", "-c", 'REDISCLI_AUTH="$(cat /etc/coffee-redis/admin-password)" redis-cli ping | grep -qx PONG']
    assert not [v for v in redis["env"] if "valueFrom" in v]
    assert {"name": "users", "projected": {"defaultMode": 0o440, "sources": [
        {"secret": {"name": "coffee-rt-redis-server", "items": [{"key": "users.conf", "path": "users.conf"}]}},
        {"secret": {"name": REDIS_SECRET, "items": [{"key": "password", "path": "admin-password"}]}}]}} in \
        sts["spec"]["template"]["spec"]["volumes"]


def test_migrations_job_runs_psql_on_the_shipped_sql(dev: mockrun.Run) -> None:
    from infra.migrations import configmap_data

    (cm,) = [m for m in dev.manifests()
             if m["kind"] == "ConfigMap" and m["metadata"]["name"].startswith("postgres-mig")]
    assert cm["data"] == {**configmap_data(), "roles.psql": credentials.roles_script(VERIFIERS_DIR)}
    assert sorted(cm["data"]) == ["0001_orders.sql", "0002_rollups.sql", "0003_ledger.sql", "0004_roles.sql",
                                  "0005_auditor_role.sql", "migrate.psql", "roles.psql"]
    assert cm["immutable"] is True
    (job,) = [m for m in dev.manifests() if m["kind"] == "Job" and m["metadata"]["name"].startswith("postgres-migrate")]
    c = container(job, "migrate")
    assert c["image"] == "postgres:15.14-bookworm"
    # The owner's DSN without its password; the password and the roles' verifiers are files.
    assert c["env"] == [{"name": "DATABASE_URL",
                         "value": "postgresql://coffee@postgres.coffee-rt.svc:5432/coffee?sslmode=disable"}]
    assert c["command"] == ["sh", "-c", 'export PGPASSWORD="$(cat /etc/coffee-rt/postgres-owner/password)" && '
                            'exec psql "$DATABASE_URL" -X -v ON_ERROR_STOP=1 -f /migrations/migrate.psql '
                            '-f /migrations/roles.psql']
    pod = job["spec"]["template"]["spec"]
    assert pod["volumes"][1:] == [
        {"name": "owner", "secret": {"secretName": POSTGRES_SECRET, "defaultMode": 0o440,
                                     "items": [{"key": "password", "path": "password"}]}},
        {"name": "verifiers", "secret": {"secretName": POSTGRES_ROLES_SECRET, "defaultMode": 0o440}}]
    assert pod["securityContext"]["fsGroup"] == 999
    assert pod["restartPolicy"] == "OnFailure"
    key = mockrun.PLACEHOLDER_SECRETS["credentialsKey"]
    assert dev.object("Secret", POSTGRES_ROLES_SECRET)["stringData"] == {
        role: credentials.postgres_verifier(key, role)
        for role in ("coffee_job", "coffee_dashboard", "coffee_monitor", "coffee_auditor")}


# -- Hardening ------------------------------------------------------------------------------------


def workloads(run: mockrun.Run) -> list[dict[str, Any]]:
    return [m for m in run.manifests() if m["kind"] in ("Deployment", "StatefulSet", "Job")]


def test_every_container_has_limits_non_root_and_drops_capabilities(dev: mockrun.Run, prod: mockrun.Run) -> None:
    writable_root = {("StatefulSet", "kafka", "kafka")}
    for run in (dev, prod):
        for w in workloads(run):
            pod = w["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True
            for c in [*pod.get("initContainers", []), *pod["containers"]]:
                res = c["resources"]
                assert set(res["requests"]) == set(res["limits"]) == {"cpu", "memory"}
                sc = c["securityContext"]
                assert (sc["runAsNonRoot"], sc["allowPrivilegeEscalation"], sc["capabilities"]) == \
                    (True, False, {"drop": ["ALL"]})
                assert sc["runAsUser"] != 0
                assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
                key = (w["kind"], w["metadata"]["name"], c["name"])
                assert sc["readOnlyRootFilesystem"] is (key not in writable_root), key


def test_long_running_containers_have_probes(dev: mockrun.Run) -> None:
    probes = {}
    for w in workloads(dev):
        if w["kind"] == "Job":
            continue
        for c in w["spec"]["template"]["spec"]["containers"]:
            probes[(w["metadata"]["name"], c["name"])] = sorted(k for k in c if k.endswith("Probe"))
    assert probes == {
        ("kafka", "kafka"): ["livenessProbe", "readinessProbe", "startupProbe"],
        ("postgres", "postgres"): ["livenessProbe", "readinessProbe"],
        ("redis", "redis"): ["livenessProbe", "readinessProbe"],
        ("flink-jobmanager", "jobmanager"): ["livenessProbe", "readinessProbe"],
        ("flink-taskmanager", "taskmanager"): ["livenessProbe"],
        ("coffee-rt-operator", "operator"): ["livenessProbe", "readinessProbe"],
        ("coffee-dashboard", "dashboard"): ["livenessProbe", "readinessProbe"],
        ("kafka-exporter", "kafka-exporter"): ["readinessProbe"],
        ("postgres-exporter", "postgres-exporter"): ["readinessProbe"],
        ("redis-exporter", "redis-exporter"): ["readinessProbe"],
    }


def test_pdbs_only_for_multi_replica_workloads(dev: mockrun.Run, prod: mockrun.Run) -> None:
    assert [m for m in dev.manifests() if m["kind"] == "PodDisruptionBudget"] == []
    pdbs = {m["metadata"]["name"]: m["spec"]["maxUnavailable"] for m in prod.manifests()
            if m["kind"] == "PodDisruptionBudget"}
    assert pdbs == {"kafka": 1, "flink-taskmanager": 1, "coffee-dashboard": 1}


def test_namespace_enforces_restricted(dev: mockrun.Run, prod: mockrun.Run) -> None:
    for run in (dev, prod):
        labels = run.object("Namespace", "coffee-rt")["metadata"]["labels"]
        assert {k: v for k, v in labels.items() if k.startswith("pod-security.")} == {
            "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/warn": "restricted",
            "pod-security.kubernetes.io/audit": "restricted"}


def test_every_pod_meets_the_restricted_pod_security_standard(dev: mockrun.Run, prod: mockrun.Run) -> None:
    from infra.policy.rules import pod_security_restricted, pod_spec

    for run in (dev, prod):
        pods = [m for m in run.manifests() if pod_spec(m) is not None]
        assert {m["kind"] for m in pods} == {"Deployment", "StatefulSet", "Job"}
        assert len(pods) > 10
        assert [str(v) for m in pods for v in pod_security_restricted(m)] == []


# -- Secrets --------------------------------------------------------------------------------------


def test_secret_values_are_pulumi_secrets_and_appear_nowhere_else(dev: mockrun.Run, prod: mockrun.Run) -> None:
    for run in (dev, prod):
        secrets = [r for r in run.kubernetes() if r.type == "kubernetes:core/v1:Secret"]
        assert secrets and all(r.secret_inputs() == {"stringData"} for r in secrets)
        others = json.dumps([r.manifest for r in run.kubernetes() if r.type != "kubernetes:core/v1:Secret"])
        for value in mockrun.PLACEHOLDER_SECRETS.values():
            assert value not in others
            assert value not in json.dumps(run.outputs)


def test_sink_secret_names_are_the_ones_the_operator_role_may_read(dev: mockrun.Run) -> None:
    """The operator reads the sink Secrets (403 for any other); the ingest Secret is only mounted by Pods."""
    role = dev.object("Role", "coffee-rt-operator")
    (secret_rule,) = [r for r in role["rules"] if r["resources"] == ["secrets"]]
    spec = dev.object("CoffeePipeline", "roastery")["spec"]
    sinks = {spec["sinks"]["postgres"]["secretRef"]["name"], spec["sinks"]["redis"]["secretRef"]["name"]}
    assert sinks == {POSTGRES_JOB_SECRET, REDIS_JOB_SECRET}
    assert sinks <= set(secret_rule["resourceNames"])
    assert spec["ingest"]["authSecretRef"]["name"] == INGEST_AUTH_SECRET
    assert dev.object("Secret", INGEST_AUTH_SECRET)["stringData"] == {
        "tokens.json": mockrun.PLACEHOLDER_SECRETS["ingestTokens"]}


# -- The operator and the pipeline -------------------------------------------------------------


def test_crd_and_rbac_come_from_operator_manifests(dev: mockrun.Run) -> None:
    shipped = yaml.safe_load((REPO_ROOT / "operator/manifests/crd.yaml").read_text())
    assert dev.object("CustomResourceDefinition", "coffeepipelines.coffee-rt.dev")["spec"] == shipped["spec"]
    rbac = {d["kind"]: d for d in yaml.safe_load_all((REPO_ROOT / "operator/manifests/rbac.yaml").read_text())}
    assert dev.object("Role", "coffee-rt-operator")["rules"] == rbac["Role"]["rules"]
    assert dev.object("RoleBinding", "coffee-rt-operator")["subjects"] == rbac["RoleBinding"]["subjects"]


def test_operator_deployment_is_the_shipped_manifest(dev: mockrun.Run, prod: mockrun.Run) -> None:
    """kubectl users and Pulumi run one Deployment: the dev stack's defaults render it unchanged but
    for Pulumi's label; prod changes only the image and resources of the stack config."""
    shipped = yaml.safe_load((REPO_ROOT / "operator/manifests/deployment.yaml").read_text())
    managed = {"app.kubernetes.io/managed-by": "pulumi"}
    expected = copy.deepcopy(shipped["spec"])
    expected["template"]["metadata"]["labels"].update(managed)
    assert dev.object("Deployment", "coffee-rt-operator")["spec"] == expected
    assert dev.object("Deployment", "coffee-rt-operator")["metadata"]["labels"] == {
        **shipped["metadata"]["labels"], **managed}
    rendered = prod.object("Deployment", "coffee-rt-operator")["spec"]
    (prod_container,) = rendered["template"]["spec"]["containers"]
    (container,) = expected["template"]["spec"]["containers"]
    assert {k: v for k, v in prod_container.items() if k not in ("image", "resources")} == {
        k: v for k, v in container.items() if k not in ("image", "resources")}
    assert prod_container["image"] != container["image"]


def test_operator_deployment(dev: mockrun.Run) -> None:
    d = dev.object("Deployment", "coffee-rt-operator")
    assert (d["spec"]["replicas"], d["spec"]["strategy"]) == (1, {"type": "Recreate"})
    pod = d["spec"]["template"]["spec"]
    assert (pod["serviceAccountName"], pod["automountServiceAccountToken"]) == ("coffee-rt-operator", True)
    c = container(d, "operator")
    assert c["image"] == "coffee-rt/operator:0.1.0"
    assert [c["command"], c["args"]] == [["kopf"], ["run", "-m", "coffee_operator.handlers", "--standalone",
                                                    "--namespace=coffee-rt", "--liveness=http://0.0.0.0:8080/healthz"]]


def test_coffeepipeline_is_wired_to_everything_and_valid_for_the_crd(dev: mockrun.Run, prod: mockrun.Run) -> None:
    crd = dev.object("CustomResourceDefinition", "coffeepipelines.coffee-rt.dev")
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for run, replicas, parallelism, image in ((dev, 1, 1, "coffee-rt/order-ingest:0.1.0"),
                                              (prod, 3, 4, "registry.example.com/coffee-rt/order-ingest:0.1.0")):
        cp = run.object("CoffeePipeline", "roastery")
        jsonschema.validate(cp, schema)
        spec = cp["spec"]
        assert spec["kafka"] == {"bootstrap": "kafka.coffee-rt.svc:9092",
                                 "topics": {"orders": "orders", "dlq": "orders.dlq"}}
        assert spec["job"]["restUrl"] == "http://flink-jobmanager.coffee-rt.svc:8081"
        assert spec["job"]["entry"] == {"module": "coffee_job.main"}
        assert (spec["ingest"]["image"], spec["ingest"]["replicas"], spec["job"]["parallelism"]) == \
            (image, replicas, parallelism)
        assert spec["ingest"]["authSecretRef"] == {"name": INGEST_AUTH_SECRET, "key": "tokens.json"}
        assert spec["audit"] == {"enabled": True, "image": image.replace("order-ingest", "auditor"), "interval": "30s",
                                 "postgresSecretRef": {"name": "coffee-rt-postgres-auditor", "key": "dsn"},
                                 "redisSecretRef": {"name": "coffee-rt-redis-auditor", "key": "url"}}


# -- Policies (the same rules the PulumiPolicy pack runs) ---------------------------------------


def test_every_object_passes_the_policy_rules(dev: mockrun.Run, prod: mockrun.Run) -> None:
    from infra.policy.rules import check

    for run in (dev, prod):
        assert [str(v) for m in run.manifests() for v in check(m)] == []


def test_every_object_passes_the_policy_pack_validators(prod: mockrun.Run) -> None:
    from types import SimpleNamespace

    from pulumi_policy import ResourceValidationPolicy

    from infra.policy.pack import policies

    reported: list[str] = []
    for policy in policies():
        assert isinstance(policy, ResourceValidationPolicy)
        for r in prod.kubernetes():
            policy.validate(SimpleNamespace(resource_type=r.type, props=r.manifest),  # type: ignore[arg-type]
                            lambda msg, urn: reported.append(msg))
    assert reported == []


def test_the_program_runs_after_asyncio_run_left_no_event_loop() -> None:
    """asyncio.run elsewhere in the process (another test, a tool) unsets the thread's event loop;
    Pulumi's runtime needs one, so without this every program run after such a call would fail."""
    import asyncio

    from conftest import DEV_SECRETS, run_stack

    asyncio.run(asyncio.sleep(0))
    run = run_stack("dev", DEV_SECRETS)
    assert sum(1 for r in run.resources if r.type == "kubernetes:apps/v1:StatefulSet") == 3


def test_prod_protects_and_retains_the_data_and_dev_does_not(dev: mockrun.Run, prod: mockrun.Run) -> None:
    data = {("kubernetes:core/v1:Namespace", "namespace"), ("kubernetes:apps/v1:StatefulSet", "kafka"),
            ("kubernetes:apps/v1:StatefulSet", "postgres"), ("kubernetes:apps/v1:StatefulSet", "redis"),
            ("kubernetes:core/v1:PersistentVolumeClaim", "flink-state")}
    kept = {(r.type, r.name) for r in prod.resources if r.protect and r.retain_on_delete}
    present = {(r.type, r.name) for r in prod.resources} & data
    assert kept == present
    assert {("kubernetes:core/v1:Namespace", "namespace"), ("kubernetes:apps/v1:StatefulSet", "kafka")} <= kept
    assert not [r.name for r in prod.resources if (r.protect or r.retain_on_delete) and (r.type, r.name) not in data]
    assert not [r.name for r in dev.resources if r.protect or r.retain_on_delete]
