"""Talking to a Flink session cluster: a typed REST client, the one job lifecycle built on it, and
the job-state sets (``states``, importing nothing, so a reader of job states needs nothing else).

Used by the operator (in the cluster) and the local stack alike, so submitting, stopping with a
savepoint and reading job states work the same way everywhere; the dashboard reads the states.
"""
