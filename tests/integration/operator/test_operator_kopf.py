"""End to end: the real operator process (`kopf run`, out of cluster, as its own ServiceAccount with
the shipped Role) against the real API server and the real Flink, Kafka, Postgres and Redis.

kubectl apply -> owned children, a RUNNING job, status and printer columns, events; a savepoint
by nonce; metrics and the liveness probe; an operator restart that finds its job instead of
submitting another; delete with a final savepoint (children garbage-collected) and prompt
deletes of pipelines whose job is not running.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from operator_harness import PG_SECRET, REDIS_SECRET, World, service_account_kubeconfig

from coffee_flink import lifecycle
from coffee_rt.k8s.kubectl import Kubectl

PORT_OFFSET = int(os.environ.get("COFFEE_RT_TEST_PORT_OFFSET", "10000"))
METRICS_PORT, LIVENESS_PORT = 9190 + PORT_OFFSET, 9191 + PORT_OFFSET
NAME = "brew"


@dataclass
class OperatorProcess:
    kubeconfig: Path
    namespace: str
    log: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        kopf = Path(sys.executable).parent / "kopf"
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [str(kopf), "run", "-m", "coffee_operator.handlers", "--standalone", "-n", self.namespace,
                 f"--liveness=http://127.0.0.1:{LIVENESS_PORT}/healthz"],
                env=self.env, stdout=out, stderr=subprocess.STDOUT)
        wait_for("liveness probe", lambda: _get(f"http://127.0.0.1:{LIVENESS_PORT}/healthz") is not None, 60)

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


def _get(url: str) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return str(response.read().decode())
    except OSError:
        return None


def wait_for(what: str, check: Callable[[], Any], timeout: float = 240, explain: Callable[[], str] = str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(1)
    raise AssertionError(f"no {what} after {timeout:.0f} s: {explain()}")


@pytest.fixture(scope="module")
def ns(operator_namespace: str, kubectl: Kubectl, world: World) -> str:
    secrets = [(PG_SECRET, world.secrets[PG_SECRET]), (REDIS_SECRET, world.secrets[REDIS_SECRET]),
               (("coffee-rt-ingest-auth", "tokens"), json.dumps({"tokens": []}))]
    for (name, key), value in secrets:
        kubectl.apply(yaml.safe_dump({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
                                      "stringData": {key: value}}), "-n", operator_namespace)
    return operator_namespace


@pytest.fixture(scope="module")
def operator(ns: str, kubectl: Kubectl, world: World, tmp_path_factory: pytest.TempPathFactory
             ) -> Iterator[OperatorProcess]:
    folder = tmp_path_factory.mktemp("operator")
    settings = world.settings()
    env = {**os.environ, "KUBECONFIG": str(service_account_kubeconfig(kubectl, ns, folder)),
           "COFFEE_OPERATOR_RECONCILE_INTERVAL": "2", "COFFEE_OPERATOR_STABLE_SECONDS": "5",
           "COFFEE_OPERATOR_SECRETS_DIR": settings.secrets_dir, "COFFEE_OPERATOR_DELETE_FLINK_ATTEMPTS": "2",
           "COFFEE_OPERATOR_METRICS_PORT": str(METRICS_PORT), "COFFEE_OPERATOR_METRICS_HOST": "127.0.0.1",
           "COFFEE_OPERATOR_JOB_CONFIG_OVERRIDES": json.dumps(settings.job_config_overrides)}
    process = OperatorProcess(Path(env["KUBECONFIG"]), ns, folder / "kopf.log", env)
    process.start()
    yield process
    process.stop()
    for job_id in world.active_jobs(f"coffee-rt-{ns}-{NAME}"):
        world.rest.cancel(job_id)


def _cp(kubectl: Kubectl, ns: str, name: str = NAME) -> dict[str, Any]:
    return json.loads(kubectl("get", "cp", name, "-n", ns, "-o", "json"))  # type: ignore[no-any-return]


def _status(kubectl: Kubectl, ns: str, name: str = NAME) -> dict[str, Any]:
    return _cp(kubectl, ns, name).get("status", {})  # type: ignore[no-any-return]


def _pipeline(world: World, name: str, **job: Any) -> str:
    spec = world.pipeline_spec(**job)
    spec["ingest"]["authSecretRef"] = {"name": "coffee-rt-ingest-auth", "key": "tokens"}
    return yaml.safe_dump({"apiVersion": "coffee-rt.dev/v1alpha1", "kind": "CoffeePipeline",
                           "metadata": {"name": name}, "spec": spec})


def _reasons(kubectl: Kubectl, ns: str, name: str = NAME) -> list[str]:
    events = json.loads(kubectl("get", "events", "-n", ns, "--field-selector", f"involvedObject.name={name}",
                                "-o", "json"))["items"]
    return [e["reason"] for e in sorted(events, key=lambda e: e["metadata"]["creationTimestamp"])]


def test_applied_pipeline_runs_with_owned_children_and_status(
    operator: OperatorProcess, kubectl: Kubectl, ns: str, world: World
) -> None:
    assert kubectl.apply(_pipeline(world, NAME), "-n", ns).strip() == f"coffeepipeline.coffee-rt.dev/{NAME} created"
    status = wait_for("Running", lambda: (s := _status(kubectl, ns)).get("phase") == "Running"
                      and s["jobStatus"].get("lastCheckpoint") and s,
                      explain=lambda: f"{_status(kubectl, ns)}\n{operator.log.read_text()[-3000:]}")

    def ingest_in_status() -> bool:
        """status.ingest mirrors the Deployment (kwok marks the Pod ready, unless an overloaded machine
        made the node miss a heartbeat: then both say 0, and Ready says IngestNotReady)."""
        deployment = json.loads(kubectl("get", "deployment", f"{NAME}-ingest", "-n", ns, "-o", "json"))
        ready = deployment["status"].get("readyReplicas", 0)
        return _status(kubectl, ns).get("ingest") == {"replicas": 1, "readyReplicas": ready}

    wait_for("ingest status", ingest_in_status, 60)
    status = _status(kubectl, ns)
    ingest_ready = status["ingest"]["readyReplicas"]
    uid = _cp(kubectl, ns)["metadata"]["uid"]
    assert status["jobStatus"]["jobId"] == lifecycle.job_id(uid, 1)
    assert (status["jobStatus"]["state"], status["submissions"], status["observedGeneration"]) == ("RUNNING", 1, 1)
    assert {c["type"]: c["status"] for c in status["conditions"]} == {
        "Ready": "True" if ingest_ready == 1 else "False", "Progressing": "False", "Degraded": "False"}
    assert world.active_jobs(f"coffee-rt-{ns}-{NAME}") == [lifecycle.job_id(uid, 1)]
    for kind in ("deployment", "service", "configmap", "poddisruptionbudget"):
        child = json.loads(kubectl("get", kind, f"{NAME}-ingest", "-n", ns, "-o", "json"))
        (owner,) = child["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["uid"], owner["controller"], owner["blockOwnerDeletion"]) == (
            "CoffeePipeline", NAME, uid, True, True), kind
    deployment = json.loads(kubectl("get", "deployment", f"{NAME}-ingest", "-n", ns, "-o", "json"))
    assert deployment["spec"]["template"]["spec"]["volumes"][0]["secret"]["secretName"] == "coffee-rt-ingest-auth"
    header, row = kubectl("get", "cp", NAME, "-n", ns).splitlines()
    assert header.split() == ["NAME", "PHASE", "JOB", "STATE", "LAST", "CHECKPOINT", "INGEST", "READY", "AGE"]
    assert row.split()[:3] == [NAME, "Running", "RUNNING"] and row.split()[4] == str(ingest_ready)
    assert {"ChildrenApplied", "JobSubmitted"} <= set(_reasons(kubectl, ns))
    feed = world.feed(ns, NAME, world.pipeline_spec())
    feed.send(feed.make_orders(150), poison_every=40)
    feed.wait_until_exact()


def test_savepoint_by_nonce_through_kubectl(operator: OperatorProcess, kubectl: Kubectl, ns: str) -> None:
    kubectl("patch", "cp", NAME, "-n", ns, "--type=merge", "-p", '{"spec": {"job": {"savepointTriggerNonce": 1}}}')
    status = wait_for("savepoint", lambda: (s := _status(kubectl, ns)).get("nonces", {}).get("savepoint") == 1 and s)
    (entry,) = status["savepointHistory"]
    assert entry["trigger"] == "manual" and status["jobStatus"]["lastSavepoint"]["path"] == entry["path"]
    assert status["submissions"] == 1
    wait_for("SavepointTaken event", lambda: "SavepointTaken" in _reasons(kubectl, ns))


def _metric(text: str, metric: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(metric + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_and_liveness(operator: OperatorProcess, ns: str) -> None:
    text = _get(f"http://127.0.0.1:{METRICS_PORT}/metrics") or ""
    assert _metric(text, "coffee_operator_job_state", namespace=ns, name=NAME, state="RUNNING") == 1
    assert _metric(text, "coffee_operator_job_state", namespace=ns, name=NAME, state="FAILED") == 0
    assert (_metric(text, "coffee_operator_reconciles_total", handler="job") or 0) >= 3
    assert (_metric(text, "coffee_operator_reconciles_total", handler="children") or 0) >= 1
    assert _metric(text, "coffee_operator_last_checkpoint_age_seconds", namespace=ns, name=NAME) is not None
    assert _metric(text, "coffee_operator_last_savepoint_age_seconds", namespace=ns, name=NAME) is not None
    assert _metric(text, "coffee_operator_rollbacks_total", namespace=ns, name=NAME) is None  # never rolled back
    assert _metric(text, "coffee_operator_job_submissions_total", namespace=ns, name=NAME, reason="initial",
                   outcome="ok") == 1
    probe = json.loads(_get(f"http://127.0.0.1:{LIVENESS_PORT}/healthz") or "{}")
    assert "now" in probe


def test_a_restarted_operator_finds_its_job_instead_of_submitting_another(
    operator: OperatorProcess, kubectl: Kubectl, ns: str, world: World
) -> None:
    before = _status(kubectl, ns)
    operator.stop()
    operator.start()

    def reconciled_a_few_times() -> bool:
        return (_metric(_get(f"http://127.0.0.1:{METRICS_PORT}/metrics") or "", "coffee_operator_reconciles_total",
                        handler="job") or 0) >= 3

    wait_for("reconciles after the restart", reconciled_a_few_times, 60)
    after = _status(kubectl, ns)
    assert (after["submissions"], after["jobStatus"]["jobId"], after["phase"]) == (
        1, before["jobStatus"]["jobId"], "Running")
    assert world.active_jobs(f"coffee-rt-{ns}-{NAME}") == [before["jobStatus"]["jobId"]]


def test_delete_takes_a_final_savepoint_and_the_children_are_collected(
    operator: OperatorProcess, kubectl: Kubectl, ns: str, world: World
) -> None:
    job_id = _status(kubectl, ns)["jobStatus"]["jobId"]
    out = kubectl("delete", "cp", NAME, "-n", ns, "--timeout=180s")
    assert out.strip() == f'coffeepipeline.coffee-rt.dev "{NAME}" deleted from {ns} namespace'
    assert world.rest.job_state(job_id) == "FINISHED"
    assert world.active_jobs(f"coffee-rt-{ns}-{NAME}") == []
    assert "StoppedForDelete" in _reasons(kubectl, ns)
    for kind in ("deployment", "service", "configmap", "poddisruptionbudget"):
        wait_for(f"{kind} collected", lambda kind=kind: kubectl.run(  # type: ignore[misc]
            "get", kind, f"{NAME}-ingest", "-n", ns, check=False).returncode == 1, 60)


def test_delete_is_prompt_when_the_job_is_not_running(
    operator: OperatorProcess, kubectl: Kubectl, ns: str, world: World
) -> None:
    kubectl.apply(_pipeline(world, "idle", state="suspended"), "-n", ns)
    wait_for("Suspended", lambda: _status(kubectl, ns, "idle").get("phase") == "Suspended", 60)
    assert "deleted" in kubectl("delete", "cp", "idle", "-n", ns, "--timeout=30s")
    # Flink unreachable: a couple of attempts, then the resource is let go with a warning.
    kubectl.apply(_pipeline(world, "nowhere", restUrl="http://127.0.0.1:9"), "-n", ns)
    wait_for("FlinkUnreachable", lambda: any(c.get("reason") == "FlinkUnreachable"
                                             for c in _status(kubectl, ns, "nowhere").get("conditions", [])), 60)
    assert "deleted" in kubectl("delete", "cp", "nowhere", "-n", ns, "--timeout=60s")
    assert "DeletedWithoutStop" in _reasons(kubectl, ns, "nowhere")


_LOG_TIMESTAMP = re.compile(r"^\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}\]", re.MULTILINE)


def refusals(log: str) -> list[str]:
    """Lines where the API server refused the operator (HTTP 403), read without the timestamps:
    a line logged at hh:mm:ss,403 is not a refusal."""
    return [line for line in _LOG_TIMESTAMP.sub("", log).splitlines()
            if re.search(r"\b403\b", line) or "orbidden" in line]


def test_refusals_are_found_by_code_or_word_and_not_in_timestamps() -> None:
    ok = "[2026-11-25 21:09:21,403] kopf.objects [INFO] [ns/brew] Timer 'reconcile_job' succeeded."
    denied = "[2026-11-25 21:09:22,001] kopf [ERROR] APIForbiddenError: ('pods is forbidden', {'code': 403})"
    coded = "[2026-11-25 21:09:22,002] kopf [ERROR] status 403 for PATCH"
    assert refusals(ok) == []
    assert len(refusals("\n".join([ok, denied, coded]))) == 2


def test_the_operator_was_never_refused(operator: OperatorProcess) -> None:
    text = operator.log.read_text()
    assert refusals(text) == [], text[-3000:]
