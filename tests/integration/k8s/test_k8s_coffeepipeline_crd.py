"""The CoffeePipeline CRD on a real API server: install, defaults, printer columns, validation."""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from coffee_rt.k8s.kubectl import Kubectl
from coffee_rt.paths import REPO_ROOT

MANIFESTS = REPO_ROOT / "operator" / "manifests"
EXAMPLE = REPO_ROOT / "operator" / "examples" / "coffeepipeline.yaml"

MINIMAL: dict[str, Any] = {
    "apiVersion": "coffee-rt.dev/v1alpha1",
    "kind": "CoffeePipeline",
    "metadata": {"name": "minimal"},
    "spec": {
        "ingest": {"image": "coffee-rt/order-ingest:0.1.0"},
        "job": {"restUrl": "http://flink:8081", "entry": {"module": "coffee_jobs.orders"}},
        "kafka": {"bootstrap": "kafka:9092"},
    },
}


@pytest.fixture(scope="module")
def scratch(kubectl: Kubectl, crd: str) -> Iterator[str]:
    """A namespace of its own, so reruns against a kept stack start clean."""
    ns = f"crd-{uuid.uuid4().hex[:8]}"
    kubectl("create", "namespace", ns)
    yield ns
    kubectl("delete", "namespace", ns, "--wait=false")


def test_crd_is_served_as_specified(kubectl: Kubectl, crd: str) -> None:
    spec = json.loads(kubectl("get", "crd", crd, "-o", "json"))["spec"]
    assert (spec["group"], spec["scope"]) == ("coffee-rt.dev", "Namespaced")
    assert spec["names"]["kind"] == "CoffeePipeline"
    assert (spec["names"]["plural"], spec["names"]["shortNames"]) == ("coffeepipelines", ["cp"])
    (version,) = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}
    columns = [(c["name"], c["type"], c["jsonPath"]) for c in version["additionalPrinterColumns"]]
    assert columns == [
        ("Phase", "string", ".status.phase"),
        ("Job State", "string", ".status.jobStatus.state"),
        ("Last Checkpoint", "date", ".status.jobStatus.lastCheckpoint.time"),
        ("Ingest Ready", "integer", ".status.ingest.readyReplicas"),
        ("Age", "date", ".metadata.creationTimestamp"),
        ("Rebuild", "string", ".status.rebuild.phase"),  # priority 1: `kubectl get cp -o wide`
    ]
    assert [c.get("priority", 0) for c in version["additionalPrinterColumns"]] == [0, 0, 0, 0, 0, 1]
    resources = kubectl("api-resources", "--api-group=coffee-rt.dev", "--no-headers").split()
    assert resources == ["coffeepipelines", "cp", "coffee-rt.dev/v1alpha1", "true", "CoffeePipeline"]


def test_api_server_fills_in_the_defaults(kubectl: Kubectl, scratch: str) -> None:
    out = kubectl.apply(yaml.safe_dump(MINIMAL), "-n", scratch)
    assert out.strip() == "coffeepipeline.coffee-rt.dev/minimal created"
    spec = json.loads(kubectl("get", "cp", "minimal", "-n", scratch, "-o", "json"))["spec"]
    assert spec == {
        "ingest": {"image": "coffee-rt/order-ingest:0.1.0", "replicas": 2},
        "job": {
            "restUrl": "http://flink:8081",
            "entry": {"module": "coffee_jobs.orders"},
            "parallelism": 1,
            "checkpointInterval": "10s",
            "upgradeMode": "savepoint",
            "state": "running",
            "allowNonRestoredState": False,
            "savepointHistory": {"maxCount": 5},
        },
        "kafka": {"bootstrap": "kafka:9092", "topics": {"orders": "orders", "dlq": "orders.dlq"}},
    }


SINKS = {"postgres": {"secretRef": {"name": "coffee-rt-postgres", "key": "dsn"}},
         "redis": {"secretRef": {"name": "coffee-rt-redis", "key": "url"}}}


def test_api_server_fills_in_the_audit_defaults(kubectl: Kubectl, scratch: str) -> None:
    resource = copy.deepcopy(MINIMAL)
    resource["metadata"]["name"] = "audited"
    resource["spec"].update(sinks=SINKS, audit={"image": "coffee-rt/auditor:0.1.0"})
    out = kubectl.apply(yaml.safe_dump(resource), "-n", scratch)
    assert out.strip() == "coffeepipeline.coffee-rt.dev/audited created"
    spec = json.loads(kubectl("get", "cp", "audited", "-n", scratch, "-o", "json"))["spec"]
    assert spec["audit"] == {"image": "coffee-rt/auditor:0.1.0", "enabled": True, "interval": "30s"}


def test_example_applies_and_get_cp_shows_the_printer_columns(kubectl: Kubectl, crd: str, namespace: str) -> None:
    out = kubectl.apply(EXAMPLE)
    assert re.fullmatch(r"coffeepipeline\.coffee-rt\.dev/demo (created|unchanged|configured)\n", out)
    example = yaml.safe_load(EXAMPLE.read_text())
    stored = json.loads(kubectl("get", "cp", "demo", "-n", namespace, "-o", "json"))
    assert stored["spec"] == example["spec"]  # the example spells out every field: nothing defaulted

    checkpoint = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=3)
    checkpoint_time = checkpoint.isoformat().replace("+00:00", "Z")
    status = {"status": {
        "phase": "Running",
        "observedGeneration": stored["metadata"]["generation"],
        "jobStatus": {"jobId": "a" * 32, "state": "RUNNING",
                      "lastCheckpoint": {"path": "file:///chk/42", "time": checkpoint_time}},
        "ingest": {"readyReplicas": 2},
    }}
    out = kubectl("patch", "cp", "demo", "-n", namespace, "--subresource=status", "--type=merge",
                  "-p", json.dumps(status))
    assert out.strip() in {"coffeepipeline.coffee-rt.dev/demo patched",
                           "coffeepipeline.coffee-rt.dev/demo patched (no change)"}
    header, row = kubectl("get", "cp", "-n", namespace).splitlines()
    assert header.split() == ["NAME", "PHASE", "JOB", "STATE", "LAST", "CHECKPOINT", "INGEST", "READY", "AGE"]
    cells = row.split()
    assert cells[:5] == ["demo", "Running", "RUNNING", "3h", "2"]
    assert re.fullmatch(r"\d+[smhd].*", cells[5])


def _invalid(**changes: Any) -> dict[str, Any]:
    """MINIMAL with ``changes`` applied; keys are dotted paths under the resource, None deletes."""
    resource = copy.deepcopy(MINIMAL)
    for path, value in changes.items():
        *parents, leaf = path.split("__")
        node = resource
        for key in parents:
            node = node.setdefault(key, {})
        if value is None:
            del node[leaf]
        else:
            node[leaf] = value
    return resource


AUDITED: dict[str, Any] = {"spec__audit": {"image": "coffee-rt/auditor:0.1.0"}, "spec__sinks": SINKS}

# (what is wrong, the resource, what the API server must say)
INVALID = [
    ("wrong type: string for integer", _invalid(spec__ingest__replicas="two"),
     'spec.ingest.replicas: Invalid value: "string": spec.ingest.replicas in body must be of type integer: "string"'),
    ("wrong type: string for boolean", _invalid(spec__job__allowNonRestoredState="yes"),
     'spec.job.allowNonRestoredState: Invalid value: "string": spec.job.allowNonRestoredState in body must be of '
     'type boolean: "string"'),
    ("wrong type: list for object", _invalid(spec__kafka=["kafka:9092"]),
     'spec.kafka: Invalid value: "array": spec.kafka in body must be of type object: "array"'),
    ("missing spec", _invalid(spec=None), "spec: Required value"),
    ("missing ingest.image", _invalid(spec__ingest__image=None), "spec.ingest.image: Required value"),
    ("missing job.restUrl", _invalid(spec__job__restUrl=None), "spec.job.restUrl: Required value"),
    ("missing kafka", _invalid(spec__kafka=None), "spec.kafka: Required value"),
    ("missing secret key", _invalid(spec__sinks={"postgres": {"secretRef": {"name": "pg"}}}),
     "spec.sinks.postgres.secretRef.key: Required value"),
    ("bad enum upgradeMode", _invalid(spec__job__upgradeMode="hot-swap"),
     'spec.job.upgradeMode: Unsupported value: "hot-swap": supported values: "stateless", "savepoint", "last-state"'),
    ("bad enum state", _invalid(spec__job__state="paused"),
     'spec.job.state: Unsupported value: "paused": supported values: "running", "suspended"'),
    ("replicas above 20", _invalid(spec__ingest__replicas=21),
     "spec.ingest.replicas: Invalid value: 21: spec.ingest.replicas in body should be less than or equal to 20"),
    ("replicas below 0", _invalid(spec__ingest__replicas=-1),
     "spec.ingest.replicas: Invalid value: -1: spec.ingest.replicas in body should be greater than or equal to 0"),
    ("parallelism 0", _invalid(spec__job__parallelism=0),
     "spec.job.parallelism: Invalid value: 0: spec.job.parallelism in body should be greater than or equal to 1"),
    ("parallelism 65", _invalid(spec__job__parallelism=65),
     "spec.job.parallelism: Invalid value: 65: spec.job.parallelism in body should be less than or equal to 64"),
    ("savepoint history above 100", _invalid(spec__job__savepointHistory={"maxCount": 101}),
     "spec.job.savepointHistory.maxCount: Invalid value: 101: spec.job.savepointHistory.maxCount in body should "
     "be less than or equal to 100"),
    ("duration without unit", _invalid(spec__job__checkpointInterval="10 seconds"),
     'spec.job.checkpointInterval: Invalid value: "10 seconds": spec.job.checkpointInterval in body should match '
     "'^[1-9][0-9]*(ms|s|min|m|h|d)$'"),
    ("restUrl not a URL", _invalid(spec__job__restUrl="flink:8081"),
     'spec.job.restUrl: Invalid value: "flink:8081": spec.job.restUrl in body should match'),
    ("entry with both module and file", _invalid(spec__job__entry={"module": "a.b", "file": "/job.py"}),
     'spec.job.entry: Invalid value: set exactly one of entry.module or entry.file'),
    ("entry with neither", _invalid(spec__job__entry={}),
     'spec.job.entry: Invalid value: set exactly one of entry.module or entry.file'),
    ("cpu not a quantity", _invalid(spec__ingest__resources={"requests": {"cpu": "lots"}}),
     'spec.ingest.resources.requests.cpu: Invalid value: "lots": spec.ingest.resources.requests.cpu in body '
     "should match"),
    ("unknown field", _invalid(spec__ingest__imag="typo:1"),
     'strict decoding error: unknown field "spec.ingest.imag"'),
    ("audit without the sinks it audits", _invalid(spec__audit={"image": "coffee-rt/auditor:0.1.0"}),
     "spec: Invalid value: spec.audit needs spec.sinks.postgres and spec.sinks.redis (the views it audits)"),
    ("audit with one sink", _invalid(spec__audit={"image": "coffee-rt/auditor:0.1.0"},
                                     spec__sinks={"postgres": SINKS["postgres"]}),
     "spec.audit needs spec.sinks.postgres and spec.sinks.redis (the views it audits)"),
    ("missing audit.image", _invalid(spec__audit={"enabled": True}, spec__sinks=SINKS),
     "spec.audit.image: Required value"),
    ("audit interval without unit", _invalid(spec__audit={"image": "a:1", "interval": "30"}, spec__sinks=SINKS),
     'spec.audit.interval: Invalid value: "30": spec.audit.interval in body should match'),
    ("audit enabled not a boolean", _invalid(spec__audit={"image": "a:1", "enabled": "yes"}, spec__sinks=SINKS),
     'spec.audit.enabled: Invalid value: "string": spec.audit.enabled in body must be of type boolean'),
    ("rebuild without the auditor", _invalid(spec__rebuild={"nonce": "1", "live": {"day": "2026-03-05"}}),
     "spec: Invalid value: spec.rebuild runs in the auditor's image, so it needs spec.audit"),
    ("rebuild without a nonce", _invalid(spec__rebuild={"live": {"day": "2026-03-05"}}, **AUDITED),
     "spec.rebuild.nonce: Required value"),
    ("rebuild nonce with a space", _invalid(spec__rebuild={"nonce": "a b", "live": {"day": "2026-03-05"}}, **AUDITED),
     'spec.rebuild.nonce: Invalid value: "a b": spec.rebuild.nonce in body should match'),
    ("rebuild with both history and live",
     _invalid(spec__rebuild={"nonce": "1", "live": {"day": "2026-03-05"}, "history": {"from": "2026-03-01"}},
              **AUDITED),
     "spec.rebuild: Invalid value: spec.rebuild takes exactly one of history or live"),
    ("rebuild with neither", _invalid(spec__rebuild={"nonce": "1"}, **AUDITED),
     "spec.rebuild: Invalid value: spec.rebuild takes exactly one of history or live"),
    ("rebuild day not a date", _invalid(spec__rebuild={"nonce": "1", "live": {"day": "2026-02-30"}}, **AUDITED),
     'spec.rebuild.live.day: Invalid value: "2026-02-30": spec.rebuild.live.day in body must be of type date'),
    ("rebuild history without from", _invalid(spec__rebuild={"nonce": "1", "history": {"to": "2026-03-01"}},
                                              **AUDITED),
     "spec.rebuild.history.from: Required value"),
    ("rebuild history backwards",
     _invalid(spec__rebuild={"nonce": "1", "history": {"from": "2026-03-05", "to": "2026-03-01"}}, **AUDITED),
     "spec.rebuild.history: Invalid value: spec.rebuild.history.to is before spec.rebuild.history.from"),
    ("rebuild history over 62 days",
     _invalid(spec__rebuild={"nonce": "1", "history": {"from": "2026-01-01", "to": "2026-03-05"}}, **AUDITED),
     "spec.rebuild.history: Invalid value: spec.rebuild.history covers at most 62 days after from"),
    ("job image without the Deployments that run it", _invalid(spec__job__image="coffee-rt/flink:2"),
     "spec.job: Invalid value: set job.image and job.sessionDeployments together (the Deployments that run the "
     "image)"),
    ("session Deployments without an image", _invalid(spec__job__sessionDeployments=["flink-taskmanager"]),
     "set job.image and job.sessionDeployments together"),
    ("session Deployment not a name", _invalid(spec__job__image="coffee-rt/flink:2",
                                               spec__job__sessionDeployments=["Flink TM"]),
     'spec.job.sessionDeployments[0]: Invalid value: "Flink TM": spec.job.sessionDeployments[0] in body should match'),
    ("redeploy nonce without a savepoint", _invalid(spec__job__savepointRedeployNonce=1),
     "spec.job: Invalid value: savepointRedeployNonce redeploys from initialSavepointPath, so it needs one"),
    ("redeploy nonce not a number", _invalid(spec__job__savepointRedeployNonce="one",
                                             spec__job__initialSavepointPath="file:/sp/1"),
     'spec.job.savepointRedeployNonce: Invalid value: "string": spec.job.savepointRedeployNonce in body must be of '
     'type integer'),
    ("rebuild history of a bad store",
     _invalid(spec__rebuild={"nonce": "1", "history": {"from": "2026-03-01", "store": "Store 1"}}, **AUDITED),
     'spec.rebuild.history.store: Invalid value: "Store 1": spec.rebuild.history.store in body should match'),
]


@pytest.mark.parametrize(("resource", "message"), [(r, m) for _, r, m in INVALID], ids=[w for w, _, _ in INVALID])
def test_invalid_resources_are_rejected_naming_the_field(
    kubectl: Kubectl, scratch: str, resource: dict[str, Any], message: str
) -> None:
    resource = copy.deepcopy(resource)
    resource["metadata"]["name"] = "bad"
    result = kubectl.run("apply", "-n", scratch, "-f", "-", stdin=yaml.safe_dump(resource), check=False)
    assert result.returncode == 1
    assert result.stdout == ""
    assert message in result.stderr
    # Nothing was stored.
    missing = kubectl.run("get", "cp", "bad", "-n", scratch, check=False)
    assert missing.returncode == 1
    assert 'coffeepipelines.coffee-rt.dev "bad" not found' in missing.stderr


def test_status_is_only_written_through_the_subresource(kubectl: Kubectl, scratch: str) -> None:
    resource = copy.deepcopy(MINIMAL)
    resource["metadata"]["name"] = "status-probe"
    kubectl.apply(yaml.safe_dump(resource), "-n", scratch)
    resource["status"] = {"phase": "Hacked"}
    kubectl.apply(yaml.safe_dump(resource), "-n", scratch)
    stored = json.loads(kubectl("get", "cp", "status-probe", "-n", scratch, "-o", "json"))
    assert "status" not in stored


def _object_names(path: Path) -> list[str]:
    """How kubectl names each object of a manifest: <kind>[.<group>]/<name>, in file order."""
    names = []
    for doc in yaml.safe_load_all(path.read_text()):
        if doc:
            group = doc["apiVersion"].rpartition("/")[0]
            names.append(f"{doc['kind'].lower()}{'.' + group if group else ''}/{doc['metadata']['name']}")
    return names


def test_every_shipped_manifest_passes_a_server_dry_run(kubectl: Kubectl, crd: str, namespace: str) -> None:
    shipped = sorted(MANIFESTS.glob("*.yaml")) + sorted(EXAMPLE.parent.glob("*.yaml"))
    assert {"crd.yaml", "namespace.yaml", "rbac.yaml", "deployment.yaml", "coffeepipeline.yaml"} <= {
        p.name for p in shipped}
    assert _object_names(MANIFESTS / "rbac.yaml") == [
        "serviceaccount/coffee-rt-operator",
        "role.rbac.authorization.k8s.io/coffee-rt-operator",
        "rolebinding.rbac.authorization.k8s.io/coffee-rt-operator",
    ]
    for path in shipped:
        lines = kubectl("apply", "--dry-run=server", "-f", str(path)).splitlines()
        names = _object_names(path)
        assert len(lines) == len(names), (path.name, lines)
        for line, name in zip(lines, names, strict=True):
            assert re.fullmatch(re.escape(name) + r" (created|unchanged|configured) \(server dry run\)", line), line
