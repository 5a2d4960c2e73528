"""One server process we started: spawned in its own session, logged to a file, known by pid.

``down`` must stop exactly what ``up`` started, never something that merely shares a name, so
the pid file also records the process's start time (from /proc); a recycled pid doesn't match.
"""

from __future__ import annotations

import json
import os
import pwd
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from coffee_rt.local import cpu


def _start_ticks(pid: int) -> int | None:
    """The process start time in clock ticks since boot, or None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name (field 2) may contain spaces; fields after the closing paren are fixed.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie is as good as gone
        return None
    return int(fields[19])


def as_user(user: str | None) -> dict[str, Any]:
    """subprocess arguments that run as ``user`` with that user's group only. ``user=`` alone keeps
    root's group, whose (empty) group bits on a root-owned 0701 folder then deny passing through."""
    if user is None:
        return {}
    return {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": []}


def lower_group_priority(pid: int, niceness: int) -> None:
    """Give the session that ``pid`` leads the CPU niceness ``niceness``.

    With ``kernel.sched_autogroup_enabled`` (most distributions) each session is a scheduling
    group of its own, and the scheduler shares the CPU between groups first: a process's nice
    then ranks only its own threads, and a Flink at nice 5 still got an equal share beside the
    ingest service. The parent writes it: a child that dropped root (Postgres) no longer owns
    its /proc entries until it execs. The group's nice covers every process of the session."""
    try:
        Path(f"/proc/{pid}/autogroup").write_text(str(niceness))
    except OSError:
        pass  # a kernel without autogroup: the process nice (set in the child) is what counts


def child_setup(niceness: int, cpu_group: Path | None, user: str | None,
                cpus: frozenset[int] | None = None) -> Callable[[], None] | None:
    """What the child does between fork and exec, in this order: join the background cgroup (that
    needs root), confine itself to ``cpus``, lower its nice, then become ``user``. Popen's own
    ``user=`` would switch first. Every thread the server starts inherits the CPU set."""
    if not niceness and cpu_group is None and user is None and cpus is None:
        return None
    ids = pwd.getpwnam(user) if user is not None else None  # looked up here: no NSS calls after fork

    def setup() -> None:
        if cpu_group is not None:
            cpu.join(cpu_group)
        if cpus is not None:
            try:
                os.sched_setaffinity(0, cpus)
            except OSError:
                pass  # a CPU set this machine refuses: the server runs anywhere, as without one
        if niceness:
            os.nice(niceness)
        if ids is not None:
            os.setgroups([])
            os.setgid(ids.pw_gid)
            os.setuid(ids.pw_uid)

    return setup


@dataclass(frozen=True)
class ManagedProcess:
    """A long-running server process described by its argv, environment and files."""

    name: str
    argv: Sequence[str]
    log_file: Path
    pid_file: Path
    env: Mapping[str, str] | None = None
    cwd: Path | None = None
    user: str | None = None  # run as this user (e.g. postgres refuses root)
    niceness: int = 0  # > 0: yields the CPU to latency-sensitive servers on a small machine
    cpu_group: Path | None = None  # the background cgroup to run in (coffee_rt.local.cpu), when the machine has one
    cpus: frozenset[int] | None = None  # confine the process (all its threads) to these CPUs

    def pid(self) -> int | None:
        """The pid of our live process, or None when it is not running (stale pid files are ignored)."""
        try:
            record = json.loads(self.pid_file.read_text())
        except (FileNotFoundError, ValueError):
            return None
        pid, ticks = int(record["pid"]), record.get("start_ticks")
        return pid if ticks is not None and _start_ticks(pid) == ticks else None

    def is_running(self) -> bool:
        return self.pid() is not None

    def start(self) -> int:
        """Spawn the process (if not already running) and return its pid."""
        existing = self.pid()
        if existing is not None:
            return existing
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        with open(self.log_file, "ab") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {self.name}: "
                      f"{' '.join(self.argv)}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                list(self.argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.cwd,
                start_new_session=True,
                preexec_fn=child_setup(self.niceness, self.cpu_group, self.user, self.cpus),
            )
        if self.niceness:
            lower_group_priority(proc.pid, self.niceness)
        ticks = _start_ticks(proc.pid)
        self.pid_file.write_text(json.dumps({"pid": proc.pid, "start_ticks": ticks, "argv": list(self.argv)}))
        return proc.pid

    def exited_early(self) -> bool:
        """True when a pid file exists but its process is gone (it crashed on start)."""
        return self.pid_file.exists() and self.pid() is None

    def stop(self, timeout: float = 30.0) -> bool:
        """SIGTERM our process group, SIGKILL after ``timeout``. Returns whether anything was stopped."""
        pid = self.pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        self._signal(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.pid() == pid:
            time.sleep(0.1)
        if self.pid() == pid:
            self._signal(pid, signal.SIGKILL)
            while self.pid() == pid:
                time.sleep(0.05)
        self.pid_file.unlink(missing_ok=True)
        return True

    def kill(self) -> None:
        """SIGKILL without grace: for crash tests."""
        pid = self.pid()
        if pid is not None:
            self._signal(pid, signal.SIGKILL)
            while self.pid() == pid:
                time.sleep(0.05)

    @staticmethod
    def _signal(pid: int, sig: int) -> None:
        try:
            os.killpg(pid, sig)  # the whole session we started, e.g. a script and its java child
        except ProcessLookupError:
            return
        except PermissionError:
            os.kill(pid, sig)
        # Our child may be a zombie until reaped; reap it if it is ours.
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])
