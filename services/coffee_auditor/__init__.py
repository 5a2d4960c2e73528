"""The ledger auditor: the ``orders`` topic (the source of truth) against the Postgres history and the
Redis live numbers, per store and business day (docs/ledger.md).

``engine`` runs one round against explicit targets (``Targets``), ``state`` keeps the topic tally in
Postgres, ``metrics`` exports a round's differences, and ``python -m coffee_auditor`` (``service``)
runs a round every interval with ``/metrics`` and ``/healthz``, configured by ``AUDITOR_*``
variables (``settings``). ``coffee-rt audit`` runs one round of the same engine on the local stack.
"""
