"""The migrations Job's ConfigMap: the SQL files and the psql script that applies them, both from
``coffee_db`` (``coffee_db.psql`` renders the script from the protocol ``coffee_db.migrate`` runs).

psql rather than ``coffee-rt db migrate``: the Job runs the official postgres image, which has
psql and works against in-cluster and managed Postgres alike, and no image of ours carries the
migrations runner.
"""

from __future__ import annotations

from pathlib import Path

from coffee_db.migrate import MIGRATIONS_DIR
from coffee_db.psql import SCRIPT_NAME as SCRIPT_NAME  # the Job runs it: psql -f <mount>/SCRIPT_NAME
from coffee_db.psql import bundle


def configmap_data(directory: Path = MIGRATIONS_DIR) -> dict[str, str]:
    """Every SQL file, byte for byte, and the script that applies them, keyed by file name."""
    return bundle(directory)
