"""The Redis key layout of the live numbers (written by the Flink job, read by the dashboard) and the
business-day rule its keys are per (``days``; the ledger audit files orders by it too)."""
