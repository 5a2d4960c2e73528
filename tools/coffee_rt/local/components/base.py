"""What every local-stack server provides to the stack: preparation, processes, a health check."""

from __future__ import annotations

import os
import socket
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from coffee_rt.local import cpu
from coffee_rt.local.process import ManagedProcess
from coffee_rt.local.settings import LocalSettings

Progress = Callable[[str], None]


@dataclass(frozen=True)
class Health:
    ok: bool
    detail: str


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


class Component(ABC):
    """A server of the local stack. Subclasses are small: argv, config files, a health probe."""

    name: str
    start_timeout: float = 60.0
    # True for what runs inside another component (the Flink job in the session cluster):
    # no processes or ports of its own; after_start deploys it and stop() takes it down.
    runs_inside_another: bool = False
    # The order-taking path's servers (coffee_rt.local.cpu.order_path_cpus): CPUs of their own.
    order_path_role: cpu.OrderPathRole | None = None

    def __init__(self, settings: LocalSettings) -> None:
        self.settings = settings

    @property
    def home(self) -> Path:
        """This component's data, config and logs under the stack's state folder."""
        return self.settings.state_dir / self.name

    @property
    def jvm_crash_file_option(self) -> str:
        """For a JVM server: its crash report goes beside the logs, not into whatever folder started the stack."""
        return f"-XX:ErrorFile={self.settings.state_dir / 'logs' / 'hs_err_pid%p.log'}"

    def process(self, suffix: str, argv: Sequence[str], **kwargs: object) -> ManagedProcess:
        """A process of this component; one given a niceness above 0 is off the order path and
        also runs in the machine's background cgroup of the ``background_cpu`` policy (weighted
        or idle; none for ``nice``); the order path's own servers get their CPUs
        (coffee_rt.local.cpu.order_path_cpus) when ``order_path_cpus`` is ``split``."""
        label = f"{self.name}-{suffix}" if suffix else self.name
        niceness = kwargs.get("niceness", 0)
        policy = self.settings.background_cpu
        if isinstance(niceness, int) and niceness > 0 and policy != "nice":
            kwargs.setdefault("cpu_group", cpu.background_group(policy))
        if self.order_path_role is not None and self.settings.order_path_cpus == "split":
            kwargs.setdefault("cpus", cpu.order_path_cpus(self.order_path_role, os.sched_getaffinity(0)))
        return ManagedProcess(
            name=label,
            argv=list(argv),
            log_file=self.settings.state_dir / "logs" / f"{label}.log",
            pid_file=self.settings.state_dir / "run" / f"{label}.pid",
            **kwargs,  # type: ignore[arg-type]
        )

    @abstractmethod
    def ports(self) -> list[int]:
        """Ports this component listens on; they must be free before it starts."""

    @abstractmethod
    def address(self) -> str:
        """What a client connects to."""

    def prepare(self, progress: Progress) -> None:
        """Install, download and initialise data; idempotent. Called before every start."""

    @abstractmethod
    def processes(self) -> list[ManagedProcess]:
        """The processes to run, in start order (stopped in reverse)."""

    @abstractmethod
    def health(self) -> Health:
        """A real round trip to the server, bounded to a couple of seconds."""

    def after_start(self, progress: Progress) -> None:
        """One-time setup once healthy (topics, migrations); idempotent."""

    def stop(self, progress: Progress) -> bool:
        """Stop what this component runs; returns whether anything was running."""
        stopped = False
        for process in reversed(self.processes()):
            if process.stop():
                progress(f"{self.name}: stopped {process.name}")
                stopped = True
        return stopped

    def log_files(self) -> list[Path]:
        return [p.log_file for p in self.processes()]
