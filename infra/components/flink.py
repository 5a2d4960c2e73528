"""The Flink session cluster the operator submits the job to: JobManager Deployment + Service (REST
8081), TaskManager Deployment, ``config.yaml``, all running the job image built from jobs/Dockerfile.

Config comes from a ConfigMap that an init container copies into a writable ``/opt/flink/conf``
(the image's entrypoint rewrites config.yaml at start, and the root filesystem is read-only).
Checkpoints and savepoints go to an S3-compatible URI or a PVC; in prod the Kubernetes HA services
keep job metadata in ConfigMaps so a restarted JobManager recovers the running job.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import yaml

from coffee_jobconfig.secrets import CLUSTER_SECRETS_DIR, POSTGRES_PASSWORD_KEY
from infra import hardening as h
from infra.components.flink_release import FLINK_VERSION, JAVA_OPTS_ALL, LOG4J_CONSOLE_PROPERTIES
from infra.config import resources
from infra.context import (
    APP_FLINK,
    FLINK_DEPLOYMENTS,
    FLINK_JOBMANAGER,
    POSTGRES_JOB_SECRET,
    REDIS_JOB_SECRET,
    S3_SECRET,
    Context,
)

FLINK_UID = 9999  # flink in the official image
REST_PORT = 8081
RPC_PORT = 6123
BLOB_PORT = 6124
TM_RPC_PORT = 6122
TM_DATA_PORT = 6121
METRICS_PORT = 9249
STATE_MOUNT = "/flink-state"
PYTHON = "/opt/venv/bin/python"  # jobs/Dockerfile
INIT_RESOURCES = resources("10m", "16Mi", "100m", "32Mi")


def state_base(ctx: Context) -> str:
    uri = ctx.cfg.flink.state_uri
    return uri.rstrip("/") if uri else f"file://{STATE_MOUNT}"


def cluster_id(ctx: Context) -> str:
    return f"coffee-rt-{ctx.ns}"[:45]


def flink_config(ctx: Context) -> dict[str, Any]:
    """config.yaml for JobManager and TaskManagers (same keys as the local stack's Flink)."""
    f, base = ctx.cfg.flink, state_base(ctx)
    conf: dict[str, Any] = {
        "env.java.opts.all": JAVA_OPTS_ALL,
        "jobmanager.rpc.address": FLINK_JOBMANAGER,
        "jobmanager.rpc.port": RPC_PORT,
        "jobmanager.bind-host": "0.0.0.0",  # noqa: S104 - inside the Pod, behind the Service
        "jobmanager.memory.process.size": f.job_manager_memory,
        "jobmanager.execution.failover-strategy": "region",
        "taskmanager.bind-host": "0.0.0.0",  # noqa: S104
        "taskmanager.rpc.port": str(TM_RPC_PORT),
        "taskmanager.data.port": TM_DATA_PORT,
        "taskmanager.numberOfTaskSlots": f.slots_per_task_manager,
        "taskmanager.memory.process.size": f.task_manager_memory,
        "blob.server.port": str(BLOB_PORT),
        "rest.address": FLINK_JOBMANAGER,
        "rest.bind-address": "0.0.0.0",  # noqa: S104
        "rest.port": REST_PORT,
        "parallelism.default": 1,
        "io.tmp.dirs": "/tmp",
        "state.backend.type": f.state_backend,
        "execution.checkpointing.dir": f"{base}/checkpoints",
        "execution.checkpointing.savepoint-dir": f"{base}/savepoints",
        "execution.checkpointing.num-retained": 3,
        # A task slow to cancel (a JDBC sink's close() retrying into a Postgres that is down) would
        # after this timeout be a fatal TaskManager error, ending the process and its slots: 0
        # turns that watchdog off. (The job's Postgres sinks do not throw from close() after a
        # failure, which Flink would also treat as fatal: docs/flink-job.md.)
        "task.cancellation.timeout": 0,
        # The job's state as gauges (<state>State = 1): the dashboard reads it there, not from REST.
        "metrics.job.status.enable": "STATE",
        "metrics.reporter.prom.factory.class": "org.apache.flink.metrics.prometheus.PrometheusReporterFactory",
        "metrics.reporter.prom.port": str(METRICS_PORT),
        "python.executable": PYTHON,
        "python.client.executable": PYTHON,
        # The operator uploads the flink-python jar and runs the job through REST. The image also
        # has that jar in lib/, and pemja (PyFlink's thread mode) loads parent-first: its native
        # library can belong to one class loader per JVM only, not to one per job.
        "classloader.parent-first-patterns.additional": "pemja.",
        "web.submit.enable": True,
        "web.cancel.enable": True,
    }
    if f.high_availability:
        conf.update({
            "high-availability.type": "kubernetes",
            "high-availability.storageDir": f"{base}/ha",
            "kubernetes.cluster-id": cluster_id(ctx),
            "kubernetes.namespace": ctx.ns,
        })
    if f.s3_endpoint:
        conf.update({"s3.endpoint": f.s3_endpoint, "s3.path.style.access": True})
    return conf


class Flink(pulumi.ComponentResource):
    """``rest_url`` is the JobManager's REST endpoint (the operator's ``job.restUrl``, the Flink UI);
    ``jobmanager_metrics_url`` its Prometheus metrics (the dashboard's view of the job)."""

    rest_url: str
    jobmanager_metrics_url: str
    jobmanager: k8s.apps.v1.Deployment
    taskmanager: k8s.apps.v1.Deployment
    config_map: k8s.core.v1.ConfigMap

    def __init__(self, ctx: Context, depends_on: list[pulumi.Resource],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("coffee-rt:infra:Flink", "flink", None, opts)
        f, ns = ctx.cfg.flink, ctx.ns
        self.rest_url = f"http://{ctx.host(FLINK_JOBMANAGER)}:{REST_PORT}"
        self.jobmanager_metrics_url = f"http://{ctx.host(FLINK_JOBMANAGER)}:{METRICS_PORT}/"
        opts_ = h.child(self, ctx.namespace)
        conf_text = yaml.safe_dump(flink_config(ctx), sort_keys=True)
        log4j = LOG4J_CONSOLE_PROPERTIES
        self.config_map = k8s.core.v1.ConfigMap(
            "flink-config", metadata=h.meta("flink-config", ns, h.labels(APP_FLINK, "config")),
            data={"config.yaml": conf_text, "log4j-console.properties": log4j}, opts=opts_)
        # Pods roll when the config changes (a ConfigMap edit alone would not restart them).
        config_hash = hashlib.sha256((conf_text + log4j).encode()).hexdigest()[:16]

        volumes: list[dict[str, Any]] = [
            {"name": "flink-config-src", "configMap": {"name": "flink-config"}},
            h.tmp_volume("flink-conf", "16Mi"), h.tmp_volume("tmp", "2Gi"), h.tmp_volume("log", "256Mi")]
        mounts: list[dict[str, Any]] = [{"name": "flink-conf", "mountPath": "/opt/flink/conf"},
                  {"name": "tmp", "mountPath": "/tmp"}, {"name": "log", "mountPath": "/opt/flink/log"}]
        state_pvc = None
        if f.state_uri is None:
            spec: dict[str, Any] = {"accessModes": [f.state_access_mode],
                                    "resources": {"requests": {"storage": f.state_storage.size}}}
            if f.state_storage.storage_class:
                spec["storageClassName"] = f.state_storage.storage_class
            state_pvc = k8s.core.v1.PersistentVolumeClaim(
                "flink-state", metadata=h.meta("flink-state", ns, h.labels(APP_FLINK, "state")), spec=spec,
                opts=opts_)
            volumes.append({"name": "state", "persistentVolumeClaim": {"claimName": "flink-state"}})
            mounts.append({"name": "state", "mountPath": STATE_MOUNT})

        # The job's credentials are files: the Secrets its sinks name (the job's own roles: Postgres
        # coffee_job, Redis coffee-job), mounted read-only at
        # <CLUSTER_SECRETS_DIR>/<secret>/<key> (coffee_jobconfig.secrets), where the operator's job
        # config points. Never environment variables: PyFlink logs the environment of every
        # Python process it starts.
        for secret, key in ((POSTGRES_JOB_SECRET, POSTGRES_PASSWORD_KEY), (REDIS_JOB_SECRET, "url")):
            volumes.append({"name": secret, "secret": {"secretName": secret, "items": [{"key": key, "path": key}],
                                                       "defaultMode": 0o440}})
            mounts.append({"name": secret, "mountPath": f"{CLUSTER_SECRETS_DIR}/{secret}", "readOnly": True})
        env: list[dict[str, Any]] = [h.field_env("POD_IP", "status.podIP")]
        if f.state_uri is not None:
            env += [h.secret_env("AWS_ACCESS_KEY_ID", S3_SECRET, "AWS_ACCESS_KEY_ID"),
                    h.secret_env("AWS_SECRET_ACCESS_KEY", S3_SECRET, "AWS_SECRET_ACCESS_KEY"),
                    {"name": "ENABLE_BUILT_IN_PLUGINS", "value": f"flink-s3-fs-presto-{FLINK_VERSION}.jar"}]
            secrets = ctx.cfg.secrets
            assert secrets.s3_access_key_id is not None and secrets.s3_secret_access_key is not None
            k8s.core.v1.Secret(
                "flink-s3", metadata=h.meta(S3_SECRET, ns, h.labels(APP_FLINK, "state")), type="Opaque",
                string_data=pulumi.Output.secret({
                    "AWS_ACCESS_KEY_ID": secrets.s3_access_key_id.get_secret_value(),
                    "AWS_SECRET_ACCESS_KEY": secrets.s3_secret_access_key.get_secret_value()}),
                opts=opts_)

        service_account = None
        if f.high_availability:
            service_account = self._ha_rbac(ctx)

        copy_conf = h.container(
            "config", ctx.cfg.images.flink, INIT_RESOURCES, FLINK_UID,
            command=["sh", "-c", "cp /etc/flink-config/* /opt/flink/conf/"],
            volumeMounts=[{"name": "flink-config-src", "mountPath": "/etc/flink-config", "readOnly": True},
                          {"name": "flink-conf", "mountPath": "/opt/flink/conf"}])

        def pod(component: str, args: list[str], ports: list[dict[str, Any]], probes: dict[str, Any],
                res: Any, replicas: int) -> dict[str, Any]:
            sel = h.selector(APP_FLINK, component)
            main = h.container(component, ctx.cfg.images.flink, res, FLINK_UID, args=args, ports=ports, env=env,
                               volumeMounts=mounts, **probes)
            return {"replicas": replicas, "selector": {"matchLabels": sel},
                    "template": {"metadata": {"labels": h.labels(APP_FLINK, component),
                                              "annotations": {"coffee-rt.dev/config-hash": config_hash}},
                                 "spec": h.pod_spec([main], FLINK_UID, fs_group=FLINK_UID,
                                                    service_account=service_account,
                                                    initContainers=[copy_conf], volumes=volumes,
                                                    terminationGracePeriodSeconds=60, **h.spread(sel, replicas))}}

        jm_lbls, jm_sel = h.labels(APP_FLINK, "jobmanager"), h.selector(APP_FLINK, "jobmanager")
        metrics_port = {"name": "metrics", "containerPort": METRICS_PORT}
        jm_spec = pod(
            "jobmanager",
            # With HA the JobManager announces its Pod IP (the leader is found through the HA ConfigMaps).
            ["jobmanager", "$(POD_IP)"] if f.high_availability else ["jobmanager"],
            [{"name": "rpc", "containerPort": RPC_PORT}, {"name": "blob", "containerPort": BLOB_PORT},
             {"name": "rest", "containerPort": REST_PORT}, metrics_port],
            {"readinessProbe": {"httpGet": {"path": "/config", "port": "rest"}, "periodSeconds": 10},
             "livenessProbe": {"tcpSocket": {"port": "rpc"}, "initialDelaySeconds": 30, "periodSeconds": 15,
                               "failureThreshold": 4}},
            f.job_manager_resources, 1)
        # One JobManager; Kubernetes restarts it and, with HA, it recovers the job from the HA store.
        jm_spec["strategy"] = {"type": "Recreate"}
        deps = [ctx.namespace, self.config_map, state_pvc, *depends_on]
        jm_name, tm_name = FLINK_DEPLOYMENTS
        # The job's image is the operator's once the Deployments exist (spec.job.image): it sets a new one
        # between the old job's savepoint and the new job's submission, never under a running job.
        image_is_the_operators = pulumi.ResourceOptions(ignore_changes=[
            "spec.template.spec.containers[*].image", "spec.template.spec.initContainers[*].image"])
        self.jobmanager = k8s.apps.v1.Deployment(
            "flink-jobmanager", metadata=h.meta(jm_name, ns, jm_lbls), spec=jm_spec,
            opts=pulumi.ResourceOptions.merge(h.child(self, *deps), image_is_the_operators))
        k8s.core.v1.Service(
            "flink-jobmanager", metadata=h.meta(FLINK_JOBMANAGER, ns, jm_lbls),
            spec={"selector": jm_sel, "ports": [{"name": "rpc", "port": RPC_PORT}, {"name": "blob", "port": BLOB_PORT},
                                                {"name": "rest", "port": REST_PORT},
                                                {"name": "metrics", "port": METRICS_PORT}]},
            opts=opts_)
        tm_lbls, tm_sel = h.labels(APP_FLINK, "taskmanager"), h.selector(APP_FLINK, "taskmanager")
        self.taskmanager = k8s.apps.v1.Deployment(
            "flink-taskmanager", metadata=h.meta(tm_name, ns, tm_lbls),
            spec=pod("taskmanager", ["taskmanager"],
                     [{"name": "rpc", "containerPort": TM_RPC_PORT}, {"name": "data", "containerPort": TM_DATA_PORT},
                      metrics_port],
                     {"livenessProbe": {"tcpSocket": {"port": "rpc"}, "initialDelaySeconds": 30,
                                        "periodSeconds": 15, "failureThreshold": 4}},
                     f.task_manager_resources, f.task_managers),
            opts=pulumi.ResourceOptions.merge(h.child(self, *deps), image_is_the_operators))
        h.pdb("flink-taskmanager", ns, tm_sel, tm_lbls, f.task_managers, opts_)
        self.register_outputs({"restUrl": self.rest_url})

    def _ha_rbac(self, ctx: Context) -> str:
        """Flink's Kubernetes HA services keep leader and job metadata in ConfigMaps of the namespace."""
        ns, name = ctx.ns, "flink"
        lbls = h.labels(APP_FLINK, "ha")
        opts = h.child(self, ctx.namespace)
        sa = k8s.core.v1.ServiceAccount("flink", metadata=h.meta(name, ns, lbls), opts=opts)
        role = k8s.rbac.v1.Role("flink-ha", metadata=h.meta("flink-ha", ns, lbls), rules=[
            {"apiGroups": [""], "resources": ["configmaps"],
             "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]},
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
             "verbs": ["get", "list", "watch", "create", "update", "patch", "delete"]}], opts=opts)
        k8s.rbac.v1.RoleBinding(
            "flink-ha", metadata=h.meta("flink-ha", ns, lbls),
            role_ref={"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "flink-ha"},
            subjects=[{"kind": "ServiceAccount", "name": name, "namespace": ns}],
            opts=h.child(self, ctx.namespace, sa, role))
        return name
