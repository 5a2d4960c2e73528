"""The ledger: orders and revenue per store and business day, counted from the ``orders`` topic (the
source of truth) and compared with the Postgres history and the Redis live numbers.

Pure logic (no Kafka, Postgres or Redis clients): ``days`` assigns business days exactly as the job
does, ``tally`` counts topic records incrementally with a bounded dedup memory, ``compare`` turns
the three sources into differences. The I/O around it is ``coffee_auditor``.
"""
