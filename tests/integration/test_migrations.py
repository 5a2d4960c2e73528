"""Migrations: applied once, in order; an edited applied migration or a bad file name is an error."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import psycopg.sql
import pytest

from coffee_db.migrate import MIGRATIONS_DIR, MigrationError, discover, migrate


@pytest.fixture()
def scratch_db(postgres_dsn: str) -> Iterator[str]:
    name = f"scratch_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
    yield postgres_dsn.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("DROP DATABASE {} WITH (FORCE)").format(psycopg.sql.Identifier(name)))


def test_shipped_migrations_apply_once(scratch_db: str) -> None:
    names = [m.version for m in discover()]
    assert migrate(scratch_db) == names
    assert migrate(scratch_db) == []
    with psycopg.connect(scratch_db) as conn:
        assert [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")] == names


def test_an_edited_applied_migration_is_refused(scratch_db: str, tmp_path: Path) -> None:
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE a (id int);")
    assert migrate(scratch_db, tmp_path) == ["0001_first"]
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE a (id bigint);")
    with pytest.raises(MigrationError, match="0001_first was changed after it was applied"):
        migrate(scratch_db, tmp_path)


def test_a_failing_migration_changes_nothing(scratch_db: str, tmp_path: Path) -> None:
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE ok (id int);")
    (tmp_path / "0002_broken.sql").write_text("CREATE TABLE half (id int); SELECT * FROM no_such_table;")
    with pytest.raises(psycopg.errors.UndefinedTable):
        migrate(scratch_db, tmp_path)
    with psycopg.connect(scratch_db) as conn:
        assert [r[0] for r in conn.execute("SELECT version FROM schema_migrations")] == ["0001_ok"]
        assert conn.execute("SELECT to_regclass('half')").fetchone() == (None,)


def test_bad_file_name_is_refused(tmp_path: Path) -> None:
    (tmp_path / "init.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"must look like 0001_what_it_does\.sql"):
        discover(tmp_path)


def test_shipped_migrations_are_numbered() -> None:
    assert next(m.path.name[:4] for m in discover(MIGRATIONS_DIR)) == "0001"
