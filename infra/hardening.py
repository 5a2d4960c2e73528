"""Building blocks every workload uses, so hardening is the default and not a per-file chore.

Containers get a restricted security context (non-root, no privilege escalation, all
capabilities dropped, RuntimeDefault seccomp, read-only root unless the image must write),
requests and limits, and Pods do not mount a ServiceAccount token unless they call the API.
infra/policy checks the same rules over everything the program creates.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from infra.config import Resources

PART_OF = "coffee-rt"
Obj = dict[str, Any]


def labels(name: str, component: str | None = None) -> dict[str, str]:
    out = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": PART_OF,
           "app.kubernetes.io/managed-by": "pulumi"}
    if component:
        out["app.kubernetes.io/component"] = component
    return out


def selector(name: str, component: str | None = None) -> dict[str, str]:
    """The immutable subset of labels a workload selects its Pods by."""
    out = {"app.kubernetes.io/name": name}
    if component:
        out["app.kubernetes.io/component"] = component
    return out


def meta(name: str, namespace: str, lbls: dict[str, str], **extra: Any) -> Obj:
    return {"name": name, "namespace": namespace, "labels": lbls, **extra}


def container_security(uid: int, read_only_root: bool = True) -> Obj:
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": read_only_root,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def pod_security(uid: int, fs_group: int | None = None) -> Obj:
    out: Obj = {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid,
                "seccompProfile": {"type": "RuntimeDefault"}}
    if fs_group is not None:
        out["fsGroup"] = fs_group
        out["fsGroupChangePolicy"] = "OnRootMismatch"
    return out


def container(name: str, image: str, res: Resources, uid: int, *, read_only_root: bool = True, **spec: Any) -> Obj:
    """A container with limits and the restricted security context; ``spec`` adds ports, env, probes..."""
    return {"name": name, "image": image, "imagePullPolicy": "IfNotPresent", "resources": res.manifest(),
            "securityContext": container_security(uid, read_only_root), **spec}


def pod_spec(containers: list[Obj], uid: int, *, fs_group: int | None = None, service_account: str | None = None,
             **spec: Any) -> Obj:
    out: Obj = {"securityContext": pod_security(uid, fs_group), "containers": containers,
                "automountServiceAccountToken": service_account is not None, **spec}
    if service_account:
        out["serviceAccountName"] = service_account
    return out


def tmp_volume(name: str = "tmp", size: str = "256Mi") -> Obj:
    """A writable scratch folder for images running with a read-only root filesystem."""
    return {"name": name, "emptyDir": {"sizeLimit": size}}


def checksum(data: Mapping[str, str]) -> str:
    """A Secret's content as a Pod template annotation: a new content rolls the Pods. (32 hex digits
    of a SHA-256: the content cannot be recovered from it.)"""
    return hashlib.sha256(json.dumps(dict(data), sort_keys=True).encode()).hexdigest()[:32]


def secret_env(name: str, secret: str, key: str) -> Obj:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def field_env(name: str, path: str) -> Obj:
    return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}}


def spread(sel: dict[str, str], replicas: int) -> Obj:
    """Prefer one replica per node: losing a node then costs one replica, which the PDB tolerates."""
    if replicas < 2:
        return {}
    return {"affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                            "labelSelector": {"matchLabels": sel}}}]}}}


def pdb(name: str, namespace: str, sel: dict[str, str], lbls: dict[str, str], replicas: int,
        opts: pulumi.ResourceOptions) -> k8s.policy.v1.PodDisruptionBudget | None:
    """maxUnavailable 1 for workloads with more than one replica (a single replica gets none: it
    would block node drains forever)."""
    if replicas < 2:
        return None
    return k8s.policy.v1.PodDisruptionBudget(
        name, metadata=meta(name, namespace, lbls),
        spec={"maxUnavailable": 1, "selector": {"matchLabels": sel}}, opts=opts)


def child(parent: pulumi.Resource, *depends_on: pulumi.Resource | None) -> pulumi.ResourceOptions:
    return pulumi.ResourceOptions(parent=parent, depends_on=[d for d in depends_on if d is not None])


def pvc_template(name: str, size: str, storage_class: str | None, access_mode: str = "ReadWriteOnce") -> Obj:
    spec: Obj = {"accessModes": [access_mode], "resources": {"requests": {"storage": size}}}
    if storage_class:
        spec["storageClassName"] = storage_class
    return {"metadata": {"name": name}, "spec": spec}
