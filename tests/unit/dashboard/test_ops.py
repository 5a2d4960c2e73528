"""Ops panel arithmetic: histogram windows and quantiles, Flink metric sums, lag, job choice."""

from __future__ import annotations

import math

import pytest

from coffee_dashboard.ops import (
    consumer_lag,
    delta,
    histogram,
    job_gauge,
    job_states,
    metric_sum,
    pick_job,
    prometheus_label,
    quantile,
)

INGEST = """# HELP coffee_ingest_request_duration_seconds Time.
# TYPE coffee_ingest_request_duration_seconds histogram
coffee_ingest_request_duration_seconds_bucket{le="0.001",route="/v1/orders",status="202"} 50.0
coffee_ingest_request_duration_seconds_bucket{le="0.002",route="/v1/orders",status="202"} 90.0
coffee_ingest_request_duration_seconds_bucket{le="0.004",route="/v1/orders",status="202"} 99.0
coffee_ingest_request_duration_seconds_bucket{le="+Inf",route="/v1/orders",status="202"} 100.0
coffee_ingest_request_duration_seconds_count{route="/v1/orders",status="202"} 100.0
coffee_ingest_request_duration_seconds_sum{route="/v1/orders",status="202"} 0.15
coffee_ingest_request_duration_seconds_bucket{le="0.001",route="/v1/orders",status="422"} 10.0
coffee_ingest_request_duration_seconds_bucket{le="0.002",route="/v1/orders",status="422"} 10.0
coffee_ingest_request_duration_seconds_bucket{le="0.004",route="/v1/orders",status="422"} 10.0
coffee_ingest_request_duration_seconds_bucket{le="+Inf",route="/v1/orders",status="422"} 10.0
coffee_ingest_request_duration_seconds_bucket{le="0.001",route="/healthz",status="200"} 7.0
coffee_ingest_request_duration_seconds_bucket{le="0.002",route="/healthz",status="200"} 7.0
coffee_ingest_request_duration_seconds_bucket{le="0.004",route="/healthz",status="200"} 7.0
coffee_ingest_request_duration_seconds_bucket{le="+Inf",route="/healthz",status="200"} 7.0
"""


def test_histogram_sums_statuses_of_one_route() -> None:
    assert histogram(INGEST, "coffee_ingest_request_duration_seconds", {"route": "/v1/orders"}) == [
        (0.001, 60.0), (0.002, 100.0), (0.004, 109.0), (math.inf, 110.0)]


def test_quantile_interpolates_like_prometheus() -> None:
    buckets = [(0.001, 60.0), (0.002, 100.0), (0.004, 109.0), (math.inf, 110.0)]
    assert quantile(0.5, buckets) == pytest.approx(0.001 * 55 / 60)
    assert quantile(0.9, buckets) == pytest.approx(0.001 + 0.001 * (99 - 60) / 40)
    assert quantile(0.99, buckets) == pytest.approx(0.002 + 0.002 * 8.9 / 9)  # rank 108.9 in (0.002, 0.004]
    assert quantile(0.999, buckets) == 0.004  # in +Inf: the highest finite bound
    assert quantile(0.99, [(0.001, 0.0), (math.inf, 0.0)]) is None
    assert quantile(0.99, []) is None


def test_quantile_exact_value() -> None:
    assert quantile(0.99, [(0.002, 0.0), (0.004, 100.0), (math.inf, 100.0)]) == pytest.approx(0.00398)


def test_delta_is_a_window_and_survives_a_restart() -> None:
    old = [(0.001, 10.0), (math.inf, 20.0)]
    new = [(0.001, 15.0), (math.inf, 40.0)]
    assert delta(old, new) == [(0.001, 5.0), (math.inf, 20.0)]
    restarted = [(0.001, 1.0), (math.inf, 2.0)]
    assert delta(old, restarted) == restarted
    assert delta(None, new) == new


FLINK = """# HELP flink_taskmanager_job_task_operator_coffee_dlq_records coffee_dlq_records (scope: x)
# TYPE flink_taskmanager_job_task_operator_coffee_dlq_records gauge
flink_taskmanager_job_task_operator_coffee_dlq_records{job_name="coffee_rt_orders",subtask_index="0",} 3.0
flink_taskmanager_job_task_operator_coffee_dlq_records{job_name="coffee_rt_orders",subtask_index="1",} 4.0
flink_taskmanager_job_task_operator_coffee_dlq_records{job_name="other",subtask_index="0",} 100.0
"""


def test_metric_sum_matches_suffix_and_job() -> None:
    assert metric_sum(FLINK, "_coffee_dlq_records", {"job_name": prometheus_label("coffee-rt-orders")}) == 7.0
    assert metric_sum(FLINK, "_coffee_dlq_records", {"job_name": "missing"}) is None
    assert metric_sum(INGEST, "_coffee_dlq_records", {}) is None


def test_consumer_lag() -> None:
    assert consumer_lag({0: 10, 1: 5, 2: -1001}, {0: 12, 1: 5, 2: 7}, {0: 0, 1: 0, 2: 3}) == 2 + 0 + 4
    assert consumer_lag({}, {0: 4}, {0: 0}) == 4


JOBMANAGER = """# HELP flink_jobmanager_job_runningState runningState (scope: jobmanager_job)
# TYPE flink_jobmanager_job_runningState gauge
flink_jobmanager_job_runningState{job_id="aa",host="h",job_name="coffee_rt_orders",} 1.0
flink_jobmanager_job_runningState{job_id="bb",host="h",job_name="coffee_rt_orders",} 0.0
flink_jobmanager_job_runningState{job_id="cc",host="h",job_name="other",} 1.0
# HELP flink_jobmanager_job_cancellingState cancellingState (scope: jobmanager_job)
# TYPE flink_jobmanager_job_cancellingState gauge
flink_jobmanager_job_cancellingState{job_id="aa",host="h",job_name="coffee_rt_orders",} 0.0
flink_jobmanager_job_cancellingState{job_id="bb",host="h",job_name="coffee_rt_orders",} 1.0
# HELP flink_jobmanager_job_lastCheckpointCompletedTimestamp lastCheckpointCompletedTimestamp (scope: jobmanager_job)
# TYPE flink_jobmanager_job_lastCheckpointCompletedTimestamp gauge
flink_jobmanager_job_lastCheckpointCompletedTimestamp{job_id="aa",host="h",job_name="coffee_rt_orders",} 1.7e12
flink_jobmanager_job_lastCheckpointCompletedTimestamp{job_id="bb",host="h",job_name="coffee_rt_orders",} -1.0
"""


def test_job_states_reads_the_jobmanagers_state_gauges_of_the_named_job() -> None:
    assert job_states(JOBMANAGER, "coffee-rt-orders") == {"aa": "RUNNING", "bb": "CANCELLING"}
    assert job_states(JOBMANAGER, "other") == {"cc": "RUNNING"}
    assert job_states(JOBMANAGER, "nope") == {}
    assert job_gauge(JOBMANAGER, "lastCheckpointCompletedTimestamp", "aa") == 1.7e12
    assert job_gauge(JOBMANAGER, "lastCheckpointCompletedTimestamp", "bb") == -1.0
    assert job_gauge(JOBMANAGER, "numberOfFailedCheckpoints", "aa") is None


@pytest.mark.parametrize(("states", "shown"), [
    # The running job wins, then one on its way (back) up, over one Flink is failing or cancelling ...
    ({"b": "FAILING", "a": "RUNNING"}, ("a", "RUNNING")),
    ({"a": "CANCELLING", "b": "RESTARTING"}, ("b", "RESTARTING")),
    ({"a": "INITIALIZING", "b": "RUNNING"}, ("b", "RUNNING")),
    # ... one failing or cancelling is shown when none is active; the lowest id on a tie.
    ({"b": "FAILING", "a": "CANCELLING"}, ("a", "CANCELLING")),
    ({}, None),
])
def test_pick_job_counts_only_the_lifecycles_active_states_as_active(
        states: dict[str, str], shown: tuple[str, str] | None) -> None:
    assert pick_job(states) == shown
