"""The job counts every order exactly once in Postgres and Redis: with duplicates and poison
records mixed in, across a savepoint upgrade, and across a TaskManager SIGKILL.

The tests run in file order and share one job (the module fixture): each phase adds orders
and checks the cumulative totals.
"""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import psycopg
import redis
from confluent_kafka import Consumer, TopicPartition
from job_harness import RunningJob

from coffee_flink.lifecycle import submit
from coffee_orders.loadgen import with_duplicates


def _operator_metric(running_job: RunningJob, name: str) -> list[float]:
    """The job's values of one operator metric, as Flink's Prometheus reporter serves them. The
    JobManager and the TaskManager each take the first free port of the reporter's range, so
    either may be on either port."""
    ports = running_job.stack.settings.ports()
    values: list[float] = []
    for port in (ports["flink_jobmanager_metrics_port"], ports["flink_taskmanager_metrics_port"]):
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        except httpx.HTTPError:
            continue
        values += [float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith(f"flink_taskmanager_job_task_operator_{name}{{")
                   and running_job.cfg.job_name.replace("-", "_") in line]
    return values


def test_ten_thousand_orders_with_duplicates_and_poison_are_exact(running_job: RunningJob) -> None:
    orders = running_job.make_orders(10_000)
    stream = with_duplicates(orders, fraction=0.08, seed=3)
    assert len(stream) > 10_600  # the duplicates are really there
    running_job.send(stream, poison_every=400)
    assert len(running_job.poison) == len(stream) // 400
    running_job.wait_until_exact()

    with psycopg.connect(running_job.stack.settings.postgres_dsn) as conn:
        assert conn.execute("SELECT count(*) FROM orders").fetchone() == (10_000,)
        assert conn.execute("SELECT count(*) FROM order_items").fetchone() == (running_job.expected.item_rows(),)
        by_hour = dict(conn.execute("SELECT store_id, sum(order_count) FROM sales_by_hour GROUP BY 1").fetchall())
        rev_by_minute = conn.execute("SELECT sum(revenue_cents) FROM sales_by_minute").fetchone()
    totals = running_job.expected.by_store()
    assert {s: int(n) for s, n in by_hour.items()} == {s: v[0] for s, v in totals.items() if s != "_all"}
    assert rev_by_minute == (totals["_all"][1],)


def test_live_breakdowns_match_what_was_sent(running_job: RunningJob) -> None:
    client = redis.Redis.from_url(running_job.stack.settings.redis_url, decode_responses=True)
    prefix = f"coffee:live:_all:{running_job.day}"
    products = {sku: int(q) for sku, q in client.hgetall(f"{prefix}:products").items()}
    origins = {o: int(q) for o, q in client.hgetall(f"{prefix}:origins").items()}
    assert products == dict(running_job.expected.products())
    assert origins == dict(running_job.expected.origins())
    store = running_job.stores[0].store_id
    store_products = client.hgetall(f"coffee:live:{store}:{running_job.day}:products")
    assert {k: int(v) for k, v in store_products.items()} == dict(running_job.expected.products(store))
    recent = client.zrange(f"{prefix}:recent", 0, -1)
    newest = sorted(running_job.expected.orders.values(), key=lambda o: o.placed_at)[-50:]
    assert len(recent) == 50
    assert {m.split('"message_id":"')[1][:36] for m in recent} == {str(o.message_id) for o in newest}
    per_minute = {int(m): int(n) for m, n in client.hgetall(f"{prefix}:per_minute").items()}
    last = max(int(o.placed_at.timestamp() * 1000) for o in running_job.expected.orders.values()) // 60_000
    window = [o for o in running_job.expected.orders.values()
              if int(o.placed_at.timestamp() * 1000) // 60_000 > last - 60]
    assert max(per_minute) == last
    assert min(per_minute) > last - 60
    assert sum(per_minute.values()) == len(window)
    assert client.get("coffee:live:_all:current_day") == running_job.day
    assert client.ttl(f"{prefix}:summary") > 24 * 3600


def test_reading_the_jobs_metrics_leaves_the_taskmanager_running(running_job: RunningJob) -> None:
    """Prometheus and the REST API read every operator metric from Flink's own threads. A Python
    gauge would be read that way too, and a read racing a task's shutdown calls into a torn-down
    interpreter: the TaskManager dies (SIGSEGV in pemja). That race is not reproducible on demand;
    tests/unit/job/test_no_python_gauges.py keeps gauges out, and this checks the job's latency
    counter is served and the TaskManager stays up under repeated reads."""
    taskmanager = next(p for p in running_job.stack["flink"].processes() if p.name.endswith("taskmanager"))
    pid = taskmanager.pid()
    assert pid is not None
    rest = running_job.rest
    vertices = [v["id"] for v in rest.job(running_job.job_id)["vertices"]]
    latencies: list[float] = []
    for _ in range(5):
        for vertex in vertices:  # the REST path: each TaskManager's MetricQueryService dumps all its metrics
            names = [m["id"] for m in rest.vertex_metrics(running_job.job_id, vertex)][:20]
            rest.vertex_metrics(running_job.job_id, vertex, names)
        latencies = _operator_metric(running_job, "coffee_order_to_redis_latency_ms")
        time.sleep(1)
    assert len(latencies) == 1 and latencies[0] > 0  # the one live-metrics operator reports its latency
    assert taskmanager.pid() == pid
    assert rest.job_state(running_job.job_id) == "RUNNING"
    assert rest.job_metric(running_job.job_id, "numRestarts") == "0"


def test_savepoint_and_resubmit_keeps_totals_exact(running_job: RunningJob) -> None:
    rest = running_job.rest
    trigger = rest.stop_with_savepoint(running_job.job_id)
    savepoint = rest.wait_savepoint(running_job.job_id, trigger, timeout=120)
    assert rest.wait_state(running_job.job_id, {"FINISHED"}, timeout=60) == "FINISHED"

    old = list(running_job.expected.orders.values())[:300]
    running_job.send(running_job.make_orders(1_000))  # while no job runs: waits in Kafka
    running_job.job_id = uuid.uuid4().hex
    submit(rest, running_job.cfg, running_job.job_id, restore_path=savepoint)
    rest.wait_state(running_job.job_id, {"RUNNING"}, timeout=180)
    running_job.send(running_job.make_orders(1_000) + old)  # old ones are replays: counted once
    running_job.wait_until_exact()
    assert running_job.expected.by_store()["_all"][0] == 12_000


def test_taskmanager_sigkill_mid_stream_loses_and_doubles_nothing(running_job: RunningJob) -> None:
    flink = running_job.stack["flink"]
    taskmanager = next(p for p in flink.processes() if p.name.endswith("taskmanager"))
    batches = [running_job.make_orders(500) for _ in range(6)]
    killed = threading.Event()

    def feed() -> None:
        for n, batch in enumerate(batches):
            running_job.send(batch)
            if n == 2:
                killed.wait(60)
            time.sleep(0.5)

    feeder = threading.Thread(target=feed)
    feeder.start()
    time.sleep(2)
    taskmanager.kill()
    killed.set()
    # A new TaskManager on the dead one's address before the JobManager has dropped it (heartbeat
    # timeout) can find the address quarantined by Pekko and never register (seen once in CI).
    deadline = time.monotonic() + 120
    while running_job.rest.overview().get("taskmanagers", 0) > 0 and time.monotonic() < deadline:
        time.sleep(1)
    taskmanager.start()
    feeder.join(120)
    assert not feeder.is_alive()
    running_job.rest.wait_state(running_job.job_id, {"RUNNING"}, timeout=180)
    running_job.wait_until_exact()
    assert running_job.expected.by_store()["_all"][0] == 15_000
    checkpoints = running_job.rest.checkpoints(running_job.job_id)
    assert checkpoints["counts"]["restored"] >= 1


def test_dead_letters_are_counted_in_flinks_prometheus_metrics(running_job: RunningJob) -> None:
    for _ in range(3):
        running_job.send_poison()
    running_job.producer.flush(10)
    deadline = time.monotonic() + 90
    values: list[float] = []
    while time.monotonic() < deadline:
        values = _operator_metric(running_job, "coffee_dlq_records")
        if values and sum(values) >= 3:
            break
        time.sleep(2)
    # The counter restarts with the TaskManager (killed above), so at least the three sent now.
    assert values and sum(values) >= 3


def test_dead_letter_topic_holds_exactly_the_poison_records(running_job: RunningJob) -> None:
    consumer = Consumer({"bootstrap.servers": running_job.cfg.kafka_bootstrap, "group.id": uuid.uuid4().hex,
                         "isolation.level": "read_committed", "enable.auto.commit": False})
    partition = TopicPartition(running_job.cfg.dlq_topic, 0, 0)
    consumer.assign([partition])
    records = []
    deadline = time.monotonic() + 60
    try:
        while len(records) < len(running_job.poison) and time.monotonic() < deadline:
            message = consumer.poll(1.0)
            if message is not None and message.error() is None:
                records.append(message)
        time.sleep(3)  # anything beyond the expected count would show up now
        while (message := consumer.poll(0.5)) is not None:
            if message.error() is None:
                records.append(message)
    finally:
        consumer.close()
    assert sorted(r.value() for r in records) == sorted(running_job.poison)
    for record in records:
        headers = {k: v.decode() for k, v in record.headers()}
        assert headers["source-topic"] == running_job.cfg.orders_topic
        assert int(headers["source-offset"]) >= 0
        assert headers["reason"]
    reasons = {r.value(): dict(r.headers())["reason"].decode() for r in records}
    not_an_order = [reason for value, reason in reasons.items() if value.startswith(b'{"message_id"')]
    assert not_an_order and all("store_id: Field required" in reason for reason in not_an_order)
    assert all(reason.startswith("not an order") or "Invalid JSON" in reason
               for value, reason in reasons.items() if value.startswith(b"not json"))
