"""What the real Kubernetes control plane costs: build (cold or warm), start-up to /readyz, a kubectl round trip.

    uv run python benchmarks/k8s_control_plane.py                  # warm: cache check, start, kubectl
    uv run python benchmarks/k8s_control_plane.py --cold           # + a full build in an empty cache
    uv run python benchmarks/k8s_control_plane.py --port-offset 16000

--cold builds into a throwaway cache folder (module download and compile from nothing, as on a
fresh CI machine) and deletes it afterwards; on 2 cores that takes many minutes. The stack it
starts uses its own state folder and ports, so a developer's stack is left alone.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from coffee_rt.k8s.build import ensure_built
from coffee_rt.k8s.kubectl import Kubectl
from coffee_rt.local.components.k8s import Kubernetes
from coffee_rt.local.settings import LocalSettings
from coffee_rt.local.stack import LocalStack


def _say(message: str) -> None:
    print(message, flush=True)


def cold_build() -> float:
    cache = Path(tempfile.mkdtemp(prefix="coffee-rt-cold-cache-"))
    try:
        started = time.monotonic()
        ensure_built(progress=_say, cache=cache)
        return time.monotonic() - started
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cold", action="store_true", help="also time a build from an empty cache")
    parser.add_argument("--port-offset", type=int, default=15500, help="shift of the stack's ports (default 15500)")
    parser.add_argument("--requests", type=int, default=20, help="kubectl round trips to time (default 20)")
    args = parser.parse_args()

    if args.cold:
        _say(f"cold build (empty GOMODCACHE and GOCACHE): {cold_build():.0f} s")

    started = time.monotonic()
    ensure_built(progress=_say)
    _say(f"warm build (cache check only): {time.monotonic() - started:.2f} s")

    state = Path(tempfile.mkdtemp(prefix="coffee-rt-k8s-bench-"))
    defaults = LocalSettings()
    settings = LocalSettings(
        state_dir=state,
        k8s_apiserver_port=defaults.k8s_apiserver_port + args.port_offset,
        etcd_port=defaults.etcd_port + args.port_offset,
        etcd_peer_port=defaults.etcd_peer_port + args.port_offset,
    )
    stack = LocalStack(settings)
    try:
        started = time.monotonic()
        stack.up(["k8s"])
        _say(f"start-up, fresh state, to /readyz and the kwok node Ready: {time.monotonic() - started:.1f} s")
        component = stack["k8s"]
        assert isinstance(component, Kubernetes)
        kubectl = Kubectl(component.kubeconfig)
        times = []
        for _ in range(args.requests):
            t0 = time.monotonic()
            kubectl("get", "namespaces", "-o", "name")
            times.append(time.monotonic() - t0)
        _say(f"kubectl get namespaces (process start included), {args.requests} runs: "
             f"median {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms")
    finally:
        stack.down(["k8s"])
        shutil.rmtree(state, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
