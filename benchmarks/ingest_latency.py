"""Order-ingest latency under a fixed, open-loop request rate, with the local stack running.

Open loop: request i is due at t0 + i/rate whether or not earlier ones have answered, and its
latency counts from that due time, so a stalled server shows up as latency instead of hiding
behind a slower client (coordinated omission). The client is a small raw-HTTP/1.1 keep-alive
client on uvloop, to leave as much of the two cores as possible to the server and Kafka.

The server's own view comes from its histogram (coffee_ingest_request_duration_seconds, route
/v1/orders, status 202), diffed before/after each step; quantiles are interpolated inside
buckets, so they are estimates at bucket resolution.

    uv run python benchmarks/ingest_latency.py --rate 1000 --duration 30
    uv run python benchmarks/ingest_latency.py --find-max          # steps until p99 >= 50 ms
    uv run python benchmarks/ingest_latency.py --repeat 4          # the tail varies run to run: its spread
    uv run python benchmarks/ingest_latency.py --port-offset 11000  # the test stack of that offset
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import os
import random
import re
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from coffee_orders.loadgen import DEFAULT_STORES, random_order
from coffee_orders.schema import to_wire
from coffee_rt.local.components.ingest import Ingest
from coffee_rt.local.settings import LocalSettings
from coffee_rt.local.stack import OPTIONAL, LocalStack
from coffee_rt.paths import REPO_ROOT

ROUTE = "/v1/orders"


@dataclass
class StepResult:
    target_rate: float
    sent: int
    ok: int
    errors: dict[int, int]
    achieved_rate: float
    latencies: list[float]  # from due time, seconds
    service: list[float]  # from write to last byte, seconds
    send_lag: list[float]  # from due time to write: the client's own delay, inside the latency
    due_wall: list[float]  # each measured request's due time as Unix time, in the order of ``latencies``
    server_p50: float | None
    server_p99: float | None
    server_max_bucket: float | None
    cpu_ms_per_order: dict[str, float]  # process CPU time (user + system) per measured order, by component

    def q(self, values: list[float], p: float) -> float:
        if not values:
            return float("nan")
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))]


def parse_args(argv: list[str]) -> argparse.Namespace:
    summary, details = __doc__.split("\n\n", 1)
    p = argparse.ArgumentParser(description=summary, epilog=details,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rate", type=float, default=1000, help="orders per second (default 1000)")
    p.add_argument("--duration", type=float, default=30, help="seconds per step (default 30)")
    p.add_argument("--warmup", type=float, default=5, help="seconds at the rate before measuring (default 5)")
    p.add_argument("--connections", type=int, default=32, help="keep-alive connections (default 32)")
    p.add_argument("--find-max", action="store_true",
                   help="step the rate up from --rate by --step until p99 >= --p99-limit-ms or the rate is not met")
    p.add_argument("--repeat", type=int, default=1,
                   help="runs at --rate, then the spread of their client p99 (run to run it varies several-fold)")
    p.add_argument("--step", type=float, default=500, help="rate increment for --find-max (default 500)")
    p.add_argument("--max-rate", type=float, default=20000, help="stop --find-max here (default 20000)")
    p.add_argument("--p99-limit-ms", type=float, default=50.0)
    p.add_argument("--port-offset", type=int, default=None,
                   help="use the test stack of this offset (ports shifted, state under .state/test-<offset>)")
    p.add_argument("--only", nargs="*", default=None,
                   help="components to bring up (default: the whole default stack)")
    p.add_argument("--no-up", action="store_true", help="do not start anything; the stack must be running")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the first run's orders (default: a random one, printed). The job counts a "
                        "message_id it has seen only once, so orders repeated from an earlier run would spare "
                        "it its work and flatter the latency measured beside it")
    p.add_argument("--timeline", type=Path, default=None, metavar="PREFIX",
                   help="write PREFIX-<run>.tsv: each measured request's due time (Unix seconds) and latency "
                        "(ms), to line stalls up with other logs (e.g. the broker's GC log)")
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    return args


def stack_settings(offset: int | None) -> LocalSettings:
    if offset is None:
        return LocalSettings.from_env()
    return LocalSettings.shifted(offset, REPO_ROOT / ".state" / f"test-{offset}").with_env()


def build_requests(count: int, url: str, tokens: dict[str, str], seed: int) -> list[bytes]:
    """Distinct orders placed now, serialised as complete HTTP/1.1 requests; their message_ids
    follow from ``seed``, so each run needs a seed no earlier run used."""
    rng = random.Random(seed)
    host = urlsplit(url).netloc
    stores = [s for s in DEFAULT_STORES if s.store_id in tokens]
    now = datetime.now(UTC)
    out = []
    for i in range(count):
        store = stores[i % len(stores)]
        body = to_wire(random_order(rng, store, now, "app" if i % 5 == 0 else "counter"))
        out.append(
            (f"POST {ROUTE} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {tokens[store.store_id]}\r\n"
             f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
        )
    return out


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    match = re.search(rb"(?i)content-length: *(\d+)", head)
    if match:
        await reader.readexactly(int(match.group(1)))
    return status


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


class _Itimerspec(ctypes.Structure):
    _fields_ = [("it_interval", _Timespec), ("it_value", _Timespec)]


class Pacer:
    """Sleeps until an absolute ``time.perf_counter()`` instant with microsecond precision.

    asyncio's timers (uvloop's and the default loop's) have millisecond granularity: pacing with
    them sent requests up to a millisecond after their due time, and since latency counts from
    the due time, that alone put ~1 ms into the client p99. A Linux timerfd on the same clock
    (CLOCK_MONOTONIC) wakes the loop on time; lateness that remains is real (the CPU was busy).
    """

    _CLOCK_MONOTONIC, _TFD_TIMER_ABSTIME = 1, 1
    _TFD_NONBLOCK, _TFD_CLOEXEC = os.O_NONBLOCK, os.O_CLOEXEC

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        assert time.get_clock_info("perf_counter").implementation == "clock_gettime(CLOCK_MONOTONIC)"
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._fd = self._libc.timerfd_create(self._CLOCK_MONOTONIC, self._TFD_NONBLOCK | self._TFD_CLOEXEC)
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "timerfd_create")
        self._loop = loop
        self._waiter: asyncio.Future[None] | None = None
        loop.add_reader(self._fd, self._fired)

    def _fired(self) -> None:
        try:
            os.read(self._fd, 8)
        except BlockingIOError:
            return
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def until(self, when: float) -> None:
        if when <= time.perf_counter():
            return
        sec = int(when)
        spec = _Itimerspec(_Timespec(0, 0), _Timespec(sec, int((when - sec) * 1e9)))
        if self._libc.timerfd_settime(self._fd, self._TFD_TIMER_ABSTIME, ctypes.byref(spec), None) != 0:
            raise OSError(ctypes.get_errno(), "timerfd_settime")
        self._waiter = self._loop.create_future()
        await self._waiter

    def close(self) -> None:
        self._loop.remove_reader(self._fd)
        os.close(self._fd)


async def run_step(url: str, requests: list[bytes], rate: float, warmup: float, connections: int) -> StepResult:
    """Send ``requests`` at ``rate``; the first ``warmup`` seconds' worth are not measured."""
    split = urlsplit(url)
    queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    skip = int(warmup * rate)
    latencies: list[float] = []
    service: list[float] = []
    send_lag: list[float] = []
    due_wall: list[float] = []
    wall = time.time() - time.perf_counter()
    errors: dict[int, int] = defaultdict(int)
    ok = 0
    done_at = 0.0

    async def worker() -> None:
        nonlocal ok, done_at
        reader, writer = await asyncio.open_connection(split.hostname, split.port)
        try:
            while (item := await queue.get()) is not None:
                index, due = item
                sent = time.perf_counter()
                try:
                    writer.write(requests[index])
                    status = await _read_response(reader)
                except (ConnectionError, asyncio.IncompleteReadError):
                    status = 0  # counted as an error; carry on with a new connection
                    writer.close()
                    reader, writer = await asyncio.open_connection(split.hostname, split.port)
                end = time.perf_counter()
                if index >= skip:
                    if status == 202:
                        ok += 1
                        latencies.append(end - due)
                        service.append(end - sent)
                        send_lag.append(sent - due)
                        due_wall.append(wall + due)
                    else:
                        errors[status] += 1
                    done_at = end
        finally:
            writer.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    await asyncio.sleep(0.2)  # connections open
    pacer = Pacer(asyncio.get_running_loop())
    start = time.perf_counter()
    measure_start = start + skip / rate
    for index in range(len(requests)):
        due = start + index / rate
        await pacer.until(due)
        queue.put_nowait((index, due))
    pacer.close()
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    measured = len(requests) - skip
    return StepResult(rate, measured, ok, dict(errors), ok / max(done_at - measure_start, 1e-9),
                      latencies, service, send_lag, due_wall, None, None, None, {})


def scrape(url: str) -> dict[float, float]:
    """Cumulative bucket counts of the 202 latency histogram of /v1/orders (``url``: the internal port)."""
    import httpx

    text = httpx.get(f"{url}/metrics", timeout=5).text
    buckets: dict[float, float] = {}
    pattern = re.compile(r'coffee_ingest_request_duration_seconds_bucket\{le="([^"]+)",route="/v1/orders",'
                         r'status="202"\} (\S+)')
    for line in text.splitlines():
        m = pattern.match(line)
        if m:
            buckets[float(m.group(1))] = float(m.group(2))
    return buckets


def histogram_quantile(before: dict[float, float], after: dict[float, float], q: float) -> float | None:
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0
    if total <= 0:
        return None
    rank = q * total
    prev_bound, prev_count = 0.0, 0.0
    for bound, count in zip(bounds, counts, strict=True):
        if count >= rank:
            if bound == float("inf"):
                return prev_bound
            return prev_bound + (bound - prev_bound) * (rank - prev_count) / max(count - prev_count, 1e-9)
        prev_bound, prev_count = bound, count
    return None


def highest_bucket(before: dict[float, float], after: dict[float, float]) -> float | None:
    """Upper bound of the highest non-empty bucket: the server's max, at bucket resolution."""
    last = None
    prev = 0.0
    for bound in sorted(after):
        count = after[bound] - before.get(bound, 0.0)
        if count > prev:
            last = bound
        prev = count
    return last


def report(r: StepResult) -> None:
    ms = 1000
    line = (f"target {r.target_rate:7.0f}/s  achieved {r.achieved_rate:7.0f}/s  ok {r.ok:6d}  "
            f"errors {r.errors or 0}  client p50 {r.q(r.latencies, .5) * ms:6.2f} ms  "
            f"p99 {r.q(r.latencies, .99) * ms:6.2f} ms  max {max(r.latencies, default=float('nan')) * ms:7.2f} ms  "
            f"(client's send lag p99 {r.q(r.send_lag, .99) * ms:.2f} ms)")
    if r.server_p50 is not None and r.server_p99 is not None:
        line += (f"  | server p50 {r.server_p50 * ms:5.2f} ms  p99 {r.server_p99 * ms:5.2f} ms"
                 f"  max <= {(r.server_max_bucket or 0) * ms:g} ms")
    if r.cpu_ms_per_order:
        line += "  | CPU ms/order " + " ".join(f"{k} {v:.3f}" for k, v in r.cpu_ms_per_order.items())
    print(line, flush=True)


def job_lag(consumer: Any, topic: str) -> int | None:
    """Orders in the topic the job has not committed yet (it commits at each checkpoint, so up to
    a checkpoint interval's worth is normal); None when the job has no committed offsets.
    ``consumer`` is a confluent_kafka Consumer in the job's group that never subscribes."""
    from confluent_kafka import TopicPartition

    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    committed = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=10)
    if all(tp.offset < 0 for tp in committed):
        return None
    lag = 0
    for tp in committed:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, tp.partition), timeout=10)
        lag += high - (tp.offset if tp.offset >= 0 else low)
    return lag


def report_job_catch_up(bootstrap: str, limit_s: float = 90.0) -> None:
    """The job runs at a lower CPU priority than the service: show it kept up rather than waited.
    It commits its offsets at each checkpoint, so keeping up means every order is committed within
    about one checkpoint interval plus the checkpoint's own duration after the load stops."""
    from confluent_kafka import Consumer

    from coffee_jobconfig.model import JobConfig

    fields = JobConfig.model_fields
    topic, group = fields["orders_topic"].default, fields["group_id"].default
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        started = time.monotonic()
        lag = first = job_lag(consumer, topic)
        while lag and time.monotonic() - started < limit_s:
            time.sleep(0.5)
            lag = job_lag(consumer, topic)
        waited = time.monotonic() - started
    finally:
        consumer.close()
    if lag == 0:
        print(f"  job: {first} orders uncommitted when the run ended, all committed {waited:.1f} s later", flush=True)
    else:
        print(f"  job: {lag} orders still uncommitted {waited:.0f} s after the run (it fell behind)", flush=True)


def write_timeline(path: Path, r: StepResult) -> None:
    rows = sorted(zip(r.due_wall, r.latencies, strict=True))
    path.write_text("".join(f"{due:.4f}\t{latency * 1000:.3f}\n" for due, latency in rows))


def p99_spread(p99s: list[float]) -> str:
    return (f"client p99 over {len(p99s)} runs: min {min(p99s):.2f} ms, median {statistics.median(p99s):.2f} ms, "
            f"max {max(p99s):.2f} ms")


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU time of a process and its threads, from /proc."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


async def main_async(args: argparse.Namespace) -> int:
    settings = stack_settings(args.port_offset)
    stack = LocalStack(settings, progress=lambda m: print(f"[stack] {m}", flush=True))
    if not args.no_up:
        names = args.only if args.only is not None else [n for n in stack.components if n not in OPTIONAL]
        stack.up(names)
    ingest = stack["ingest"]
    assert isinstance(ingest, Ingest)
    url, tokens = ingest.address(), ingest.dev_tokens()
    running = [s.name for s in stack.status() if s.state == "running"]
    print(f"ingest {url}; {os.cpu_count()} CPUs; load average {load_average()}; running: {', '.join(running)}",
          flush=True)
    rate = args.rate
    best: StepResult | None = None
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**62)
    print(f"seed {seed} (runs use it and the next ones)", flush=True)
    p99s: list[float] = []
    while True:
        total = int(rate * (args.warmup + args.duration))
        requests = build_requests(total, url, tokens, seed)
        seed += 1
        pids = {name: stack[name].processes()[0].pid() for name in ("ingest", "kafka")}
        before = scrape(settings.ingest_internal_url)
        cpu_before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        result = await run_step(url, requests, rate, args.warmup, args.connections)
        cpu_after = {name: cpu_seconds(pid) for name, pid in pids.items()}
        after = scrape(settings.ingest_internal_url)
        orders = len(requests)  # CPU covers the warm-up too
        result.cpu_ms_per_order = {name: (cpu_after[name] - cpu_before[name]) * 1000 / orders for name in pids}
        result.server_p50 = histogram_quantile(before, after, 0.5)
        result.server_p99 = histogram_quantile(before, after, 0.99)
        result.server_max_bucket = highest_bucket(before, after)
        report(result)
        if "job" in running:
            report_job_catch_up(settings.kafka_bootstrap)
        if args.timeline is not None:
            write_timeline(args.timeline.with_name(f"{args.timeline.name}-{len(p99s) + 1}.tsv"), result)
        p99_ms = result.q(result.latencies, .99) * 1000
        p99s.append(p99_ms)
        if not args.find_max and len(p99s) < args.repeat:
            continue
        sustained = not result.errors and result.achieved_rate >= 0.95 * rate and p99_ms < args.p99_limit_ms
        if not args.find_max:
            break
        if not sustained or rate + args.step > args.max_rate:
            break
        best = result
        rate += args.step
    if args.find_max:
        if best is None:
            print(f"no step sustained p99 < {args.p99_limit_ms:g} ms")
        else:
            print(f"highest sustained rate with client p99 < {args.p99_limit_ms:g} ms: {best.target_rate:.0f} orders/s "
                  f"(achieved {best.achieved_rate:.0f}/s)")
    if len(p99s) > 1 and not args.find_max:
        print(p99_spread(p99s))
    print(f"load average after: {load_average()}")
    return 0


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main_async(args))
    return uvloop.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
