"""The control plane itself: the pinned version answers; controllers, scheduler and kwok do their jobs."""

from __future__ import annotations

import json
import time
import uuid

from coffee_rt.k8s.kubectl import Kubectl
from coffee_rt.k8s.versions import KUBERNETES_VERSION, parse_release
from coffee_rt.local.stack import LocalStack


def test_server_is_the_pinned_release_and_kubectl_matches_its_minor(kubectl: Kubectl) -> None:
    versions = json.loads(kubectl("version", "-o", "json"))
    server, client = versions["serverVersion"], versions["clientVersion"]
    minor, _ = parse_release(KUBERNETES_VERSION)
    assert (server["gitVersion"], server["major"], server["minor"]) == (KUBERNETES_VERSION, "1", str(minor))
    assert server["gitTreeState"] == "archive"
    assert (client["major"], client["minor"]) == ("1", str(minor))


def test_stack_reports_k8s_running(kubectl: Kubectl, local_stack: LocalStack) -> None:
    (status,) = local_stack.status(["k8s"])
    assert (status.name, status.state, len(status.pids)) == ("k8s", "running", 5)
    assert status.address == local_stack.settings.k8s_apiserver_url


def test_admin_is_who_the_kubeconfig_says(kubectl: Kubectl) -> None:
    review = json.loads(kubectl("auth", "whoami", "-o", "json"))
    assert review["status"]["userInfo"]["username"] == "coffee-rt-admin"
    assert "system:masters" in review["status"]["userInfo"]["groups"]


def test_the_simulated_node_is_ready(kubectl: Kubectl) -> None:
    nodes = json.loads(kubectl("get", "nodes", "-o", "json"))["items"]
    assert [n["metadata"]["name"] for n in nodes] == ["coffee-rt-node"]
    conditions = {c["type"]: c["status"] for c in nodes[0]["status"]["conditions"]}
    assert conditions["Ready"] == "True"
    assert nodes[0]["status"]["allocatable"] == {"cpu": "32", "memory": "64Gi", "pods": "110"}


def test_deployment_gets_a_replicaset_and_running_pods(kubectl: Kubectl) -> None:
    """The controller-manager makes the ReplicaSet and Pods, the scheduler binds them, kwok runs them."""
    ns = f"cp-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", ns)
    try:
        kubectl("create", "deployment", "brew", "--image=registry.invalid/brew:1", "--replicas=3", "-n", ns)
        deadline = time.monotonic() + 60
        rs: list[dict[str, object]] = []
        pods: list[dict[str, object]] = []
        while time.monotonic() < deadline:
            rs = json.loads(kubectl("get", "rs", "-n", ns, "-l", "app=brew", "-o", "json"))["items"]
            pods = json.loads(kubectl("get", "pods", "-n", ns, "-l", "app=brew", "-o", "json"))["items"]
            if rs and len(pods) == 3 and all(p["status"].get("phase") == "Running" for p in pods):
                break
            time.sleep(0.5)
        assert len(rs) == 1
        owner = rs[0]["metadata"]["ownerReferences"][0]  # type: ignore[index]
        assert (owner["kind"], owner["name"]) == ("Deployment", "brew")
        assert rs[0]["spec"]["replicas"] == 3  # type: ignore[index]
        assert sorted(p["status"]["phase"] for p in pods) == ["Running"] * 3  # type: ignore[index]
        assert {p["spec"]["nodeName"] for p in pods} == {"coffee-rt-node"}  # type: ignore[index]
        kubectl("rollout", "status", "deployment/brew", "-n", ns, "--timeout=60s")
        deployment = json.loads(kubectl("get", "deployment", "brew", "-n", ns, "-o", "json"))
        assert (deployment["status"]["readyReplicas"], deployment["status"]["availableReplicas"]) == (3, 3)
    finally:
        kubectl("delete", "namespace", ns, "--wait=false")
