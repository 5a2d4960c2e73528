"""What the local stack costs while no orders arrive: CPU seconds of each server over a window.

Counted from /proc: every process of a component's session (a start script and its JVM alike),
user + system time, read at the start and end of each window; a process that starts and ends
inside a window is missed. CPU seconds are what the servers themselves spend, so the figure
holds better than a utilisation percentage on a machine other work shares (the load average is
printed beside it).

    uv run python benchmarks/idle_cost.py --port-offset 40000                  # start it, settle, 3 x 60 s
    uv run python benchmarks/idle_cost.py --port-offset 40000 --no-up --threads 8 --repeat 1
    uv run python benchmarks/idle_cost.py --port-offset 40000 --down           # stop it afterwards

It starts what is not running with `coffee-rt local up` (the supervisor too), waits until the job
runs and ``--settle`` seconds more (start-up's JIT and first checkpoints done), then measures.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from stack_env import cli, cli_env, stack_settings

from coffee_rt.local import supervisor
from coffee_rt.local.stack import OPTIONAL, LocalStack

TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Task:
    """One thread's (or process's) CPU ticks so far."""

    key: tuple[int, int]  # (pid, tid)
    name: str
    ticks: int


def _stat(path: Path) -> tuple[str, list[str]] | None:
    try:
        text = path.read_text()
    except OSError:
        return None
    return text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :].split()


def sessions() -> dict[int, list[int]]:
    """session id -> pids of every process on the machine."""
    found: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (stat := _stat(entry / "stat")) is not None:
            found[int(stat[1][3])].append(int(entry.name))
    return found


def tasks(pids: list[int], threads: bool) -> list[Task]:
    """CPU ticks (user + system) of each process, or of each of their threads, and of ended children."""
    out = []
    for pid in pids:
        # What its ended children spent (a `java -version` run by the supervisor), counted once reaped.
        if (own := _stat(Path(f"/proc/{pid}/stat"))) is not None:
            out.append(Task((pid, -1), "(ended children)", int(own[1][13]) + int(own[1][14])))
        paths = sorted(Path(f"/proc/{pid}/task").glob("*")) if threads else [Path(f"/proc/{pid}")]
        for path in paths:
            if (stat := _stat(path / "stat")) is not None:
                name, fields = stat
                out.append(Task((pid, int(path.name)), name, int(fields[11]) + int(fields[12])))
    return out


def components(stack: LocalStack) -> dict[str, list[int]]:
    """component -> session leader pids of its running processes (the supervisor as one more)."""
    leaders: dict[str, list[int]] = {}
    for name, component in stack.components.items():
        if component.runs_inside_another:
            continue
        pids = [pid for p in component.processes() if (pid := p.pid()) is not None]
        if pids:
            leaders[name] = pids
    if (pid := supervisor.supervisor_process(stack.settings).pid()) is not None:
        leaders["supervisor"] = [pid]
    return leaders


Threads = dict[str, list[tuple[float, str]]]


def measure(stack: LocalStack, window: float, threads: bool) -> tuple[dict[str, float], Threads]:
    """CPU seconds per component over ``window``, and per thread (name, seconds) when ``threads``."""
    leaders = components(stack)

    def snapshot() -> dict[str, list[Task]]:
        by_session = sessions()
        return {name: tasks([pid for leader in ls for pid in by_session.get(leader, [])], threads)
                for name, ls in leaders.items()}

    before = snapshot()
    time.sleep(window)
    after = snapshot()
    totals: dict[str, float] = {}
    per_thread: Threads = {}
    for name in leaders:
        start = {t.key: t.ticks for t in before[name]}
        spent = [((t.ticks - start.get(t.key, 0)) / TICK, t.name) for t in after[name]]
        totals[name] = sum(s for s, _ in spent)
        per_thread[name] = sorted(spent, reverse=True)
    return totals, per_thread


def up(stack: LocalStack) -> None:
    """`coffee-rt local up` of the default components (with its supervisor) unless all run."""
    wanted = [n for n in stack.components if n not in OPTIONAL]
    if all(s.state == "running" for s in stack.status(wanted)):
        return
    subprocess.run(cli("local", "up"), env=cli_env(stack.settings), check=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port-offset", type=int, default=None,
                   help="the stack of this offset (ports shifted, state under .state/test-<offset>)")
    p.add_argument("--window", type=float, default=60, help="seconds per measurement (default 60)")
    p.add_argument("--repeat", type=int, default=3, help="measurements (default 3)")
    p.add_argument("--settle", type=float, default=60,
                   help="seconds to wait after the job runs before measuring (default 60)")
    p.add_argument("--threads", type=int, default=0, metavar="N",
                   help="also print the N busiest threads of each server (Java threads by name)")
    p.add_argument("--no-up", action="store_true", help="start nothing; measure what runs")
    p.add_argument("--down", action="store_true", help="`coffee-rt local down` of the stack afterwards")
    return p.parse_args(argv)


def main() -> None:
    args = parse_args()
    stack = LocalStack(stack_settings(args.port_offset))
    if not args.no_up:
        up(stack)
    deadline = time.monotonic() + 300
    while not stack["job"].health().ok:
        if time.monotonic() > deadline:
            raise SystemExit("the job is not RUNNING after 300 s")
        time.sleep(2)
    time.sleep(args.settle)
    runs: dict[str, list[float]] = defaultdict(list)
    for run in range(1, args.repeat + 1):
        load = os.getloadavg()
        totals, per_thread = measure(stack, args.window, args.threads > 0)
        print(f"\nrun {run}: {args.window:.0f} s, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        print(f"{'server':<12} {'cpu s':>7} {'% of a core':>12}")
        for name, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
            runs[name].append(seconds)
            print(f"{name:<12} {seconds:7.2f} {100 * seconds / args.window:11.2f}%")
            for spent, thread in per_thread[name][: args.threads]:
                if spent > 0:
                    print(f"    {thread:<20} {100 * spent / args.window:6.2f}%")
        total = sum(totals.values())
        runs["total"].append(total)
        print(f"{'total':<12} {total:7.2f} {100 * total / args.window:11.2f}%")
    if args.repeat > 1:
        print(f"\n% of one core over {args.repeat} runs: median (min-max)")
        for name, values in sorted(runs.items(), key=lambda kv: -statistics.median(kv[1])):
            pct = [100 * v / args.window for v in values]
            print(f"{name:<12} {statistics.median(pct):6.2f} ({min(pct):.2f}-{max(pct):.2f})")
    if args.down:
        subprocess.run(cli("local", "down"), env=cli_env(stack.settings), check=False)


if __name__ == "__main__":
    main()
