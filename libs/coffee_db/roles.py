"""The database roles of ``migrations/0004_roles.sql``, one per use, each with only what it needs.

The migration creates them able to log in but without a password (so nobody can, yet) and grants
their privileges; a deployment gives each role its password (the local stack: its generated files,
``coffee_rt.local.components.postgres``). The owner (the migrations' user) keeps everything else.
"""

from __future__ import annotations

JOB = "coffee_job"  # the Flink job: upserts into orders, order_items and the rollups; nothing else
DASHBOARD = "coffee_dashboard"  # the dashboard: reads the history tables; writes nothing
MONITOR = "coffee_monitor"  # the Postgres exporter: pg_monitor (statistics), no table data

ROLES = (JOB, DASHBOARD, MONITOR)
