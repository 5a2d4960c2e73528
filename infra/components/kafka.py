"""Kafka: a KRaft StatefulSet of the official ``apache/kafka`` image (each Pod broker and controller),
or an external bootstrap address; plus a Job that creates the topics of ``coffee_orders.topics`` (the orders
topic kept ``kafka.ordersRetentionDays``) and converges an existing topic's settings.

Why a plain StatefulSet rather than Strimzi: docs/infra-design.md.
"""

from __future__ import annotations

import base64
import hashlib
import shlex
import uuid

import pulumi
import pulumi_kubernetes as k8s

from coffee_orders import topics
from infra import hardening as h
from infra.config import resources
from infra.context import APP_KAFKA, APP_TOPICS, KAFKA_HEADLESS, KAFKA_SERVICE, Context

KAFKA_UID = 1000  # appuser in apache/kafka
CLIENT_PORT = 9092
CONTROLLER_PORT = 9093
DATA_DIR = "/var/lib/kafka/data"
TOPICS_JOB_RESOURCES = resources("100m", "384Mi", "1", "512Mi")  # two short JVM admin tools


def cluster_id(stack: str, namespace: str) -> str:
    """KRaft's cluster id (16 bytes, base64url): stable per stack and namespace, so a re-run of
    `pulumi up` never asks for a reformat."""
    raw = uuid.uuid5(uuid.NAMESPACE_URL, f"coffee-rt://{stack}/{namespace}/kafka").bytes
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def topic_script(bootstrap: str, replication_factor: int, min_insync: int,
                 orders_retention_days: int = topics.ORDERS_RETENTION_DAYS) -> str:
    """Create each topic if missing, then converge its configs (retention may change later)."""
    lines = ["set -eu", f"B={shlex.quote(bootstrap)}", "T=/opt/kafka/bin"]
    wanted = topics.with_orders_retention(orders_retention_days)
    for t in wanted:
        config = {**t.config, "min.insync.replicas": str(min_insync)}
        flags = " ".join(f"--config {shlex.quote(f'{k}={v}')}" for k, v in sorted(config.items()))
        joined = shlex.quote(",".join(f"{k}={v}" for k, v in sorted(config.items())))
        lines += [
            f"$T/kafka-topics.sh --bootstrap-server \"$B\" --create --if-not-exists --topic {shlex.quote(t.name)}"
            f" --partitions {t.partitions} --replication-factor {replication_factor} {flags}",
            f"$T/kafka-configs.sh --bootstrap-server \"$B\" --alter --entity-type topics"
            f" --entity-name {shlex.quote(t.name)} --add-config {joined}",
        ]
    # One --topic per call: kafka-topics.sh refuses a second one.
    lines += [f"$T/kafka-topics.sh --bootstrap-server \"$B\" --describe --topic {shlex.quote(t.name)}" for t in wanted]
    return "\n".join(lines) + "\n"


class Kafka(pulumi.ComponentResource):
    """``bootstrap`` is what every client uses (in-cluster Service or the external address)."""

    bootstrap: str
    statefulset: k8s.apps.v1.StatefulSet | None
    topics_job: k8s.batch.v1.Job | None

    def __init__(self, ctx: Context, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("coffee-rt:infra:Kafka", "kafka", None, opts)
        cfg, ns = ctx.cfg.kafka, ctx.ns
        self.statefulset = None
        self.topics_job = None
        if cfg.mode == "external":
            assert cfg.bootstrap is not None  # guaranteed by the config's cross-checks
            self.bootstrap = cfg.bootstrap
            rf, min_isr = cfg.replication_factor, cfg.min_insync_replicas
        else:
            self.bootstrap = f"{ctx.host(KAFKA_SERVICE)}:{CLIENT_PORT}"
            rf, min_isr = cfg.replication_factor, cfg.min_insync_replicas
            self._in_cluster(ctx)
        if cfg.create_topics:
            self._topics_job(ctx, rf, min_isr)
        self.register_outputs({"bootstrap": self.bootstrap, "namespace": ns})

    def _in_cluster(self, ctx: Context) -> None:
        cfg, ns = ctx.cfg.kafka, ctx.ns
        lbls, sel = h.labels(APP_KAFKA, "broker"), h.selector(APP_KAFKA, "broker")
        opts = h.child(self, ctx.namespace)
        ports = [{"name": "client", "port": CLIENT_PORT}, {"name": "controller", "port": CONTROLLER_PORT}]
        headless = k8s.core.v1.Service(
            "kafka-headless", metadata=h.meta(KAFKA_HEADLESS, ns, lbls),
            # Controllers must find each other before any is Ready (the quorum forms first).
            spec={"clusterIP": "None", "publishNotReadyAddresses": True, "selector": sel, "ports": ports},
            opts=opts)
        k8s.core.v1.Service(
            "kafka", metadata=h.meta(KAFKA_SERVICE, ns, lbls),
            spec={"selector": sel, "ports": [ports[0]]}, opts=opts)
        pod_dns = f"{KAFKA_HEADLESS}.{ns}.svc"
        voters = ",".join(f"{i}@kafka-{i}.{pod_dns}:{CONTROLLER_PORT}" for i in range(cfg.brokers))
        internal_rf = str(cfg.replication_factor)
        env = [
            # The StatefulSet ordinal (pod-index label, GA since Kubernetes 1.32) is the node id.
            h.field_env("KAFKA_NODE_ID", "metadata.labels['apps.kubernetes.io/pod-index']"),
            h.field_env("POD_NAME", "metadata.name"),
            {"name": "CLUSTER_ID", "value": cluster_id(pulumi.get_stack(), ns)},
            {"name": "KAFKA_PROCESS_ROLES", "value": "broker,controller"},
            {"name": "KAFKA_CONTROLLER_QUORUM_VOTERS", "value": voters},
            {"name": "KAFKA_LISTENERS", "value": f"PLAINTEXT://:{CLIENT_PORT},CONTROLLER://:{CONTROLLER_PORT}"},
            {"name": "KAFKA_ADVERTISED_LISTENERS", "value": f"PLAINTEXT://$(POD_NAME).{pod_dns}:{CLIENT_PORT}"},
            {"name": "KAFKA_CONTROLLER_LISTENER_NAMES", "value": "CONTROLLER"},
            {"name": "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP", "value": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"},
            {"name": "KAFKA_INTER_BROKER_LISTENER_NAME", "value": "PLAINTEXT"},
            {"name": "KAFKA_LOG_DIRS", "value": f"{DATA_DIR}/logs"},  # a subfolder: PVs may hold lost+found
            {"name": "KAFKA_NUM_PARTITIONS", "value": "3"},
            {"name": "KAFKA_DEFAULT_REPLICATION_FACTOR", "value": internal_rf},
            {"name": "KAFKA_MIN_INSYNC_REPLICAS", "value": str(cfg.min_insync_replicas)},
            {"name": "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR", "value": internal_rf},
            {"name": "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR", "value": internal_rf},
            {"name": "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR", "value": str(cfg.min_insync_replicas)},
            {"name": "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR", "value": internal_rf},
            {"name": "KAFKA_SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR", "value": str(cfg.min_insync_replicas)},
            {"name": "KAFKA_AUTO_CREATE_TOPICS_ENABLE", "value": "false"},
            {"name": "KAFKA_UNCLEAN_LEADER_ELECTION_ENABLE", "value": "false"},
            {"name": "KAFKA_HEAP_OPTS", "value": f"-Xms{cfg.heap} -Xmx{cfg.heap}"},
        ]
        broker = h.container(
            "kafka", ctx.cfg.images.kafka, cfg.resources, KAFKA_UID,
            # The image's start script renders its server.properties from KAFKA_* into /opt/kafka/config.
            read_only_root=False,
            ports=[{"name": "client", "containerPort": CLIENT_PORT},
                   {"name": "controller", "containerPort": CONTROLLER_PORT}],
            env=env,
            startupProbe={"tcpSocket": {"port": "client"}, "periodSeconds": 5, "failureThreshold": 60},
            readinessProbe={"tcpSocket": {"port": "client"}, "periodSeconds": 10},
            livenessProbe={"tcpSocket": {"port": "controller"}, "periodSeconds": 15, "failureThreshold": 4},
            volumeMounts=[{"name": "data", "mountPath": DATA_DIR}],
        )
        self.statefulset = k8s.apps.v1.StatefulSet(
            "kafka", metadata=h.meta("kafka", ns, lbls),
            spec={
                "serviceName": KAFKA_HEADLESS,
                "replicas": cfg.brokers,
                # All voters must start for the KRaft quorum to form: ordered start would deadlock.
                "podManagementPolicy": "Parallel",
                "updateStrategy": {"type": "RollingUpdate"},
                "selector": {"matchLabels": sel},
                "template": {"metadata": {"labels": lbls},
                             "spec": h.pod_spec([broker], KAFKA_UID, fs_group=KAFKA_UID,
                                                terminationGracePeriodSeconds=60, **h.spread(sel, cfg.brokers))},
                "volumeClaimTemplates": [h.pvc_template("data", cfg.storage.size, cfg.storage.storage_class)],
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"},
            },
            opts=h.child(self, ctx.namespace, headless))
        h.pdb("kafka", ns, sel, lbls, cfg.brokers, h.child(self, ctx.namespace))

    def _topics_job(self, ctx: Context, rf: int, min_isr: int) -> None:
        ns = ctx.ns
        script = topic_script(self.bootstrap, rf, min_isr, ctx.cfg.kafka.orders_retention_days)
        # Jobs are immutable: a new script (topic settings changed) is a new Job.
        name = f"kafka-topics-{hashlib.sha256(script.encode()).hexdigest()[:8]}"
        lbls = h.labels(APP_TOPICS, "setup")
        runner = h.container(
            "topics", ctx.cfg.images.kafka, TOPICS_JOB_RESOURCES, KAFKA_UID, command=["/bin/sh", "-c", script],
            env=[{"name": "KAFKA_HEAP_OPTS", "value": "-Xmx256m"}, {"name": "LOG_DIR", "value": "/tmp/logs"}],
            volumeMounts=[{"name": "tmp", "mountPath": "/tmp"}])
        self.topics_job = k8s.batch.v1.Job(
            "kafka-topics", metadata=h.meta(name, ns, lbls),
            spec={"backoffLimit": 20, "activeDeadlineSeconds": 900,
                  "template": {"metadata": {"labels": lbls},
                               "spec": h.pod_spec([runner], KAFKA_UID, restartPolicy="OnFailure",
                                                  volumes=[h.tmp_volume()])}},
            opts=h.child(self, ctx.namespace, self.statefulset))
