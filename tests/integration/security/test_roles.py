"""One credential per role, on the real Postgres and Redis of the local stack: the roles of
coffee_db/migrations/0004_roles.sql and the dashboard's Redis ACL user, logged in with the stack's
generated passwords, can do what their user needs and nothing more. The dashboard's credentials
cannot write either store, nor run a program."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import psycopg.errors
import pytest
import redis

from coffee_db import roles
from coffee_rt.local.stack import LocalStack

COPY_PROGRAM = "COPY (SELECT 1) TO PROGRAM 'id'"
# PostgreSQL 15's words (Debian 12's, which the local stack installs).
NEEDS_SUPERUSER = ("must be superuser or have privileges of the pg_execute_server_program role to COPY to or from an "
                   "external program")


@pytest.fixture(scope="module")
def stack(local_stack: LocalStack, postgres_dsn: str, redis_url: str) -> LocalStack:
    return local_stack


@pytest.fixture
def as_role(stack: LocalStack) -> Iterator[dict[str, psycopg.Connection[tuple[object, ...]]]]:
    """A connection per role (autocommit: each statement stands alone)."""
    conns = {role: psycopg.connect(stack.settings.postgres_dsn_of(role), autocommit=True) for role in roles.ROLES}
    try:
        yield conns
    finally:
        for conn in conns.values():
            conn.close()


def _refused(conn: psycopg.Connection[tuple[object, ...]], sql: str) -> str:
    """The server's message refusing ``sql`` for lack of a privilege (SQLSTATE 42501)."""
    with pytest.raises(psycopg.errors.InsufficientPrivilege) as caught:
        conn.execute(sql)  # type: ignore[arg-type]
    return str(caught.value.diag.message_primary)


def _order_row(message_id: str) -> str:
    return (f"INSERT INTO orders (message_id, store_id, placed_at, channel, currency, total_cents, item_count, "
            f"kafka_partition, kafka_offset) VALUES ('{message_id}', 'store-roles', now(), 'pos', 'EUR', 100, 1, 0, 0)")


def test_no_role_may_do_more_than_log_in(stack: LocalStack) -> None:
    with psycopg.connect(stack.settings.postgres_dsn) as conn:
        rows = conn.execute("SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, "
                            "rolcanlogin FROM pg_roles WHERE rolname = ANY(%s) ORDER BY rolname",
                            (list(roles.ROLES),)).fetchall()
    assert rows == [(role, False, False, False, False, False, True) for role in sorted(roles.ROLES)]


def test_the_dashboard_reads_and_cannot_write_or_run_a_program(
        stack: LocalStack, as_role: dict[str, psycopg.Connection]) -> None:  # type: ignore[type-arg]
    dashboard = as_role[roles.DASHBOARD]
    for table in ("orders", "order_items", "sales_by_minute", "sales_by_hour"):
        assert dashboard.execute(f"SELECT count(*) FROM {table} WHERE false").fetchone() == (0,)  # type: ignore[arg-type]
    message_id = str(uuid.uuid4())
    assert _refused(dashboard, _order_row(message_id)) == "permission denied for table orders"
    assert _refused(dashboard, "UPDATE orders SET total_cents = 0") == "permission denied for table orders"
    assert _refused(dashboard, "DELETE FROM sales_by_hour") == "permission denied for table sales_by_hour"
    assert _refused(dashboard, "TRUNCATE order_items") == "permission denied for table order_items"
    assert _refused(dashboard, COPY_PROGRAM) == NEEDS_SUPERUSER
    assert _refused(dashboard, "CREATE TABLE mine (x int)") == "permission denied for schema public"
    assert _refused(dashboard, "SELECT * FROM ledger_tally") == "permission denied for table ledger_tally"
    assert _refused(dashboard, "ALTER ROLE coffee_dashboard CREATEDB") == "permission denied"
    with psycopg.connect(stack.settings.postgres_dsn) as owner:
        assert owner.execute("SELECT count(*) FROM orders WHERE message_id = %s", (message_id,)).fetchone() == (0,)


def test_the_job_upserts_its_tables_and_nothing_else(as_role: dict[str, psycopg.Connection]) -> None:  # type: ignore[type-arg]
    job = as_role[roles.JOB]
    message_id = str(uuid.uuid4())
    with job.transaction(force_rollback=True):
        job.execute(_order_row(message_id) + " ON CONFLICT (message_id) DO UPDATE SET total_cents = "  # type: ignore[arg-type]
                    "EXCLUDED.total_cents")
        job.execute("UPDATE orders SET total_cents = 200 WHERE message_id = %s", (message_id,))
        assert job.execute("SELECT total_cents FROM orders WHERE message_id = %s", (message_id,)).fetchone() == (200,)
    assert _refused(job, "DELETE FROM orders") == "permission denied for table orders"
    assert _refused(job, "TRUNCATE sales_by_minute") == "permission denied for table sales_by_minute"
    assert _refused(job, COPY_PROGRAM) == NEEDS_SUPERUSER
    assert _refused(job, "CREATE TABLE mine (x int)") == "permission denied for schema public"
    assert _refused(job, "SELECT * FROM schema_migrations") == "permission denied for table schema_migrations"
    assert _refused(job, "SELECT * FROM ledger_seen") == "permission denied for table ledger_seen"


def test_the_monitor_sees_statistics_not_data(as_role: dict[str, psycopg.Connection]) -> None:  # type: ignore[type-arg]
    monitor = as_role[roles.MONITOR]
    # pg_monitor: other sessions' queries are visible (a plain role sees "<insufficient privilege>")
    queries = [row[0] for row in monitor.execute("SELECT query FROM pg_stat_activity WHERE usename = %s",
                                                 (roles.DASHBOARD,)).fetchall()]
    assert queries and "<insufficient privilege>" not in queries
    assert _refused(monitor, "SELECT * FROM orders") == "permission denied for table orders"
    assert _refused(monitor, _order_row(str(uuid.uuid4()))) == "permission denied for table orders"
    assert _refused(monitor, COPY_PROGRAM) == NEEDS_SUPERUSER


def test_only_the_generated_passwords_open_the_database(stack: LocalStack) -> None:
    s = stack.settings
    for user, password in ((s.postgres_user, "coffee-local"), (roles.DASHBOARD, s.postgres_password)):
        with pytest.raises(psycopg.OperationalError) as caught:
            psycopg.connect(f"postgresql://{user}:{password}@{s.host}:{s.postgres_port}/{s.postgres_db}",
                            connect_timeout=5)
        assert f'password authentication failed for user "{user}"' in str(caught.value)
    assert len({s.postgres_password, *(s.postgres_role_password(role) for role in roles.ROLES)}) == 4


def _denied(call: object, *args: object) -> str:
    with pytest.raises(redis.exceptions.NoPermissionError) as caught:
        call(*args)  # type: ignore[operator]
    return str(caught.value)


def test_the_dashboards_redis_user_reads_and_subscribes_only(stack: LocalStack) -> None:
    s = stack.settings
    job = redis.Redis.from_url(s.redis_url, decode_responses=True)  # the default user: the job's
    dashboard = redis.Redis.from_url(s.redis_dashboard_url, decode_responses=True)
    key, store = f"coffee:live:store-roles:{uuid.uuid4().hex}:summary", f"store-roles-{uuid.uuid4().hex}"
    job.hset(key, mapping={"orders": "3"})
    job.sadd("coffee:stores", store)
    job.set("not-coffee", "x")
    try:
        assert dashboard.hgetall(key) == {"orders": "3"}
        assert store in dashboard.smembers("coffee:stores")  # type: ignore[operator]
        pipe = dashboard.pipeline(transaction=True)
        pipe.hgetall(key)
        pipe.zrevrange("coffee:live:store-roles:none:recent", 0, 9)
        assert pipe.execute() == [{"orders": "3"}, []]
        pubsub = dashboard.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe("coffee:updates")
        pubsub.get_message(timeout=1)  # the subscription's confirmation
        ((_, subscribers),) = job.pubsub_numsub("coffee:updates")  # this one, and a running dashboard's
        assert job.publish("coffee:updates", store) == subscribers >= 1
        message = pubsub.get_message(timeout=5)
        assert message is not None and message["data"] == store
        pubsub.close()

        assert _denied(dashboard.hset, key, "orders", "0") == \
            "this user has no permissions to run the 'hset' command"
        assert _denied(dashboard.set, "coffee:x", "1") == "this user has no permissions to run the 'set' command"
        assert _denied(dashboard.delete, key) == "this user has no permissions to run the 'del' command"
        assert _denied(dashboard.flushdb) == "this user has no permissions to run the 'flushdb' command"
        assert _denied(dashboard.eval, "return 1", 0) == "this user has no permissions to run the 'eval' command"
        assert _denied(dashboard.publish, "coffee:updates", "x") == \
            "this user has no permissions to run the 'publish' command"
        assert _denied(dashboard.config_get, "requirepass") == \
            "this user has no permissions to run the 'config|get' command"
        assert _denied(dashboard.keys, "*") == "this user has no permissions to run the 'keys' command"
        assert _denied(dashboard.get, "not-coffee") == "this user has no permissions to access one of the keys " \
            "used as arguments"
        assert job.hgetall(key) == {"orders": "3"}
    finally:
        job.delete(key, "not-coffee")
        job.srem("coffee:stores", store)
        job.close()
        dashboard.close()
