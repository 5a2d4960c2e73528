"""``coffee-rt drill``: kill (SIGKILL) or hang (SIGSTOP, then SIGCONT) one server of a running stack
in the middle of a rush of orders, and check that nothing was lost and nothing counted twice.

Clients behave as the API contract asks: an order that did not get its 202 (a refused connection,
a 5xx, a timeout) is sent again with the same ``message_id`` until it does. The totals to expect
are computed here from the orders that got a 202, never read from the pipeline; one poison record
is written to the orders topic during each drill, and the dead-letter topic must gain exactly it.
The supervisor (``coffee-rt local supervise``, started by ``local up``) restarts what died; nothing
here restarts anything.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import psycopg
import redis

from coffee_live.layout import day_key
from coffee_orders import topics
from coffee_orders.loadgen import DEFAULT_STORES, random_order
from coffee_orders.schema import Order, to_wire
from coffee_rt.errors import CoffeeRtError, PrerequisiteError, UsageError
from coffee_rt.local.process import ManagedProcess
from coffee_rt.local.stack import LocalStack

PIPELINE = ["postgres", "redis", "kafka", "ingest", "flink", "job"]  # the order path, the job included
# What a drill can hit: target -> (component, process name or None for all of its processes).
TARGETS: dict[str, tuple[str, str | None]] = {
    "kafka": ("kafka", None),
    "jobmanager": ("flink", "flink-jobmanager"),
    "taskmanager": ("flink", "flink-taskmanager"),
    "flink": ("flink", None),  # JobManager and TaskManager together
    "postgres": ("postgres", None),
    "redis": ("redis", None),
    "ingest": ("ingest", None),
    "dashboard": ("dashboard", None),
}
MATRIX = ["kafka", "jobmanager", "taskmanager", "postgres", "redis", "ingest", "dashboard"]
SIGNALS = ("kill", "stop")
EXIT_FAILED = 6  # a drill ended with wrong totals, a wrong dead-letter topic, or no recovery

Totals = dict[tuple[str, str], tuple[int, int]]  # (store or "_all", UTC day) -> (orders, revenue_cents)


class Rush:
    """``total`` orders from ``workers`` concurrent clients at about ``rate`` orders/s, in a thread."""

    def __init__(self, url: str, tokens: dict[str, str], total: int, workers: int = 8, rate: float = 250.0,
                 seed: int | None = None, order_deadline: float = 180.0) -> None:
        self.url, self.tokens, self.total, self.workers = url, tokens, total, workers
        self.interval = workers / rate
        self.order_deadline = order_deadline
        rng = random.Random(seed)  # None: new message_ids on every rush (a resent id is counted once)
        stores = [s for s in DEFAULT_STORES if s.store_id in tokens]
        now = datetime.now(UTC)
        self.orders = [random_order(rng, rng.choice(stores), now) for _ in range(total)]
        self.accepted: list[Order] = []
        self.refused: list[str] = []
        self.retries = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Rush:
        self._thread.start()
        return self

    def wait_accepted(self, count: int, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.accepted) < count and time.monotonic() < deadline and self._thread.is_alive():
            time.sleep(0.05)
        if len(self.accepted) < count:
            raise CoffeeRtError(f"drill: only {len(self.accepted)} of {count} orders accepted within "
                                f"{timeout:.0f} s before the fault; is ingest at {self.url} healthy?")

    def join(self, timeout: float = 300.0) -> None:
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise CoffeeRtError(f"drill: the rush did not finish within {timeout:.0f} s")

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=10) as client, ThreadPoolExecutor(self.workers) as pool:
            share = [self.orders[n::self.workers] for n in range(self.workers)]
            list(pool.map(lambda orders: self._client(client, orders), share))

    def _client(self, client: httpx.Client, orders: list[Order]) -> None:
        next_at = time.monotonic()
        for order in orders:
            next_at += self.interval
            time.sleep(max(0.0, next_at - time.monotonic()))
            self._send(client, order)

    def _send(self, client: httpx.Client, order: Order) -> None:
        headers = {"Authorization": f"Bearer {self.tokens[order.store_id]}", "Content-Type": "application/json"}
        body, delay, deadline = to_wire(order), 0.2, time.monotonic() + self.order_deadline
        while time.monotonic() < deadline:
            try:
                response = client.post("/v1/orders", content=body, headers=headers)
            except httpx.HTTPError:
                response = None
            if response is not None and response.status_code == 202:
                with self._lock:
                    self.accepted.append(order)
                return
            if response is not None and response.status_code < 500 and response.status_code != 429:
                with self._lock:
                    self.refused.append(f"{order.message_id}: {response.status_code} {response.text[:200]}")
                return
            with self._lock:
                self.retries += 1
            time.sleep(delay)
            delay = min(delay * 2, 2.0)
        with self._lock:
            self.refused.append(f"{order.message_id}: no 202 within {self.order_deadline:.0f} s")


def expected_totals(orders: list[Order], base: Totals | None = None) -> Totals:
    """``base`` plus the orders, per store and for all stores, per UTC day (the local job's zone)."""
    totals: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for key, (count, revenue) in (base or {}).items():
        totals[key] = [count, revenue]
    for order in orders:
        day = order.placed_at.astimezone(UTC).date().isoformat()
        for store in (order.store_id, "_all"):
            totals[(store, day)][0] += 1
            totals[(store, day)][1] += order.total_cents
    return {key: (v[0], v[1]) for key, v in totals.items()}


def postgres_totals(stack: LocalStack) -> Totals:
    return postgres_totals_at(stack.settings.postgres_dsn)


def redis_totals(stack: LocalStack, days: set[str]) -> Totals:
    return redis_totals_at(stack.settings.redis_url, days)


def postgres_totals_at(dsn: str) -> Totals:
    """Per store and all stores, per UTC day, from the history in the Postgres at ``dsn``."""
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        rows = conn.execute(
            "SELECT store_id, (placed_at AT TIME ZONE 'UTC')::date::text, count(*), sum(total_cents) "
            "FROM orders GROUP BY 1, 2").fetchall()
    totals: dict[tuple[str, str], tuple[int, int]] = {}
    for store, day, count, revenue in rows:
        totals[(store, day)] = (int(count), int(revenue))
        old = totals.get(("_all", day), (0, 0))
        totals[("_all", day)] = (old[0] + int(count), old[1] + int(revenue))
    return totals


def redis_totals_at(url: str, days: set[str]) -> Totals:
    """The live summaries of ``days`` in the Redis at ``url``, per store and all stores."""
    client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5)
    totals: Totals = {}
    try:
        for day in sorted(days):
            for store in [s.store_id for s in DEFAULT_STORES] + ["_all"]:
                summary: dict[str, str] = client.hgetall(day_key(store, day, "summary"))  # type: ignore[assignment]
                if summary:
                    totals[(store, day)] = (int(summary["orders"]), int(summary["revenue_cents"]))
    finally:
        client.close()
    return totals


def _views(stack: LocalStack, days: set[str]) -> tuple[Totals | str, Totals | str]:
    """Postgres's and Redis's totals, or why one could not be read."""
    pg: Totals | str
    live: Totals | str
    try:
        pg = postgres_totals(stack)
    except psycopg.Error as exc:
        pg = f"unreachable: {exc}"
    try:
        live = redis_totals(stack, days | ({day for _, day in pg} if isinstance(pg, dict) else set()))
    except redis.RedisError as exc:
        live = f"unreachable: {exc}"
    return pg, live


def settled_totals(stack: LocalStack, timeout: float = 180.0) -> Totals:
    """What Postgres and Redis agree on once the job has caught up (the baseline of a drill)."""
    deadline = time.monotonic() + timeout
    pg: Totals | str = {}
    live: Totals | str = {}
    while time.monotonic() < deadline:
        pg, live = _views(stack, set())
        if isinstance(pg, dict) and pg == live and pg == _views(stack, set())[0]:
            return pg
        time.sleep(1)
    raise CoffeeRtError(f"drill: Postgres and Redis never agreed within {timeout:.0f} s before the drill:\n"
                        f"pg    {pg}\nredis {live}")


def wait_exact(stack: LocalStack, want: Totals, timeout: float, also: Callable[[], bool] = lambda: True) -> float:
    """Wait until Postgres and Redis hold exactly ``want`` (and ``also()`` holds); the seconds it took.
    Raises AssertionError with both views when they don't within ``timeout``."""
    started = time.monotonic()
    days = {day for _, day in want}
    pg: Totals | str = {}
    live: Totals | str = {}
    while time.monotonic() - started < timeout:
        pg, live = _views(stack, days)
        if pg == want and live == want and also():
            return time.monotonic() - started
        time.sleep(1)
    raise AssertionError(f"not exact after {timeout:.0f} s:\nwant  {want}\npg    {pg}\nredis {live}")


def _kafka_config(stack: LocalStack) -> dict[str, str | int | float | bool]:
    return {"bootstrap.servers": stack.settings.kafka_bootstrap}


def send_poison(stack: LocalStack) -> bytes:
    """One record no order parser accepts, written straight to the orders topic; its bytes."""
    from confluent_kafka import Producer

    value = f"drill poison {uuid.uuid4()}: not json".encode()
    producer = Producer({**_kafka_config(stack), "enable.idempotence": True, "acks": "all"})
    producer.produce(topics.ORDERS.name, key=b"poison", value=value)
    if producer.flush(30) != 0:
        raise CoffeeRtError(f"drill: kafka at {stack.settings.kafka_bootstrap} did not take the poison record "
                            f"within 30 s; read its log: {stack['kafka'].log_files()[0]}")
    return value


def dead_letters(stack: LocalStack) -> list[bytes]:
    """Every committed record of the dead-letter topic (it holds only poison records: a handful)."""
    from confluent_kafka import Consumer, TopicPartition

    consumer = Consumer({**_kafka_config(stack), "group.id": f"coffee-rt-drill-{uuid.uuid4().hex}",
                         "isolation.level": "read_committed", "enable.auto.commit": False})
    records: list[bytes] = []
    try:
        metadata = consumer.list_topics(topics.ORDERS_DLQ.name, timeout=10).topics[topics.ORDERS_DLQ.name]
        partitions = [TopicPartition(topics.ORDERS_DLQ.name, p, 0) for p in metadata.partitions]
        ends = {p.partition: consumer.get_watermark_offsets(p, timeout=10)[1] for p in partitions}
        consumer.assign(partitions)
        deadline = time.monotonic() + 30
        # Read up to each partition's end; the end counts transaction markers, so go by position.
        while any(ends.values()) and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                records.append(message.value() or b"")
            if all(p.offset >= ends[p.partition] for p in consumer.position(partitions)):
                break
    finally:
        consumer.close()
    return records


@dataclass(frozen=True)
class Result:
    target: str
    signal: str
    accepted: int
    postgres: int | str
    redis: int | str
    dead_letters: int  # records the drill added to the dead-letter topic (must be 1: its poison)
    recovery: float | None  # seconds from the SIGKILL (or the SIGCONT) to exact totals and a healthy target
    retries: int
    verdict: str  # "ok" or what went wrong

    @property
    def ok(self) -> bool:
        return self.verdict == "ok"


def target_processes(stack: LocalStack, target: str) -> list[ManagedProcess]:
    component, process = TARGETS[target]
    return [p for p in stack[component].processes() if process is None or p.name == process]


def taskmanager_pid(stack: LocalStack) -> int | None:
    """The TaskManager's pid, None when it is not running; a new pid means it was started again."""
    return next((p.pid() for p in target_processes(stack, "taskmanager")), None)


def _signal_all(processes: Iterable[ManagedProcess], sig: int) -> None:
    """``sig`` to each process's whole group (a start script and its JVM alike)."""
    for process in processes:
        pid = process.pid()
        if pid is not None:
            try:
                os.killpg(pid, sig)
            except ProcessLookupError:
                pass


def _total(view: Totals | str) -> int | str:
    return view if isinstance(view, str) else sum(count for (store, _), (count, _) in view.items() if store == "_all")


def drill(stack: LocalStack, target: str, how: str, orders: int = 3000, hang: float = 40.0,
          timeout: float = 300.0, say: Callable[[str], None] = print) -> Result:
    """One drill: a rush of ``orders``; a third of the way in, ``target`` gets SIGKILL (``kill``) or
    SIGSTOP for ``hang`` seconds then SIGCONT (``stop``); then wait up to ``timeout`` s for exact totals.
    Unless the target is the TaskManager itself, the TaskManager process must survive: a server's
    outage fails the job's tasks, and Flink restarts them in the same process."""
    if target not in TARGETS or how not in SIGNALS:
        raise UsageError(f"drill: unknown target {target!r} or signal {how!r}")
    component = TARGETS[target][0]
    processes = target_processes(stack, target)
    base = settled_totals(stack)
    taskmanager = taskmanager_pid(stack)
    letters = dead_letters(stack)
    tokens: dict[str, str] = stack["ingest"].dev_tokens()  # type: ignore[attr-defined]
    rush = Rush(stack.settings.ingest_url, tokens, orders).start()
    rush.wait_accepted(orders // 3)
    poison = send_poison(stack)
    if how == "kill":
        say(f"drill: SIGKILL {', '.join(p.name for p in processes)}")
        _signal_all(processes, signal.SIGKILL)
        fault_ended = time.monotonic()
    else:
        say(f"drill: SIGSTOP {', '.join(p.name for p in processes)} for {hang:.0f} s")
        _signal_all(processes, signal.SIGSTOP)
        try:
            time.sleep(hang)
        finally:
            _signal_all(processes, signal.SIGCONT)
        fault_ended = time.monotonic()
        say(f"drill: SIGCONT {', '.join(p.name for p in processes)}")
    rush.join(timeout)
    want = expected_totals(rush.accepted, base)
    days = {day for _, day in want}
    recovery: float | None = None
    verdict = "ok"
    try:
        wait_exact(stack, want, timeout, also=lambda: stack[component].health().ok)
        recovery = time.monotonic() - fault_ended
    except AssertionError as exc:
        verdict = f"not exact or {component} not healthy after {timeout:.0f} s"
        say(f"drill: {exc}")
    if rush.refused:
        verdict = f"{len(rush.refused)} orders refused for good, e.g. {rush.refused[0]}"
    added = _dead_letter_delta(stack, letters, settle=timeout)
    if verdict == "ok" and added != [poison]:
        verdict = f"the dead-letter topic gained {len(added)} records, not exactly the poison record"
    pg, live = _views(stack, days)
    want_all = sum(count for (store, _), (count, _) in want.items() if store == "_all")
    if verdict == "ok" and (_total(pg) != want_all or _total(live) != want_all):
        verdict = "totals changed after they were exact"
    survivor = taskmanager_pid(stack)
    if verdict == "ok" and target not in ("taskmanager", "flink") and survivor != taskmanager:
        verdict = f"the TaskManager process was started again (pid {taskmanager}, now {survivor})"
    return Result(target, how, len(rush.accepted), _total(pg), _total(live), len(added), recovery,
                  rush.retries, verdict)


def _dead_letter_delta(stack: LocalStack, before: list[bytes], settle: float = 30.0) -> list[bytes]:
    """What the dead-letter topic gained since ``before``: waits for at least one record (a dead
    letter is committed with the first checkpoint after the recovery, which may come well after the
    totals are exact), then a few seconds more so that a duplicate would show up too."""
    deadline = time.monotonic() + settle
    added: list[bytes] = []
    while time.monotonic() < deadline:
        added = list((Counter(dead_letters(stack)) - Counter(before)).elements())
        if added:
            break
        time.sleep(1)
    time.sleep(5)
    return list((Counter(dead_letters(stack)) - Counter(before)).elements())


def table(results: list[Result]) -> str:
    rows = [["COMPONENT", "SIGNAL", "ACCEPTED", "POSTGRES", "REDIS", "DLQ", "RECOVERY S", "RETRIES", "VERDICT"]]
    for r in results:
        rows.append([r.target, r.signal, str(r.accepted), str(r.postgres), str(r.redis), str(r.dead_letters),
                     f"{r.recovery:.1f}" if r.recovery is not None else "-", str(r.retries), r.verdict])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows)


def run_cli(targets: list[str], signals: list[str], orders: int, hang: float, timeout: float,
            progress: Callable[[str], None]) -> int:
    """``coffee-rt drill``: every target x signal against the running local stack; exit 0 when each
    ended exact, :data:`EXIT_FAILED` when one did not."""
    from coffee_rt.local import supervisor

    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise UsageError(f"drill: unknown component {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    if not 30 <= orders <= 100_000:
        raise UsageError("drill: --orders must be between 30 and 100000")
    stack = LocalStack(progress=progress)
    needed = PIPELINE + (["dashboard"] if "dashboard" in targets else [])
    down = [r.name for r in stack.status(needed) if r.state != "running"]
    if down:
        raise PrerequisiteError(f"drill: {', '.join(down)} not running; start the stack with `coffee-rt local up` "
                                "(`coffee-rt local status` shows why)")
    if not supervisor.supervisor_process(stack.settings).is_running():
        raise PrerequisiteError("drill: the supervisor is not running, so nothing would restart a killed server; "
                                "`coffee-rt local up` starts it")
    results = []
    for target in targets or MATRIX:
        for how in signals:
            progress(f"drill: {target} {how}, {orders} orders")
            result = drill(stack, target, how, orders, hang, timeout, say=progress)
            progress(f"drill: {target} {how}: {result.verdict}"
                     + (f", exact {result.recovery:.1f} s after the fault" if result.recovery is not None else ""))
            results.append(result)
    print(table(results))
    return 0 if all(r.ok for r in results) else EXIT_FAILED
