"""The control plane itself: the pinned version answers, and the controller-manager does its job."""

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
    assert (status.name, status.state, len(status.pids)) == ("k8s", "running", 3)
    assert status.address == local_stack.settings.k8s_apiserver_url


def test_admin_is_who_the_kubeconfig_says(kubectl: Kubectl) -> None:
    review = json.loads(kubectl("auth", "whoami", "-o", "json"))
    assert review["status"]["userInfo"]["username"] == "coffee-rt-admin"
    assert "system:masters" in review["status"]["userInfo"]["groups"]


def test_deployment_gets_a_replicaset_and_pods(kubectl: Kubectl) -> None:
    """Only the controller-manager turns a Deployment into a ReplicaSet and Pods (Pending: no nodes)."""
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
            if rs and len(pods) == 3:
                break
            time.sleep(0.5)
        assert len(rs) == 1
        owner = rs[0]["metadata"]["ownerReferences"][0]  # type: ignore[index]
        assert (owner["kind"], owner["name"]) == ("Deployment", "brew")
        assert rs[0]["spec"]["replicas"] == 3  # type: ignore[index]
        assert sorted(p["status"]["phase"] for p in pods) == ["Pending"] * 3  # type: ignore[index]
    finally:
        kubectl("delete", "namespace", ns, "--wait=false")
