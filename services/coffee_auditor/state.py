"""The topic tally kept in Postgres, so that any process (a pod after a restart, ``coffee-rt audit``)
resumes where the last round ended.

Four tables (``coffee_db`` migration ``0003_ledger``), one tally per topic: ``ledger_tally`` (the
revision, newest record time, retention gap, outcome counts), ``ledger_positions`` (next offset per
partition), ``ledger_totals`` (orders and revenue per store/day) and ``ledger_seen`` (the message_ids
of the dedup window, by hour of record time). A save writes only what changed since the last one
(``Tally.take_changes``): new ids, moved totals, forgotten hours, positions, in one transaction. A
round holds a session advisory lock for its topic, so rounds of several processes never interleave,
and a process whose tally in memory is older than the saved revision loads it again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from coffee_ledger.tally import Tally
from psycopg.rows import TupleRow

LOCK_PREFIX = "coffee-rt ledger tally: "


@contextmanager
def locked(conn: psycopg.Connection[TupleRow], topic: str) -> Iterator[None]:
    """The topic's tally lock for the duration (a session advisory lock: the server drops it with the connection)."""
    key = LOCK_PREFIX + topic
    conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (key,))
    try:
        yield
    finally:
        if not conn.closed:
            conn.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))


def revision(conn: psycopg.Connection[TupleRow], topic: str) -> int:
    """The saved tally's revision; 0 when none is saved."""
    row = conn.execute("SELECT revision FROM ledger_tally WHERE topic = %s", (topic,)).fetchone()
    return 0 if row is None else int(row[0])


def load(conn: psycopg.Connection[TupleRow], topic: str, dedup_ttl_ms: int) -> tuple[Tally, int]:
    """The saved tally and its revision (a fresh tally and 0 when none is saved)."""
    tally = Tally(dedup_ttl_ms=dedup_ttl_ms, topic=topic)
    row = conn.execute("SELECT revision, newest_ms, incomplete_before_ms, counted, duplicate, invalid "
                       "FROM ledger_tally WHERE topic = %s", (topic,)).fetchone()
    if row is None:
        return tally, 0
    rev, newest, incomplete, counted, duplicate, invalid = (int(v) for v in row)
    tally.newest_ms, tally.incomplete_before_ms = newest, incomplete
    tally.counts = {"counted": counted, "duplicate": duplicate, "invalid": invalid}
    for partition, offset in conn.execute(
            "SELECT kafka_partition, next_offset FROM ledger_positions WHERE topic = %s", (topic,)):
        tally.positions[int(partition)] = int(offset)
    for store, day, orders, cents in conn.execute(
            "SELECT store_id, day::text, orders, revenue_cents FROM ledger_totals WHERE topic = %s", (topic,)):
        tally.totals[(store, day)] = [int(orders), int(cents)]
    for hour, message_id in conn.execute("SELECT hour, message_id FROM ledger_seen WHERE topic = %s", (topic,)):
        tally.buckets.setdefault(int(hour), set()).add(message_id.int)
    return tally, rev


def save(conn: psycopg.Connection[TupleRow], tally: Tally) -> int:
    """Write what changed since the last save (or load); returns the new revision."""
    changes = tally.take_changes()
    topic = tally.topic
    with conn.transaction():
        if changes.cleared:
            for table in ("ledger_seen", "ledger_totals", "ledger_positions"):
                conn.execute(f"DELETE FROM {table} WHERE topic = %s", (topic,))  # noqa: S608 - our table names
        row = conn.execute(
            "INSERT INTO ledger_tally AS t (topic, revision, newest_ms, incomplete_before_ms, counted, duplicate, "
            "invalid, saved_at) VALUES (%(topic)s, 1, %(newest)s, %(incomplete)s, %(counted)s, %(duplicate)s, "
            "%(invalid)s, now()) ON CONFLICT (topic) DO UPDATE SET revision = t.revision + 1, "
            "newest_ms = excluded.newest_ms, incomplete_before_ms = excluded.incomplete_before_ms, "
            "counted = excluded.counted, duplicate = excluded.duplicate, invalid = excluded.invalid, "
            "saved_at = excluded.saved_at RETURNING revision",
            {"topic": topic, "newest": tally.newest_ms, "incomplete": tally.incomplete_before_ms,
             **tally.counts}).fetchone()
        assert row is not None
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO ledger_positions (topic, kafka_partition, next_offset) VALUES (%s, %s, %s) "
                "ON CONFLICT (topic, kafka_partition) DO UPDATE SET next_offset = excluded.next_offset",
                [(topic, p, o) for p, o in sorted(tally.positions.items())])
            cur.executemany(
                "INSERT INTO ledger_totals (topic, store_id, day, orders, revenue_cents) VALUES (%s, %s, %s, %s, %s) "
                "ON CONFLICT (topic, store_id, day) DO UPDATE SET orders = excluded.orders, "
                "revenue_cents = excluded.revenue_cents",
                [(topic, store, day, *tally.totals[(store, day)]) for store, day in sorted(changes.totals)])
            if changes.dropped_hours:
                cur.execute("DELETE FROM ledger_seen WHERE topic = %s AND hour = ANY(%s)",
                            (topic, sorted(changes.dropped_hours)))
            with cur.copy("COPY ledger_seen (topic, hour, message_id) FROM STDIN") as copy:
                for hour, ids in changes.remembered.items():
                    for message_id in ids:
                        copy.write_row((topic, hour, uuid.UUID(int=message_id)))
    return int(row[0])
