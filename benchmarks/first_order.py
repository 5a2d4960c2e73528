"""How long from `coffee-rt local up` until the first order is counted on the dashboard.

Each run stops the stack (`coffee-rt local down`: the job with a savepoint), optionally removes its
state (``--fresh``: initdb, a new Kafka log, a job without state, as on a first day), then starts
`coffee-rt local up` and stamps each server's "ready" line. As soon as the ingest answers, one
order is POSTed (retried until the 202); then Redis is polled until the store's count moved and the
dashboard's API until the order is among its recent ones; then each server's CPU seconds so far
(what starting cost, whatever else ran on the machine). Caches (jars, the Python environment) are
whatever a previous run left: warm after the first.

    uv run python benchmarks/first_order.py --port-offset 40000 --repeat 3
    uv run python benchmarks/first_order.py --port-offset 40000 --repeat 3 --fresh
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import statistics
import subprocess
import threading
import time
from datetime import UTC, datetime

import httpx
import redis
from idle_cost import sessions, tasks
from stack_env import cli, cli_env, stack_settings

from coffee_live.days import business_day
from coffee_live.layout import day_key
from coffee_orders.loadgen import DEFAULT_STORES, random_order
from coffee_orders.schema import to_wire
from coffee_rt.local.components.dashboard import Dashboard
from coffee_rt.local.components.ingest import Ingest
from coffee_rt.local.settings import LocalSettings
from coffee_rt.local.stack import LocalStack

READY = re.compile(r"^\[\s*[\d.]+s\] ([\w-]+): (ready at|already running|submitted)")
STORE = DEFAULT_STORES[0]


class Run:
    """One `local up` and its first order; times in seconds since the command started."""

    def __init__(self, settings: LocalSettings) -> None:
        self.settings = settings
        self.t0 = 0.0
        self.marks: dict[str, float] = {}
        self.log: list[str] = []
        self.up: subprocess.Popen[str] | None = None
        self.cpu: dict[str, float] = {}  # CPU seconds of each server from its start to the order on the dashboard

    def mark(self, what: str) -> None:
        self.marks.setdefault(what, time.monotonic() - self.t0)

    def execute(self, timeout: float) -> None:
        self.t0 = time.monotonic()
        self.up = up = subprocess.Popen(cli("local", "up"), env=cli_env(self.settings), stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE, text=True)
        reader = threading.Thread(target=self._read, args=(up,), daemon=True)
        reader.start()
        try:
            self._first_order(time.monotonic() + timeout)
        finally:
            up.wait(timeout=max(1.0, timeout - (time.monotonic() - self.t0)))
            self.mark("local up returned")
            reader.join(5)
        self._up_failed()

    def _up_failed(self) -> None:
        if self.up is not None and self.up.poll() not in (None, 0):
            raise SystemExit(f"`coffee-rt local up` failed ({self.up.returncode}):\n" + "\n".join(self.log[-20:]))

    def _until(self, deadline: float, what: str, pause: float = 0.2) -> None:
        self._up_failed()
        if time.monotonic() > deadline:
            raise SystemExit(f"no {what} before the timeout")
        time.sleep(pause)

    def _read(self, up: subprocess.Popen[str]) -> None:
        assert up.stderr is not None
        for line in up.stderr:
            self.log.append(line.rstrip())
            if (found := READY.match(line)) is not None:
                self.mark(f"{found.group(1)} {'submitted' if found.group(2) == 'submitted' else 'ready'}")

    def _first_order(self, deadline: float) -> None:
        while "ingest ready" not in self.marks:
            self._until(deadline, "the ingest")
        order = random_order(random.Random(), STORE, datetime.now(UTC))
        token = Ingest(self.settings).dev_tokens()[STORE.store_id]
        body, headers = to_wire(order), {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        summary = day_key(STORE.store_id, business_day(int(time.time() * 1000), STORE.timezone), "summary")
        client = redis.Redis.from_url(self.settings.redis_url)
        before = _orders(client, summary)
        while True:
            try:
                if httpx.post(f"{self.settings.ingest_url}/v1/orders", content=body, headers=headers,
                              timeout=5).status_code == 202:
                    break
            except httpx.HTTPError:
                pass
            self._until(deadline, "a 202 from the ingest")
        self.mark("order accepted (202)")
        while _orders(client, summary) <= before:
            self._until(deadline, "the order in Redis", 0.05)
        self.mark("order counted in Redis")
        while "dashboard ready" not in self.marks:
            self._until(deadline, "the dashboard")
        auth = {"Authorization": f"Bearer {Dashboard(self.settings).dev_token()}"}
        while True:
            try:
                found = httpx.get(f"{self.settings.dashboard_url}/api/v1/summary", params={"store": STORE.store_id},
                                  headers=auth, timeout=5).json()
                if any(r.get("message_id") == str(order.message_id) for r in found.get("recent", [])):
                    break
            except (httpx.HTTPError, ValueError):
                pass
            self._until(deadline, "the order on the dashboard", 0.1)
        self.mark("order on the dashboard")
        by_session = sessions()
        for component in LocalStack(self.settings).components.values():
            for process in [] if component.runs_inside_another else component.processes():
                if (leader := process.pid()) is not None:
                    ticks = sum(t.ticks for t in tasks(by_session.get(leader, []), threads=False))
                    self.cpu[process.name] = ticks / os.sysconf("SC_CLK_TCK")


def _orders(client: redis.Redis, summary: str) -> int:
    value = client.hget(summary, "orders")
    return int(value) if isinstance(value, (bytes, str)) else 0


def down(settings: LocalSettings) -> None:
    subprocess.run(cli("local", "down"), env=cli_env(settings), check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port-offset", type=int, default=None,
                   help="the stack of this offset (ports shifted, state under .state/test-<offset>)")
    p.add_argument("--repeat", type=int, default=3, help="runs (default 3)")
    p.add_argument("--fresh", action="store_true", help="remove the stack's state before each run")
    p.add_argument("--timeout", type=float, default=600, help="seconds one run may take (default 600)")
    p.add_argument("--keep", action="store_true", help="leave the last run's stack running")
    return p.parse_args(argv)


def main() -> None:
    args = parse_args()
    settings = stack_settings(args.port_offset)
    results: list[dict[str, float]] = []
    for n in range(1, args.repeat + 1):
        down(settings)
        if args.fresh:
            shutil.rmtree(settings.state_dir, ignore_errors=True)
        load = os.getloadavg()
        run = Run(settings)
        run.execute(args.timeout)
        results.append(run.marks)
        print(f"\nrun {n} ({'fresh state' if args.fresh else 'state kept'}), load average before "
              f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, after {os.getloadavg()[0]:.2f}")
        for what, at in sorted(run.marks.items(), key=lambda kv: kv[1]):
            print(f"  {at:7.1f} s  {what}")
        print("  CPU seconds each server spent until then: " + ", ".join(
            f"{name} {seconds:.1f}" for name, seconds in sorted(run.cpu.items(), key=lambda kv: -kv[1])))
    if len(results) > 1:
        print(f"\nover {len(results)} runs: median (min-max) s")
        names = sorted(set.intersection(*(set(r) for r in results)), key=lambda w: statistics.median(
            r[w] for r in results))
        for what in names:
            values = [r[what] for r in results]
            print(f"  {statistics.median(values):7.1f} ({min(values):.1f}-{max(values):.1f})  {what}")
    if not args.keep:
        down(settings)


if __name__ == "__main__":
    main()
