"""One credential per role, on the real servers: the migrations Job's command sets each Postgres
role's password from its mounted verifier, and each role can do exactly what it should; the
in-cluster Redis's users file, loaded by a real redis-server, lets each user do exactly its part."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import psycopg.sql
import pytest
import redis

from coffee_db import roles
from infra import credentials
from infra.components import postgres as pg
from infra.components import redis as rd
from infra.migrations import configmap_data

KEY = "integration-credentials-key-" + "0123456789abcdef" * 2
ADMIN = "integration-redis-admin-password"


@pytest.fixture()
def scratch_db(postgres_dsn: str) -> Iterator[str]:
    """A fresh database; the server-wide roles' passwords are put back as they were afterwards."""
    name = f"infra_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        saved = conn.execute("SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY(%s)",
                             (list(roles.ALL_ROLES),)).fetchall()
        conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
    yield postgres_dsn.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("DROP DATABASE {} WITH (FORCE)").format(psycopg.sql.Identifier(name)))
        for role, password in saved:
            conn.execute(psycopg.sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                psycopg.sql.Identifier(role), psycopg.sql.Literal(password)))


def run_job(dsn: str, root: Path) -> subprocess.CompletedProcess[str]:
    """The migrations Job's container command, its mounts under ``root``."""
    owner, verifiers, migrations = root / "owner", root / "verifiers", root / "migrations"
    for folder in (owner, verifiers, migrations):
        folder.mkdir()
    (owner / "password").write_text(pg.password_of(dsn))
    for role in roles.ALL_ROLES:
        (verifiers / role).write_text(credentials.postgres_verifier(KEY, role))
    data = {**configmap_data(), pg.ROLES_SCRIPT: credentials.roles_script(str(verifiers))}
    for name, text in data.items():
        (migrations / name).write_text(text)
    command = pg.MIGRATE.replace(pg.OWNER_DIR, str(owner)).replace("/migrations/", f"{migrations}/")
    owner_user = urlsplit(dsn).username or ""
    assert shutil.which("psql")
    return subprocess.run(["sh", "-c", command], env={"PATH": "/usr/bin:/bin",
                                                      "DATABASE_URL": pg.with_user(dsn, owner_user, None)},
                          capture_output=True, text=True, timeout=120, check=False)


def connect(dsn: str, role: str, password: str | None = None) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(pg.with_user(dsn, role, password or credentials.postgres_password(KEY, role)),
                           autocommit=True)


def refused(conn: psycopg.Connection[tuple[object, ...]], sql: str) -> str:
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as raised:
        conn.execute(sql)
    return str(raised.value).splitlines()[0]


ORDER = ("INSERT INTO orders (message_id, store_id, placed_at, channel, currency, total_cents, item_count) "
         "VALUES ('{id}', 'store-01', now(), 'till', 'EUR', 450, 1)")


def test_the_job_sets_each_role_password_and_each_role_does_exactly_its_part(scratch_db: str,
                                                                              tmp_path: Path) -> None:
    result = run_job(scratch_db, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-2:] == [
        "schema is up to date", "role passwords set: coffee_job, coffee_dashboard, coffee_monitor, coffee_auditor"]
    # Nothing of a verifier is printed (the server's roles may already exist: 0004 then says so).
    assert [line.split("NOTICE:  ")[1] for line in result.stderr.splitlines()] in (
        [], ['role "coffee_monitor" is already a member of role "pg_monitor"'])
    assert "SCRAM" not in result.stdout + result.stderr
    # What the server keeps is exactly the verifier the Secret holds (no password ever reached it).
    with psycopg.connect(scratch_db, autocommit=True) as owner:
        stored = dict(owner.execute("SELECT rolname, rolpassword FROM pg_authid WHERE rolname = ANY(%s)",
                                    (list(roles.ALL_ROLES),)).fetchall())
    assert stored == {role: credentials.postgres_verifier(KEY, role) for role in roles.ALL_ROLES}

    with psycopg.connect(scratch_db, autocommit=True) as owner:
        owner.execute("CREATE TABLE owner_only (id int)")

    job = connect(scratch_db, roles.JOB)
    first = uuid.uuid4()
    job.execute(ORDER.format(id=first))
    assert job.execute("UPDATE orders SET total_cents = 500 WHERE message_id = %s", (first,)).rowcount == 1
    assert job.execute("SELECT total_cents FROM orders").fetchall() == [(500,)]
    assert refused(job, "DELETE FROM orders") == "permission denied for table orders"
    assert refused(job, "TRUNCATE orders") == "permission denied for table orders"
    assert refused(job, "SELECT * FROM ledger_tally") == "permission denied for table ledger_tally"
    assert refused(job, "SELECT * FROM owner_only") == "permission denied for table owner_only"
    assert refused(job, "CREATE TABLE mine (id int)") == "permission denied for schema public"
    assert refused(job, "CREATE ROLE intruder") == "permission denied to create role"
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="must be owner of table orders"):
        job.execute("DROP TABLE orders")
    assert refused(job, "COPY orders TO PROGRAM 'true'") == (
        "must be superuser or have privileges of the pg_execute_server_program role to COPY to or from an "
        "external program")

    dashboard = connect(scratch_db, roles.DASHBOARD)
    assert dashboard.execute("SELECT message_id, total_cents FROM orders").fetchall() == [(first, 500)]
    assert dashboard.execute("SELECT count(*) FROM sales_by_hour").fetchall() == [(0,)]
    assert refused(dashboard, ORDER.format(id=uuid.uuid4())) == "permission denied for table orders"
    assert refused(dashboard, "UPDATE orders SET total_cents = 0") == "permission denied for table orders"
    assert refused(dashboard, "DELETE FROM orders") == "permission denied for table orders"
    assert refused(dashboard, "CREATE TABLE mine (id int)") == "permission denied for schema public"
    assert refused(dashboard, "SELECT * FROM ledger_totals") == "permission denied for table ledger_totals"

    monitor = connect(scratch_db, roles.MONITOR)
    assert refused(monitor, "SELECT * FROM orders") == "permission denied for table orders"
    # pg_monitor: other sessions' queries are visible (the exporter's statistics).
    queries = [q for (q,) in monitor.execute("SELECT query FROM pg_stat_activity WHERE usename = 'coffee_dashboard'")]
    assert queries == ["SELECT * FROM ledger_totals"]

    auditor = connect(scratch_db, roles.AUDITOR)
    auditor.execute("INSERT INTO ledger_positions (topic, kafka_partition, next_offset) VALUES ('orders', 0, 7)")
    assert auditor.execute("DELETE FROM ledger_positions WHERE topic = 'orders'").rowcount == 1
    auditor.execute(ORDER.format(id=uuid.uuid4()) + " ON CONFLICT (message_id) DO NOTHING")
    assert auditor.execute("SELECT count(*) FROM orders").fetchall() == [(2,)]
    assert refused(auditor, "DELETE FROM orders") == "permission denied for table orders"
    assert refused(auditor, "CREATE ROLE intruder") == "permission denied to create role"
    assert refused(auditor, "SELECT * FROM owner_only") == "permission denied for table owner_only"
    for conn in (job, dashboard, monitor, auditor):
        conn.close()

    # A role's password is its own: another role's does not open it.
    with pytest.raises(psycopg.OperationalError, match='password authentication failed for user "coffee_dashboard"'):
        connect(scratch_db, roles.DASHBOARD, credentials.postgres_password(KEY, roles.JOB))


def test_a_rotated_key_is_a_new_job_that_changes_every_role_password(scratch_db: str, tmp_path: Path) -> None:
    assert run_job(scratch_db, tmp_path).returncode == 0
    other = "another-credentials-key-" + "f" * 32
    assert {credentials.postgres_verifier(other, r) for r in roles.ALL_ROLES}.isdisjoint(
        {credentials.postgres_verifier(KEY, r) for r in roles.ALL_ROLES})
    assert credentials.postgres_verifier(KEY, roles.JOB) == credentials.postgres_verifier(KEY, roles.JOB)


# -- Redis ----------------------------------------------------------------------------------------


@pytest.fixture()
def acl_redis(tmp_path: Path) -> Iterator[int]:
    """redis-server started as the Pod starts it: the users from the Secret's file."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server comes with the redis package the local stack installs"
    (tmp_path / rd.USERS_FILE).write_text(credentials.redis_acl_conf(ADMIN, KEY))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([binary, str(tmp_path / rd.USERS_FILE), "--port", str(port), "--bind", "127.0.0.1",
                             "--dir", str(tmp_path), "--save", ""],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                redis.Redis(port=port, password=ADMIN).ping()
                break
            except redis.ConnectionError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def client(port: int, user: str) -> redis.Redis:
    return redis.Redis(port=port, username=user, password=credentials.redis_password(KEY, user),
                       decode_responses=True)


def denied(call: object, *args: object) -> str:
    with pytest.raises(redis.exceptions.NoPermissionError) as raised:
        call(*args)  # type: ignore[operator]
    return str(raised.value)


def test_each_redis_user_does_exactly_its_part(acl_redis: int) -> None:
    job = client(acl_redis, credentials.REDIS_JOB)
    job.hset("coffee:live:store-01", "orders", 3)
    job.expire("coffee:live:store-01", 3600)
    assert job.eval("redis.call('SET', KEYS[1], ARGV[1]); return redis.call('GET', KEYS[1])", 1,
                    "coffee:last", "x") == "x"
    assert job.publish("coffee:updates", "hi") == 0
    assert denied(job.set, "other:key", "1") == (
        "this user has no permissions to access one of the keys used as arguments")
    assert denied(job.flushdb).startswith("this user has no permissions to run the 'flushdb' command")
    assert denied(job.config_get, "*").startswith("this user has no permissions to run the 'config|get' command")

    auditor = client(acl_redis, credentials.REDIS_AUDITOR)
    assert auditor.hgetall("coffee:live:store-01") == {"orders": "3"}
    auditor.delete("coffee:last")

    dashboard = client(acl_redis, credentials.REDIS_DASHBOARD)
    assert dashboard.hgetall("coffee:live:store-01") == {"orders": "3"}
    pubsub = dashboard.pubsub()
    pubsub.subscribe("coffee:updates")
    pubsub.close()
    assert denied(dashboard.hset, "coffee:live:store-01", "orders", 0).startswith(
        "this user has no permissions to run the 'hset' command")
    assert denied(dashboard.delete, "coffee:live:store-01").startswith(
        "this user has no permissions to run the 'del' command")
    assert denied(dashboard.publish, "coffee:updates", "x").startswith(
        "this user has no permissions to run the 'publish' command")
    assert denied(dashboard.eval, "return 1", 0).startswith("this user has no permissions to run the 'eval' command")

    monitor = client(acl_redis, credentials.REDIS_MONITOR)
    assert monitor.info("server")["tcp_port"] == acl_redis
    assert monitor.config_get("maxmemory") == {"maxmemory": "0"}
    assert monitor.eval("return redis.call('HGET', KEYS[1], 'orders')", 1, "coffee:live:store-01") == "3"
    with pytest.raises(redis.ResponseError, match="The user executing the script can't run this command"):
        monitor.eval("return redis.call('DEL', KEYS[1])", 1, "coffee:live:store-01")
    assert denied(monitor.set, "coffee:x", "1").startswith("this user has no permissions to run the 'set' command")

    # No password opens the server without a user's own; another user's does not.
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(port=acl_redis, username=credentials.REDIS_DASHBOARD,
                    password=credentials.redis_password(KEY, credentials.REDIS_JOB)).ping()
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(port=acl_redis).ping()
