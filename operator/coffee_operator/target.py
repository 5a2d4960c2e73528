"""What the running Flink job is made of: the part of the spec whose change is an upgrade.

The lifecycle fields (state, nonces, upgradeMode, savepoint settings) are not part of it: changing
them never stops the job. Status keeps targets (deployed, pending, upgrade, last stable, rolled
back) as camelCase JSON; in the operator they are this frozen model, compared by value.
"""

from __future__ import annotations

from typing import Any

from coffee_operator.spec import Entry, KafkaSpec, PipelineSpec, Sinks, _Model


class JobTarget(_Model):
    rest_url: str
    entry: Entry
    parallelism: int
    checkpoint_interval: str
    kafka: KafkaSpec
    sinks: Sinks
    image: str | None = None  # the session cluster's image: a new one is an upgrade like new code

    @classmethod
    def of(cls, spec: PipelineSpec) -> JobTarget:
        job = spec.job
        return cls(rest_url=job.rest_url, entry=job.entry, parallelism=job.parallelism,
                   checkpoint_interval=job.checkpoint_interval, kafka=spec.kafka, sinks=spec.sinks,
                   image=job.image)

    def dump(self) -> dict[str, Any]:
        """The status form (camelCase JSON, no nulls)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")
