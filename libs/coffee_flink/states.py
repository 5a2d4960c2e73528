"""Flink's job states, grouped the way coffee-rt acts on them.

A module of its own, importing nothing, so a reader of job states (the dashboard) takes these sets
without the REST client or the job configuration; the lifecycle, the operator and the local stack
use the same ones.

- ``ACTIVE``: Flink runs the job or is bringing it (back) up; a second copy must not be submitted,
  and a savepoint can be asked for once it is RUNNING.
- ``TRANSITIONAL``: on its way out (``CANCELLING`` ends CANCELED, ``FAILING`` ends FAILED) or
  suspended by a JobManager that lost leadership; not counting orders, not yet over.
- ``TERMINAL``: over; Flink will not run it again.
"""

from __future__ import annotations

ACTIVE = frozenset({"INITIALIZING", "CREATED", "RUNNING", "RESTARTING", "RECONCILING"})
TRANSITIONAL = frozenset({"CANCELLING", "FAILING", "SUSPENDED"})
TERMINAL = frozenset({"FINISHED", "FAILED", "CANCELED"})
