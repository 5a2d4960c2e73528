"""The order contract of coffee-rt: the one schema, its wire format, the Kafka topics, and a
load generator that speaks it.

Imported by the ingest service, the Flink job, the infra and the tests, so a field or a topic is
defined, validated and documented exactly once.
"""
