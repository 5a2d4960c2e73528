"""The local stack's supervisor: a server of the stack that dies is started again, with back-off.

What a pod's ``restartPolicy: Always`` does in Kubernetes: ``local up`` starts it as one more
recorded process (``coffee-rt local supervise``), and ``local down`` stops it before anything else,
so what ``down`` stops stays stopped. It looks after the components named in
``run/supervised.json`` (what ``up`` started and ``down`` has not stopped):

- a process whose pid file is still there but whose process is gone has died (``down`` removes the
  pid file): it is started again after 1 s, then 2, 4, ... up to 60 s while it keeps dying, back to
  1 s once it has stayed up for a minute. Each restart is written to that process's own log.
- the job, which has no process of its own: when Flink answers and our job is not active (its
  cluster was restarted, or it failed for good; checked every ``JOB_CHECK_EVERY`` s), the job
  component's own start resubmits it, from its newest savepoint or checkpoint.

Restarts are counted in ``run/restarts.json``; ``local status`` shows them.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from coffee_rt.local.process import ManagedProcess
from coffee_rt.local.settings import LocalSettings

if TYPE_CHECKING:
    from coffee_rt.local.stack import ComponentStatus, LocalStack

FIRST_DELAY = 1.0
MAX_DELAY = 60.0
STABLE_AFTER = 60.0  # up this long: the next death starts the back-off again at FIRST_DELAY
TICK = 0.5
# The job's check asks Flink's REST API three times (about 15 ms of CPU here and as much in the
# JobManager): every 5 s, not every tick, so an idle stack stays idle; a due resubmission still
# goes on the tick it is due.
JOB_CHECK_EVERY = 5.0


def backoff(failures: int) -> float:
    """The wait before restart number ``failures + 1`` of a process that keeps dying."""
    return float(min(MAX_DELAY, FIRST_DELAY * 2 ** min(failures, 16)))


def _run_dir(settings: LocalSettings) -> Path:
    return settings.state_dir / "run"


def supervisor_process(settings: LocalSettings) -> ManagedProcess:
    """The supervisor itself, recorded like every server of the stack (its environment carries the
    COFFEE_RT_* settings, so it watches this same stack)."""
    return ManagedProcess(
        name="supervisor",
        argv=[sys.executable, "-m", "coffee_rt.cli", "local", "supervise"],
        log_file=settings.state_dir / "logs" / "supervisor.log",
        pid_file=_run_dir(settings) / "supervisor.pid",
    )


def _read_json(path: Path) -> object:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def _write_json(path: Path, value: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value, indent=1, sort_keys=True))
    os.replace(tmp, path)  # a reader never sees half a file


def watched(settings: LocalSettings) -> set[str]:
    names = _read_json(_run_dir(settings) / "supervised.json")
    return {str(n) for n in names} if isinstance(names, list) else set()


def watch(settings: LocalSettings, names: Iterable[str]) -> None:
    _write_json(_run_dir(settings) / "supervised.json", sorted(watched(settings) | set(names)))


def unwatch(settings: LocalSettings, names: Iterable[str] | None) -> None:
    """Stop looking after ``names`` (None: all of them) before ``down`` stops them."""
    keep = set() if names is None else watched(settings) - set(names)
    _write_json(_run_dir(settings) / "supervised.json", sorted(keep))


def restarts(settings: LocalSettings) -> dict[str, dict[str, object]]:
    record = _read_json(_run_dir(settings) / "restarts.json")
    return record if isinstance(record, dict) else {}


def annotate(settings: LocalSettings, rows: list[ComponentStatus]) -> list[ComponentStatus]:
    """Status rows with the supervisor's restarts of each component appended to their detail."""
    record = restarts(settings)
    result = []
    for row in rows:
        entry = record.get(row.name)
        if entry:
            note = f"restarted {entry['count']}x by the supervisor, last at {entry['last']} ({entry['what']})"
            row = replace(row, detail=f"{row.detail}; {note}" if row.detail else note)
        result.append(row)
    return result


@dataclass
class _Backoff:
    failures: int = 0
    due: float | None = None  # when the next restart is allowed; None: not dead (yet)
    started: float = 0.0
    checked: float = float("-inf")  # the job's last check (JOB_CHECK_EVERY)


class Supervisor:
    """One pass per :data:`TICK` over the watched components; ``run`` loops until ``stop()``."""

    def __init__(self, stack: LocalStack, clock: Callable[[], float] = time.monotonic,
                 say: Callable[[str], None] | None = None) -> None:
        self.stack = stack
        self.clock = clock
        self.say = say or _print
        self.state: dict[str, _Backoff] = {}
        # Each component's processes, described once: building them (environments, paths) was most
        # of a tick's CPU, and a stack's settings do not change while its supervisor runs.
        self.processes: dict[str, list[ManagedProcess]] = {}
        self.stopped = False

    def stop(self) -> None:
        self.stopped = True

    def run(self) -> None:
        self._say(f"supervising {', '.join(sorted(watched(self.stack.settings))) or 'nothing yet'}")
        while not self.stopped:
            self.tick()
            time.sleep(TICK)

    def tick(self) -> None:
        names = watched(self.stack.settings)
        for name, component in self.stack.components.items():
            if name not in names:
                continue
            try:
                if component.runs_inside_another:
                    self._hosted(name)
                else:
                    if name not in self.processes:
                        self.processes[name] = component.processes()
                    for process in self.processes[name]:
                        self._process(name, process)
            except Exception as exc:  # noqa: BLE001 - one component's trouble must not end the supervisor
                self._say(f"{name}: check failed: {type(exc).__name__}: {exc}")

    def _process(self, component: str, process: ManagedProcess) -> None:
        state = self.state.setdefault(process.name, _Backoff())
        now = self.clock()
        if not process.exited_early():  # running, or stopped on purpose (no pid file)
            if state.failures and state.due is None and now - state.started >= STABLE_AFTER:
                state.failures = 0
            return
        if state.due is None:
            state.due = now + backoff(state.failures)
            self._log(process, f"supervisor: {process.name} is gone; starting it again in "
                               f"{backoff(state.failures):.0f} s (restart {state.failures + 1})")
            return
        if now < state.due or component not in watched(self.stack.settings) or not process.pid_file.exists():
            return
        pid = process.start()
        state.failures, state.due, state.started = state.failures + 1, None, now
        self._log(process, f"supervisor: started {process.name} again, pid {pid}")
        self._record(component, process.name)

    def _hosted(self, name: str) -> None:
        """The job: resubmitted (from its state) when its cluster answers without it."""
        component = self.stack.components[name]
        host = self.stack.components["flink"]
        state = self.state.setdefault(name, _Backoff())
        now = self.clock()
        if state.due is None and now < state.checked + JOB_CHECK_EVERY:
            return
        state.checked = now
        if not host.health().ok or component.health().detail != "not running":
            if state.failures and state.due is None and now - state.started >= STABLE_AFTER:
                state.failures = 0
            return
        if state.due is None:
            state.due = now + backoff(state.failures)
            self._say(f"{name}: not running in Flink; submitting it again in {backoff(state.failures):.0f} s")
            return
        if now < state.due or name not in watched(self.stack.settings):
            return
        state.failures, state.due, state.started = state.failures + 1, None, now
        component.after_start(self._say)
        self._record(name, name)

    def _record(self, component: str, what: str) -> None:
        record = restarts(self.stack.settings)
        entry = record.get(component) or {"count": 0}
        record[component] = {"count": int(str(entry["count"])) + 1, "what": what,
                             "last": time.strftime("%Y-%m-%dT%H:%M:%S")}
        _write_json(_run_dir(self.stack.settings) / "restarts.json", record)

    def _log(self, process: ManagedProcess, message: str) -> None:
        line = f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} {message}\n"
        process.log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(process.log_file, "a") as log:
            log.write(line)
        self._say(message)

    def _say(self, message: str) -> None:
        self.say(message)


def _print(message: str) -> None:
    print(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} {message}", flush=True)
