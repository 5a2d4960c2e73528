"""One migrations protocol: the psql script of the Kubernetes Job and ``coffee_db.migrate`` take the
same lock and keep the same books, file by file in the same order.

Both against a real Postgres, taking over from each other: tests/integration/infra/test_infra_migrations_psql.py.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from coffee_db import migrate
from coffee_db.migrate import APPLIED_CHECKSUM, CREATE_TABLE, LOCK, LOCK_ID, RECORD, UNLOCK, discover
from coffee_db.psql import SCRIPT_NAME, bundle, literal, psql_script

PROTOCOL = {"LOCK", "UNLOCK", "CREATE_TABLE", "APPLIED", "RECORD"}


def test_the_script_takes_the_lock_and_keeps_the_books_of_migrate() -> None:
    migrations = discover()
    assert [m.version for m in migrations] == ["0001_orders", "0002_rollups", "0003_ledger", "0004_roles",
                                                   "0005_auditor_role"]
    lines = psql_script(migrations).splitlines()
    assert lines[2:4] == ["SELECT pg_advisory_lock(12648430) \\gset", f"{CREATE_TABLE};"]
    assert LOCK_ID == 12648430 and lines[2] == f"{LOCK % LOCK_ID} \\gset"
    assert lines[-2:] == ["SELECT pg_advisory_unlock(12648430) \\gset", "\\echo schema is up to date"]
    assert lines[-2] == f"{UNLOCK % LOCK_ID} \\gset"
    # each file: looked up, applied and recorded in one transaction, in discover()'s order
    for m in migrations:
        at = lines.index(f"\\ir {m.path.name}")
        assert lines[at - 1:at + 3] == [
            "BEGIN;", f"\\ir {m.path.name}",
            f"INSERT INTO schema_migrations (version, checksum) VALUES ('{m.version}', '{m.checksum}');", "COMMIT;"]
        assert lines[at + 1] == f"{RECORD % (literal(m.version), literal(m.checksum))};"
    lookups = [line for line in lines if line.startswith("SELECT coalesce(")]
    assert lookups == [f"SELECT coalesce(({APPLIED_CHECKSUM % literal(m.version)}), '') AS applied \\gset"
                       for m in migrations]
    assert [line for line in lines if line.startswith("\\ir ")] == ["\\ir 0001_orders.sql", "\\ir 0002_rollups.sql",
                                                                     "\\ir 0003_ledger.sql", "\\ir 0004_roles.sql",
                                                                     "\\ir 0005_auditor_role.sql"]


def test_migrate_runs_only_the_protocols_statements() -> None:
    """Every statement ``migrate()`` executes is a protocol constant (or a migration file's SQL), and
    it uses all of them: a statement written inline there would not reach the psql script."""
    tree = ast.parse(inspect.getsource(migrate.migrate))
    executed = [node.args[0] for node in ast.walk(tree)
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "execute"]
    names = {arg.id for arg in executed if isinstance(arg, ast.Name)}
    others = [ast.unparse(arg) for arg in executed if not isinstance(arg, ast.Name)]
    assert (names, others) == (PROTOCOL, ["migration.path.read_text()"])


def test_the_bundle_is_the_files_and_the_script(tmp_path: Path) -> None:
    (tmp_path / "0001_first.sql").write_text("CREATE TABLE a (id int);\n")
    (tmp_path / "0002_second.sql").write_text("CREATE TABLE b (id int);\n")
    files = bundle(tmp_path)
    assert sorted(files) == ["0001_first.sql", "0002_second.sql", SCRIPT_NAME]
    assert files["0002_second.sql"] == "CREATE TABLE b (id int);\n"
    assert files[SCRIPT_NAME] == psql_script(discover(tmp_path))
    assert literal("it's") == "'it''s'"
