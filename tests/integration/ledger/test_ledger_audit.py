"""The ledger audit and the rebuilds on real servers: orders through the real ingest API, counted by the
local stack's own job component, then the audit agrees exactly; a corrupted Redis summary, a Flink crash
that restarted the job without state (the live numbers overwritten with partial counts), a deleted
Postgres row, duplicates and a poison record give exactly the differences (or none) they must, and
`coffee-rt rebuild` (--live for Redis, --from for Postgres) repairs each. The steps run in order on one
stack."""

from __future__ import annotations

import random
import threading
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import ClassVar

import httpx
import psycopg
import pytest
import redis
from coffee_ledger.compare import Count
from coffee_ledger.days import today
from confluent_kafka import Consumer, Producer, TopicPartition
from job_harness import Expected
from ledger_harness import forget_job_state

from coffee_auditor.engine import Report
from coffee_flink import lifecycle
from coffee_flink.rest import FlinkRest
from coffee_jobconfig.model import JobConfig
from coffee_live.days import business_day
from coffee_orders import topics
from coffee_orders.loadgen import DEFAULT_STORES, random_order
from coffee_orders.schema import Order, to_wire
from coffee_rt.audit import DISAGREE_EXIT, audit, run_cli
from coffee_rt.cli import main
from coffee_rt.errors import UsageError
from coffee_rt.local.components.auditor import Auditor
from coffee_rt.local.components.job import FlinkJob
from coffee_rt.local.stack import LocalStack
from coffee_rt.rebuild import rebuild_postgres, recompute_rollups_before

RNG = random.Random()


class Ledger:
    """What the steps share: the baseline count, what was sent, the day."""

    baseline: ClassVar[dict[str, Count]] = {}
    expected: ClassVar[Expected] = Expected()
    day: ClassVar[str] = ""


def _orders(count: int) -> list[Order]:
    now = datetime.now(UTC)
    return [random_order(RNG, DEFAULT_STORES[n % len(DEFAULT_STORES)], now - timedelta(seconds=RNG.uniform(1, 60)))
            for n in range(count)]


def _post(ingest_url: str, tokens: dict[str, str], orders: list[Order]) -> None:
    """Each order accepted (202), retried with the same message_id after a 503 as the API contract says
    (a broker slow to acknowledge on a busy machine)."""
    with httpx.Client(base_url=ingest_url, timeout=30) as client:
        for order in orders:
            deadline = time.monotonic() + 120
            while True:
                response = client.post("/v1/orders", content=to_wire(order),
                                       headers={"Authorization": f"Bearer {tokens[order.store_id]}",
                                                "Content-Type": "application/json"})
                if response.status_code != 503 or time.monotonic() > deadline:
                    break
                time.sleep(float(response.headers.get("Retry-After", "1")))
            assert response.status_code == 202, response.text


def _by_store(report: Report) -> dict[str, tuple[Count, Count | None, Count | None]]:
    return {r.store: (r.topic, r.postgres, r.redis) for r in report.rows if r.day == Ledger.day}


def _want() -> dict[str, Count]:
    mine = {store: Count(n, cents) for store, (n, cents, _) in Ledger.expected.by_store().items()}
    stores = set(mine) | set(Ledger.baseline)
    return {s: Count(Ledger.baseline.get(s, Count(0, 0)).orders + mine.get(s, Count(0, 0)).orders,
                     Ledger.baseline.get(s, Count(0, 0)).revenue_cents + mine.get(s, Count(0, 0)).revenue_cents)
            for s in stores}


def _audit_until(stack: LocalStack, cfg: JobConfig, done, timeout: float = 300) -> Report:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        report = audit(stack.settings, cfg, day=Ledger.day)
        if done(report) or time.monotonic() > deadline:
            return report
        time.sleep(1)


def _agrees_with_want(report: Report) -> bool:
    want = _want()
    return report.agrees and {s: v[0] for s, v in _by_store(report).items()} == want and all(
        v[1] == want[s] and v[2] == want[s] for s, v in _by_store(report).items())


def _lines_missing(dsn: str) -> int:
    """Order lines of the ``orders`` rows that ``order_items`` does not hold (yet)."""
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT coalesce(sum(o.item_count - (SELECT count(*) FROM order_items i "
                           "WHERE i.message_id = o.message_id)), 0) FROM orders o").fetchone()
    assert row is not None
    return int(row[0])


def _rollup_orders(dsn: str, cfg: JobConfig) -> dict[str, Count]:
    """Orders and revenue per store (and _all) in sales_by_hour, in the hours of the ledger's day
    (the topic also holds orders of other days that earlier test modules sent: history)."""
    got: dict[str, Count] = {}
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT store_id, hour, order_count, revenue_cents FROM sales_by_hour").fetchall()
    for store, hour, n, cents in rows:
        if business_day(int(hour.timestamp() * 1000), cfg.timezone_of(store)) != Ledger.day:
            continue
        before = got.get(store, Count(0, 0))
        got[store] = Count(before.orders + int(n), before.revenue_cents + int(cents))
    if got:
        got["_all"] = Count(sum(c.orders for c in got.values()), sum(c.revenue_cents for c in got.values()))
    return got


def _rollups(dsn: str) -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
    with psycopg.connect(dsn) as conn:
        return (conn.execute("SELECT * FROM sales_by_hour ORDER BY 1, 2").fetchall(),
                conn.execute("SELECT * FROM sales_by_minute ORDER BY 1, 2, 3").fetchall())


def _cli_env(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    """`coffee-rt` (cli.main) reads its settings from COFFEE_RT_*: point it at the test stack."""
    for name, value in stack.settings.model_dump(mode="json").items():
        monkeypatch.setenv(f"COFFEE_RT_{name.upper()}", str(value))


def _job(stack: LocalStack) -> FlinkJob:
    job = stack["job"]
    assert isinstance(job, FlinkJob)
    return job


def _running_job_id(stack: LocalStack) -> str:
    active = _job(stack).active_job()
    assert active is not None and active["state"] == "RUNNING", active
    return str(active["jid"])


def _wait_job_running(stack: LocalStack, timeout: float = 600) -> str:
    deadline = time.monotonic() + timeout
    while not (health := _job(stack).health()).ok:
        assert time.monotonic() < deadline, health.detail
        time.sleep(2)
    return health.detail.split()[0]


def _group_committed_everything(stack: LocalStack, cfg: JobConfig) -> bool:
    """Whether the job's group has committed (checkpointed) every record of the orders topic."""
    consumer = Consumer({"bootstrap.servers": stack.settings.kafka_bootstrap, "group.id": cfg.group_id,
                         "enable.auto.commit": False})
    try:
        partitions = sorted(consumer.list_topics(cfg.orders_topic, timeout=10).topics[cfg.orders_topic].partitions)
        ends = {p: consumer.get_watermark_offsets(TopicPartition(cfg.orders_topic, p), timeout=10)[1]
                for p in partitions}
        committed = consumer.committed([TopicPartition(cfg.orders_topic, p) for p in partitions], timeout=10)
        return all(tp.offset >= ends[tp.partition] for tp in committed)
    finally:
        consumer.close()


def _redis_rows(report: Report) -> dict[str, Count | None]:
    return {r.store: r.redis for r in report.rows if r.day == Ledger.day}


def _totals(orders: list[Order]) -> dict[str, Count]:
    out: dict[str, Count] = {}
    for order in orders:
        for key in (order.store_id, "_all"):
            seen = out.get(key, Count(0, 0))
            out[key] = Count(seen.orders + 1, seen.revenue_cents + order.total_cents)
    return out


class Arriving(threading.Thread):
    """Orders keep arriving: one every ``pause`` seconds, in the background; ``failure`` says why not."""

    def __init__(self, ingest_url: str, tokens: dict[str, str], orders: list[Order], pause: float) -> None:
        super().__init__(daemon=True)
        self.args_ = (ingest_url, tokens, orders, pause)
        self.failure: BaseException | None = None

    def run(self) -> None:
        ingest_url, tokens, orders, pause = self.args_
        try:
            for order in orders:
                _post(ingest_url, tokens, [order])
                time.sleep(pause)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.failure = exc

    def finish(self, timeout: float) -> None:
        self.join(timeout)
        assert not self.is_alive() and self.failure is None, self.failure


def test_a_all_views_agree_exactly(local_stack: LocalStack, ledger_job: JobConfig, ingest_url: str,
                                   ingest_tokens: dict[str, str]) -> None:
    Ledger.day = today(datetime.now(UTC), ledger_job.timezone_of("_all"))
    # The job first catches up with what the topic held already; that is the baseline.
    first = _audit_until(local_stack, ledger_job, lambda r: r.agrees)
    Ledger.baseline = {s: v[0] for s, v in _by_store(first).items()}
    orders = _orders(40)
    _post(ingest_url, ingest_tokens, orders)
    Ledger.expected.add(orders)
    report = _audit_until(local_stack, ledger_job, _agrees_with_want)
    want = _want()
    got = _by_store(report)
    assert {s: v[0] for s, v in got.items()} == want
    assert {s: v[1] for s, v in got.items()} == want  # postgres
    assert {s: v[2] for s, v in got.items()} == want  # redis (today is every key's current day)
    assert report.agrees
    print(f"\nagree: {want}")
    assert run_cli(Ledger.day, None, local_stack.settings) == 0


def test_b_corrupted_redis_summary_is_found_with_its_exact_difference_and_rebuilt(
        local_stack: LocalStack, ledger_job: JobConfig, redis_url: str, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    key = f"coffee:live:store-01:{Ledger.day}:summary"
    real = client.hgetall(key)
    client.hset(key, mapping={"orders": int(real["orders"]) + 7, "revenue_cents": int(real["revenue_cents"]) - 1234})
    report = audit(local_stack.settings, ledger_job, day=Ledger.day, store="store-01")
    (row,) = report.rows
    assert row.difference("redis") == Count(7, -1234)
    assert row.difference("postgres") == Count(0, 0)
    assert run_cli(Ledger.day, "store-01", local_stack.settings) == DISAGREE_EXIT
    assert "redis +7 orders -1234 cents" in capsys.readouterr().out
    # the continuous auditor exports the same difference
    auditor = local_stack["auditor"]
    assert isinstance(auditor, Auditor)
    auditor.interval_seconds = 1.0
    local_stack.up(["auditor"])
    series = f'coffee_ledger_orders_difference{{day="{Ledger.day}",store="store-01",view="redis"}}'
    revenue = f'coffee_ledger_revenue_cents_difference{{day="{Ledger.day}",store="store-01",view="redis"}}'
    deadline = time.monotonic() + 120
    values: dict[str, float] = {}
    while time.monotonic() < deadline:
        text = httpx.get(auditor.address(), timeout=5).text
        values = {line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                  if line.startswith(("coffee_ledger_orders_difference{", "coffee_ledger_revenue_cents_difference{"))}
        if values.get(series) == 7.0:
            break
        time.sleep(1)
    assert values[series] == 7.0 and values[revenue] == -1234.0
    # the repair: `coffee-rt rebuild --live` replays the day into a fresh job state, whose absolute
    # values overwrite the corrupted ones (nobody writes the value back by hand)
    before = _running_job_id(local_stack)
    _cli_env(local_stack, monkeypatch)
    assert main(["rebuild", "--live"]) == 0
    out = capsys.readouterr().out
    assert f"rebuild --live {Ledger.day}: " in out and "the live numbers agree with the orders topic" in out
    assert _running_job_id(local_stack) != before
    rebuilt: dict[str, str] = client.hgetall(key)  # type: ignore[assignment]
    assert (rebuilt["orders"], rebuilt["revenue_cents"]) == (real["orders"], real["revenue_cents"])
    report = audit(local_stack.settings, ledger_job, day=Ledger.day)
    assert _agrees_with_want(report), report.rows
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        text = httpx.get(auditor.address(), timeout=5).text
        if f"{series} 0.0" in text and f"{revenue} 0.0" in text:
            break
        time.sleep(1)
    assert f"{series} 0.0" in text and f"{revenue} 0.0" in text


def test_c_deleted_postgres_row_is_found_with_its_exact_difference(
        local_stack: LocalStack, ledger_job: JobConfig, postgres_dsn: str) -> None:
    victim = next(o for o in Ledger.expected.orders.values() if o.store_id == "store-02")
    # the job's rollups, once they hold every order (they trail the orders table by a mini-batch)
    want = _want()
    deadline = time.monotonic() + 120
    while _rollup_orders(postgres_dsn, ledger_job) != want and time.monotonic() < deadline:
        time.sleep(1)
    assert _rollup_orders(postgres_dsn, ledger_job) == want
    # and the items sink, which flushes on its own, has written the lines of every order row
    while _lines_missing(postgres_dsn) and time.monotonic() < deadline:
        time.sleep(1)
    assert _lines_missing(postgres_dsn) == 0
    rollups = _rollups(postgres_dsn)
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        row = conn.execute("DELETE FROM orders WHERE message_id = %s RETURNING *", (victim.message_id,)).fetchone()
    assert row is not None
    report = audit(local_stack.settings, ledger_job, day=Ledger.day)
    rows = {r.store: r for r in report.rows}
    assert rows["store-02"].difference("postgres") == Count(-1, -victim.total_cents)
    assert rows["_all"].difference("postgres") == Count(-1, -victim.total_cents)
    assert rows["store-02"].difference("redis") == Count(0, 0)
    assert [r.store for r in report.rows if not r.agrees] == ["_all", "store-02"]
    # the rebuild re-inserts exactly the missing row (with its items kept), and a second run nothing
    first = rebuild_postgres(local_stack.settings, ledger_job, Ledger.day, Ledger.day, progress=print)
    assert (first.orders_inserted, first.items_inserted) == (1, 0)
    again = rebuild_postgres(local_stack.settings, ledger_job, Ledger.day, Ledger.day, progress=print)
    assert (again.orders_inserted, again.items_inserted) == (0, 0)
    with psycopg.connect(postgres_dsn) as conn:
        restored = conn.execute("SELECT * FROM orders WHERE message_id = %s", (victim.message_id,)).fetchone()
    assert restored is not None and restored[:9] == row[:9]  # every column the job wrote, except written_at
    assert audit(local_stack.settings, ledger_job, day=Ledger.day).agrees
    assert _rollups(postgres_dsn) == rollups  # recomputed from the rows: exactly what the job had written
    # the live rebuild's repair of the store-hours a replay counts only in part (those before its day):
    # here every hour the job counted, from the first offset, with two rollup rows damaged first
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("UPDATE sales_by_hour SET order_count = 1, revenue_cents = 1 WHERE store_id = 'store-02'")
        conn.execute("UPDATE sales_by_minute SET quantity = 999 WHERE store_id = 'store-03'")
        stores_hours = conn.execute("SELECT count(*) FROM sales_by_hour").fetchone()
    assert stores_hours is not None
    assert _rollups(postgres_dsn) != rollups
    touched = recompute_rollups_before(local_stack.settings, datetime.now(UTC) + timedelta(hours=2),
                                        {0: 0, 1: 0, 2: 0})
    assert touched == stores_hours[0]
    assert _rollups(postgres_dsn) == rollups
    print(f"\nrebuild: {first.records} records read, {first.in_range} in range, 1 re-inserted, "
          f"second run 0 ({first.seconds:.2f} s, {again.seconds:.2f} s)")


def test_d_duplicates_and_poison_never_count(local_stack: LocalStack, ledger_job: JobConfig, ingest_url: str,
                                             ingest_tokens: dict[str, str]) -> None:
    before = audit(local_stack.settings, ledger_job, day=Ledger.day).counts
    order = _orders(1)[0]
    _post(ingest_url, ingest_tokens, [order, order])  # a till resending: both accepted, one order
    Ledger.expected.add([order])
    producer = Producer({"bootstrap.servers": local_stack.settings.kafka_bootstrap})
    producer.produce(topics.ORDERS.name, key=b"poison", value=b'{"message_id": "not an order"}')
    producer.produce(topics.ORDERS.name, key=order.store_id.encode(), value=to_wire(order))  # and a third time
    assert producer.flush(30) == 0
    report = _audit_until(local_stack, ledger_job, _agrees_with_want)
    assert {s: v[0] for s, v in _by_store(report).items()} == _want()
    assert report.agrees
    assert {k: report.counts[k] - before[k] for k in before} == {"counted": 1, "duplicate": 2, "invalid": 1}


def test_e_flink_crash_restarted_without_state_is_found_exactly_and_rebuilt(
        local_stack: LocalStack, ledger_job: JobConfig, ingest_url: str, ingest_tokens: dict[str, str],
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The failure of issue 21: the job killed, then submitted again without its state, from the
    committed offsets: it counts only what comes after, and overwrites today's live numbers with that."""
    assert _audit_until(local_stack, ledger_job, _agrees_with_want).agrees
    deadline = time.monotonic() + 120
    while not _group_committed_everything(local_stack, ledger_job):  # a checkpoint holds every order
        assert time.monotonic() < deadline
        time.sleep(1)
    rest = FlinkRest(local_stack.settings.flink_rest_url)
    try:
        assert lifecycle.cancel(rest, _running_job_id(local_stack)) == "CANCELED"
        lifecycle.submit(rest, ledger_job, uuid.uuid4().hex)  # no restore path: empty state, group offsets
    finally:
        rest.close()
    _wait_job_running(local_stack)
    after_crash = _orders(8)  # two per store: every store's summary gets rewritten by the empty state
    _post(ingest_url, ingest_tokens, after_crash)
    Ledger.expected.add(after_crash)
    partial, want = _totals(after_crash), _want()
    report = _audit_until(local_stack, ledger_job, lambda r: _redis_rows(r) == partial)
    assert _redis_rows(report) == partial  # the live numbers hold only what came after the crash
    rows = {r.store: r for r in report.rows if r.day == Ledger.day}
    assert set(rows) == set(want)
    for store, count in want.items():
        assert rows[store].topic == count
        assert rows[store].difference("postgres") == Count(0, 0)  # upserts: history is whole
        assert rows[store].difference("redis") == partial[store] - count  # exactly what the restart dropped
    assert run_cli(Ledger.day, None, local_stack.settings) == DISAGREE_EXIT
    # the repair, while orders keep arriving
    arriving = _orders(6)
    Ledger.expected.add(arriving)
    sender = Arriving(ingest_url, ingest_tokens, arriving, pause=3.0)
    sender.start()
    _cli_env(local_stack, monkeypatch)
    assert main(["rebuild", "--live", "--day", Ledger.day]) == 0
    sender.finish(600)
    assert "the live numbers agree with the orders topic" in capsys.readouterr().out
    report = _audit_until(local_stack, ledger_job, _agrees_with_want)
    want = _want()
    assert {s: r.redis for s, r in ((r.store, r) for r in report.rows if r.day == Ledger.day)} == want
    assert {r.store: r.postgres for r in report.rows if r.day == Ledger.day} == want
    assert report.agrees
    print(f"\nrebuilt after the crash: {want['_all']}")


def test_f_the_rebuilt_job_restarts_from_its_state_and_a_start_with_no_state_replays_the_day(
        local_stack: LocalStack, ledger_job: JobConfig, ingest_url: str, ingest_tokens: dict[str, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    # `local down job` takes a savepoint of the replaying job; `up` resumes from it (group-offsets config)
    local_stack.down(["job"])
    local_stack.up(["job"])
    assert "resuming from savepoint" in capsys.readouterr().out
    more = _orders(4)
    _post(ingest_url, ingest_tokens, more)
    Ledger.expected.add(more)
    assert _agrees_with_want(_audit_until(local_stack, ledger_job, _agrees_with_want))
    # no state at all (no savepoint, no checkpoint) while Postgres holds today's orders: the job
    # replays today instead of starting from the committed offsets
    local_stack.down(["job"])
    forget_job_state(local_stack)
    local_stack.up(["job"])
    out = capsys.readouterr().out
    assert f"Postgres holds {_want()['_all'].orders:,} orders of {Ledger.day}: replaying {Ledger.day}" in out
    assert "with no state, reading the orders topic from " in out
    after = _orders(4)  # the next orders would have overwritten every store's live numbers
    _post(ingest_url, ingest_tokens, after)
    Ledger.expected.add(after)
    report = _audit_until(local_stack, ledger_job, _agrees_with_want)
    assert {r.store: r.redis for r in report.rows if r.day == Ledger.day} == _want()
    assert report.agrees


def test_bad_input_is_a_usage_error_and_changes_nothing(local_stack: LocalStack, ledger_job: JobConfig,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    assert main(["audit", "--day", "2026-02-30"]) == 2
    with pytest.raises(UsageError, match="unknown store 'no-such-store'"):
        run_cli(None, "no-such-store", local_stack.settings)
    _cli_env(local_stack, monkeypatch)
    job = _running_job_id(local_stack)
    old = (date.fromisoformat(Ledger.day) - timedelta(days=2)).isoformat()
    for argv in (["rebuild", "--live", "--day", "2026-02-30"], ["rebuild", "--live", "--day", old],
                 ["rebuild", "--live", "--from", Ledger.day], ["rebuild", "--live", "--store", "store-01"],
                 ["rebuild", "--from", Ledger.day, "--day", Ledger.day]):
        assert main(argv) == 2, argv
    assert _running_job_id(local_stack) == job  # not stopped, not replaced
    assert audit(local_stack.settings, ledger_job, day=Ledger.day).agrees
