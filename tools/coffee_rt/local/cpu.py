"""The local stack's CPU classes: the order-taking path (ingest service, Kafka) first, the rest
in a weighted group; and, on a machine of two or more CPUs, a CPU of its own for the ingest service.

Policies (``COFFEE_RT_BACKGROUND_CPU``):

- ``weight`` (default): the servers off the order path share one cgroup, ``coffee-rt-background``,
  weighted as an eighth of one ordinary nice-0 process or session (cgroup v1 ``cpu.shares`` 128,
  v2 ``cpu.weight`` 12). A waking ingest thread (weight 1024) then takes its CPU back from a busy
  Flink thread at once and keeps it, so the background costs the order path almost nothing:
  client p99 at 1,000 orders/s 6.8, 5.2, 3.5 ms on a fresh stack, as with ``idle``; a weight of
  one whole process (1024) let the background take half of the ingest's CPU whenever Flink was
  busy, and the first minute's p99 reached seconds (docs/benchmarks.md). Yet it is never starved:
  against a busy loop on a CPU the whole background still gets a ninth of that CPU, with two
  busy loops the job still counted every order at 100/s (p99 8 s instead of 6 s with weight 1024).
  With ``kernel.sched_autogroup_enabled`` (most distributions, this machine) a process's nice only
  ranks it inside its own session, so a nice-19 compile started in another session weighs like a
  nice-0 one. The order path stays outside, at nice 0, on CPUs of its own.
- ``idle``: the same servers in ``coffee-rt-background-idle`` with ``cpu.idle=1`` (the kernel's
  "SCHED_IDLE for a group"): no shorter ingest tail than ``weight`` (docs/benchmarks.md), and they get a CPU only
  when nothing else on the machine wants one, so any other busy process, even at nice 19,
  starves Flink's start and the health checks.
- ``nice``: no cgroup, niceness only.

Everything here is best effort: without root, or without a cpu controller (cgroup v1 ``cpu`` or a
delegated cgroup v2 subtree; ``cpu.idle`` needs kernel 5.15+), it returns None and the servers
keep their niceness only.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Literal

GROUP = "coffee-rt-background"
Policy = Literal["weight", "idle"]
GROUPS: dict[Policy, str] = {"weight": GROUP, "idle": f"{GROUP}-idle"}
V1_SHARES = "128"  # an eighth of one nice-0 task (1024)
V2_WEIGHT = "12"  # an eighth of cgroup v2's default (100)

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
    Measured in docs/benchmarks.md. The other servers are not confined."""
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


def _set(path: Path, value: str) -> bool:
    if path.read_text().strip() != value:
        path.write_text(value)
    return path.read_text().strip() == value


def make_group(parent: Path, policy: Policy, name: str | None = None) -> Path | None:
    """``parent/name`` set up for ``policy``, created if needed; None when that is not allowed.

    ``weight``: cpu.shares (v1) or cpu.weight (v2) of an eighth of an ordinary process, and cpu.idle off
    where the kernel has it (a group left idle by an older coffee-rt would starve again)."""
    group = parent / (name or GROUPS[policy])
    try:
        group.mkdir(exist_ok=True)
        if policy == "idle":
            return group if _set(group / "cpu.idle", "1") else None
        if (group / "cpu.idle").exists() and not _set(group / "cpu.idle", "0"):
            return None
        if (group / "cpu.shares").exists():
            return group if _set(group / "cpu.shares", V1_SHARES) else None
        return group if _set(group / "cpu.weight", V2_WEIGHT) else None
    except OSError:
        return None


@cache
def background_group(policy: Policy = "weight") -> Path | None:
    """The machine's cgroup for servers off the order path, or None where there can't be one."""
    try:
        mounts = Path("/proc/self/mounts").read_text()
        self_cgroup = Path("/proc/self/cgroup").read_text()
    except OSError:
        return None
    parent = _cpu_hierarchy(mounts, self_cgroup)
    return make_group(parent, policy) if parent is not None else None


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
