"""The one order schema of coffee-rt and a load generator that speaks it.

``coffee_orders.schema`` is imported by the ingest service, the Flink job and the tests, so a
field is defined, validated and documented exactly once.
"""
