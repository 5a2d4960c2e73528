"""The coffee-rt streaming job: orders from Kafka into Postgres history and Redis live metrics."""
