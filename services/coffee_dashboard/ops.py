"""The ops panel: ingest p99 latency, the job's Kafka consumer lag, Flink job state and last
checkpoint age (from the JobManager's Prometheus metrics: the dashboard needs no access to Flink's
REST API, which can upload and run code), DLQ count, the ledger audit's verdict (``ledger.py``) — each read from the
component that owns it, every ``ops_interval_s``.

Each source fails on its own: an unreachable one shows its error on the panel, the rest still
show. The p99 is over a sliding window (``p99_window_s``) of the ingest's cumulative histogram
(difference of two scrapes, the way Prometheus' ``histogram_quantile(rate(...))`` does it), so
it reflects the last minutes, not the process' whole life. Lag is the job's committed offsets
against the topic's end offsets; Flink commits on checkpoints, so it lags by up to one interval.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from coffee_dashboard import ledger
from coffee_dashboard.settings import DashboardSettings
from coffee_dashboard.staleness import job_severity
from coffee_flink.states import ACTIVE

log = logging.getLogger("coffee_dashboard.ops")
# librdkafka logs every failed reconnect; the panel already shows the error, so keep the log quiet.
_kafka_log = logging.getLogger("coffee_dashboard.ops.kafka")
_kafka_log.setLevel(logging.CRITICAL)
Buckets = list[tuple[float, float]]  # (upper bound, cumulative count), sorted, +Inf last


# -- pure parts ------------------------------------------------------------------------------
def histogram(text: str, name: str, labels: dict[str, str]) -> Buckets:
    """Cumulative buckets of histogram ``name`` summed over every series matching ``labels``."""
    sums: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != name:
            continue
        for sample in family.samples:
            if not sample.name.endswith("_bucket"):
                continue
            if any(sample.labels.get(k) != v for k, v in labels.items()):
                continue
            bound = float(sample.labels["le"])
            sums[bound] = sums.get(bound, 0.0) + sample.value
    return sorted(sums.items())


def delta(old: Buckets | None, new: Buckets) -> Buckets:
    """``new - old``; the whole of ``new`` when the counters were reset (process restarted)."""
    if not old:
        return new
    before = dict(old)
    diff = [(bound, count - before.get(bound, 0.0)) for bound, count in new]
    return new if any(count < 0 for _, count in diff) else diff


def quantile(q: float, buckets: Buckets) -> float | None:
    """Prometheus' histogram_quantile: linear interpolation inside the bucket holding rank q*n.
    None without observations; the highest finite bound when the rank falls in +Inf."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (count - lower_count)
        lower_bound, lower_count = bound, count
    return lower_bound


def metric_sum(text: str, suffix: str, labels: dict[str, str]) -> float | None:
    """Sum of every sample whose name ends with ``suffix`` (Flink prefixes scope names) and whose
    labels match; None when there is no such sample."""
    found = False
    total = 0.0
    # Only the lines naming such a metric are parsed: a TaskManager's page is close to 1 MB (every
    # operator's metrics), read every ops_interval_s; parsing all of it was most of an idle dashboard's CPU.
    lines = "\n".join(line for line in text.splitlines()
                      if suffix in line and not line.startswith("#")
                      and line.split("{", 1)[0].split(" ", 1)[0].endswith(suffix))
    for family in text_string_to_metric_families(lines):
        for sample in family.samples:
            if sample.name.endswith(suffix) and all(sample.labels.get(k) == v for k, v in labels.items()):
                found = True
                total += sample.value
    return total if found else None


def prometheus_label(value: str) -> str:
    """Flink's Prometheus reporter replaces every character outside [A-Za-z0-9_] in label values."""
    return re.sub(r"[^A-Za-z0-9_]", "_", value)


def consumer_lag(committed: dict[int, int], end: dict[int, int], start: dict[int, int]) -> int:
    """Sum over partitions of end - committed; a partition without a commit lags from its start."""
    return sum(max(0, end[p] - (committed[p] if committed.get(p, -1) >= 0 else start.get(p, 0))) for p in end)


_JOB_STATE = re.compile(r"^flink_jobmanager_job_([a-z]+)State$")


def job_states(text: str, name: str) -> dict[str, str]:
    """job id -> state of every job named ``name`` the JobManager's metrics report. With
    ``metrics.job.status.enable: STATE`` Flink keeps one ``<state>State`` gauge per job state, 1 for
    the current one; a job that ended (FINISHED, FAILED, CANCELED) has no metrics any more."""
    label = prometheus_label(name)
    states: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found = _JOB_STATE.match(sample.name)
            if found and sample.value == 1 and sample.labels.get("job_name") == label and "job_id" in sample.labels:
                states[sample.labels["job_id"]] = found.group(1).upper()
    return states


def pick_job(states: dict[str, str]) -> tuple[str, str] | None:
    """(job id, state) of the job to show: the running one, else one Flink is bringing (back) up
    (``coffee_flink.states.ACTIVE``), else one it is cancelling or failing; the lowest id on a tie."""
    def rank(item: tuple[str, str]) -> tuple[int, str]:
        job_id, state = item
        return (0 if state == "RUNNING" else 1 if state in ACTIVE else 2, job_id)
    return min(states.items(), key=rank) if states else None


def job_gauge(text: str, name: str, job_id: str) -> float | None:
    """The JobManager's gauge ``flink_jobmanager_job_<name>`` of one job, None if not reported."""
    return metric_sum(text, f"flink_jobmanager_job_{name}", {"job_id": job_id})


# -- sources --------------------------------------------------------------------------------
class KafkaLag:
    """A confluent-kafka Consumer that never subscribes (so it never joins the job's group) reads
    the group's committed offsets and the partitions' watermarks; blocking, so run in a worker
    thread; one client for the process. (Not the AdminClient: its group-offset call has crashed
    the process in librdkafka error paths.)"""

    def __init__(self, bootstrap: str, topic: str, group: str, timeout: float = 3.0) -> None:
        self.topic, self.group, self.timeout = topic, group, timeout
        self._bootstrap = bootstrap
        self._consumer: Any = None

    def _measure(self) -> dict[str, Any]:
        from confluent_kafka import Consumer, TopicPartition

        if self._consumer is None:
            self._consumer = Consumer({
                "bootstrap.servers": self._bootstrap, "group.id": self.group, "enable.auto.commit": False,
                "isolation.level": "read_committed", "socket.timeout.ms": 3000, "logger": _kafka_log,
            })
        consumer = self._consumer
        metadata = consumer.list_topics(self.topic, timeout=self.timeout).topics.get(self.topic)
        if metadata is None or metadata.error is not None:
            raise RuntimeError(f"topic {self.topic}: {getattr(metadata, 'error', 'not found')}")
        partitions = sorted(metadata.partitions)
        tps = [TopicPartition(self.topic, p) for p in partitions]
        committed = {tp.partition: tp.offset for tp in consumer.committed(tps, timeout=self.timeout)}
        start, end = {}, {}
        for p in partitions:
            start[p], end[p] = consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=self.timeout)
        return {"lag": consumer_lag(committed, end, start), "topic": self.topic, "group": self.group,
                "partitions": len(partitions), "committed": sum(o for o in committed.values() if o >= 0),
                "end": sum(end.values())}

    async def read(self) -> dict[str, Any]:
        return await asyncio.to_thread(self._measure)


class OpsMonitor:
    def __init__(self, settings: DashboardSettings, http: httpx.AsyncClient) -> None:
        self.s = settings
        self.http = http
        self.samples: deque[tuple[float, Buckets]] = deque()
        self.kafka = KafkaLag(settings.kafka_bootstrap, settings.kafka_topic, settings.kafka_group) \
            if settings.kafka_bootstrap else None
        self.latest: dict[str, Any] = {"checked_at_ms": None, "started_at_ms": None, "ingest": _off(),
                                       "kafka": _off(), "flink": _off(), "dlq": _off(), "ledger": _off()}

    async def _ingest(self) -> dict[str, Any]:
        if not self.s.ingest_metrics_url:
            return _off()
        response = await self.http.get(self.s.ingest_metrics_url)
        response.raise_for_status()
        now = time.monotonic()
        buckets = histogram(response.text, "coffee_ingest_request_duration_seconds", {"route": self.s.ingest_route})
        self.samples.append((now, buckets))
        while len(self.samples) > 1 and now - self.samples[1][0] >= self.s.p99_window_s:
            self.samples.popleft()
        # The window is what two scrapes span; the first scrape alone covers the ingest's whole life.
        since, oldest = self.samples[0] if len(self.samples) > 1 else (None, None)
        window = delta(oldest, buckets)
        p99 = quantile(0.99, window)
        return {"status": "ok", "route": self.s.ingest_route,
                "window_s": None if since is None else round(now - since),
                "requests": int(window[-1][1]) if window else 0,
                "p99_ms": None if p99 is None else round(p99 * 1000, 3)}

    async def _kafka(self) -> dict[str, Any]:
        if self.kafka is None:
            return _off()
        return {"status": "ok", **await self.kafka.read()}

    async def _flink(self) -> dict[str, Any]:
        if not self.s.flink_jobmanager_metrics_url:
            return _off()
        response = await self.http.get(self.s.flink_jobmanager_metrics_url)
        response.raise_for_status()
        text = response.text
        picked = pick_job(job_states(text, self.s.flink_job_name))
        if picked is None:
            return {"status": "ok", "job_state": "MISSING", "job_severity": job_severity("MISSING"),
                    "job_name": self.s.flink_job_name}
        job_id, state = picked
        completed = job_gauge(text, "lastCheckpointCompletedTimestamp", job_id)  # ms; -1 before the first
        failed = job_gauge(text, "numberOfFailedCheckpoints", job_id)
        return {"status": "ok", "job_state": state, "job_severity": job_severity(state), "job_id": job_id,
                "job_name": self.s.flink_job_name,
                "last_checkpoint_age_s": round(max(0.0, time.time() - completed / 1000), 1)
                if completed is not None and completed > 0 else None,
                "checkpoints_failed": None if failed is None else int(failed)}

    async def _dlq(self) -> dict[str, Any]:
        if not self.s.flink_metrics_urls:
            return _off()
        total: float | None = None
        errors = []
        for url in self.s.flink_metrics_urls:
            try:
                response = await self.http.get(url)
                response.raise_for_status()
            except httpx.HTTPError as exc:
                errors.append(f"{url}: {exc}")
                continue
            job = {"job_name": prometheus_label(self.s.flink_job_name)}
            found = metric_sum(response.text, "_coffee_dlq_records", job)
            if found is None and metric_sum(response.text, "_coffee_orders_parsed", job) is not None:
                found = 0.0  # PyFlink reports a Python counter only once it moved: parsing, no dead letter yet
            if found is not None:
                total = (total or 0.0) + found
        if total is None and errors:
            raise RuntimeError("; ".join(errors))
        return {"status": "ok", "count": None if total is None else int(total),
                "note": "" if total is not None else "no metrics of the job (not running?)"}

    async def _ledger(self) -> dict[str, Any]:
        if not self.s.auditor_metrics_url:
            return _off()
        response = await self.http.get(self.s.auditor_metrics_url)
        response.raise_for_status()
        return ledger.verdict(response.text, time.time(), self.s.ledger_stale_after_s).to_json()

    async def refresh(self) -> dict[str, Any]:
        names = ("ingest", "kafka", "flink", "dlq", "ledger")
        started_ms = int(time.time() * 1000)  # every reading below was taken after this
        results = await asyncio.gather(self._ingest(), self._kafka(), self._flink(), self._dlq(), self._ledger(),
                                       return_exceptions=True)
        snapshot: dict[str, Any] = {"checked_at_ms": int(time.time() * 1000), "started_at_ms": started_ms}
        for name, result in zip(names, results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                snapshot[name] = {"status": "error", "error": _describe(result)}
            else:
                snapshot[name] = result
        self.latest = snapshot
        return snapshot

    async def run(self, on_update: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        while True:
            try:
                await on_update(await self.refresh())
            except Exception:  # the panel must keep refreshing whatever one round did
                log.exception("ops refresh failed")
            await asyncio.sleep(self.s.ops_interval_s)

    def pipeline_evidence(self) -> Evidence:
        """What the ops sources say about the pipeline, for the staleness rule."""
        flink, kafka = self.latest.get("flink", {}), self.latest.get("kafka", {})
        notes = [f"{name}: {part.get('error') or 'not configured'}" for name, part in (("Flink", flink),
                 ("Kafka", kafka)) if part.get("status") != "ok"]
        return Evidence(flink.get("job_state"), kafka.get("lag"), "; ".join(notes), kafka.get("end"),
                        self.latest.get("started_at_ms"))


@dataclass(frozen=True)
class Evidence:
    job_state: str | None
    lag: int | None
    note: str  # why job state or lag are unknown
    end_offsets: int | None  # records ever written to the orders topic (sum over partitions)
    measured_after_ms: int | None  # the readings were all taken after this instant


def _off() -> dict[str, Any]:
    return {"status": "off"}


def _describe(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]
