"""The migrations Job's psql script against a real Postgres, interchangeable with `coffee-rt db migrate`."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import psycopg.sql
import pytest

from coffee_db.migrate import discover, migrate
from infra.migrations import SCRIPT_NAME, configmap_data


@pytest.fixture()
def scratch_db(postgres_dsn: str) -> Iterator[str]:
    name = f"infra_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
    yield postgres_dsn.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(psycopg.sql.SQL("DROP DATABASE {} WITH (FORCE)").format(psycopg.sql.Identifier(name)))


@pytest.fixture()
def mounted(tmp_path: Path) -> Path:
    """The ConfigMap as the Job sees it: one file per key."""
    for name, text in configmap_data().items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def psql(dsn: str, folder: Path) -> subprocess.CompletedProcess[str]:
    """What the Job's container runs."""
    binary = shutil.which("psql")
    assert binary, "psql comes with the postgresql package the local stack installs"
    return subprocess.run([binary, dsn, "-X", "-v", "ON_ERROR_STOP=1", "-f", str(folder / SCRIPT_NAME)],
                          capture_output=True, text=True, timeout=60, check=False)


def applied(dsn: str) -> list[tuple[str, str]]:
    with psycopg.connect(dsn) as conn:
        return [(r[0], r[1]) for r in conn.execute("SELECT version, checksum FROM schema_migrations ORDER BY 1")]


def test_psql_applies_every_migration_once_and_python_agrees(scratch_db: str, mounted: Path) -> None:
    first = psql(scratch_db, mounted)
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [*(f"applied {m.version}" for m in discover()), "schema is up to date"]
    assert applied(scratch_db) == [(m.version, m.checksum) for m in discover()]
    with psycopg.connect(scratch_db) as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"orders", "order_items", "schema_migrations"} <= tables
    assert migrate(scratch_db) == []  # coffee-rt db migrate sees an up-to-date schema
    again = psql(scratch_db, mounted)
    assert (again.returncode, again.stdout.splitlines()) == (0, ["schema is up to date"])
    assert len(applied(scratch_db)) == len(discover()) == 5


def test_psql_continues_where_python_left_off(scratch_db: str, mounted: Path) -> None:
    assert migrate(scratch_db) == ["0001_orders", "0002_rollups", "0003_ledger", "0004_roles",
                                 "0005_auditor_role"]
    result = psql(scratch_db, mounted)
    assert (result.returncode, result.stdout.splitlines()) == (0, ["schema is up to date"])


def test_an_edited_applied_migration_stops_the_job_and_changes_nothing(scratch_db: str, mounted: Path) -> None:
    assert psql(scratch_db, mounted).returncode == 0
    before = applied(scratch_db)
    sql = mounted / "0002_rollups.sql"
    sql.write_text(sql.read_text() + "\n-- edited\n")
    # The script's checksums are computed at `pulumi up`; a re-rendered script sees the edit.
    from coffee_db.migrate import discover as discover_in
    from coffee_db.psql import psql_script

    (mounted / SCRIPT_NAME).write_text(psql_script(discover_in(mounted)))
    result = psql(scratch_db, mounted)
    assert result.returncode == 3
    assert ("migration 0002_rollups was changed after it was applied; add a new migration instead of editing "
            "an applied one") in result.stderr
    assert applied(scratch_db) == before


def test_a_failing_migration_rolls_back_and_is_not_recorded(scratch_db: str, tmp_path: Path) -> None:
    from coffee_db.migrate import discover as discover_in
    from coffee_db.psql import psql_script

    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE ok (id int);")
    (tmp_path / "0002_bad.sql").write_text("CREATE TABLE half (id int);\nSELECT no_such_column FROM ok;")
    (tmp_path / SCRIPT_NAME).write_text(psql_script(discover_in(tmp_path)))
    result = psql(scratch_db, tmp_path)
    assert result.returncode == 3
    assert 'column "no_such_column" does not exist' in result.stderr
    assert [v for v, _ in applied(scratch_db)] == ["0001_ok"]
    with psycopg.connect(scratch_db) as conn:
        assert conn.execute("SELECT to_regclass('half')").fetchone() == (None,)
