"""Fixtures for the operator's tests against the real Flink, Kafka, Postgres and Redis."""

from __future__ import annotations

import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "job"))

from job_harness import fresh_topics_and_sinks, midday_zone
from operator_harness import PG_SECRET, REDIS_SECRET, World

from coffee_flink.rest import FlinkRest
from coffee_jobconfig.secrets import POSTGRES_PASSWORD_KEY
from coffee_orders.loadgen import Store
from coffee_rt.k8s.kubectl import Kubectl
from coffee_rt.local.components.job import ACTIVE
from coffee_rt.local.secret_files import write_secret
from coffee_rt.local.stack import LocalStack


@pytest.fixture(scope="module", autouse=True)
def taskmanager_supervisor(local_stack: LocalStack, flink_rest_url: str) -> Iterator[list[str]]:
    """Restart the TaskManager if it dies, as Kubernetes restarts a crashed TaskManager Pod.

    Cancelling a PyFlink job now and then kills the TaskManager process (Beam's
    DefaultJobBundleFactory: "Reference count must not be negative", a fatal error in the task's
    cleanup). Nothing in the local stack restarts it, and with no slots every job would fail:
    what this tests is the operator, not that Beam bug, so the harness plays the kubelet."""
    taskmanager = next(p for p in local_stack["flink"].processes() if p.name.endswith("taskmanager"))
    restarts: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(1):
            if not taskmanager.is_running():
                restarts.append(datetime.now(UTC).isoformat())
                print(f"[operator-tests] TaskManager died; restarting it ({len(restarts)})", flush=True)
                taskmanager.start()

    watcher = threading.Thread(target=watch, name="taskmanager-supervisor", daemon=True)
    watcher.start()
    yield restarts
    stop.set()
    watcher.join(5)


@pytest.fixture(scope="module")
def world(local_stack: LocalStack, kafka_bootstrap: str, postgres_dsn: str, redis_url: str,
          flink_rest_url: str) -> Iterator[World]:
    orders_topic, dlq_topic = fresh_topics_and_sinks(kafka_bootstrap, postgres_dsn, redis_url, "orders-op")
    suffix = orders_topic.rsplit("-", 1)[1]
    now = datetime.now(UTC)
    zone = midday_zone(now)
    rest = FlinkRest(flink_rest_url)
    # What the session cluster mounts in Kubernetes (infra): the Postgres Secret's password and the
    # Redis Secret's URL, one file per key under a folder per Secret.
    mounted = local_stack.settings.state_dir / "operator-tests" / "secrets"
    write_secret(mounted / PG_SECRET[0] / POSTGRES_PASSWORD_KEY, local_stack.settings.postgres_password)
    write_secret(mounted / REDIS_SECRET[0] / REDIS_SECRET[1], redis_url)
    world = World(local_stack, rest, suffix, orders_topic, dlq_topic, zone,
                  now.astimezone(ZoneInfo(zone)).date().isoformat(),
                  [Store(f"store-{n}", zone) for n in range(1, 5)],
                  {PG_SECRET: postgres_dsn, REDIS_SECRET: redis_url}, mounted.resolve())
    started_ms = int(now.timestamp() * 1000)
    yield world
    # Leave the session cluster's slots free for later modules: cancel every job this module started.
    for entry in rest.jobs():
        if entry.get("start-time", 0) >= started_ms and entry["state"] in ACTIVE:
            rest.cancel(entry["jid"])
    rest.close()


# ---- Kubernetes: the real API server, the shipped CRD and RBAC in a namespace of the test's own ------

MANIFESTS = Path(__file__).resolve().parents[3] / "operator" / "manifests"


@pytest.fixture(scope="module")
def kubectl(k8s: Path) -> Kubectl:
    return Kubectl(k8s)


@pytest.fixture(scope="module")
def operator_namespace(kubectl: Kubectl) -> Iterator[str]:
    """The CRD installed, and a fresh namespace holding the shipped ServiceAccount, Role and RoleBinding."""
    kubectl.apply(MANIFESTS / "crd.yaml")
    kubectl.wait_established("coffeepipelines.coffee-rt.dev")
    ns = f"cp-op-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", ns)
    docs = [d for d in yaml.safe_load_all((MANIFESTS / "rbac.yaml").read_text()) if d]
    for doc in docs:
        doc["metadata"]["namespace"] = ns
        for subject in doc.get("subjects", []):
            subject["namespace"] = ns
    kubectl.apply(yaml.safe_dump_all(docs))
    yield ns
    # Never leave a pipeline stuck on a finalizer whose operator is gone.
    for name in kubectl("get", "cp", "-n", ns, "-o", "name").split():
        kubectl("patch", name, "-n", ns, "--type=merge", "-p", '{"metadata": {"finalizers": null}}')
    kubectl("delete", "namespace", ns, "--wait=false")
