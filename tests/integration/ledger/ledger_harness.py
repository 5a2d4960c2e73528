"""Helpers of the ledger tests: a job component with no state at all, a consumer group forgotten."""

from __future__ import annotations

import shutil
import time

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]

from coffee_flink import lifecycle
from coffee_rt.local.components.flink import Flink
from coffee_rt.local.components.job import FlinkJob
from coffee_rt.local.stack import LocalStack


def forget_job_state(stack: LocalStack) -> None:
    """What a job with no state at all finds: no savepoint, no retained checkpoint of the component's ids."""
    job = stack["job"]
    assert isinstance(job, FlinkJob)
    job.savepoint_file.unlink(missing_ok=True)
    submissions = int(job.submissions_file.read_text()) if job.submissions_file.exists() else 0
    for job_id in lifecycle.known_ids(str(job.home.resolve()), submissions):
        shutil.rmtree(Flink(stack.settings).checkpoint_dir / job_id, ignore_errors=True)


def forget_group(stack: LocalStack, group: str) -> None:
    """No committed offsets for ``group``: a job without state then reads the topic from the start."""
    admin = AdminClient({"bootstrap.servers": stack.settings.kafka_bootstrap})
    listed = admin.list_consumer_groups(request_timeout=15).result()
    if group not in {g.group_id for g in listed.valid}:
        return
    for attempt in range(10):
        try:
            for future in admin.delete_consumer_groups([group], request_timeout=15).values():
                future.result()
            return
        except KafkaException as exc:
            if "GROUP_ID_NOT_FOUND" in str(exc):
                return
            if "COORDINATOR" not in str(exc) or attempt == 9:  # a coordinator still loading: try again
                raise
            time.sleep(1)
