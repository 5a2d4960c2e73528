"""The operator's ServiceAccount with the shipped Role: it can do its job, and nothing more.

Every check is a real request authenticated with a real ServiceAccount token (TokenRequest API),
authorised by the API server's RBAC, with the stricter OwnerReferencesPermissionEnforcement on.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from coffee_rt.k8s import kubeconfig
from coffee_rt.k8s.kubectl import Kubectl
from coffee_rt.paths import REPO_ROOT

MANIFESTS = REPO_ROOT / "operator" / "manifests"
EXAMPLE = REPO_ROOT / "operator" / "examples" / "coffeepipeline.yaml"
NS = "coffee-rt"
OTHER = "coffee-rt-other"
SA_USER = "system:serviceaccount:coffee-rt:coffee-rt-operator"


def _secret(name: str, namespace: str, **data: str) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": namespace},
                           "stringData": data})


@pytest.fixture(scope="module")
def operator(kubectl: Kubectl, crd: str, namespace: str, tmp_path_factory: pytest.TempPathFactory) -> Kubectl:
    """kubectl as the operator's ServiceAccount, after the shipped RBAC and the example are applied."""
    kubectl.apply(MANIFESTS / "rbac.yaml")
    kubectl.apply(EXAMPLE)
    kubectl.apply(_secret("coffee-rt-postgres", NS, dsn="postgresql://coffee@pg/coffee"))
    kubectl.apply(_secret("payments-db", NS, dsn="postgresql://finance@pg/payments"))
    kubectl.apply(yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": OTHER}}))
    kubectl.apply(_secret("coffee-rt-postgres", OTHER, dsn="postgresql://other@pg/other"))
    elsewhere = yaml.safe_load(EXAMPLE.read_text())
    elsewhere["metadata"] = {"name": "elsewhere", "namespace": OTHER}
    kubectl.apply(yaml.safe_dump(elsewhere))
    token = kubectl("create", "token", "coffee-rt-operator", "-n", NS, "--duration=1h").strip()
    admin = yaml.safe_load(kubectl.kubeconfig.read_text())
    cluster = admin["clusters"][0]["cluster"]
    path = kubeconfig.write(
        tmp_path_factory.mktemp("operator") / "kubeconfig",
        kubeconfig.render(cluster["server"], Path(cluster["certificate-authority"]), "coffee-rt-operator",
                          token=token, namespace=NS),
    )
    return Kubectl(path)


def _owned_deployment(name: str, owner: dict[str, str]) -> str:
    return yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS, "ownerReferences": [
            {**owner, "controller": True, "blockOwnerDeletion": True}]},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                 "template": {"metadata": {"labels": {"app": name}},
                              "spec": {"containers": [{"name": "ingest", "image": "coffee-rt/order-ingest:0.1.0"}]}}},
    })


def test_operator_is_the_service_account(operator: Kubectl) -> None:
    review = json.loads(operator("auth", "whoami", "-o", "json"))
    assert review["status"]["userInfo"]["username"] == SA_USER


def test_operator_reads_and_marks_its_pipelines(operator: Kubectl) -> None:
    assert operator("get", "cp", "-o", "name").splitlines() == ["coffeepipeline.coffee-rt.dev/demo"]
    out = operator("patch", "cp", "demo", "--type=merge",
                   "-p", '{"metadata": {"annotations": {"coffee-rt.dev/probe": "1"}}}')
    assert out.strip() in {"coffeepipeline.coffee-rt.dev/demo patched",
                           "coffeepipeline.coffee-rt.dev/demo patched (no change)"}
    out = operator("patch", "cp", "demo", "--subresource=status", "--type=merge",
                   "-p", '{"status": {"phase": "Deploying", "ingest": {"readyReplicas": 0}}}')
    assert out.strip() in {"coffeepipeline.coffee-rt.dev/demo patched",
                           "coffeepipeline.coffee-rt.dev/demo patched (no change)"}
    status = json.loads(operator("get", "cp", "demo", "-o", "json"))["status"]
    assert (status["phase"], status["ingest"]) == ("Deploying", {"readyReplicas": 0})


@pytest.mark.parametrize(("verb", "resource", "answer"), [
    ("watch", "coffeepipelines.coffee-rt.dev", "yes"),
    ("list", "coffeepipelines.coffee-rt.dev", "yes"),
    # kubectl reads "<resource>/<name>"; a subresource is given as "#<subresource>" here.
    ("update", "coffeepipelines.coffee-rt.dev#finalizers", "yes"),
    ("patch", "coffeepipelines.coffee-rt.dev#status", "yes"),
    ("update", "coffeepipelines.coffee-rt.dev#status", "no"),
    ("delete", "coffeepipelines.coffee-rt.dev", "no"),
    ("create", "coffeepipelines.coffee-rt.dev", "no"),
    ("patch", "deployments.apps", "yes"),
    ("get", "deployments.apps", "yes"),
    ("watch", "deployments.apps", "no"),
    ("delete", "deployments.apps", "no"),
    ("create", "jobs.batch", "yes"),
    ("get", "jobs.batch", "yes"),
    ("list", "jobs.batch", "no"),
    ("delete", "jobs.batch", "no"),
    ("update", "coffeepipelines.coffee-rt.dev", "no"),
    ("get", "secrets/coffee-rt-ingest-auth", "no"),
    ("watch", "secrets", "no"),
    ("get", "pods", "no"),
    ("create", "leases.coordination.k8s.io", "no"),
])
def test_can_i_matrix(operator: Kubectl, verb: str, resource: str, answer: str) -> None:
    resource, _, subresource = resource.partition("#")
    extra = [f"--subresource={subresource}"] if subresource else []
    result = operator.run("auth", "can-i", verb, resource, *extra, check=False)
    assert (result.stdout.strip(), result.returncode) == (answer, 0 if answer == "yes" else 1)


def test_operator_creates_an_owned_deployment_and_the_controller_manager_runs_it(
    operator: Kubectl, kubectl: Kubectl
) -> None:
    uid = json.loads(operator("get", "cp", "demo", "-o", "json"))["metadata"]["uid"]
    owner = {"apiVersion": "coffee-rt.dev/v1alpha1", "kind": "CoffeePipeline", "name": "demo", "uid": uid}
    kubectl("delete", "deployment", "demo-ingest", "-n", NS, "--ignore-not-found")
    out = operator.apply(_owned_deployment("demo-ingest", owner))
    assert out.strip() == "deployment.apps/demo-ingest created"
    deadline = time.monotonic() + 60
    replicasets: list[dict[str, object]] = []
    while not replicasets and time.monotonic() < deadline:
        replicasets = json.loads(kubectl("get", "rs", "-n", NS, "-l", "app=demo-ingest", "-o", "json"))["items"]
        time.sleep(0.5)
    assert len(replicasets) == 1
    assert replicasets[0]["spec"]["replicas"] == 2  # type: ignore[index]
    # Deleting is the garbage collector's job (ownerReferences), not the operator's.
    refused = operator.run("delete", "deployment", "demo-ingest", check=False)
    assert refused.returncode == 1
    assert refused.stderr.strip() == _forbidden("delete", "deployments", "apps", IN_NS, "demo-ingest")
    kubectl("delete", "deployment", "demo-ingest", "-n", NS)


def test_operator_manages_services_configmaps_pdbs_and_events(operator: Kubectl, kubectl: Kubectl) -> None:
    objects = [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "demo-ingest"},
         "spec": {"selector": {"app": "demo-ingest"}, "ports": [{"port": 8080}]}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "demo-job"}, "data": {"parallelism": "2"}},
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "demo-ingest"},
         "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "demo-ingest"}}}},
    ]
    manifest = yaml.safe_dump_all(objects)
    kubectl("delete", "-n", NS, "-f", "-", "--ignore-not-found", stdin=manifest)
    assert operator.apply(manifest).splitlines() == [
        "service/demo-ingest created",
        "configmap/demo-job created",
        "poddisruptionbudget.policy/demo-ingest created",
    ]
    refused = operator.run("delete", "-f", "-", stdin=manifest, check=False)
    assert refused.returncode == 1 and refused.stderr.count("is forbidden") == 3
    assert kubectl("delete", "-n", NS, "-f", "-", stdin=manifest).splitlines() == [
        'service "demo-ingest" deleted from coffee-rt namespace',
        'configmap "demo-job" deleted from coffee-rt namespace',
        'poddisruptionbudget.policy "demo-ingest" deleted from coffee-rt namespace',
    ]
    event = {"apiVersion": "v1", "kind": "Event", "metadata": {"generateName": "demo."},
             "involvedObject": {"apiVersion": "coffee-rt.dev/v1alpha1", "kind": "CoffeePipeline",
                                "name": "demo", "namespace": NS},
             "reason": "Deployed", "message": "ingest deployment created", "type": "Normal"}
    out = operator("create", "-f", "-", stdin=yaml.safe_dump(event))
    assert out.startswith("event/demo.") and out.rstrip().endswith(" created")


def test_operator_reads_a_secret_its_role_names(operator: Kubectl) -> None:
    secret = json.loads(operator("get", "secret", "coffee-rt-postgres", "-o", "json"))
    assert base64.b64decode(secret["data"]["dsn"]).decode() == "postgresql://coffee@pg/coffee"


def _forbidden(verb: str, resource: str, group: str, where: str, name: str = "",
               prefix: str = "Error from server (Forbidden): ") -> str:
    """kubectl's report of the API server's 403 (resources outside the core group are named with it)."""
    qualified = f"{resource}.{group}" if group else resource
    subject = f'{qualified} "{name}"' if name else qualified
    return (f'{prefix}{subject} is forbidden: User "{SA_USER}" cannot {verb} resource '
            f'"{resource}" in API group "{group}" {where}')


IN_NS, IN_OTHER, CLUSTER = f'in the namespace "{NS}"', f'in the namespace "{OTHER}"', "at the cluster scope"

FORBIDDEN = [
    ("secret not named in the role", ["get", "secret", "payments-db"],
     _forbidden("get", "secrets", "", IN_NS, "payments-db")),
    ("listing secrets", ["get", "secrets"], _forbidden("list", "secrets", "", IN_NS)),
    ("a named secret in another namespace", ["get", "secret", "coffee-rt-postgres", "-n", OTHER],
     _forbidden("get", "secrets", "", IN_OTHER, "coffee-rt-postgres")),
    ("pipelines in another namespace", ["get", "cp", "-n", OTHER],
     _forbidden("list", "coffeepipelines", "coffee-rt.dev", IN_OTHER)),
    ("deployments in another namespace", ["create", "deployment", "x", "--image=x", "-n", OTHER],
     _forbidden("create", "deployments", "apps", IN_OTHER, prefix="error: failed to create deployment: ")),
    ("deleting a pipeline", ["delete", "cp", "demo"],
     _forbidden("delete", "coffeepipelines", "coffee-rt.dev", IN_NS, "demo")),
    ("pods", ["get", "pods"], _forbidden("list", "pods", "", IN_NS)),
    ("roles (no escalation)", ["create", "role", "x", "--verb=get", "--resource=secrets"],
     _forbidden("create", "roles", "rbac.authorization.k8s.io", IN_NS)),
    ("namespaces", ["get", "namespaces"], _forbidden("list", "namespaces", "", CLUSTER)),
    ("the CRD", ["delete", "crd", "coffeepipelines.coffee-rt.dev"],
     _forbidden("delete", "customresourcedefinitions", "apiextensions.k8s.io", CLUSTER,
                "coffeepipelines.coffee-rt.dev")),
]


@pytest.mark.parametrize(("argv", "message"), [(a, m) for _, a, m in FORBIDDEN], ids=[w for w, _, _ in FORBIDDEN])
def test_operator_gets_403_outside_its_job(operator: Kubectl, kubectl: Kubectl, argv: list[str], message: str) -> None:
    result = operator.run(*argv, check=False)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr.strip() == message
    # The refused request changed nothing.
    assert kubectl("get", "cp", "demo", "-n", NS, "-o", "name") == "coffeepipeline.coffee-rt.dev/demo\n"
    assert kubectl.run("get", "deployment", "x", "-n", OTHER, check=False).returncode == 1
    assert kubectl.run("get", "crd", "coffeepipelines.coffee-rt.dev", "-o", "name").returncode == 0


def test_block_owner_deletion_needs_finalizers_rights_on_the_owner(operator: Kubectl, kubectl: Kubectl) -> None:
    """Owning a child by a ConfigMap (no configmaps/finalizers in the Role) is refused: the plugin is on."""
    kubectl("delete", "configmap", "owner-probe", "-n", NS, "--ignore-not-found")
    operator("create", "configmap", "owner-probe")
    uid = json.loads(operator("get", "configmap", "owner-probe", "-o", "json"))["metadata"]["uid"]
    owner = {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner-probe", "uid": uid}
    result = operator.run("apply", "-f", "-", stdin=_owned_deployment("probe", owner), check=False)
    assert result.returncode == 1
    assert "cannot set blockOwnerDeletion if an ownerReference refers to a resource you can't set finalizers on" \
        in result.stderr
    assert kubectl.run("get", "deployment", "probe", "-n", NS, check=False).returncode == 1
    kubectl("delete", "configmap", "owner-probe", "-n", NS)


KOPF_PROBE = '''
"""A stand-in operator: what the real one does, as the operator's ServiceAccount, through kopf."""
import base64

import kopf
import kubernetes


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_):
    # Namespaced and least-privilege: no cluster-wide CRD/namespace observation to attempt.
    settings.scanning.disabled = True
    settings.posting.level = 20


@kopf.on.resume("coffee-rt.dev", "v1alpha1", "coffeepipelines")
@kopf.on.create("coffee-rt.dev", "v1alpha1", "coffeepipelines")
def probe(body, spec, name, namespace, patch, **_):
    kubernetes.config.load_kube_config()
    core = kubernetes.client.CoreV1Api()
    ref = spec["sinks"]["postgres"]["secretRef"]
    secret = core.read_namespaced_secret(ref["name"], namespace)
    dsn = base64.b64decode(secret.data[ref["key"]]).decode()
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"{name}-probe"},
                  "data": {"dsn-host": dsn.split("@", 1)[1]}}
    kopf.adopt(config_map, owner=body)  # ownerReference with blockOwnerDeletion: needs <cp>/finalizers
    try:
        core.create_namespaced_config_map(namespace, config_map)
    except kubernetes.client.ApiException as exc:
        if exc.status != 409:
            raise
    kopf.info(body, reason="Probed", message="kopf probe handled this pipeline")
    patch.status["phase"] = "Probed"
'''


def test_kopf_runs_namespaced_with_only_the_shipped_role(
    operator: Kubectl, kubectl: Kubectl, tmp_path: Path
) -> None:
    """kopf --standalone --namespace=coffee-rt as the ServiceAccount: handles a pipeline, no 403 anywhere."""
    kubectl("delete", "configmap", "demo-probe", "-n", NS, "--ignore-not-found")
    kubectl("patch", "cp", "demo", "-n", NS, "--subresource=status", "--type=merge", "-p",
            '{"status": {"phase": "Pending"}}')
    handler = tmp_path / "probe_operator.py"
    handler.write_text(KOPF_PROBE)
    log = tmp_path / "kopf.log"
    kopf_bin = Path(sys.executable).parent / "kopf"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(kopf_bin), "run", "--standalone", f"--namespace={NS}", str(handler)],
            env={**os.environ, "KUBECONFIG": str(operator.kubeconfig)},
            stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 90
        phase = None
        while time.monotonic() < deadline and process.poll() is None:
            phase = json.loads(kubectl("get", "cp", "demo", "-n", NS, "-o", "json"))["status"].get("phase")
            if phase == "Probed":
                break
            time.sleep(0.5)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    text = log.read_text()
    assert phase == "Probed", text[-3000:]
    assert "403" not in text and "Forbidden" not in text and "forbidden" not in text, text[-3000:]
    config_map = json.loads(kubectl("get", "configmap", "demo-probe", "-n", NS, "-o", "json"))
    assert config_map["data"] == {"dsn-host": "pg/coffee"}
    (owner,) = config_map["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["blockOwnerDeletion"]) == ("CoffeePipeline", "demo", True)
    events = json.loads(kubectl("get", "events", "-n", NS, "--field-selector",
                                "involvedObject.name=demo,reason=Probed", "-o", "json"))["items"]
    assert events and events[0]["message"] == "kopf probe handled this pipeline"
