"""The local stack's CPU classes: the order-taking path (ingest service, Kafka) first, the rest
idle; and, on a machine of two or more CPUs, a CPU of its own for the ingest service.

On two cores the ingest tail is set by how long a woken ingest or broker thread waits for a CPU.
Niceness only shrinks the other servers' share; a Flink thread that is running when an order
arrives still finishes its slice first. A cgroup with ``cpu.idle`` set is the kernel's
"SCHED_IDLE for a group": its tasks run when nothing else wants the CPU, and a waking task from
outside preempts them at once. Measured on the whole stack at 1,000 orders/s, alternating runs:
ingest client p99 3.2–4.2 ms with the other servers in such a group against 6.8–8.2 ms with
niceness alone (docs/ingest.md).

Everything here is best effort: without root, or without a cpu controller offering ``cpu.idle``
(cgroup v1 ``cpu`` or a delegated cgroup v2 subtree, kernel 5.15+), it returns None and the
servers keep their niceness only.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Literal

GROUP = "coffee-rt-background"

OrderPathRole = Literal["service", "broker"]


def order_path_cpus(role: OrderPathRole, allowed: Iterable[int]) -> frozenset[int] | None:
    """The CPUs an order-path server is confined to: the ingest service (``service``) gets the
    first CPU it may use, Kafka (``broker``) the others; None (no confinement) on one CPU.

    Why: an order crosses eight thread hand-offs (service loop, librdkafka's broker thread,
    Kafka's network and request threads, and back). On this VM a wake-up across CPUs costs
    ~20 µs against ~2 µs on the same CPU (a pipe ping-pong: 38 against 4 µs per round trip),
    and a broker GC thread could take the service's CPU. With each server's threads kept
    together, only the service<->broker hops cross, and Kafka's GC and JIT threads stay off the
    service's CPU. Everything off the order path still runs on every CPU, in the idle group.
    Measured in docs/ingest.md (session 9). The other servers are not confined."""
    cpus = sorted(set(allowed))
    if len(cpus) < 2:
        return None
    return frozenset(cpus[:1]) if role == "service" else frozenset(cpus[1:])


def _cpu_hierarchy(mounts: str, self_cgroup: str) -> Path | None:
    """The folder of our own cgroup in the hierarchy that has the cpu controller."""
    for line in mounts.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        mount, kind, options = Path(fields[1]), fields[2], fields[3].split(",")
        if kind == "cgroup2":
            try:
                if "cpu" not in (mount / "cgroup.controllers").read_text().split():
                    continue
            except OSError:
                continue
        elif kind != "cgroup" or "cpu" not in options:
            continue
        for entry in self_cgroup.splitlines():  # "id:controllers:path"; v2's has no controllers
            _, controllers, path = entry.split(":", 2)
            if (controllers == "") if kind == "cgroup2" else ("cpu" in controllers.split(",")):
                return mount / path.lstrip("/")
    return None


def make_idle_group(parent: Path, name: str = GROUP) -> Path | None:
    """``parent/name`` with ``cpu.idle`` set, created if needed; None when that is not allowed."""
    group = parent / name
    try:
        group.mkdir(exist_ok=True)
        idle = group / "cpu.idle"
        if idle.read_text().strip() != "1":
            idle.write_text("1")
        if idle.read_text().strip() != "1":
            return None
    except OSError:
        return None
    return group


@cache
def background_group() -> Path | None:
    """The machine's idle cgroup for servers off the order path, or None where there can't be one."""
    try:
        mounts = Path("/proc/self/mounts").read_text()
        self_cgroup = Path("/proc/self/cgroup").read_text()
    except OSError:
        return None
    parent = _cpu_hierarchy(mounts, self_cgroup)
    return make_idle_group(parent) if parent is not None else None


def join(group: Path) -> None:
    """Move the calling process into ``group`` (run in the child before exec, while still root;
    whatever it forks later stays there). Failure leaves it where it was: priority is a hint."""
    try:
        (group / "cgroup.procs").write_text("0")  # 0: the writer itself (v1 and v2)
    except OSError:
        pass


def group_of(pid: int, group: Path) -> bool:
    """Whether ``pid`` is a member of ``group``."""
    try:
        return str(pid) in (group / "cgroup.procs").read_text().split()
    except OSError:
        return False
