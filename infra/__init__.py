"""The coffee-rt Pulumi program: Kafka, Flink, Postgres, Redis, the operator and monitoring on Kubernetes.

``infra/__main__.py`` is what ``pulumi up`` runs; everything else is importable (``infra.*``) so the
unit tests can run the same program in-process with mocks and the pulumi CLI is not needed for them.
"""
