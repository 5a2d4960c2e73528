"""The local stack's supervisor: a process that dies is started again after its back-off, one
stopped on purpose (or no longer watched) is not, and every restart is logged and counted."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

from coffee_rt.local import supervisor
from coffee_rt.local.components.base import Component, Health
from coffee_rt.local.process import ManagedProcess
from coffee_rt.local.settings import LocalSettings
from coffee_rt.local.stack import ComponentStatus, LocalStack


class Sleeper(Component):
    """A real process standing in for a server: it only sleeps."""

    name = "sleeper"

    def ports(self) -> list[int]:
        return []

    def address(self) -> str:
        return "-"

    def processes(self) -> list[ManagedProcess]:
        return [self.process("", [sys.executable, "-c", "import time; time.sleep(120)"])]

    def health(self) -> Health:
        return Health(self.processes()[0].is_running(), "")


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _setup(tmp_path: Path) -> tuple[supervisor.Supervisor, ManagedProcess, Clock]:
    stack = LocalStack(LocalSettings.shifted(40_000, tmp_path))
    stack.components = {"sleeper": Sleeper(stack.settings)}
    clock = Clock()
    return supervisor.Supervisor(stack, clock=clock), stack.components["sleeper"].processes()[0], clock


def _sigkill(process: ManagedProcess) -> None:
    pid = process.pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    while process.pid() == pid:
        os.waitpid(pid, os.WNOHANG)
        time.sleep(0.01)


def test_backoff_doubles_from_one_second_to_a_minute() -> None:
    assert [supervisor.backoff(n) for n in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]
    assert supervisor.backoff(10_000) == 60


def test_a_killed_process_is_started_again_after_its_backoff(tmp_path: Path) -> None:
    sup, process, clock = _setup(tmp_path)
    supervisor.watch(sup.stack.settings, ["sleeper"])
    first = process.start()
    try:
        sup.tick()
        assert process.pid() == first
        _sigkill(process)
        sup.tick()  # seen dead: the restart waits 1 s
        assert process.pid() is None
        clock.now += 1.0
        sup.tick()
        second = process.pid()
        assert second is not None and second != first
        _sigkill(process)
        sup.tick()
        clock.now += 1.0
        sup.tick()
        assert process.pid() is None  # died again at once: now 2 s
        clock.now += 1.0
        sup.tick()
        assert process.pid() not in (None, second)
        log = process.log_file.read_text()
        assert "supervisor: sleeper is gone; starting it again in 1 s (restart 1)" in log
        assert "supervisor: sleeper is gone; starting it again in 2 s (restart 2)" in log
        assert supervisor.restarts(sup.stack.settings)["sleeper"]["count"] == 2
        row = supervisor.annotate(sup.stack.settings, [ComponentStatus("sleeper", "-", "running", [1], "ok")])[0]
        assert row.detail.startswith("ok; restarted 2x by the supervisor, last at ")
    finally:
        process.stop(timeout=5)


def test_stopped_or_unwatched_processes_stay_stopped(tmp_path: Path) -> None:
    sup, process, clock = _setup(tmp_path)
    supervisor.watch(sup.stack.settings, ["sleeper"])
    process.start()
    try:
        process.stop(timeout=5)  # what `down` does: the pid file goes with the process
        sup.tick()
        clock.now += 120
        sup.tick()
        assert process.pid() is None
        process.start()
        supervisor.unwatch(sup.stack.settings, ["sleeper"])
        _sigkill(process)
        sup.tick()
        clock.now += 120
        sup.tick()
        assert process.pid() is None
        assert supervisor.watched(sup.stack.settings) == set()
        assert supervisor.restarts(sup.stack.settings) == {}
    finally:
        process.stop(timeout=5)
