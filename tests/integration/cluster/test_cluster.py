"""The operator installed the kubectl way (operator/manifests, no Pulumi) on a real node: its pods and
the ingest and auditor pods it makes start non-root and pass their readiness probes, the ingest pods
take orders through their Service from the host and from a pod, a deleted ingest pod is replaced, and
kubectl logs / exec / port-forward work against the node. Every other image runs in the Pulumi
deployment test (test_pulumi_deploy.py)."""

from __future__ import annotations

import json
import random
import re
import subprocess
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import yaml
from cluster_helpers import apply, node_service

from coffee_ingest.auth import TokenFile, entry_for, new_token
from coffee_orders.loadgen import DEFAULT_STORES, random_order
from coffee_orders.schema import to_wire
from coffee_rt.k8s.kubectl import Kubectl
from coffee_rt.k8s.versions import KUBERNETES_VERSION
from coffee_rt.local.components.cluster import NODE_NAME, Cluster
from coffee_rt.local.settings import LocalSettings
from coffee_rt.paths import REPO_ROOT

NAMESPACE = "coffee-rt"
MANIFESTS = REPO_ROOT / "operator" / "manifests"
EXAMPLE = REPO_ROOT / "operator" / "examples" / "coffeepipeline.yaml"
PIPELINE = "demo"
INGEST_SELECTOR = f"app.kubernetes.io/name=coffee-ingest,app.kubernetes.io/instance={PIPELINE}"
AUDITOR_SELECTOR = f"app.kubernetes.io/name=coffee-auditor,app.kubernetes.io/instance={PIPELINE}"
OPERATOR_SELECTOR = "app.kubernetes.io/name=coffee-rt-operator"  # operator/manifests/deployment.yaml
STORE = DEFAULT_STORES[0].store_id


@pytest.fixture(scope="module")
def ingest_token() -> str:
    return new_token()


@pytest.fixture(scope="module")
def deployed(cluster: Cluster, kubectl: Kubectl, images: dict[str, str], pod_servers: LocalSettings,
             ingest_token: str) -> dict[str, str]:
    """The operator's manifests (its Deployment included) and the example pipeline (ingest and auditor images
    named as built here). Returns image name -> Deployment name."""
    for name in ("namespace.yaml", "crd.yaml", "rbac.yaml"):  # deployment.yaml below, with the image built here
        kubectl.apply(MANIFESTS / name)
    kubectl.wait_established("coffeepipelines.coffee-rt.dev")
    tokens = TokenFile(tokens=[entry_for(STORE, ingest_token, "cluster test")]).model_dump_json()
    redis_url = "redis://redis.coffee-rt.svc.cluster.local:6379/0"
    secrets = [("coffee-rt-ingest-auth", "tokens.json", tokens), ("coffee-rt-redis", "url", redis_url),
               ("coffee-rt-postgres", "dsn", "postgresql://coffee@postgres.coffee-rt.svc:5432/coffee")]
    objects: list[dict[str, Any]] = [
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": NAMESPACE},
         "stringData": {key: value}} for name, key, value in secrets]
    objects += node_service("kafka", NAMESPACE, 9092, cluster.node_ip, pod_servers.kafka_port)
    objects += node_service("redis", NAMESPACE, 6379, cluster.node_ip, pod_servers.redis_port)
    operator = yaml.safe_load((MANIFESTS / "deployment.yaml").read_text())  # as a kubectl user applies it
    (container,) = operator["spec"]["template"]["spec"]["containers"]
    container.update(image=images["operator"], imagePullPolicy="Never")
    objects.append(operator)
    apply(kubectl, objects)
    pipeline = yaml.safe_load(EXAMPLE.read_text())
    pipeline["spec"]["ingest"]["image"] = images["order-ingest"]
    pipeline["spec"]["audit"]["image"] = images["auditor"]  # its rounds fail here (no Postgres); it serves anyway
    kubectl.apply(json.dumps(pipeline))
    return {"operator": "coffee-rt-operator", "order-ingest": f"{PIPELINE}-ingest", "auditor": f"{PIPELINE}-auditor"}


def _pods(kubectl: Kubectl, selector: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(kubectl("get", "pods", "-n", NAMESPACE, "-l", selector,
                                                     "-o", "json"))["items"]
    return [p for p in items if p["metadata"].get("deletionTimestamp") is None]


def _ready(pod: dict[str, Any]) -> bool:
    conditions = {c["type"]: c["status"] for c in pod.get("status", {}).get("conditions", [])}
    return pod["status"].get("phase") == "Running" and conditions.get("Ready") == "True"


def _wait_ready_pods(kubectl: Kubectl, selector: str, count: int, timeout: float = 600.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    pods: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        pods = _pods(kubectl, selector)
        if len(pods) == count and all(_ready(p) for p in pods):
            return pods
        time.sleep(2)
    states = [(p["metadata"]["name"], p["status"].get("phase"), p["status"].get("containerStatuses")) for p in pods]
    raise AssertionError(f"{selector}: wanted {count} ready pods, have {states}")


def _ingest_cluster_ip(kubectl: Kubectl) -> str:
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        found = kubectl.run("get", "service", "-n", NAMESPACE, f"{PIPELINE}-ingest", "-o", "json", check=False)
        if found.returncode == 0:
            return str(json.loads(found.stdout)["spec"]["clusterIP"])
        time.sleep(2)
    raise AssertionError(f"the operator made no Service {PIPELINE}-ingest")


def _order_body() -> bytes:
    store = next(s for s in DEFAULT_STORES if s.store_id == STORE)
    return to_wire(random_order(random.Random(), store, datetime.now(UTC), "counter"))  # type: ignore[arg-type]


def test_node_runs_the_built_kubelet_on_containerd(cluster: Cluster, kubectl: Kubectl) -> None:
    node = json.loads(kubectl("get", "node", NODE_NAME, "-o", "json"))
    conditions = {c["type"]: c["status"] for c in node["status"]["conditions"]}
    assert conditions["Ready"] == "True"
    info = node["status"]["nodeInfo"]
    assert info["kubeletVersion"] == KUBERNETES_VERSION
    assert info["containerRuntimeVersion"].startswith("containerd://")
    addresses = {a["type"]: a["address"] for a in node["status"]["addresses"]}
    assert addresses["InternalIP"] == cluster.node_ip


@pytest.mark.parametrize("image", ["operator", "order-ingest", "auditor"])
def test_each_image_starts_non_root_and_passes_readiness(image: str, kubectl: Kubectl, images: dict[str, str],
                                                         deployed: dict[str, str]) -> None:
    selector = {"order-ingest": INGEST_SELECTOR, "operator": OPERATOR_SELECTOR, "auditor": AUDITOR_SELECTOR}[image]
    pods = _wait_ready_pods(kubectl, selector, 2 if image == "order-ingest" else 1)
    for pod in pods:
        assert pod["status"]["phase"] == "Running"
        assert pod["spec"]["containers"][0]["image"] == images[image]
        assert pod["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
        ids = kubectl("exec", "-n", NAMESPACE, pod["metadata"]["name"], "--", "sh", "-c", "id -u; id -g").split()
        assert ids == ["10001", "10001"]


def test_ingest_service_takes_orders_from_the_host_and_from_a_pod(kubectl: Kubectl, deployed: dict[str, str],
                                                                  ingest_token: str) -> None:
    _wait_ready_pods(kubectl, INGEST_SELECTOR, 2)
    cluster_ip = _ingest_cluster_ip(kubectl)
    response = httpx.post(f"http://{cluster_ip}/v1/orders", content=_order_body(), timeout=30,
                          headers={"Authorization": f"Bearer {ingest_token}", "Content-Type": "application/json"})
    assert response.status_code == 202, response.text
    client = _wait_ready_pods(kubectl, INGEST_SELECTOR, 2)[0]["metadata"]["name"]  # any pod with Python
    script = ("import sys, urllib.request; r = urllib.request.Request("
              f"'http://{PIPELINE}-ingest.{NAMESPACE}.svc.cluster.local/v1/orders', data=sys.stdin.buffer.read(), "
              f"headers={{'Authorization': 'Bearer {ingest_token}', 'Content-Type': 'application/json'}}); "
              "print(urllib.request.urlopen(r, timeout=30).status)")
    status = kubectl("exec", "-i", "-n", NAMESPACE, client, "--", "python", "-c", script,
                     stdin=_order_body().decode())
    assert status.strip() == "202"


def test_a_deleted_ingest_pod_is_replaced(kubectl: Kubectl, deployed: dict[str, str]) -> None:
    before = {p["metadata"]["name"] for p in _wait_ready_pods(kubectl, INGEST_SELECTOR, 2)}
    victim = sorted(before)[0]
    kubectl("delete", "pod", "-n", NAMESPACE, victim, "--wait=true")
    after = {p["metadata"]["name"] for p in _wait_ready_pods(kubectl, INGEST_SELECTOR, 2)}
    assert victim not in after
    assert len(after - before) == 1


def test_kubectl_logs_and_port_forward_reach_the_node(kubectl: Kubectl, deployed: dict[str, str]) -> None:
    pod = _wait_ready_pods(kubectl, INGEST_SELECTOR, 2)[0]["metadata"]["name"]
    logs = kubectl("logs", "-n", NAMESPACE, pod)
    assert "order ingest ready to accept orders" in logs
    argv = [str(kubectl.binary), "--kubeconfig", str(kubectl.kubeconfig), "port-forward", "-n", NAMESPACE,
            f"pod/{pod}", ":8080"]
    forward = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert forward.stdout is not None
        line = forward.stdout.readline()
        match = re.search(r"127\.0\.0\.1:(\d+) -> 8080", line)
        assert match, line
        response = httpx.get(f"http://127.0.0.1:{match.group(1)}/healthz", timeout=10)
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}
    finally:
        forward.terminate()
        forward.wait(timeout=10)
