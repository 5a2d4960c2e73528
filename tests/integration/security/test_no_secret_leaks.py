"""No secret in any log, status or REST-visible config, on the real local stack.

The test stack's passwords are generated per state folder (``secrets/``): they are the canaries, as
are the ingest's and the dashboard's dev tokens. The whole stack runs, the local stack's own job
counts orders posted through the real ingest API (exact totals in Postgres and Redis), the
dashboard's API is read with its token; then every file under the stack's state folder (but the
files meant to hold a secret), ``coffee-rt local status``, Flink's REST API (cluster and job config,
environment, plan, exceptions, every JobManager and TaskManager log) and the dashboard's JSON are
searched for each canary, and the test fails naming every place one was found.
"""

from __future__ import annotations

import base64
import json
import random
import time
from collections.abc import Iterator
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import httpx
import psycopg
import pytest
import redis
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]
from job_harness import RunningJob
from ledger_harness import forget_job_state

from coffee_flink.rest import FlinkRest
from coffee_live.days import business_day
from coffee_orders import topics
from coffee_orders.loadgen import DEFAULT_STORES, random_order
from coffee_orders.schema import Order, to_wire
from coffee_rt.local.components.dashboard import Dashboard
from coffee_rt.local.components.exporters import PostgresExporter, RedisExporter
from coffee_rt.local.components.ingest import Ingest
from coffee_rt.local.components.job import FlinkJob
from coffee_rt.local.jobconfig import job_secret_files, local_job_config
from coffee_rt.local.stack import LocalStack

STACK = ["postgres", "redis", "kafka", "ingest", "flink", "job", "dashboard", "auditor", "redis-exporter",
         "postgres-exporter"]
ORDERS = 60


def canaries(stack: LocalStack) -> dict[str, str]:
    """Every secret of the stack, by name: the generated passwords, the URLs holding one, the tokens."""
    s = stack.settings
    ingest, dashboard = stack["ingest"], stack["dashboard"]
    assert isinstance(ingest, Ingest) and isinstance(dashboard, Dashboard)
    # every generated secret: the owner's and each role's Postgres password, Redis's and its dashboard
    # user's, the dashboard's session key
    found = {f"secret {path.name}": path.read_text().strip() for path in sorted(s.secrets_dir.iterdir())}
    assert len(found) == 7, sorted(found)
    found.update({"redis URL": s.redis_url, "dashboard redis URL": s.redis_dashboard_url,
                  "dashboard token": dashboard.dev_token()})
    found.update({f"ingest token of {store}": token for store, token in ingest.dev_tokens().items()})
    return found


def needles(secrets: dict[str, str]) -> dict[bytes, str]:
    """The byte strings to look for: each secret as text, URL-quoted and base64 (at each alignment)."""
    out: dict[bytes, str] = {}
    for name, value in secrets.items():
        raw = value.encode()
        out[raw] = name
        out[quote(value, safe="").encode()] = f"{name} (URL-quoted)"
        for shift in range(3):  # base64 of the secret inside some longer text, whatever its offset
            encoded = base64.b64encode(b"\0" * shift + raw)[4 if shift else 0:-4]
            if len(encoded) >= 16:
                out[encoded] = f"{name} (base64)"
    return out


def meant_to_hold_secrets(stack: LocalStack) -> set[Path]:
    """The files that are the secrets' homes (mode 0600): the only places a secret may be."""
    s = stack.settings
    folders = [s.secrets_dir, job_secret_files(s)[0].parent]
    files = {p.resolve() for folder in folders if folder.exists() for p in folder.iterdir()}
    redis_exporter, postgres_exporter = stack["redis-exporter"], stack["postgres-exporter"]
    assert isinstance(redis_exporter, RedisExporter) and isinstance(postgres_exporter, PostgresExporter)
    files |= {(s.state_dir / "redis" / "auth.conf").resolve(), redis_exporter.password_file.resolve(),
              postgres_exporter.password_file.resolve(), (s.state_dir / "ingest" / "dev-tokens.json").resolve(),
              (s.state_dir / "dashboard" / "dev-token").resolve()}
    # Where other test modules of the same stack keep Secrets by design: the local Kubernetes API
    # server's datastore (etcd holds every Secret object) and the operator tests' stand-in for
    # Secrets mounted as files.
    for home in (s.state_dir / "k8s" / "etcd", s.state_dir / "operator-tests" / "secrets"):
        files |= {p.resolve() for p in home.rglob("*") if p.is_file()} if home.exists() else set()
    return files


def _end_offsets(admin: AdminClient, topic: str) -> dict[int, int]:
    metadata = admin.list_topics(topic, timeout=30).topics[topic]
    futures = admin.list_offsets({TopicPartition(topic, p): OffsetSpec.latest() for p in metadata.partitions})
    return {tp.partition: f.result(timeout=30).offset for tp, f in futures.items()}


@pytest.fixture(scope="module")
def counted(local_stack: LocalStack) -> Iterator[RunningJob]:
    """The whole stack with the job component's job counting from the orders topic's current end,
    into an empty Postgres and Redis; then ``ORDERS`` orders posted through the ingest API and
    counted exactly."""
    for name in ("flink", "job"):  # a machine shared with other test runs may need longer
        local_stack[name].start_timeout = max(local_stack[name].start_timeout, 600.0)
    settings = local_stack.settings
    local_stack.up(["postgres", "redis", "kafka", "ingest", "flink"])
    local_stack.down(["job"])
    forget_job_state(local_stack)
    cfg = local_job_config(settings)
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    ends = _end_offsets(admin, topics.ORDERS.name)
    request = [ConsumerGroupTopicPartitions(cfg.group_id, [TopicPartition(topics.ORDERS.name, p, o)
                                                           for p, o in ends.items()])]
    for future in admin.alter_consumer_group_offsets(request).values():
        future.result(timeout=30)
    with psycopg.connect(settings.postgres_dsn, autocommit=True) as conn:
        conn.execute("TRUNCATE orders, order_items, sales_by_minute, sales_by_hour")
    redis.Redis.from_url(settings.redis_url).flushdb()
    local_stack.up(STACK)
    job = local_stack["job"]
    assert isinstance(job, FlinkJob)
    active = job.active_job()
    assert active is not None
    rest = FlinkRest(settings.flink_rest_url, timeout=60)
    now = datetime.now(UTC)
    # All orders of one business day (the job's zone is UTC): placed in the last minute, after midnight.
    span = min(60.0, (now - now.replace(hour=0, minute=0, second=0, microsecond=0)).total_seconds() - 1)
    rng = random.Random(24)
    orders = [random_order(rng, DEFAULT_STORES[n % len(DEFAULT_STORES)], now - timedelta(seconds=rng.uniform(0, span)))
              for n in range(ORDERS)]
    day = business_day(int(orders[0].placed_at.timestamp() * 1000), cfg.default_timezone)
    running = RunningJob(local_stack, rest, cfg, active["jid"], cfg.default_timezone, day, list(DEFAULT_STORES))
    ingest = local_stack["ingest"]
    assert isinstance(ingest, Ingest)
    _post(settings.ingest_url, ingest.dev_tokens(), orders)
    _post(settings.ingest_url, ingest.dev_tokens(), orders[:5])  # resent: counted once
    running.expected.add(orders)
    try:
        yield running
    finally:
        rest.close()
        running.producer.flush(10)
        # What only this module started: later modules start them with settings of their own.
        local_stack.down(["auditor", "redis-exporter", "postgres-exporter", "dashboard", "job"])


def _post(ingest_url: str, tokens: dict[str, str], orders: list[Order]) -> None:
    """Each order accepted (202); a 503 (a broker slow to acknowledge) retried as the API contract says."""
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


def test_the_job_counts_every_order_posted_exactly(counted: RunningJob) -> None:
    counted.wait_until_exact()
    want = counted.expected.by_store()["_all"]
    assert want[0] == ORDERS
    with psycopg.connect(counted.stack.settings.postgres_dsn) as conn:
        row = conn.execute("SELECT count(*), sum(total_cents) FROM orders").fetchone()
    assert row == (ORDERS, want[1])
    live = redis.Redis.from_url(counted.stack.settings.redis_url, decode_responses=True)
    summary = live.hgetall(f"coffee:live:_all:{counted.day}:summary")
    assert (int(summary["orders"]), int(summary["revenue_cents"])) == (ORDERS, want[1])


def _rest_documents(rest: FlinkRest, base: str, job_id: str) -> dict[str, bytes]:
    """Flink REST's configuration, environment, plan and logs, by path (only those that answer)."""
    paths = ["/config", "/overview", "/jobmanager/config", "/jobmanager/environment", "/jobmanager/logs",
             f"/jobs/{job_id}", f"/jobs/{job_id}/config", f"/jobs/{job_id}/plan", f"/jobs/{job_id}/exceptions",
             f"/jobs/{job_id}/jobmanager/config", f"/jobs/{job_id}/jobmanager/environment",
             f"/jobs/{job_id}/checkpoints/config", "/jars", "/taskmanagers", "/jobmanager/stdout"]
    docs: dict[str, bytes] = {}
    with httpx.Client(base_url=base, timeout=60) as client:
        for path in paths:
            response = client.get(path)
            if response.status_code == 200:
                docs[path] = response.content
        for entry in client.get("/jobmanager/logs").json().get("logs", []):
            path = f"/jobmanager/logs/{quote(entry['name'])}"
            docs[path] = client.get(path).content
        for tm in client.get("/taskmanagers").json()["taskmanagers"]:
            tm_id = tm["id"]
            for path in (f"/taskmanagers/{tm_id}", f"/taskmanagers/{tm_id}/logs", f"/taskmanagers/{tm_id}/stdout",
                         f"/taskmanagers/{tm_id}/log"):
                response = client.get(path)
                if response.status_code == 200:
                    docs[path] = response.content
            for entry in client.get(f"/taskmanagers/{tm_id}/logs").json().get("logs", []):
                path = f"/taskmanagers/{tm_id}/logs/{quote(entry['name'])}"
                docs[path] = client.get(path).content
    assert f"/jobs/{job_id}/plan" in docs and "/jobmanager/config" in docs and "/jobmanager/environment" in docs
    return docs


def test_no_secret_in_any_log_status_or_rest_visible_config(counted: RunningJob) -> None:
    counted.wait_until_exact()
    stack = counted.stack
    settings = stack.settings
    secrets = canaries(stack)
    search = needles(secrets)
    # The job reads its credentials from these files (mode 0600) and its program arguments name them.
    for path in job_secret_files(settings):
        assert path.stat().st_mode & 0o777 == 0o600, path
    assert (settings.secrets_dir.stat().st_mode & 0o777, (settings.secrets_dir / "postgres-password").stat().st_mode
            & 0o777) == (0o700, 0o600)
    dashboard = stack["dashboard"]
    assert isinstance(dashboard, Dashboard)

    places: dict[str, bytes] = {}
    allowed = meant_to_hold_secrets(stack)
    scanned = 0
    for path in sorted(settings.state_dir.rglob("*")):
        if path.is_file() and not path.is_symlink() and path.resolve() not in allowed:
            try:
                places[f"file {path.relative_to(settings.state_dir)}"] = path.read_bytes()
                scanned += 1
            except OSError:
                continue  # a file that went away while we looked (a rotated log, a subsumed checkpoint)
    assert scanned > 20 and any(name.startswith("file logs/flink") for name in places)
    places["coffee-rt local status"] = json.dumps([asdict(r) for r in stack.status()]).encode()
    for path, body in _rest_documents(counted.rest, settings.flink_rest_url, counted.job_id).items():
        places[f"Flink REST {path}"] = body
    with httpx.Client(base_url=settings.dashboard_url, timeout=30,
                      headers={"Authorization": f"Bearer {dashboard.dev_token()}"}) as client:
        for path in ("/api/v1/ops", "/api/v1/status", "/api/v1/summary", "/api/v1/stores"):
            response = client.get(path)
            assert response.status_code == 200, (path, response.text)
            places[f"dashboard {path}"] = response.content
        places["dashboard /readyz"] = client.get("/readyz").content
    # a browser's login, as the README shows it: the token in the query once (then a cookie)
    login = httpx.get(f"{settings.dashboard_url}/", params={"token": dashboard.dev_token()}, timeout=30)
    assert login.status_code in (302, 303, 307), login.status_code
    places["dashboard login's Set-Cookie"] = "\n".join(login.headers.get_list("set-cookie")).encode()
    for url in (settings.ingest_internal_url, settings.dashboard_internal_url):
        places[f"{url}/metrics"] = httpx.get(f"{url}/metrics", timeout=30).content

    # Where the credentials used to show: the job's program arguments, logged by the JobManager and
    # shown by its REST API. They are searched, and name only the files.
    password_file = str(job_secret_files(settings)[0]).encode()
    assert [place for place, body in places.items() if place.startswith("Flink REST /jobmanager/logs/")
            and b"--config-json" in body and password_file in body]

    hits = sorted({f"{what} in {place}" for place, body in places.items()
                   for needle, what in search.items() if needle in body})
    assert hits == [], "secrets found:\n" + "\n".join(hits)
