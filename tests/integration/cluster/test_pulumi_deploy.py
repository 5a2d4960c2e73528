"""`pulumi up` of the dev stack on the real one-node cluster, run the way `coffee-rt deploy` runs it (the
Automation API, the CLI and Kubernetes provider built from the Go module proxy, a file backend): every
part comes up, the operator runs the job in the in-cluster session cluster, orders sent to the ingest
Service land exactly once in Postgres, Redis and on the dashboard, a history rebuild Job restores a
deleted row, a second `up` changes nothing, a config change rolls out, a new job image reaches the job
through a savepoint, and `pulumi destroy` leaves nothing of the stack behind.

The tests of this module run in order and share one deployment (module scope), like a user's session.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx
import psycopg
import pytest
import redis
import yaml

from coffee_orders.schema import to_wire
from coffee_rt import deploy
from coffee_rt.cluster.images import Builder
from coffee_rt.drill import Rush, Totals, expected_totals, postgres_totals_at, redis_totals_at
from coffee_rt.k8s.kubectl import Kubectl
from coffee_rt.local.components.cluster import STORAGE_CLASS, Cluster
from coffee_rt.paths import REPO_ROOT

NAMESPACE = "coffee-rt"
PIPELINE = "roastery"
OPERATOR = "coffee-rt-operator"  # the managed-by label of the pipeline's children
T = TypeVar("T")


def _say(message: str) -> None:
    print(f"[deploy] {message}", flush=True)


def _wait(what: str, probe: Callable[[], T | None], timeout: float = 600.0, every: float = 3.0) -> T:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except (httpx.HTTPError, psycopg.Error, redis.RedisError, OSError) as exc:
            last = exc
        if last is not None and not isinstance(last, Exception):
            return last  # type: ignore[no-any-return]
        time.sleep(every)
    raise AssertionError(f"{what}: not within {timeout:.0f} s (last: {last!r})")


class Deployed:
    """The stack as a user reaches it from the machine: Service ClusterIPs (routed onto the node's bridge)."""

    def __init__(self, kubectl: Kubectl, cluster: Cluster, up: dict[str, Any]) -> None:
        self.kubectl, self.cluster, self.up = kubectl, cluster, up
        self.creds = deploy.load_credentials(cluster.stack_settings.state_dir / "pulumi" / "credentials.json")

    def get(self, *args: str) -> dict[str, Any]:
        return json.loads(self.kubectl("get", "-n", NAMESPACE, "-o", "json", *args))  # type: ignore[no-any-return]

    def service_ip(self, name: str) -> str:
        return str(self.get("service", name)["spec"]["clusterIP"])

    def secret(self, name: str, key: str) -> str:
        return base64.b64decode(self.get("secret", name)["data"][key]).decode()

    def reachable(self, url: str, service: str) -> str:
        """``url`` (a Secret's, naming an in-cluster host) with its host replaced by the Service's ClusterIP."""
        parts = urlsplit(url)
        netloc = parts.netloc.replace(parts.hostname or "", self.service_ip(service))
        return urlunsplit(parts._replace(netloc=netloc))

    @property
    def ingest_url(self) -> str:
        return f"http://{self.service_ip(f'{PIPELINE}-ingest')}:80"

    def pipeline(self) -> dict[str, Any]:
        return self.get("coffeepipeline", PIPELINE)

    def postgres_totals(self) -> Totals:
        return postgres_totals_at(self.reachable(self.secret("coffee-rt-postgres", "dsn"), "postgres"))

    def redis_totals(self, days: set[str]) -> Totals:
        return redis_totals_at(self.reachable(self.secret("coffee-rt-redis", "url"), "redis"), days)

    def ready_pods(self, selector: str) -> list[dict[str, Any]]:
        pods = self.get("pods", "-l", selector)["items"]
        return [p for p in pods if p["metadata"].get("deletionTimestamp") is None
                and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]


@pytest.fixture(scope="module")
def kubectl(cluster: Cluster) -> Kubectl:
    return Kubectl(cluster.kubeconfig, binary=cluster.kubectl_binary, timeout=600.0)


@pytest.fixture(scope="module")
def stack(cluster: Cluster, kubectl: Kubectl) -> Iterator[Deployed]:
    # The namespace and the CRD are the stack's own: those test_cluster's hand-made deployment left
    # (kubectl apply of operator/manifests) go first, or Pulumi's create of them would fail. Its
    # pipeline's finalizer goes first: the operator that would remove it is deleted with the namespace.
    left = kubectl.run("get", "coffeepipelines", "-A", "-o", "name", check=False)
    for name in left.stdout.split() if left.returncode == 0 else []:
        kubectl("patch", "-n", NAMESPACE, name, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
    kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=true", "--timeout=300s")
    kubectl("delete", "-f", str(REPO_ROOT / "operator" / "manifests" / "crd.yaml"), "--ignore-not-found",
            "--wait=true", "--timeout=120s")
    started = time.monotonic()
    up = deploy.run("up", _say, settings=cluster.stack_settings)
    _say(f"{deploy.describe(up)} (with image builds and imports: {time.monotonic() - started:.0f} s)")
    deployed = Deployed(kubectl, cluster, up)
    yield deployed
    if kubectl.run("get", "namespace", NAMESPACE, check=False).returncode == 0:
        deploy.run("destroy", _say, settings=cluster.stack_settings)  # a failed test left the stack up


def test_pulumi_up_creates_and_waits_for_every_part(stack: Deployed) -> None:
    assert stack.up["action"] == "up" and stack.up["changes"].get("create", 0) > 30
    assert stack.up["outputs"]["namespace"] == NAMESPACE
    for kind in ("deployment", "statefulset"):
        for item in stack.get(kind)["items"]:
            if item["metadata"].get("labels", {}).get("app.kubernetes.io/managed-by") == OPERATOR:
                continue  # the pipeline's children: the operator makes them after `up` (next test)
            want = item["spec"].get("replicas", 1)
            assert item["status"].get("readyReplicas", 0) == want, (kind, item["metadata"]["name"], item["status"])
    for job in stack.get("job")["items"]:  # topics and migrations: Pulumi waited for them
        assert job["status"].get("succeeded") == 1, (job["metadata"]["name"], job["status"])
    claims = stack.get("pvc")["items"]
    assert sorted(c["metadata"]["name"] for c in claims if c["status"]["phase"] == "Bound") == sorted(
        c["metadata"]["name"] for c in claims)
    assert {c["spec"]["storageClassName"] for c in claims} == {STORAGE_CLASS}


def test_the_operator_runs_the_job_in_the_session_cluster(stack: Deployed) -> None:
    def running() -> dict[str, Any] | None:
        status: dict[str, Any] = stack.pipeline().get("status", {})
        return status if status.get("jobStatus", {}).get("state") == "RUNNING" else None

    status = _wait("the pipeline's job RUNNING", running, timeout=900)
    children = [d for d in stack.get("deployment")["items"]
                if d["metadata"].get("labels", {}).get("app.kubernetes.io/managed-by") == OPERATOR]
    assert sorted(d["metadata"]["name"] for d in children) == [f"{PIPELINE}-auditor", f"{PIPELINE}-ingest"]
    for child in children:
        selector = ",".join(f"{k}={v}" for k, v in child["spec"]["selector"]["matchLabels"].items())

        def one_ready(selector: str = selector) -> bool | None:
            return len(stack.ready_pods(selector)) == 1 or None

        _wait(f"{child['metadata']['name']} ready", one_ready, timeout=300)
    job_id = status["jobStatus"]["jobId"]
    flink = f"http://{stack.service_ip('flink-jobmanager')}:8081"
    jobs = httpx.get(f"{flink}/jobs/overview", timeout=10).raise_for_status().json()["jobs"]
    assert [(j["jid"], j["state"]) for j in jobs if j["state"] == "RUNNING"] == [(job_id, "RUNNING")]


def test_orders_land_exactly_once_in_postgres_redis_and_the_dashboard(stack: Deployed) -> None:
    rush = Rush(stack.ingest_url, stack.creds.ingest_tokens, total=400, workers=4, rate=40.0).start()
    rush.join(timeout=600)
    assert rush.refused == [] and len(rush.accepted) == 400
    # The API contract: a client that did not see the 202 sends the same order again; it counts once.
    with httpx.Client(base_url=stack.ingest_url, timeout=10) as client:
        for order in rush.accepted[:50]:
            response = client.post("/v1/orders", content=to_wire(order), headers={
                "Authorization": f"Bearer {stack.creds.ingest_tokens[order.store_id]}",
                "Content-Type": "application/json"})
            assert response.status_code == 202, response.text
    want = expected_totals(rush.accepted)
    days = {day for _, day in want}
    _wait("Postgres totals exact", lambda: stack.postgres_totals() == want or None, timeout=300)
    _wait("Redis totals exact", lambda: stack.redis_totals(days) == want or None, timeout=300)
    dashboard = f"http://{stack.service_ip('coffee-dashboard')}:80"
    headers = {"Authorization": f"Bearer {stack.creds.dashboard_token}"}
    today = max(days)
    for store in ["_all", *sorted({s for s, _ in want} - {"_all"})]:
        summary = httpx.get(f"{dashboard}/api/v1/summary", params={"store": store}, headers=headers,
                            timeout=10).raise_for_status().json()
        assert (summary["orders"], summary["revenue_cents"]) == want[(store, today)], store


def test_a_deleted_order_row_comes_back_through_a_history_rebuild_job(stack: Deployed) -> None:
    """The ledger runbook's Kubernetes mitigation, as written there: a rebuild request on the pipeline."""
    before = stack.postgres_totals()
    dsn = stack.reachable(stack.secret("coffee-rt-postgres", "dsn"), "postgres")  # the owner's
    with psycopg.connect(dsn, connect_timeout=5) as conn:
        (day,) = conn.execute(
            "DELETE FROM orders WHERE message_id = (SELECT message_id FROM orders ORDER BY message_id LIMIT 1) "
            "RETURNING (placed_at AT TIME ZONE 'UTC')::date::text").fetchone() or ("",)
    assert stack.postgres_totals() != before
    request = [{"op": "add", "path": "/spec/rebuild",
                "value": {"nonce": f"{day}-e2e", "history": {"from": day}}}]
    stack.kubectl("-n", NAMESPACE, "patch", "cp", PIPELINE, "--type=json", "-p", json.dumps(request))

    def ended() -> dict[str, Any] | None:
        rebuild: dict[str, Any] = stack.pipeline().get("status", {}).get("rebuild", {})
        return rebuild if rebuild.get("nonce") == f"{day}-e2e" and rebuild.get("phase") in (
            "Succeeded", "Failed", "Rejected") else None

    rebuild = _wait("the rebuild Job's end", ended, timeout=600)
    if rebuild["phase"] != "Succeeded":
        logs = stack.kubectl.run("-n", NAMESPACE, "logs", f"job/{rebuild.get('job')}", "--tail=40", check=False)
        raise AssertionError(f"{rebuild}\n{logs.stdout}{logs.stderr}")
    assert stack.postgres_totals() == before


def test_a_second_up_changes_nothing(stack: Deployed) -> None:
    again = deploy.run("up-no-changes", _say, settings=stack.cluster.stack_settings)
    assert set(again["changes"]) == {"same"}, again["changes"]


def test_more_ingest_replicas_roll_out_without_touching_the_job(stack: Deployed) -> None:
    job_id = stack.pipeline()["status"]["jobStatus"]["jobId"]
    pipeline = yaml.safe_load((REPO_ROOT / "Pulumi.dev.yaml").read_text())["config"]["coffee-rt:pipeline"]
    changed = deploy.run("up", _say, settings=stack.cluster.stack_settings,
                         overrides={"coffee-rt:pipeline": {**pipeline, "ingestReplicas": 2}})
    assert changed["changes"].get("update") == 1, changed["changes"]
    selector = f"app.kubernetes.io/name=coffee-ingest,app.kubernetes.io/instance={PIPELINE}"
    _wait("two ingest pods ready", lambda: len(stack.ready_pods(selector)) == 2 or None, timeout=300)
    status = stack.pipeline()["status"]
    assert (status["jobStatus"]["jobId"], status["jobStatus"]["state"]) == (job_id, "RUNNING")


def test_a_new_job_image_reaches_the_job_through_a_savepoint(stack: Deployed) -> None:
    """`coffee-rt deploy` after a job change: a new Flink image reference. Pulumi changes the pipeline only;
    the operator stops the job with a savepoint, sets the image on the session cluster, waits for its
    rollout and submits the job from the savepoint: the totals go on from where they were."""
    pipeline = stack.pipeline()
    old_job, old_image = pipeline["status"]["jobStatus"]["jobId"], pipeline["spec"]["job"]["image"]
    new_image = f"{old_image.rsplit(':', 1)[0]}:e2e-upgrade"
    Builder(stack.cluster.stack_settings.cache_dir).buildah("tag", old_image, new_image)
    stack.cluster.import_images([new_image], _say)
    before = stack.postgres_totals()
    changed = deploy.run("up", _say, settings=stack.cluster.stack_settings, images={"flink": new_image})
    assert changed["changes"].get("update") == 1, changed["changes"]  # the pipeline; the Deployments are left alone

    def upgraded() -> dict[str, Any] | None:
        status: dict[str, Any] = stack.pipeline()["status"]
        job = status.get("jobStatus", {})
        done = (job.get("jobId") != old_job and job.get("state") == "RUNNING" and status.get("phase") == "Running"
                and status.get("deployed", {}).get("spec", {}).get("image") == new_image and "upgrade" not in status)
        return status if done else None

    status = _wait("the job upgraded to the new image", upgraded, timeout=900)
    assert "savepoint" in status["jobStatus"]["restoredFrom"], status["jobStatus"]
    for name in ("flink-jobmanager", "flink-taskmanager"):
        template = stack.get("deployment", name)["spec"]["template"]["spec"]
        assert {c["image"] for c in template["containers"] + template.get("initContainers", [])} == {new_image}
    rush = Rush(stack.ingest_url, stack.creds.ingest_tokens, total=100, workers=2, rate=40.0).start()
    rush.join(timeout=600)
    assert rush.refused == [] and len(rush.accepted) == 100
    want = expected_totals(rush.accepted, base=before)
    _wait("Postgres totals exact after the upgrade", lambda: stack.postgres_totals() == want or None, timeout=300)
    days = {day for _, day in want}
    _wait("Redis totals exact after the upgrade", lambda: stack.redis_totals(days) == want or None, timeout=300)


def test_destroy_leaves_nothing_of_the_stack(stack: Deployed, kubectl: Kubectl) -> None:
    started = time.monotonic()
    result = deploy.run("destroy", _say, settings=stack.cluster.stack_settings)
    _say(f"{deploy.describe(result)} ({time.monotonic() - started:.0f} s with the volumes' wipe)")
    assert result["changes"].get("delete", 0) == stack.up["changes"]["create"]
    assert kubectl.run("get", "namespace", NAMESPACE, check=False).returncode != 0
    leftovers = [line for kind in ("crd", "clusterrole", "clusterrolebinding") for line in
                 kubectl("get", kind, "-o", "name").split() if "coffee" in line]
    assert leftovers == []
    volumes = json.loads(kubectl("get", "pv", "-o", "json"))["items"]
    assert {v["status"]["phase"] for v in volumes} == {"Available"}
