"""`coffee-rt local up/down job`: down stops the job with a savepoint, up resumes from it."""

from __future__ import annotations

from coffee_flink.rest import FlinkRest
from coffee_rt.local.stack import LocalStack


def test_job_down_takes_a_savepoint_and_up_resumes_from_it(local_stack: LocalStack, flink_rest_url: str) -> None:
    # flink too: an earlier test may have lost the TaskManager (PyFlink can crash it on a cancel); up restarts it.
    local_stack.up(["postgres", "redis", "kafka", "flink"])
    messages: list[str] = []
    local_stack.progress = messages.append
    try:
        status = local_stack.up(["job"])[0]
        assert (status.name, status.state) == ("job", "running")
        first_job = status.detail.split()[0]
        assert local_stack.up(["job"])[0].detail == status.detail  # idempotent: same job
        assert messages[-1] == "job: already running"

        assert local_stack.down(["job"]) == ["job"]
        savepoint = local_stack["job"].savepoint_file.read_text().strip()  # type: ignore[attr-defined]
        assert savepoint.startswith("file:") and "savepoint-" in savepoint
        rest = FlinkRest(flink_rest_url)
        assert rest.job_state(first_job) == "FINISHED", messages
        assert local_stack.status(["job"])[0].state == "stopped"

        resumed = local_stack.up(["job"])[0]
        assert resumed.state == "running"
        assert resumed.detail.split()[0] != first_job
        assert any(m.endswith(f"from savepoint {savepoint}") for m in messages)
        restored = rest.checkpoints(resumed.detail.split()[0])["latest"]["restored"]
        assert restored["external_path"] == savepoint
    finally:
        local_stack.down(["job"])
