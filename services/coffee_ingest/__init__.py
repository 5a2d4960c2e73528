"""order-ingest: the HTTP write path from tills and apps into Kafka (see docs/ingest.md)."""
