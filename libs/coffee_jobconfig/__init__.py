"""The Flink job's configuration: the typed model and how it travels to the job.

The launchers (the operator, the local stack) build a :class:`JobConfig` and turn it into the
job's program arguments; the job reads them back with :func:`load`. One model, both ends.
"""
