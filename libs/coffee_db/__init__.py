"""The Postgres schema: versioned SQL migrations and the one routine that applies them.

Used by ``coffee-rt db migrate`` and, rendered as a psql script, by the Kubernetes migrations Job.
"""
