"""Apply ``migrations/NNNN_name.sql`` in order, each once, each in its own transaction.

An advisory lock makes concurrent runs (a Kubernetes Job retried, two developers) safe;
a migration file whose content changed after it was applied is an error, not a silent skip.

The protocol (the lock id, the ``schema_migrations`` bookkeeping table and the statements that
read and write it, the order of the files) is defined here once: :func:`migrate` runs these
statements with psycopg, and :mod:`coffee_db.psql` renders the same statements into the psql
script of the Kubernetes migrations Job, so either runner can take over from the other.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")

# The protocol. Statements take their values as %s parameters: psycopg binds them here, the psql
# script substitutes quoted literals.
LOCK_ID = 0x0C0FFEE  # the advisory lock every migration runner takes
# schema_migrations: one row per applied migration, its version (file stem) and checksum (SHA-256 of its bytes).
CREATE_TABLE = ("CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, checksum text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())")
LOCK = "SELECT pg_advisory_lock(%s)"
UNLOCK = "SELECT pg_advisory_unlock(%s)"
APPLIED = "SELECT version, checksum FROM schema_migrations"
APPLIED_CHECKSUM = "SELECT checksum FROM schema_migrations WHERE version = %s"
RECORD = "INSERT INTO schema_migrations (version, checksum) VALUES (%s, %s)"
CHANGED = "migration {version} was changed after it was applied; add a new migration instead of editing an applied one"


class MigrationError(Exception):
    """The migrations folder or the database's record of applied migrations is inconsistent."""


@dataclass(frozen=True)
class Migration:
    version: str
    path: Path

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found: list[Migration] = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"migration file name {path.name!r} must look like 0001_what_it_does.sql")
        found.append(Migration(path.stem, path))
    versions = [m.version[:4] for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError(f"two migrations share a number in {directory}")
    return found


def migrate(dsn: str, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply pending migrations; returns the names applied (empty when up to date)."""
    migrations = discover(directory)
    applied_now: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(LOCK, (LOCK_ID,))
        try:
            conn.execute(CREATE_TABLE)
            done: dict[str, str] = dict(conn.execute(APPLIED).fetchall())
            for migration in migrations:
                if migration.version in done:
                    if done[migration.version] != migration.checksum:
                        raise MigrationError(CHANGED.format(version=migration.version))
                    continue
                with conn.transaction():
                    conn.execute(migration.path.read_text())  # type: ignore[call-overload]
                    conn.execute(RECORD, (migration.version, migration.checksum))
                applied_now.append(migration.version)
        finally:
            conn.execute(UNLOCK, (LOCK_ID,))
    return applied_now
