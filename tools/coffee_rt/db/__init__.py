"""Postgres schema: versioned SQL migrations and the command that applies them."""
