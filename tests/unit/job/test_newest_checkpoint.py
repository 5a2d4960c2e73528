"""Finding the state to resume from after a crash: the newest completed checkpoint on disk."""

from __future__ import annotations

import os
from pathlib import Path

from coffee_flink.lifecycle import job_id, known_ids, newest_checkpoint

OWNER = "/state/job"


def _checkpoint(root: Path, jid: str, number: int, mtime: int, metadata: bytes = b"meta") -> Path:
    folder = root / jid / f"chk-{number}"
    folder.mkdir(parents=True)
    if metadata:
        (folder / "_metadata").write_bytes(metadata)
        os.utime(folder / "_metadata", (mtime, mtime))
    return folder


def test_no_folder_or_no_checkpoint_is_none(tmp_path: Path) -> None:
    assert newest_checkpoint(tmp_path / "missing", known_ids(OWNER, 3)) is None
    (tmp_path / job_id(OWNER, 1) / "shared").mkdir(parents=True)
    assert newest_checkpoint(tmp_path, known_ids(OWNER, 3)) is None


def test_newest_metadata_wins_across_our_submissions(tmp_path: Path) -> None:
    _checkpoint(tmp_path, job_id(OWNER, 1), 40, mtime=1_000)
    _checkpoint(tmp_path, job_id(OWNER, 2), 3, mtime=3_000)  # resumed later: a new id, a small number
    newest = _checkpoint(tmp_path, job_id(OWNER, 2), 4, mtime=4_000)
    _checkpoint(tmp_path, job_id("/another/stack", 1), 99, mtime=9_000)  # not ours
    assert newest_checkpoint(tmp_path, known_ids(OWNER, 2)) == newest


def test_unfinished_checkpoints_are_skipped(tmp_path: Path) -> None:
    done = _checkpoint(tmp_path, job_id(OWNER, 1), 7, mtime=1_000)
    _checkpoint(tmp_path, job_id(OWNER, 1), 8, mtime=2_000, metadata=b"")  # crashed before _metadata
    (tmp_path / job_id(OWNER, 1) / "chk-9").mkdir()
    (tmp_path / job_id(OWNER, 1) / "chk-9" / "_metadata").touch()  # empty: never finished writing
    assert newest_checkpoint(tmp_path, known_ids(OWNER, 1)) == done


def test_same_time_takes_the_higher_number(tmp_path: Path) -> None:
    _checkpoint(tmp_path, job_id(OWNER, 1), 9, mtime=5_000)
    ten = _checkpoint(tmp_path, job_id(OWNER, 1), 10, mtime=5_000)
    assert newest_checkpoint(tmp_path, [job_id(OWNER, 1)]) == ten
