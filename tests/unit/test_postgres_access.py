"""The postgres user must reach its data dir even in a checkout under a private folder (mktemp -d)."""

from __future__ import annotations

import os
from pathlib import Path

from coffee_rt.local.components.postgres import folders_blocking

NOBODY = 65534


def test_a_private_ancestor_blocks_and_o_x_unblocks_it(tmp_path: Path) -> None:
    for folder in folders_blocking(tmp_path / "clone", NOBODY):  # pytest's tmp folders are private too
        folder.chmod(folder.stat().st_mode | 0o001)
    locked = tmp_path / "clone"
    data = locked / ".state" / "postgres"
    data.mkdir(parents=True)
    locked.chmod(0o700)
    (locked / ".state").chmod(0o755)
    assert folders_blocking(data, NOBODY) == [locked]
    locked.chmod(0o701)
    assert folders_blocking(data, NOBODY) == []


def test_folders_the_user_owns_do_not_block(tmp_path: Path) -> None:
    owned = tmp_path / "mine"
    owned.mkdir(mode=0o700)
    assert owned not in folders_blocking(owned / "data", os.stat(owned).st_uid)
