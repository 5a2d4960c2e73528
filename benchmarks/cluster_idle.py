"""What the deployed stack costs when no order arrives: CPU and memory of each Pod of a namespace on the
local cluster's node, read from the kubelet's cgroups (cgroup v1, cgroupfs driver: no metrics-server needed).

    uv run python benchmarks/cluster_idle.py --kubeconfig .state/local/cluster/kubeconfig
    uv run python benchmarks/cluster_idle.py --kubeconfig ... --window 120 --namespace coffee-rt

CPU is the Pod cgroup's ``cpuacct.usage`` over the window (% of one core); memory is its working set
(``memory.usage_in_bytes`` minus inactive file pages, as the kubelet counts it) at the end. Run it on a
stack that has settled (the job RUNNING, a few checkpoints done) and with no load generator.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from coffee_rt.k8s.kubectl import Kubectl

CGROUP = Path("/sys/fs/cgroup")
QOS = ("", "burstable", "besteffort")


def pod_cgroup(controller: str, uid: str) -> Path | None:
    """The Pod's cgroup under the kubelet's kubepods hierarchy (Guaranteed Pods sit at its top)."""
    for qos in QOS:
        path = CGROUP / controller / "kubepods" / qos / f"pod{uid}"
        if path.is_dir():
            return path
    return None


def cpu_ns(uid: str) -> int | None:
    path = pod_cgroup("cpuacct", uid)
    return int((path / "cpuacct.usage").read_text()) if path else None


def working_set(uid: str) -> int | None:
    path = pod_cgroup("memory", uid)
    if path is None:
        return None
    usage = int((path / "memory.usage_in_bytes").read_text())
    stat = dict(line.split() for line in (path / "memory.stat").read_text().splitlines())
    return max(0, usage - int(stat.get("total_inactive_file", 0)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kubeconfig", type=Path, required=True, help="the cluster's admin kubeconfig")
    parser.add_argument("--kubectl", type=Path, default=None,
                        help="the kubectl binary (default: the one built with the cluster)")
    parser.add_argument("--namespace", default="coffee-rt")
    parser.add_argument("--window", type=float, default=60.0, help="seconds of CPU to count (default 60)")
    args = parser.parse_args()

    kubectl = Kubectl(args.kubeconfig, binary=args.kubectl, timeout=60.0)
    pods = json.loads(kubectl("get", "pods", "-n", args.namespace, "-o", "json"))["items"]
    running = {p["metadata"]["uid"]: p["metadata"]["name"] for p in pods if p["status"].get("phase") == "Running"}
    before = {uid: cpu_ns(uid) for uid in running}
    started = time.monotonic()
    time.sleep(args.window)
    elapsed = time.monotonic() - started
    after = {uid: cpu_ns(uid) for uid in running}
    rows: list[tuple[str, float, float]] = []
    for uid, name in running.items():
        first, last, memory = before[uid], after[uid], working_set(uid)
        if first is None or last is None or memory is None:
            print(f"{name}: no cgroup found on this node (another node, or a cgroup v2 host)")
            continue
        rows.append((name, (last - first) / 1e9 / elapsed * 100, memory / 2**20))
    rows.sort(key=lambda row: -row[1])
    print(f"{'pod':<48} {'CPU % of a core':>16} {'memory MiB':>11}")
    for name, cpu, mib in rows:
        print(f"{name:<48} {cpu:>16.1f} {mib:>11.0f}")
    total = f"total ({len(rows)} pods)"
    print(f"{total:<48} {sum(r[1] for r in rows):>16.1f} {sum(r[2] for r in rows):>11.0f}")
    load = os.getloadavg()
    print(f"window {elapsed:.0f} s; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
