"""Wait until an API server is ready, then become the given command (same pid, via exec).

kube-controller-manager gives up if the API server is not healthy within 10 s of its start, which
a cold API server on 2 cores can miss; the local stack starts all processes at once, so the
controller-manager is launched through this: ``python -m coffee_rt.k8s.await_ready URL CA -- argv...``.
With ``--node NAME CERT KEY`` it also waits until the kubelet has registered node NAME (read with
that client certificate): kube-router looks its node up once at start and exits if it is missing.
"""

from __future__ import annotations

import os
import ssl
import sys
import time

import httpx


def wait_ready(url: str, ca_file: str, timeout: float) -> str | None:
    """None once ``url``/readyz answers 200 (anonymously), else the last problem seen."""
    context = ssl.create_default_context(cafile=ca_file)
    deadline = time.monotonic() + timeout
    problem = "not tried"
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{url}/readyz", verify=context, timeout=2.0)
            if response.status_code == 200:
                return None
            problem = f"/readyz {response.status_code}"
        except httpx.HTTPError as exc:
            problem = f"{type(exc).__name__}: {exc}"
        time.sleep(0.5)
    return problem


def wait_node(url: str, ca_file: str, node: str, cert: str, key: str, timeout: float) -> str | None:
    """None once node ``node`` exists, else the last problem seen."""
    context = ssl.create_default_context(cafile=ca_file)
    context.load_cert_chain(cert, key)
    deadline = time.monotonic() + timeout
    problem = "not tried"
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{url}/api/v1/nodes/{node}", verify=context, timeout=2.0)
            if response.status_code == 200:
                return None
            problem = f"node {node}: {response.status_code}"
        except httpx.HTTPError as exc:
            problem = f"{type(exc).__name__}: {exc}"
        time.sleep(0.5)
    return problem


USAGE = "usage: python -m coffee_rt.k8s.await_ready URL CA_FILE [--node NAME CERT KEY] -- COMMAND [ARG...]"


def main(argv: list[str]) -> int:
    node: tuple[str, str, str] | None = None
    if len(argv) >= 6 and argv[2] == "--node":
        node, argv = (argv[3], argv[4], argv[5]), argv[:2] + argv[6:]
    if len(argv) < 4 or argv[2] != "--":
        print(USAGE, file=sys.stderr)
        return 2
    url, ca_file, command = argv[0], argv[1], argv[3:]
    timeout = float(os.environ.get("COFFEE_RT_AWAIT_READY_TIMEOUT", "180"))
    problem = wait_ready(url, ca_file, timeout)
    if problem is None and node is not None:
        name, cert, key = node
        problem = wait_node(url, ca_file, name, cert, key, timeout)
    if problem is not None:
        print(f"await_ready: {url} not ready: {problem}; not starting {command[0]}", file=sys.stderr)
        return 1
    os.execv(command[0], command)  # noqa: S606 - argv from our own component, no shell


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
