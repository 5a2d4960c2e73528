"""The stack's own NetworkPolicies (infra/components/network.py, rendered for the dev stack by
``infra.mockrun``) on the real node: stand-in servers on Kafka's, Postgres's, Redis's and Flink
REST's ports carry the servers' app labels, and clients carry their apps' labels. Each client
reaches exactly the servers its flows allow; a pod without an allowed label, in the namespace or
in another one, reaches none of them.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from cluster_helpers import apply
from netpol_helpers import BLOCKED, assert_reaches, image, pod, pod_ips, resolve

from coffee_rt import deploy
from coffee_rt.k8s.kubectl import Kubectl
from coffee_rt.local.components.cluster import Cluster
from coffee_rt.paths import REPO_ROOT

NAMESPACE = "netpol-stack"
OUTSIDE = "netpol-outside"  # no policies: its pods' egress is free, only the servers' ingress rules apply
SECRETS = ["postgresPassword", "redisPassword", "ingestTokens", "dashboardTokensSha256", "credentialsKey"]
NAME = "app.kubernetes.io/name"
# Server pod -> (its app label, the port the stack's clients use: Kafka 9092, Postgres, Redis, Flink REST).
SERVERS = {"kafka": ("kafka", 9092), "postgres": ("postgres", 5432), "redis": ("redis", 6379),
           "flink-rest": ("flink", 8081)}
# Client pod -> its app label, and the servers its flows in network.py allow.
CLIENTS = {
    "ingest": ("coffee-ingest", {"kafka"}),
    "taskmanager": ("flink", {"kafka", "postgres", "redis"}),
    "dashboard": ("coffee-dashboard", {"postgres", "redis"}),  # never the REST API, which can run code
    "operator": ("coffee-rt-operator", {"flink-rest"}),
    "auditor": ("coffee-auditor", {"kafka", "postgres", "redis"}),
    "intruder": (None, set()),
}


def _stack_policies(cluster: Cluster) -> list[dict[str, Any]]:
    """The dev stack's NetworkPolicies as ``coffee-rt deploy`` has the Pulumi program render them for
    this cluster (its node's API server and DNS), moved into NAMESPACE."""
    creds = deploy.Credentials("p" * 48, "r" * 48, {"store-01": "t"}, "d", "k" * 64)
    node = deploy.node_network(cluster.node_ip, cluster.stack_settings.cluster_apiserver_port,
                               cluster.stack_settings.coredns_port)
    config = deploy.stack_config((REPO_ROOT / "Pulumi.dev.yaml").read_text(), {}, cluster.kubeconfig, creds, node)
    network = config["coffee-rt:network"][0]
    render = ("import json, sys\n"
              "from infra import mockrun\n"
              "values, secrets = mockrun.with_placeholder_secrets(\n"
              "    mockrun.stack_values('dev'), sys.argv[1].split(','))\n"
              "values['coffee-rt:network'] = sys.argv[2]\n"
              "print(json.dumps(mockrun.run(values, secrets, 'dev').manifests()))\n")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("VIRTUAL_ENV", None)
    argv = ["uv", "run", "--frozen", "--project", str(REPO_ROOT / "infra"), "python", "-c", render, ",".join(SECRETS),
            network]
    rendered = subprocess.run(argv, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=True).stdout
    policies = [doc for doc in json.loads(rendered) if doc["kind"] == "NetworkPolicy"]
    for policy in policies:
        policy["metadata"] = {"name": policy["metadata"]["name"], "namespace": NAMESPACE}
    return policies


@pytest.fixture(scope="module")
def stack_pods(cluster: Cluster, kubectl: Kubectl) -> Iterator[dict[str, str]]:
    """pod name -> pod IP of the servers and clients in NAMESPACE (policies applied) and OUTSIDE."""
    python = image(cluster)
    policies = _stack_policies(cluster)
    for namespace in (NAMESPACE, OUTSIDE):
        kubectl.run("delete", "namespace", namespace, "--wait=true", check=False)
    servers = [pod(name, NAMESPACE, {NAME: app}, python, port) for name, (app, port) in SERVERS.items()]
    clients = [pod(name, NAMESPACE, {NAME: app} if app else {}, python) for name, (app, _) in CLIENTS.items()]
    outside = [pod("intruder", OUTSIDE, {}, python),
               pod("ingest-lookalike", OUTSIDE, {NAME: "coffee-ingest"}, python)]  # a label, but not the namespace
    apply(kubectl, [{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}} for ns in (NAMESPACE, OUTSIDE)]
          + servers + clients + outside + policies)
    ips = pod_ips(kubectl, NAMESPACE)
    yield {**ips, **{f"{OUTSIDE}/{name}": ip for name, ip in pod_ips(kubectl, OUTSIDE).items()}}
    for namespace in (NAMESPACE, OUTSIDE):
        kubectl.run("delete", "namespace", namespace, "--wait=false", check=False)


def test_the_render_has_the_policies_this_test_relies_on(cluster: Cluster) -> None:
    names = {p["metadata"]["name"] for p in _stack_policies(cluster)}
    assert {"default-deny", "allow-dns", "allow-kafka", "allow-postgres", "allow-redis", "allow-flink",
            "allow-coffee-ingest", "allow-coffee-dashboard", "allow-coffee-rt-operator",
            "allow-coffee-auditor"} <= names


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_each_client_reaches_exactly_its_allowed_servers(client: str, kubectl: Kubectl,
                                                         stack_pods: dict[str, str]) -> None:
    allowed = CLIENTS[client][1]
    for server, (_, port) in sorted(SERVERS.items()):
        expected = server if server in allowed else BLOCKED
        assert_reaches(kubectl, NAMESPACE, client, stack_pods[server], port, expected)


@pytest.mark.parametrize("client", ["intruder", "ingest-lookalike"])
def test_pods_of_another_namespace_reach_no_server(client: str, kubectl: Kubectl,
                                                   stack_pods: dict[str, str]) -> None:
    for server, (_, port) in sorted(SERVERS.items()):
        assert_reaches(kubectl, OUTSIDE, client, stack_pods[server], port, BLOCKED)


@pytest.mark.parametrize("client", ["ingest", "intruder"])
def test_every_pod_resolves_names_through_the_nodes_dns(client: str, kubectl: Kubectl,
                                                        stack_pods: dict[str, str]) -> None:
    """allow-dns with deploy's node DNS: CoreDNS runs on the node, behind kube-dns's ClusterIP."""
    assert resolve(kubectl, NAMESPACE, client, "kubernetes.default.svc.cluster.local") == "10.0.0.1"


def test_only_the_operator_reaches_the_api_server(kubectl: Kubectl, stack_pods: dict[str, str]) -> None:
    """The `kubernetes` Service (10.0.0.1:443, the API server on the node after DNAT): the operator's egress only."""
    assert_reaches(kubectl, NAMESPACE, "operator", "10.0.0.1", 443, "connected")
    assert_reaches(kubectl, NAMESPACE, "ingest", "10.0.0.1", 443, BLOCKED)
