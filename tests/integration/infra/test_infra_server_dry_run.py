"""Every object the program would create, applied with `kubectl apply --dry-run=server` to the real
API server (tests/conftest.py `k8s`): admission, schema, defaulting, CRD validation and Pod Security
all run. The namespace and the CoffeePipeline CRD are created for real first (dry-run objects in a
namespace that does not exist are refused). The Prometheus Operator's CRDs are not installed there,
so PrometheusRule / PodMonitor / ServiceMonitor / AlertmanagerConfig are checked by shape in
tests/unit/infra instead.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from coffee_rt.k8s.kubectl import Kubectl
from infra import mockrun

PROMETHEUS_KINDS = {"PrometheusRule", "PodMonitor", "ServiceMonitor", "AlertmanagerConfig"}
SECRETS = {"dev": ["postgresPassword", "redisPassword", "ingestTokens", "dashboardTokensSha256", "credentialsKey"],
           "prod": ["postgresPassword", "redisPassword", "ingestTokens", "dashboardTokensSha256", "credentialsKey",
                    "dashboardSessionKey", "slackWebhookUrl", "s3AccessKeyId", "s3SecretAccessKey"]}


def render(stack: str, namespace: str) -> list[dict[str, object]]:
    values, secrets = mockrun.with_placeholder_secrets(mockrun.stack_values(stack), SECRETS[stack])
    values["coffee-rt:namespace"] = namespace
    return mockrun.run(values, secrets, stack).manifests()


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_every_object_passes_server_side_dry_run(k8s: Path, stack: str) -> None:
    kubectl = Kubectl(k8s)
    namespace = f"infra-dry-run-{stack}"
    manifests = render(stack, namespace)
    first = [m for m in manifests if m["kind"] in ("Namespace", "CustomResourceDefinition")]
    rest = [m for m in manifests if m["kind"] not in ("Namespace", "CustomResourceDefinition", *PROMETHEUS_KINDS)]
    try:
        kubectl.apply(yaml.safe_dump_all(first))
        kubectl.wait_established("coffeepipelines.coffee-rt.dev")
        result = kubectl.run("apply", "--dry-run=server", "-o", "json", "-f", "-", stdin=yaml.safe_dump_all(rest))
        assert result.returncode == 0, result.stderr
        # Pod Security "restricted" is warned about in this namespace: no workload may trigger a warning.
        assert "PodSecurity" not in result.stderr, result.stderr
        out = json.loads(result.stdout)
        items = out["items"] if out.get("kind") == "List" else [out]
        got = sorted((i["kind"], i["metadata"]["name"]) for i in items)
        assert got == sorted((str(m["kind"]), str(m["metadata"]["name"])) for m in rest)  # type: ignore[index]
        assert all(i["metadata"]["namespace"] == namespace for i in items)
        # The server's defaulting ran (a dry-run answer is the object as it would be stored).
        cp = next(i for i in items if i["kind"] == "CoffeePipeline")
        assert cp["spec"]["kafka"]["topics"] == {"orders": "orders", "dlq": "orders.dlq"}
        assert cp["spec"]["job"]["savepointHistory"]["maxCount"] == 5
        sts = {i["metadata"]["name"]: i for i in items if i["kind"] == "StatefulSet"}
        assert sts["kafka"]["spec"]["replicas"] == (1 if stack == "dev" else 3)
        # Nothing but the namespace was stored.
        stored = json.loads(kubectl("get", "deploy,sts,job,secret,cm,svc,networkpolicy", "-n", namespace, "-o", "json"))
        assert [i["metadata"]["name"] for i in stored["items"] if i["kind"] != "ConfigMap"] == []
    finally:
        kubectl.run("delete", "namespace", namespace, "--wait=false", check=False)


def test_a_bad_object_is_refused_by_the_server(k8s: Path) -> None:
    """The dry run is a real check: the same manifests with one broken field fail with it named."""
    kubectl = Kubectl(k8s)
    namespace = "infra-dry-run-bad"
    manifests = render("dev", namespace)
    kubectl.apply(yaml.safe_dump_all([m for m in manifests if m["kind"] == "Namespace"]))
    try:
        sts = next(m for m in manifests if m["kind"] == "StatefulSet" and m["metadata"]["name"] == "kafka")  # type: ignore[index]
        sts["spec"]["replicas"] = -1  # type: ignore[index]
        result = kubectl.run("apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(sts), check=False)
        assert result.returncode == 1
        assert "spec.replicas: Invalid value: -1" in result.stderr
    finally:
        kubectl.run("delete", "namespace", namespace, "--wait=false", check=False)
