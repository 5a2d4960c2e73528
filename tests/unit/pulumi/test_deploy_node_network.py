"""`coffee-rt deploy` lets the stack's Pods reach the local cluster's API server and CoreDNS (on its node)."""

from __future__ import annotations

import json
from pathlib import Path

from coffee_rt import deploy

STACK_FILE = """
config:
  coffee-rt:profile: dev
  coffee-rt:network:
    policies: true
"""
CREDS = deploy.Credentials("p" * 48, "r" * 48, {"store-01": "tok1"}, "dash", "k" * 64)


def test_node_network_is_the_node_ip_on_the_ports_after_dnat() -> None:
    assert deploy.node_network("172.31.1.1", 26444, 26053) == {
        "apiServerCidrs": ["172.31.1.1/32"], "apiServerPorts": [26444],
        "dnsCidrs": ["172.31.1.1/32"], "dnsPorts": [26053]}


def test_stack_config_sets_the_node_network_into_the_stack_files_map() -> None:
    config = deploy.stack_config(STACK_FILE, {}, Path("/k"), CREDS, deploy.node_network("172.31.0.1", 16444, 16053))
    value, secret = config["coffee-rt:network"]
    assert secret is False
    assert json.loads(value) == {"policies": True, "apiServerCidrs": ["172.31.0.1/32"], "apiServerPorts": [16444],
                                 "dnsCidrs": ["172.31.0.1/32"], "dnsPorts": [16053]}


def test_stack_config_without_a_node_network_keeps_the_stack_files_map() -> None:
    config = deploy.stack_config(STACK_FILE, {}, Path("/k"), CREDS)
    assert config["coffee-rt:network"] == ('{"policies":true}', False)
