"""Drive the operator's reconcile step (the same functions the Kopf timer calls) against the real
Flink, with status kept in memory the way the status subresource keeps it (JSON merge patches)."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from job_harness import RunningJob

from coffee_flink.rest import FlinkRest
from coffee_operator import reconcile
from coffee_operator.act import Pipeline, job_config
from coffee_operator.decide import ACTIVE, Event
from coffee_operator.observation import RebuildJobObservation
from coffee_operator.settings import OperatorSettings
from coffee_operator.spec import parse_spec
from coffee_operator.status import PipelineStatus, merge
from coffee_operator.target import JobTarget
from coffee_orders.loadgen import Store
from coffee_rt.k8s import kubeconfig
from coffee_rt.k8s.kubectl import Kubectl
from coffee_rt.local.stack import LocalStack


class SimulatedCrash(Exception):
    pass


@dataclass
class MemoryStore:
    """The status subresource's behaviour: merge patches applied to a stored document."""

    document: dict[str, Any] = field(default_factory=dict)
    patches: int = 0
    fail_when: Callable[[dict[str, Any]], bool] | None = None  # simulate a crash before this write lands

    def patch(self, merge_patch: dict[str, Any]) -> None:
        if self.fail_when is not None and self.fail_when(merge_patch):
            raise SimulatedCrash(f"status write lost: {sorted(merge_patch)}")
        self.document = merge(self.document, copy.deepcopy(merge_patch))
        self.patches += 1


@dataclass
class Driver:
    """One CoffeePipeline: its spec (edit it like `kubectl edit`), status, events."""

    name: str
    uid: str
    spec: dict[str, Any]
    secrets: dict[tuple[str, str], str]
    settings: OperatorSettings
    namespace: str = "coffee-rt"
    generation: int = 1
    store: MemoryStore = field(default_factory=MemoryStore)
    events: list[Event] = field(default_factory=list)
    flink: reconcile.FlinkClients = field(default_factory=reconcile.FlinkClients)
    # Rebuild Jobs: those the operator created, and what the Job controller says of each (default: running).
    jobs: list[dict[str, Any]] = field(default_factory=list)
    job_states: dict[str, RebuildJobObservation] = field(default_factory=dict)

    @property
    def status(self) -> PipelineStatus:
        return PipelineStatus.parse(self.store.document)

    @property
    def raw(self) -> dict[str, Any]:
        return self.store.document

    def edit(self, change: Callable[[dict[str, Any]], None]) -> None:
        """Change the spec; the API server bumps the generation."""
        change(self.spec["job"])
        self.generation += 1

    def _pipeline(self) -> Pipeline:
        return Pipeline(self.namespace, self.name, self.uid, copy.deepcopy(self.store.document))

    def step(self) -> None:
        reconcile.step(self._pipeline(), copy.deepcopy(self.spec), self.generation, store=self.store,
                       secrets=lambda n, k: self.secrets[(n, k)], settings=self.settings, flink=self.flink,
                       emit=self.events.append, create_job=self.jobs.append,
                       rebuild_job=lambda name: self.job_states.get(name, RebuildJobObservation(name, "running")))

    def until(self, what: str, done: Callable[[PipelineStatus], bool], timeout: float = 240, pause: float = 1) -> None:
        """Reconcile until ``done(status)``; fails with the status and recent events otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.step()
            if done(self.status):
                return
            time.sleep(pause)
        tail = "\n".join(f"{e.type} {e.reason}: {e.message}" for e in self.events[-10:])
        raise AssertionError(f"not {what} after {timeout:.0f} s\nstatus {self.raw}\nevents\n{tail}")

    def finalize(self) -> str | None:
        return reconcile.finalize(self._pipeline(), copy.deepcopy(self.spec), store=self.store,
                                  secrets=lambda n, k: self.secrets[(n, k)], settings=self.settings,
                                  flink=self.flink, emit=self.events.append)

    def reasons(self) -> list[str]:
        return [e.reason for e in self.events]

    def running(self, status: PipelineStatus) -> bool:
        """Healthy RUNNING with the current spec handled and nothing in flight."""
        return (status.phase in ("Running", "RolledBack") and status.pending is None and status.upgrade is None
                and status.observed_generation == self.generation)


def now() -> datetime:
    return datetime.now(UTC)


PG_SECRET, REDIS_SECRET = ("coffee-rt-postgres", "dsn"), ("coffee-rt-redis", "url")


@dataclass
class World:
    """What a pipeline under test runs against: its topics, a clean Postgres and Redis, the secrets."""

    stack: LocalStack
    rest: FlinkRest
    suffix: str
    orders_topic: str
    dlq_topic: str
    zone: str
    day: str
    stores: list[Store]
    secrets: dict[tuple[str, str], str]
    # The Secrets as the Flink pods would have them mounted (<dir>/<secret>/<key>): the local Flink
    # plays the session cluster, and the job reads its credentials there.
    secrets_dir: Path

    def pipeline_spec(self, **job: Any) -> dict[str, Any]:
        """A CoffeePipeline spec as the API server stores it (defaults filled in)."""
        spec: dict[str, Any] = {
            "ingest": {"image": "coffee-rt/order-ingest:0.1.0", "replicas": 1},
            "job": {"restUrl": self.rest.base_url, "entry": {"module": "coffee_job.main"}, "parallelism": 1,
                    "checkpointInterval": "2s", "upgradeMode": "savepoint", "state": "running",
                    "allowNonRestoredState": False, "savepointHistory": {"maxCount": 3}},
            "kafka": {"bootstrap": self.stack.settings.kafka_bootstrap,
                      "topics": {"orders": self.orders_topic, "dlq": self.dlq_topic}},
            "sinks": {"postgres": {"secretRef": {"name": PG_SECRET[0], "key": PG_SECRET[1]}},
                      "redis": {"secretRef": {"name": REDIS_SECRET[0], "key": REDIS_SECRET[1]}}},
        }
        spec["job"].update(job)
        return spec

    def settings(self, **overrides: Any) -> OperatorSettings:
        values: dict[str, Any] = {
            "upgrade_deadline_seconds": 40, "stable_seconds": 5, "submit_retry_seconds": 5,
            "savepoint_retry_seconds": 5, "dispose_retry_seconds": 3600, "secrets_dir": str(self.secrets_dir),
            "metrics_port": 0,
            "job_config_overrides": {"default_timezone": self.zone, "restart_initial_backoff": "1s"},
        }
        values.update(overrides)
        return OperatorSettings(**values)

    def feed(self, namespace: str, name: str, spec: dict[str, Any]) -> RunningJob:
        """The job harness for a pipeline's job: send orders, compare exact totals."""
        cfg = job_config(namespace, name, _fingerprint(spec), lambda n, k: self.secrets[(n, k)], self.settings())
        return RunningJob(self.stack, self.rest, cfg, "", self.zone, self.day, self.stores)

    def active_jobs(self, job_name: str) -> list[str]:
        return [j["jid"] for j in self.rest.jobs() if j["name"] == job_name and j["state"] in ACTIVE]


def _fingerprint(spec: dict[str, Any]) -> JobTarget:
    return JobTarget.of(parse_spec(spec))


def service_account_kubeconfig(kubectl: Kubectl, namespace: str, folder: Path) -> Path:
    """A kubeconfig that authenticates as the operator's ServiceAccount (a real TokenRequest token)."""
    token = kubectl("create", "token", "coffee-rt-operator", "-n", namespace, "--duration=2h").strip()
    admin = yaml.safe_load(kubectl.kubeconfig.read_text())
    cluster = admin["clusters"][0]["cluster"]
    return kubeconfig.write(folder / "kubeconfig", kubeconfig.render(
        cluster["server"], Path(cluster["certificate-authority"]), "coffee-rt-operator", token=token,
        namespace=namespace))
