"""allow-dns: kube-system's Pods on 53 always; a DNS server outside Pods (the local cluster's node) when configured."""

from __future__ import annotations

import json

from conftest import DEV_SECRETS, run_stack

from infra.components.network import dns_egress
from infra.config import NetworkConfig

KUBE_SYSTEM = {"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}}}],
               "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}


def test_default_dns_egress_is_kube_system_only() -> None:
    assert dns_egress(NetworkConfig()) == [KUBE_SYSTEM]


def test_dns_cidrs_add_one_rule_on_their_ports() -> None:
    net = NetworkConfig.model_validate({"dnsCidrs": ["172.31.1.1/32"], "dnsPorts": [26053]})
    assert dns_egress(net) == [KUBE_SYSTEM, {"to": [{"ipBlock": {"cidr": "172.31.1.1/32"}}],
                                             "ports": [{"protocol": "UDP", "port": 26053},
                                                       {"protocol": "TCP", "port": 26053}]}]


def test_the_rendered_policy_carries_the_node_dns() -> None:
    network = {"policies": True, "dnsCidrs": ["172.31.0.1/32"], "dnsPorts": [16053],
               "apiServerCidrs": ["172.31.0.1/32"], "apiServerPorts": [16444]}
    run = run_stack("dev", DEV_SECRETS, {"coffee-rt:network": json.dumps(network)})
    spec = run.object("NetworkPolicy", "allow-dns")["spec"]
    assert spec["egress"][1] == {"to": [{"ipBlock": {"cidr": "172.31.0.1/32"}}],
                                 "ports": [{"protocol": "UDP", "port": 16053}, {"protocol": "TCP", "port": 16053}]}
    operator = run.object("NetworkPolicy", "allow-coffee-rt-operator")["spec"]
    assert {"to": [{"ipBlock": {"cidr": "172.31.0.1/32"}}], "ports": [{"protocol": "TCP", "port": 16444}]} \
        in operator["egress"]
