"""The foundations: each real server of the local stack does its basic job."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import psycopg
import pytest
import redis
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

from coffee_flink.rest import PYTHON_DRIVER, FlinkRest
from coffee_rt.local import cpu
from coffee_rt.local.components.flink import flink_python_jar
from coffee_rt.local.stack import LocalStack


def test_kafka_message_round_trip(kafka_bootstrap: str) -> None:
    topic = f"roundtrip-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": kafka_bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])[topic].result(timeout=15)
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True, "acks": "all"})
    producer.produce(topic, key=b"store-1", value=b'{"hello": "coffee"}')
    assert producer.flush(15) == 0
    consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": topic, "auto.offset.reset": "earliest"})
    consumer.subscribe([topic])
    try:
        deadline = time.monotonic() + 30
        message = None
        while message is None and time.monotonic() < deadline:
            message = consumer.poll(1.0)
        assert message is not None and message.error() is None
        assert (message.key(), message.value(), message.offset()) == (b"store-1", b'{"hello": "coffee"}', 0)
    finally:
        consumer.close()


def test_pipeline_topics_exist(kafka_bootstrap: str) -> None:
    metadata = AdminClient({"bootstrap.servers": kafka_bootstrap}).list_topics(timeout=10)
    assert len(metadata.topics["orders"].partitions) == 3
    assert len(metadata.topics["orders.dlq"].partitions) == 1


def test_postgres_row_round_trip_and_schema(postgres_dsn: str) -> None:
    with psycopg.connect(postgres_dsn) as conn:
        conn.execute("CREATE TEMP TABLE t (id int PRIMARY KEY, name text)")
        conn.execute("INSERT INTO t VALUES (1, 'Guatemala Honey')")
        assert conn.execute("SELECT id, name FROM t").fetchall() == [(1, "Guatemala Honey")]
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
        assert versions[0] == "0001_orders"
        # Other tests of the session write orders; the table's columns are what the job relies on.
        columns = [r[0] for r in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'orders' ORDER BY ordinal_position")]
        assert columns[:3] == ["message_id", "store_id", "placed_at"]


def test_redis_key_round_trip(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    client.set("coffee-rt:test", "42", ex=60)
    assert client.get("coffee-rt:test") == b"42"


def test_trivial_pyflink_sql_job_runs_and_checkpoints(local_stack: LocalStack, flink_rest_url: str) -> None:
    local_stack.up(["flink"])  # heals a TaskManager lost earlier in the session
    rest = FlinkRest(flink_rest_url)
    jar_id = rest.upload_jar(flink_python_jar())
    job_id = uuid.uuid4().hex
    job_file = Path(__file__).parent / "jobs" / "trivial_sql_job.py"
    returned = rest.run_jar(jar_id, entry_class=PYTHON_DRIVER, program_args=["-py", str(job_file)], job_id=job_id)
    try:
        assert returned == job_id
        assert rest.wait_state(job_id, {"RUNNING"}, timeout=120) == "RUNNING"
        deadline = time.monotonic() + 60
        completed = 0
        while completed < 1 and time.monotonic() < deadline:
            completed = rest.checkpoints(job_id)["counts"]["completed"]
            time.sleep(0.5)
        assert completed >= 1
    finally:
        rest.cancel(job_id)
        rest.wait_state(job_id, {"CANCELED"}, timeout=60)


def test_up_is_idempotent(local_stack: LocalStack, redis_url: str) -> None:
    before = local_stack.status(["redis"])[0]
    after = local_stack.up(["redis"])[0]
    assert after.state == "running"
    assert after.pids == before.pids


def test_the_order_path_servers_run_on_cpus_of_their_own(local_stack: LocalStack, ingest_url: str,
                                                         flink_rest_url: str) -> None:
    """Every thread of the ingest service on the first CPU, every thread of Kafka on the others
    (coffee_rt.local.cpu.order_path_cpus); Flink may run anywhere."""
    allowed = os.sched_getaffinity(0)
    if len(allowed) < 2:
        pytest.skip("one CPU: nothing to split")

    def threads_cpus(name: str) -> set[frozenset[int]]:
        pid = local_stack[name].processes()[0].pid()
        assert pid is not None
        return {frozenset(os.sched_getaffinity(int(tid))) for tid in os.listdir(f"/proc/{pid}/task")}

    assert threads_cpus("ingest") == {cpu.order_path_cpus("service", allowed)}
    assert threads_cpus("kafka") == {cpu.order_path_cpus("broker", allowed)}
    assert threads_cpus("flink") == {frozenset(allowed)}


def test_the_broker_collects_garbage_with_shenandoah(local_stack: LocalStack, kafka_bootstrap: str) -> None:
    """Debian's OpenJDK 17 has Shenandoah, so the local broker uses it (kafka.py: G1's young pauses
    were most of the ingest tail), and its GC log says so."""
    kafka = local_stack["kafka"]
    pid = kafka.processes()[0].pid()
    assert pid is not None
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    assert b"-XX:+UseShenandoahGC" in argv and b"-XX:+UseG1GC" not in argv
    assert "Using Shenandoah" in (kafka.home / "gc.log").read_text()
