"""The local stack: bring components up in order, report their health, stop what we started."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from coffee_rt.errors import StartupError, UsageError
from coffee_rt.local.components.alertmanager import Alertmanager
from coffee_rt.local.components.auditor import Auditor
from coffee_rt.local.components.base import Component, Health, port_is_free
from coffee_rt.local.components.cluster import Cluster
from coffee_rt.local.components.dashboard import Dashboard
from coffee_rt.local.components.exporters import PostgresExporter, RedisExporter
from coffee_rt.local.components.flink import Flink
from coffee_rt.local.components.ingest import Ingest
from coffee_rt.local.components.job import FlinkJob
from coffee_rt.local.components.k8s import Kubernetes
from coffee_rt.local.components.kafka import Kafka
from coffee_rt.local.components.postgres import Postgres
from coffee_rt.local.components.prometheus import Prometheus
from coffee_rt.local.components.redis import Redis
from coffee_rt.local.settings import LocalSettings

Progress = Callable[[str], None]

# Listing order; stopped in reverse.
COMPONENTS: dict[str, type[Component]] = {
    "postgres": Postgres,
    "redis": Redis,
    "kafka": Kafka,
    "ingest": Ingest,
    "flink": Flink,
    "job": FlinkJob,
    "dashboard": Dashboard,
    "auditor": Auditor,
    "k8s": Kubernetes,
    "cluster": Cluster,
    "redis-exporter": RedisExporter,
    "postgres-exporter": PostgresExporter,
    "alertmanager": Alertmanager,
    "prometheus": Prometheus,
}
# Started only when named (e.g. `coffee-rt local up k8s`); `down` with no names still stops them.
OPTIONAL: set[str] = {"k8s", "cluster", "redis-exporter", "postgres-exporter", "alertmanager", "prometheus"}
# What a component needs running before it starts; `up` starts the rest side by side (on a warm
# machine the servers' own starts, not their installs, are most of the wait). The servers start
# together, their clients once all of them listen: a client's connection takes a port of the
# machine's ephemeral range, which a stack at a port offset shares (a dashboard's Kafka connection
# on the TaskManager's data port stops the TaskManager from binding it). A component not listed here
# starts after every component listed before it in COMPONENTS.
SERVERS = frozenset({"postgres", "redis", "kafka", "flink"})
NEEDS: dict[str, frozenset[str]] = {
    **{name: frozenset() for name in SERVERS},
    **{name: SERVERS for name in ("ingest", "job", "dashboard", "auditor")},
}


@dataclass(frozen=True)
class ComponentStatus:
    name: str
    address: str
    state: str  # running | stopped | unhealthy
    pids: list[int]
    detail: str


def _quiet(_: str) -> None:
    pass


class LocalStack:
    def __init__(self, settings: LocalSettings | None = None, progress: Progress = _quiet) -> None:
        self.settings = settings or LocalSettings.from_env()
        self.progress = progress
        self.components = {name: cls(self.settings) for name, cls in COMPONENTS.items()}
        # Installs run one at a time: apt and Maven each lock or share a cache of their own.
        self._prepare_lock = threading.Lock()

    def select(self, names: Iterable[str] | None, include_optional: bool = False) -> list[Component]:
        names = list(names or [])
        unknown = [n for n in names if n not in self.components]
        if unknown:
            raise UsageError(
                f"unknown component {', '.join(repr(n) for n in unknown)}; "
                f"known components: {', '.join(self.components)}"
            )
        if names:
            return [c for n, c in self.components.items() if n in names]
        return [c for n, c in self.components.items() if include_optional or n not in OPTIONAL]

    def __getitem__(self, name: str) -> Component:
        return self.select([name])[0]

    def up(self, names: Iterable[str] | None = None) -> list[ComponentStatus]:
        selected = self.select(names)
        self._up_side_by_side(selected)
        return self.status([c.name for c in selected])

    def needs(self, component: Component, selected: list[Component]) -> set[str]:
        """The selected components that must be running before ``component`` starts."""
        names = [c.name for c in selected]
        if component.name in NEEDS:
            return set(NEEDS[component.name]) & set(names)
        order = list(self.components)
        return {n for n in names if order.index(n) < order.index(component.name)}

    def _up_side_by_side(self, selected: list[Component]) -> None:
        """Each component once what it needs is up; after a failure nothing more starts, those
        starting finish, and the first failure is raised."""
        pending, done, failures = list(selected), set[str](), list[BaseException]()
        running: dict[Future[None], Component] = {}
        pool = ThreadPoolExecutor(max_workers=max(1, len(selected)), thread_name_prefix="up")
        try:
            while pending or running:
                for component in [c for c in pending if not failures and self.needs(c, selected) <= done]:
                    pending.remove(component)
                    running[pool.submit(self._up_one, component)] = component
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    component = running.pop(future)
                    if (exc := future.exception()) is not None:
                        failures.append(exc)
                    else:
                        done.add(component.name)
        except BaseException:  # Ctrl-C: start nothing more, leave at once
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
        if failures:
            raise failures[0]

    def _up_one(self, component: Component) -> None:
        started = time.monotonic()
        if component.runs_inside_another:
            self._up_hosted(component, started)
            return
        processes = component.processes() if self._prepared(component) else None
        if processes and all(p.is_running() for p in processes) and component.health().ok:
            self.progress(f"{component.name}: already running")
            return
        busy = [port for port in component.ports() if not port_is_free(self.settings.host, port)]
        # Ports held by our own half-started processes are not a clash: stop those first.
        if busy and processes and any(p.is_running() for p in processes):
            self._stop(component)
            busy = [port for port in component.ports() if not port_is_free(self.settings.host, port)]
        if busy:
            raise StartupError(
                f"{component.name}: port {', '.join(map(str, busy))} on {self.settings.host} is in use "
                "by another process; stop it or choose other ports (see `coffee-rt local up --help`)"
            )
        self.progress(f"{component.name}: preparing")
        with self._prepare_lock:
            component.prepare(self.progress)
        self.progress(f"{component.name}: starting")
        for process in component.processes():
            process.start()
        self._wait_healthy(component)
        component.after_start(self.progress)
        self.progress(f"{component.name}: ready at {component.address()} ({time.monotonic() - started:.1f} s)")

    def _up_hosted(self, component: Component, started: float) -> None:
        """A component with no processes of its own (the Flink job): deploy it, then wait."""
        if component.health().ok:
            self.progress(f"{component.name}: already running")
            return
        with self._prepare_lock:
            component.prepare(self.progress)
        self.progress(f"{component.name}: starting")
        component.after_start(self.progress)
        self._wait_healthy(component)
        self.progress(f"{component.name}: ready at {component.address()} ({time.monotonic() - started:.1f} s)")

    @staticmethod
    def _prepared(component: Component) -> bool:
        try:
            component.processes()
        except Exception:  # noqa: BLE001 - not prepared yet (e.g. a jar folder not resolved)
            return False
        return True

    def _wait_healthy(self, component: Component) -> None:
        deadline = time.monotonic() + component.start_timeout
        health = Health(False, "not checked")
        while time.monotonic() < deadline:
            crashed = [p for p in component.processes() if p.exited_early()]
            if crashed:
                process = crashed[0]
                raise StartupError(
                    f"{component.name}: process {process.name} exited during start-up; "
                    f"read its log: {process.log_file}\n--- last lines ---\n{process.tail(25)}"
                )
            health = component.health()
            if health.ok:
                return
            time.sleep(0.5)
        logs = ", ".join(str(p) for p in component.log_files())
        raise StartupError(
            f"{component.name}: not healthy after {component.start_timeout:.0f} s ({health.detail}); "
            f"read its log: {logs}"
        )

    def down(self, names: Iterable[str] | None = None) -> list[str]:
        stopped = []
        for component in reversed(self.select(names, include_optional=True)):
            if self._stop(component):
                stopped.append(component.name)
        return stopped

    def _stop(self, component: Component) -> bool:
        if not self._prepared(component):
            return False
        return component.stop(self.progress)

    def status(self, names: Iterable[str] | None = None) -> list[ComponentStatus]:
        result = []
        for component in self.select(names, include_optional=True):
            if component.runs_inside_another:
                health = component.health()
                state = "running" if health.ok else "stopped"
                result.append(ComponentStatus(component.name, component.address(), state, [], health.detail))
                continue
            processes = component.processes() if self._prepared(component) else []
            pids = [pid for p in processes if (pid := p.pid()) is not None]
            if not pids:
                result.append(ComponentStatus(component.name, component.address(), "stopped", [], ""))
                continue
            health = component.health()
            state = "running" if health.ok and len(pids) == len(processes) else "unhealthy"
            result.append(ComponentStatus(component.name, component.address(), state, pids, health.detail))
        return result


def unanswered(exc: BaseException, settings: LocalSettings) -> str:
    """A message for a server of the stack that did not answer (a timeout, a refused connection):
    which component listens on the port in ``exc``, and its log; the error's own text otherwise."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    request = getattr(exc, "_request", None)  # httpx's; its .request property raises when unset
    where = str(request.url) if request is not None else ""
    found = re.search(r"port (\d+)|:(\d+)\b", f"{where} {exc}")
    port = int(found.group(1) or found.group(2)) if found else None
    for component in LocalStack(settings).components.values():
        ports, logs = _ports_and_logs(component)
        if port in ports:
            return (f"{component.name} at {where or f'{settings.host}:{port}'} did not answer ({text}); "
                    f"read its log: {logs}; `coffee-rt local status {component.name}` shows its health")
    return f"{where or 'a server'} did not answer ({text})"


def _ports_and_logs(component: Component) -> tuple[list[int], str]:
    try:
        return component.ports(), ", ".join(str(p) for p in component.log_files())
    except Exception:  # noqa: BLE001 - a component not prepared has no ports or logs to name yet
        return [], ""
