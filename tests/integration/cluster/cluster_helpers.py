"""Helpers for the cluster tests: Services for servers on the node, applying a list of objects."""

from __future__ import annotations

import json
from typing import Any

from coffee_rt.k8s.kubectl import Kubectl


def node_service(name: str, namespace: str, port: int, node_ip: str, node_port: int) -> list[dict[str, Any]]:
    """A Service without selector and its EndpointSlice: ``name:port`` in the cluster is a server on the node."""
    return [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": namespace},
         "spec": {"ports": [{"name": "main", "port": port, "targetPort": node_port, "protocol": "TCP"}]}},
        {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
         "metadata": {"name": f"{name}-node", "namespace": namespace,
                      "labels": {"kubernetes.io/service-name": name,
                                 "endpointslice.kubernetes.io/managed-by": "coffee-rt-tests"}},
         "addressType": "IPv4", "endpoints": [{"addresses": [node_ip], "conditions": {"ready": True}}],
         "ports": [{"name": "main", "port": node_port, "protocol": "TCP"}]},
    ]


def apply(kubectl: Kubectl, objects: list[dict[str, Any]]) -> None:
    kubectl.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))
