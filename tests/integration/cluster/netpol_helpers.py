"""Pods for the NetworkPolicy tests: TCP servers that greet with their name, clients that report
what one connection attempt got, both on the stand-in Python image (no registry is reachable)."""

from __future__ import annotations

import json
import time
from typing import Any

from coffee_rt.cluster.images import Builder
from coffee_rt.k8s.kubectl import Kubectl
from coffee_rt.local.components.cluster import Cluster

NON_ROOT = {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
# A TCP server on $PORT that greets each connection with $NAME.
SERVER = ("import os, socketserver\n"
          "class Greet(socketserver.BaseRequestHandler):\n"
          "    def handle(self): self.request.sendall(os.environ['NAME'].encode())\n"
          "socketserver.ThreadingTCPServer(('0.0.0.0', int(os.environ['PORT'])), Greet).serve_forever()\n")
# One connection attempt: the greeting read ('connected' from a server that waits for the client,
# as a TLS server does), or how it failed (refused or dropped: both blocked).
CLIENT = ("import socket, sys\n"
          "try:\n"
          "    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3)\n"
          "except (TimeoutError, ConnectionRefusedError): sys.exit(print('blocked'))\n"
          "except OSError as e: sys.exit(print(f'error {e.errno}'))\n"
          "s.settimeout(2)\n"
          "try: print(s.recv(64).decode() or 'closed')\n"
          "except TimeoutError: print('connected')\n")
BLOCKED = "blocked"
SLEEP = ["python3", "-c", "import time; time.sleep(86400)"]
SETTLE_TIMEOUT = 90.0


def image(cluster: Cluster) -> str:
    """The stand-in Python base image, made if missing and imported into the node."""
    reference = Builder(cluster.settings.cache_dir).ensure_base("python")
    cluster.import_images([reference], lambda message: print(f"[netpol] {message}", flush=True))
    return reference


def pod(name: str, namespace: str, labels: dict[str, str], image: str, port: int | None = None) -> dict[str, Any]:
    """A server on ``port`` greeting with ``name``, or (no port) a client that sleeps."""
    argv = ["python3", "-c", SERVER] if port else SLEEP
    env = [{"name": "NAME", "value": name}, *([{"name": "PORT", "value": str(port)}] if port else [])]
    return {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"test-pod": name, **labels}},
        "spec": {"terminationGracePeriodSeconds": 0, "automountServiceAccountToken": False,
                 "containers": [{"name": "main", "image": image, "imagePullPolicy": "Never", "command": argv,
                                 "env": env, "securityContext": NON_ROOT}]},
    }


def pod_ips(kubectl: Kubectl, namespace: str) -> dict[str, str]:
    """Once every pod of ``namespace`` is Ready: pod name -> pod IP."""
    kubectl("wait", "-n", namespace, "--for=condition=Ready", "pod", "--all", "--timeout=300s")
    found = json.loads(kubectl("get", "pods", "-n", namespace, "-o", "json"))["items"]
    return {p["metadata"]["name"]: p["status"]["podIP"] for p in found}


def connect(kubectl: Kubectl, namespace: str, client: str, address: str, port: int) -> str:
    return kubectl("exec", "-n", namespace, client, "--", "python3", "-c", CLIENT, address, str(port)).strip()


def resolve(kubectl: Kubectl, namespace: str, client: str, name: str) -> str:
    """The address the pod's resolver (the cluster DNS) gives for ``name``, or the error."""
    script = ("import socket, sys\n"
              "try: print(socket.gethostbyname(sys.argv[1]))\n"
              "except OSError as e: print(f'error {e}')\n")
    return kubectl("exec", "-n", namespace, client, "--", "python3", "-c", script, name).strip()


def assert_reaches(kubectl: Kubectl, namespace: str, client: str, address: str, port: int, expected: str) -> None:
    """``expected`` three times in a row (kube-router applies a change asynchronously: waited for)."""
    seen: list[str] = []
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while time.monotonic() < deadline and seen[-3:] != [expected] * 3:
        seen.append(connect(kubectl, namespace, client, address, port))
        if seen[-1] != expected:
            time.sleep(1)
    assert seen[-3:] == [expected] * 3, f"{namespace}/{client} -> {address}:{port}: wanted {expected!r}, saw {seen}"
