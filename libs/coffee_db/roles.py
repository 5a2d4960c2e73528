"""The database roles of ``migrations/0004_roles.sql`` and ``0005_auditor_role.sql``: one per use.

Each has only what it needs. The migrations create them able to log in but without a password (so
nobody can, yet) and grant their privileges; a deployment gives each role its password (the local
stack: its generated files, ``coffee_rt.local.components.postgres``; Kubernetes: infra/credentials.py).
The owner (the migrations' user) keeps everything else.
"""

from __future__ import annotations

JOB = "coffee_job"  # the Flink job: upserts into orders, order_items and the rollups; nothing else
DASHBOARD = "coffee_dashboard"  # the dashboard: reads the history tables; writes nothing
MONITOR = "coffee_monitor"  # the Postgres exporter: pg_monitor (statistics), no table data
AUDITOR = "coffee_auditor"  # the ledger auditor: its ledger_* tally; the history's upserts for its rebuilds

ROLES = (JOB, DASHBOARD, MONITOR)  # the roles the local stack gives a password (its auditor runs as the owner)
ALL_ROLES = (*ROLES, AUDITOR)  # every role the migrations create (Kubernetes gives each a password)
