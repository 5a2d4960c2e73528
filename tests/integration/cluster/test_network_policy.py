"""NetworkPolicies are enforced on the real node (kube-router's firewall): a pod without the allowed
label cannot reach a server its policy guards, the allowed path works, an egress policy keeps a pod
to its allowed destination, and deleting a policy opens the path again.

Two servers and three clients (netpol_helpers) in a namespace of their own; clients connect to pod
IPs (no Service, no DNS) from ``kubectl exec``.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from cluster_helpers import apply
from netpol_helpers import BLOCKED, assert_reaches, image, pod, pod_ips

from coffee_rt.k8s.kubectl import Kubectl
from coffee_rt.local.components.cluster import Cluster

NAMESPACE = "netpol-test"
PORT = 8080
ALLOWED = {"access": "server"}  # the label the server's ingress policy admits, like the stack's app labels


def _policy(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
            "metadata": {"name": name, "namespace": NAMESPACE}, "spec": spec}


# The server takes connections on PORT only from pods labelled ALLOWED (as network.py's Kafka,
# Postgres, Redis and Flink REST policies take them only from their clients' app labels).
INGRESS = _policy("server-ingress", {
    "podSelector": {"matchLabels": {"test-pod": "server"}}, "policyTypes": ["Ingress"],
    "ingress": [{"from": [{"podSelector": {"matchLabels": ALLOWED}}], "ports": [{"protocol": "TCP", "port": PORT}]}],
})
# Pods labelled egress=restricted may open connections to the server's PORT and nowhere else.
EGRESS = _policy("restricted-egress", {
    "podSelector": {"matchLabels": {"egress": "restricted"}}, "policyTypes": ["Egress"],
    "egress": [{"to": [{"podSelector": {"matchLabels": {"test-pod": "server"}}}],
                "ports": [{"protocol": "TCP", "port": PORT}]}],
})


@pytest.fixture(scope="module")
def pods(cluster: Cluster, kubectl: Kubectl) -> Iterator[dict[str, str]]:
    """pod name -> pod IP: servers `server` and `other`, clients `client-allowed`, `-denied`, `-egress`."""
    python = image(cluster)
    kubectl.run("delete", "namespace", NAMESPACE, "--wait=true", check=False)
    apply(kubectl, [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        pod("server", NAMESPACE, {}, python, PORT),
        pod("other", NAMESPACE, {}, python, PORT),
        pod("client-allowed", NAMESPACE, ALLOWED, python),
        pod("client-denied", NAMESPACE, {}, python),
        pod("client-egress", NAMESPACE, {**ALLOWED, "egress": "restricted"}, python),
    ])
    yield pod_ips(kubectl, NAMESPACE)
    kubectl.run("delete", "namespace", NAMESPACE, "--wait=false", check=False)


def _reaches(kubectl: Kubectl, client: str, address: str, expected: str) -> None:
    assert_reaches(kubectl, NAMESPACE, client, address, PORT, expected)


def test_without_policies_every_pod_reaches_both_servers(kubectl: Kubectl, pods: dict[str, str]) -> None:
    for client in ("client-allowed", "client-denied", "client-egress"):
        _reaches(kubectl, client, pods["server"], "server")
        _reaches(kubectl, client, pods["other"], "other")


def test_ingress_policy_admits_only_the_allowed_label(kubectl: Kubectl, pods: dict[str, str]) -> None:
    apply(kubectl, [INGRESS])
    _reaches(kubectl, "client-denied", pods["server"], BLOCKED)
    _reaches(kubectl, "client-allowed", pods["server"], "server")
    # The policy selects the server alone: the unlabelled pod still reaches the other server.
    _reaches(kubectl, "client-denied", pods["other"], "other")


def test_egress_policy_keeps_a_pod_to_its_allowed_destination(kubectl: Kubectl, pods: dict[str, str]) -> None:
    apply(kubectl, [EGRESS])
    _reaches(kubectl, "client-egress", pods["other"], BLOCKED)
    _reaches(kubectl, "client-egress", pods["server"], "server")
    # Pods the egress policy does not select are not held back.
    _reaches(kubectl, "client-allowed", pods["other"], "other")


def test_deleting_the_policies_opens_the_paths(kubectl: Kubectl, pods: dict[str, str]) -> None:
    kubectl("delete", "networkpolicy", "-n", NAMESPACE, "server-ingress")
    _reaches(kubectl, "client-denied", pods["server"], "server")
    _reaches(kubectl, "client-egress", pods["other"], BLOCKED)  # its own policy still holds
    kubectl("delete", "networkpolicy", "-n", NAMESPACE, "restricted-egress")
    _reaches(kubectl, "client-egress", pods["other"], "other")


def test_only_kube_routers_firewall_runs(cluster: Cluster) -> None:
    """Its policy chains exist; nothing of its service proxy (the module with the advisory) or router."""
    filter_rules = subprocess.run(["iptables", "-w", "5", "-t", "filter", "-S"], capture_output=True, text=True,
                                  check=True).stdout.splitlines()
    chains = {line.split()[1] for line in filter_rules if line.startswith("-N ")}
    assert {"KUBE-ROUTER-INPUT", "KUBE-ROUTER-FORWARD", "KUBE-ROUTER-OUTPUT"} <= chains
    for table in ("nat", "mangle"):
        rules = subprocess.run(["iptables", "-w", "5", "-t", table, "-S"], capture_output=True, text=True,
                               check=True).stdout
        assert "KUBE-ROUTER" not in rules
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True, check=True).stdout
    assert "kube-dummy-if" not in links and "kube-bridge" not in links
