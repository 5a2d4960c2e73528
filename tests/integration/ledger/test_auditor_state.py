"""The auditor's tally in a real Postgres: saved and loaded back equal, only what changed written, a
reset voiding what was saved, and the topic's lock held by one connection at a time."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from coffee_ledger.tally import HOUR_MS, Tally

from coffee_auditor import state
from coffee_orders.loadgen import DEFAULT_STORES, random_order
from coffee_orders.schema import to_wire

START = datetime(2026, 3, 5, 12, tzinfo=UTC)
START_MS = int(START.timestamp() * 1000)
TTL = 36 * HOUR_MS
TABLES = ("ledger_seen", "ledger_totals", "ledger_positions", "ledger_tally")


def _utc(_: str) -> str:
    return "UTC"


def _add(tally: Tally, offset: int, hours: float, store: int = 0) -> None:
    placed = START + timedelta(hours=hours)
    order = random_order(random.Random(), DEFAULT_STORES[store], placed)
    tally.add(offset % 3, offset, int(placed.timestamp() * 1000), to_wire(order), _utc)


@pytest.fixture()
def conn(postgres_dsn: str) -> Iterator[psycopg.Connection]:  # type: ignore[type-arg]
    with psycopg.connect(postgres_dsn, autocommit=True) as connection:
        yield connection


@pytest.fixture()
def topic(conn: psycopg.Connection) -> Iterator[str]:  # type: ignore[type-arg]
    name = f"state-test-{uuid.uuid4().hex[:8]}"
    yield name
    for table in TABLES:
        conn.execute(f"DELETE FROM {table} WHERE topic = %s", (name,))


def _rows(conn: psycopg.Connection, topic: str) -> dict[str, int]:  # type: ignore[type-arg]
    counts = {}
    for table in TABLES:
        row = conn.execute(f"SELECT count(*) FROM {table} WHERE topic = %s", (topic,)).fetchone()
        assert row is not None
        counts[table] = row[0]
    return counts


def test_a_saved_tally_loads_back_equal_and_each_save_is_a_new_revision(
        conn: psycopg.Connection, topic: str) -> None:  # type: ignore[type-arg]
    assert state.revision(conn, topic) == 0
    assert state.load(conn, topic, TTL) == (Tally(dedup_ttl_ms=TTL, topic=topic), 0)
    tally = Tally(dedup_ttl_ms=TTL, topic=topic)
    for offset in range(12):
        _add(tally, offset, hours=offset / 4, store=offset % 4)
    tally.mark_gap(START_MS - HOUR_MS)
    assert state.save(conn, tally) == 1
    loaded, revision = state.load(conn, topic, TTL)
    assert (loaded, revision) == (tally, 1)
    assert _rows(conn, topic) == {"ledger_seen": 12, "ledger_totals": 5, "ledger_positions": 3, "ledger_tally": 1}
    # later: more orders, and the first hours leave the dedup window; only that is written
    for offset in range(12, 16):
        _add(tally, offset, hours=40 + offset / 10, store=0)
    assert state.save(conn, tally) == 2
    loaded, revision = state.load(conn, topic, TTL)
    assert (loaded, revision) == (tally, 2)
    assert sum(len(ids) for ids in loaded.buckets.values()) == 4
    assert _rows(conn, topic)["ledger_seen"] == 4
    assert state.save(conn, tally) == 3  # nothing changed: a new revision, the same rows
    assert state.load(conn, topic, TTL) == (tally, 3)


def test_a_reset_replaces_everything_saved(conn: psycopg.Connection, topic: str) -> None:  # type: ignore[type-arg]
    tally = Tally(dedup_ttl_ms=TTL, topic=topic)
    for offset in range(6):
        _add(tally, offset, hours=offset, store=offset % 2)
    state.save(conn, tally)
    tally.reset()  # the topic was recreated
    _add(tally, 0, hours=1, store=3)
    state.save(conn, tally)
    loaded, _ = state.load(conn, topic, TTL)
    assert loaded == tally
    assert _rows(conn, topic) == {"ledger_seen": 1, "ledger_totals": 2, "ledger_positions": 1, "ledger_tally": 1}


def test_one_connection_holds_a_topics_lock_at_a_time(postgres_dsn: str, conn: psycopg.Connection,  # type: ignore[type-arg]
                                                      topic: str) -> None:
    key = state.LOCK_PREFIX + topic
    with psycopg.connect(postgres_dsn, autocommit=True) as other:
        def try_lock() -> bool:
            row = other.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (key,)).fetchone()
            assert row is not None
            if row[0]:
                other.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))
            return bool(row[0])

        with state.locked(conn, topic):
            assert try_lock() is False
            with state.locked(other, f"{topic}-elsewhere"):  # another topic's tally is another lock
                pass
        assert try_lock() is True
