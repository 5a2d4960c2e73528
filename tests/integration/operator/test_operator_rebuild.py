"""spec.rebuild end to end on the real API server: the real operator process (`kopf run` as its ServiceAccount
with the shipped Role) and the real Job controller; kwok plays the kubelet (a Job's Pod turns Running, then
Succeeded), so the rebuild command itself does not run here (tests/integration/ledger/test_rebuild_entrypoint.py
runs it against the real servers).

No Flink job runs in this module (the pipeline is suspended: a history rebuild needs none), so it neither
starts nor supervises Flink; the operator observes the test stack's Flink where it answers.

A new nonce -> exactly one Job, with the exact spec, owned by the pipeline; its success -> status.rebuild
Succeeded, the Rebuild condition and an event; the same nonce again -> nothing; a Job that fails (its Pod
unschedulable on a cordoned node, then past its deadline: the Job controller's own Failed condition) -> Failed
and a Warning event; a request the operator refuses -> Rejected, a condition and an event, and no Job; the
pipeline deleted -> its Jobs collected.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from job_harness import midday_zone
from operator_harness import PG_SECRET, REDIS_SECRET, World, service_account_kubeconfig
from test_operator_kopf import OperatorProcess, refusals, wait_for

from coffee_flink.rest import FlinkRest
from coffee_operator.children import POD_SECURITY_CONTEXT, SECURITY_CONTEXT
from coffee_operator.rebuild import job_name
from coffee_rt.k8s.kubectl import Kubectl
from coffee_rt.local.components.k8s import NODE_NAME
from coffee_rt.local.stack import LocalStack

NAME = "beans"
IMAGE = "localhost/coffee-rt/auditor:test"


@pytest.fixture(scope="module", autouse=True)
def taskmanager_supervisor() -> Iterator[list[str]]:
    """No Flink job runs here: nothing to supervise (conftest's supervisor starts Flink)."""
    yield []


@pytest.fixture(scope="module")
def world(local_stack: LocalStack, kafka_bootstrap: str, postgres_dsn: str, redis_url: str) -> Iterator[World]:
    """What the pipeline names: the test stack's servers and a topic of its own (the Jobs' Pods do not run)."""
    suffix = uuid.uuid4().hex[:8]
    now = datetime.now(UTC)
    zone = midday_zone(now)
    rest = FlinkRest(local_stack.settings.flink_rest_url)
    yield World(local_stack, rest, suffix, f"orders-rb-{suffix}", f"orders-rb-dlq-{suffix}", zone,
                now.astimezone(ZoneInfo(zone)).date().isoformat(), [],
                {PG_SECRET: postgres_dsn, REDIS_SECRET: redis_url},
                (local_stack.settings.state_dir / "operator-tests" / "secrets").resolve())
    rest.close()


@pytest.fixture(scope="module")
def ns(operator_namespace: str, kubectl: Kubectl, world: World) -> str:
    for (name, key), value in ((PG_SECRET, world.secrets[PG_SECRET]), (REDIS_SECRET, world.secrets[REDIS_SECRET])):
        kubectl.apply(yaml.safe_dump({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                                      "stringData": {key: value}}), "-n", operator_namespace)
    return operator_namespace


@pytest.fixture(scope="module")
def operator(ns: str, kubectl: Kubectl, world: World, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[OperatorProcess]:
    folder = tmp_path_factory.mktemp("operator-rebuild")
    settings = world.settings()
    env = {**os.environ, "KUBECONFIG": str(service_account_kubeconfig(kubectl, ns, folder)),
           "COFFEE_OPERATOR_RECONCILE_INTERVAL": "2", "COFFEE_OPERATOR_SECRETS_DIR": settings.secrets_dir,
           "COFFEE_OPERATOR_METRICS_PORT": "0",
           "COFFEE_OPERATOR_JOB_CONFIG_OVERRIDES": json.dumps(settings.job_config_overrides)}
    process = OperatorProcess(Path(env["KUBECONFIG"]), ns, folder / "kopf.log", env)
    process.start()
    yield process
    process.stop()


def _status(kubectl: Kubectl, ns: str) -> dict[str, Any]:
    return json.loads(kubectl("get", "cp", NAME, "-n", ns, "-o", "json")).get("status", {})  # type: ignore[no-any-return]


def _jobs(kubectl: Kubectl, ns: str) -> list[dict[str, Any]]:
    listed = json.loads(kubectl("get", "jobs", "-n", ns, "-l", f"app.kubernetes.io/instance={NAME}", "-o", "json"))
    return sorted(listed["items"], key=lambda j: j["metadata"]["creationTimestamp"])  # type: ignore[no-any-return]


def _events(kubectl: Kubectl, ns: str) -> list[tuple[str, str, str]]:
    events = json.loads(kubectl("get", "events", "-n", ns, "--field-selector", f"involvedObject.name={NAME}",
                                "-o", "json"))["items"]
    return [(e["type"], e["reason"], e["message"])
            for e in sorted(events, key=lambda e: (e["metadata"]["creationTimestamp"], e["metadata"]["name"]))]


def _condition(status: dict[str, Any]) -> tuple[str, str, str] | None:
    for c in status.get("conditions", []):
        if c["type"] == "Rebuild":
            return c["status"], c["reason"], c["message"]
    return None


def _request(kubectl: Kubectl, ns: str, rebuild: dict[str, Any]) -> None:
    """A new request, the whole spec.rebuild replaced (a JSON patch, as the runbook does)."""
    kubectl("patch", "cp", NAME, "-n", ns, "--type=json", "-p",
            json.dumps([{"op": "add", "path": "/spec/rebuild", "value": rebuild}]))


def _ended(kubectl: Kubectl, ns: str, nonce: str) -> dict[str, Any] | None:
    rebuild = _status(kubectl, ns).get("rebuild", {})
    return rebuild if rebuild.get("nonce") == nonce and rebuild.get("phase") != "Running" else None


def test_a_new_nonce_runs_exactly_one_job_with_the_exact_spec_and_its_success_is_reported(
    operator: OperatorProcess, kubectl: Kubectl, ns: str, world: World
) -> None:
    spec = world.pipeline_spec(state="suspended")  # no Flink job: the history rebuild needs none
    spec["audit"] = {"image": IMAGE}
    spec["rebuild"] = {"nonce": "h1", "history": {"from": world.day}}
    kubectl.apply(yaml.safe_dump({"apiVersion": "coffee-rt.dev/v1alpha1", "kind": "CoffeePipeline",
                                  "metadata": {"name": NAME}, "spec": spec}), "-n", ns)
    name = job_name(NAME, "h1")
    ended = wait_for("the rebuild's end", lambda: _ended(kubectl, ns, "h1"), 180,
                     explain=lambda: f"{_status(kubectl, ns)}\n{operator.log.read_text()[-3000:]}")
    (job,) = _jobs(kubectl, ns)
    uid = json.loads(kubectl("get", "cp", NAME, "-n", ns, "-o", "json"))["metadata"]["uid"]
    assert job["metadata"]["name"] == name
    assert job["metadata"]["annotations"] == {"coffee-rt.dev/rebuild-nonce": "h1"}
    (owner,) = job["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"], owner["blockOwnerDeletion"]) == (
        "CoffeePipeline", NAME, uid, True, True)
    assert (job["spec"]["backoffLimit"], job["spec"]["activeDeadlineSeconds"], job["spec"]["ttlSecondsAfterFinished"]
            ) == (1, 10800, 604800)
    pod = job["spec"]["template"]["spec"]
    assert (pod["restartPolicy"], pod["automountServiceAccountToken"], pod["securityContext"]) == (
        "Never", False, {**POD_SECURITY_CONTEXT, "fsGroup": 10001})
    (container,) = pod["containers"]
    assert container["image"] == IMAGE
    assert container["args"] == ["rebuild", "--from", world.day, "--to", world.day]
    assert container["env"] == [
        {"name": "AUDITOR_KAFKA_BOOTSTRAP", "value": world.stack.settings.kafka_bootstrap},
        {"name": "AUDITOR_TOPIC", "value": world.orders_topic},
        {"name": "AUDITOR_DEFAULT_TIMEZONE", "value": world.zone},
        {"name": "AUDITOR_STORE_TIMEZONES", "value": "{}"},
        {"name": "AUDITOR_DEDUP_TTL", "value": "36h"},
        {"name": "AUDITOR_POSTGRES_DSN_FILE", "value": "/etc/coffee-auditor/secrets/postgres/dsn"},
        {"name": "AUDITOR_REDIS_URL_FILE", "value": "/etc/coffee-auditor/secrets/redis/url"},
    ]
    assert container["volumeMounts"] == [
        {"name": "postgres", "mountPath": "/etc/coffee-auditor/secrets/postgres", "readOnly": True},
        {"name": "redis", "mountPath": "/etc/coffee-auditor/secrets/redis", "readOnly": True}]
    assert container["securityContext"] == SECURITY_CONTEXT
    assert pod["volumes"] == [
        {"name": "postgres", "secret": {"secretName": PG_SECRET[0], "defaultMode": 0o440,
                                        "items": [{"key": PG_SECRET[1], "path": "dsn"}]}},
        {"name": "redis", "secret": {"secretName": REDIS_SECRET[0], "defaultMode": 0o440,
                                     "items": [{"key": REDIS_SECRET[1], "path": "url"}]}}]
    # kwok ran its Pod to Succeeded; the Job controller marked the Job Complete
    assert [c["type"] for c in job["status"]["conditions"] if c["status"] == "True"][-1] == "Complete"
    assert {k: v for k, v in ended.items() if k not in ("startedAt", "finishedAt")} == {
        "nonce": "h1", "kind": "history", "phase": "Succeeded", "days": f"{world.day}..{world.day}", "job": name,
        "message": f"Job {name} succeeded"}
    assert ended["startedAt"] <= ended["finishedAt"]
    assert _condition(_status(kubectl, ns)) == ("True", "Succeeded", f"history rebuild h1: Job {name} succeeded")
    rebuild_events = [e for e in _events(kubectl, ns) if e[1].startswith("Rebuild")]
    assert rebuild_events == [
        ("Normal", "RebuildJobCreated", f"history rebuild h1 of {world.day}..{world.day}: Job {name}"),
        ("Normal", "RebuildSucceeded", f"history rebuild h1: Job {name} succeeded")]
    wide = kubectl("get", "cp", NAME, "-n", ns, "-o", "wide").splitlines()
    assert wide[0].split()[-1] == "REBUILD" and wide[1].split()[-1] == "Succeeded"


def test_the_same_nonce_again_does_nothing(operator: OperatorProcess, kubectl: Kubectl, ns: str) -> None:
    before = _status(kubectl, ns)["rebuild"]
    # a change elsewhere in the spec: a new generation, reconciled, the nonce already acted on
    kubectl("patch", "cp", NAME, "-n", ns, "--type=merge", "-p", '{"spec": {"audit": {"interval": "45s"}}}')
    generation = json.loads(kubectl("get", "cp", NAME, "-n", ns, "-o", "json"))["metadata"]["generation"]
    wait_for("the new generation handled", lambda: _status(kubectl, ns).get("observedGeneration") == generation, 60)
    time.sleep(6)  # three more reconciles
    assert _status(kubectl, ns)["rebuild"] == before
    assert [j["metadata"]["name"] for j in _jobs(kubectl, ns)] == [job_name(NAME, "h1")]


def test_a_failed_job_is_reported(operator: OperatorProcess, kubectl: Kubectl, ns: str, world: World) -> None:
    name = job_name(NAME, "h2")
    kubectl("cordon", NODE_NAME)  # its Pod stays Pending, so kwok never completes it
    try:
        _request(kubectl, ns, {"nonce": "h2", "history": {"from": world.day}})
        wait_for("the second Job", lambda: kubectl.run("get", "job", name, "-n", ns, check=False).returncode == 0, 60)
        # past its deadline: the Job controller fails it (DeadlineExceeded), as it would a stuck rebuild
        kubectl("patch", "job", name, "-n", ns, "--type=merge", "-p", '{"spec": {"activeDeadlineSeconds": 1}}')
        ended = wait_for("the rebuild's end", lambda: _ended(kubectl, ns, "h2"), 120,
                         explain=lambda: f"{_status(kubectl, ns)}\n{operator.log.read_text()[-3000:]}")
    finally:
        kubectl("uncordon", NODE_NAME)
    message = (f"Job {name} failed: DeadlineExceeded: Job was active longer than specified deadline; its log: "
               f"kubectl logs job/{name}")
    assert (ended["phase"], ended["job"], ended["message"]) == ("Failed", name, message)
    assert _condition(_status(kubectl, ns)) == ("False", "Failed", f"history rebuild h2: {message}")
    assert ("Warning", "RebuildFailed", f"history rebuild h2: {message}") in _events(kubectl, ns)
    assert [j["metadata"]["name"] for j in _jobs(kubectl, ns)] == [job_name(NAME, "h1"), name]


def test_a_request_the_operator_refuses_is_a_condition_and_no_job(
    operator: OperatorProcess, kubectl: Kubectl, ns: str, world: World
) -> None:
    oldest = date.fromisoformat(world.day) - timedelta(days=1)
    _request(kubectl, ns, {"nonce": "old", "live": {"day": "2000-01-01"}})
    ended = wait_for("the rejection", lambda: _ended(kubectl, ns, "old"), 60)
    problem = (f"spec.rebuild.live.day 2000-01-01: the live numbers hold only the current business day (and "
               f"yesterday's until its keys expire), so live takes {oldest} or later; rebuild older days with "
               "spec.rebuild.history")
    assert {k: v for k, v in ended.items() if k not in ("startedAt", "finishedAt")} == {
        "nonce": "old", "kind": "live", "phase": "Rejected", "days": "2000-01-01",
        "message": f"{problem}; nothing was changed"}
    assert _condition(_status(kubectl, ns)) == ("False", "Rejected",
                                                f"live rebuild old: {problem}; nothing was changed")
    assert ("Warning", "RebuildRejected", f"rebuild old: {problem}; nothing was changed") in _events(kubectl, ns)
    # today's live numbers: the pipeline is suspended, so there is no job to replace
    _request(kubectl, ns, {"nonce": "suspended", "live": {"day": world.day}})
    ended = wait_for("the rejection", lambda: _ended(kubectl, ns, "suspended"), 60)
    assert (ended["phase"], ended["message"]) == (
        "Rejected", "a live rebuild replaces the running job, and spec.job.state is suspended; nothing was changed")
    assert [j["metadata"]["name"] for j in _jobs(kubectl, ns)] == [job_name(NAME, "h1"), job_name(NAME, "h2")]
    assert "submissions" not in _status(kubectl, ns)  # and no Flink job was started


def test_deleting_the_pipeline_collects_its_jobs(operator: OperatorProcess, kubectl: Kubectl, ns: str) -> None:
    assert "deleted" in kubectl("delete", "cp", NAME, "-n", ns, "--timeout=60s")
    wait_for("the Jobs collected", lambda: _jobs(kubectl, ns) == [], 90)


def test_the_operator_was_never_refused(operator: OperatorProcess) -> None:
    text = operator.log.read_text()
    assert refusals(text) == [], text[-3000:]
