"""Every Pod the operator creates meets the "restricted" Pod Security Standard its namespace enforces
(infra labels it pod-security.kubernetes.io/enforce=restricted): the same rule infra's own Pods are
checked with (infra/policy/rules.py)."""

from __future__ import annotations

import copy
import sys
from typing import Any

from operator_builders import BASE

from coffee_operator import children
from coffee_operator.spec import parse_spec
from coffee_operator.status import RebuildStatus
from coffee_rt.paths import REPO_ROOT

if str(REPO_ROOT) not in sys.path:  # infra/ is a folder at the repository root, not an installed package
    sys.path.insert(0, str(REPO_ROOT))

from infra.policy.rules import check, pod_security_restricted, pod_spec


def pipeline() -> dict[str, Any]:
    raw = copy.deepcopy(BASE)
    raw["ingest"] = {**raw["ingest"], "authSecretRef": {"name": "coffee-rt-ingest-auth", "key": "tokens.json"},
                     "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                                   "limits": {"cpu": "1", "memory": "256Mi"}}}
    raw["audit"] = {"image": "coffee-rt/auditor:0.1.0",
                    "resources": {"requests": {"cpu": "50m", "memory": "128Mi"},
                                  "limits": {"cpu": "500m", "memory": "256Mi"}}}
    return raw


def test_every_pod_the_operator_renders_is_restricted() -> None:
    objects = children.render("roastery", parse_spec(pipeline()), {})
    pods = [o for o in objects if pod_spec(o) is not None]
    assert [(o["kind"], o["metadata"]["name"]) for o in pods] == [("Deployment", "roastery-ingest"),
                                                                  ("Deployment", "roastery-auditor")]
    assert [str(v) for o in pods for v in pod_security_restricted(o)] == []
    assert [str(v) for o in objects for v in check(o)] == []  # and every other rule infra's objects pass


def test_the_rebuild_job_is_restricted() -> None:
    raw = pipeline()
    raw["rebuild"] = {"nonce": "n1", "history": {"from": "2026-03-01", "to": "2026-03-05"}}
    rebuild = RebuildStatus(nonce="n1", kind="history", phase="Running", days="2026-03-01..2026-03-05")
    job = children.rebuild_job("roastery", parse_spec(raw), rebuild, "g", {})
    assert pod_spec(job) is not None
    assert [str(v) for v in pod_security_restricted(job)] == []


def test_the_ingest_pod_s_security_context() -> None:
    deployment = children.deployment("roastery", parse_spec(pipeline()))
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert pod["securityContext"] == {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
                                      "seccompProfile": {"type": "RuntimeDefault"}}
    assert container["securityContext"] == {
        "runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001, "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
    assert pod["automountServiceAccountToken"] is False
    assert pod["volumes"] == [{"name": "tokens", "secret": {"secretName": "coffee-rt-ingest-auth",
                                                            "items": [{"key": "tokens.json", "path": "tokens.json"}]}}]


def test_the_rebuild_job_s_user_can_read_its_credential_files() -> None:
    """Secret files are owned by root: the Pod's group (fsGroup) must be able to read them (0440), as its
    non-root user is only in that group. With 0400 and no fsGroup, the rebuild stops at "unreadable"."""
    raw = pipeline()
    raw["rebuild"] = {"nonce": "n1", "history": {"from": "2026-03-01"}}
    rebuild = RebuildStatus(nonce="n1", kind="history", phase="Running", days="2026-03-01..2026-03-01")
    pod = children.rebuild_job("roastery", parse_spec(raw), rebuild, "g", {})["spec"]["template"]["spec"]
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"] == 10001
    assert [(v["name"], v["secret"]["defaultMode"]) for v in pod["volumes"]] == [("postgres", 0o440),
                                                                                  ("redis", 0o440)]
