"""Deterministic Flink job ids: uuid5 of the resource's uid and a submission counter kept in status.

A retried submission (after a timeout, a crash or an operator restart) reuses the same id, so
Flink refuses a second copy and the operator finds the job it already started by that id.
"""

from __future__ import annotations

import uuid

NAMESPACE = uuid.UUID("6f1c2b0e-6c1e-5b8e-9a51-c0ffee000001")


def job_id(resource_uid: str, submission: int) -> str:
    """The 32-hex Flink job id of submission number ``submission`` (1, 2, ...) of a pipeline."""
    if submission < 1:
        raise ValueError(f"submission numbers start at 1, got {submission}")
    if not resource_uid:
        raise ValueError("a resource uid is required")
    return uuid.uuid5(NAMESPACE, f"{resource_uid}/{submission}").hex


def known_ids(resource_uid: str, submissions: int) -> dict[str, int]:
    """Every id this pipeline may have used so far, plus the next one (a submission in flight)."""
    return {job_id(resource_uid, n): n for n in range(1, submissions + 2)}
