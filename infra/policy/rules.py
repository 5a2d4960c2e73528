"""The rules every Kubernetes object this program creates must pass.

Plain functions over a manifest (the resource's inputs, camelCase as in YAML), so the unit tests
run them on everything the program registers and the PulumiPolicy pack (``__main__.py`` here)
runs the very same functions in `pulumi preview --policy-pack infra/policy`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

Manifest = dict[str, Any]

# Env names that hold credentials: their value must come from a Secret (valueFrom), never inline.
SECRET_ENV = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|CREDENTIAL|PRIVATE_KEY|DSN|WEBHOOK|AUTH)",
                        re.IGNORECASE)
URL_WITH_PASSWORD = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@\s:]*:[^/@\s]+@", re.IGNORECASE)


@dataclass(frozen=True)
class Violation:
    rule: str
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.rule}: {self.where}: {self.message}"


def pod_spec(manifest: Manifest) -> Manifest | None:
    """The Pod spec inside a workload, or None for objects that run nothing."""
    kind, spec = manifest.get("kind"), manifest.get("spec") or {}
    if kind == "Pod":
        return spec  # type: ignore[no-any-return]
    if kind in ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"):
        return (spec.get("template") or {}).get("spec")  # type: ignore[no-any-return]
    if kind == "CronJob":
        return (((spec.get("jobTemplate") or {}).get("spec") or {}).get("template") or {}).get("spec")  # type: ignore[no-any-return]
    return None


def containers(manifest: Manifest) -> Iterator[tuple[str, Manifest, Manifest]]:
    """(where, container, pod spec) for every container and init container."""
    spec = pod_spec(manifest)
    if spec is None:
        return
    name = f"{manifest.get('kind')}/{(manifest.get('metadata') or {}).get('name')}"
    for field in ("initContainers", "containers"):
        for c in spec.get(field) or []:
            yield f"{name} {field}[{c.get('name')}]", c, spec


def limits_on_every_container(m: Manifest) -> list[Violation]:
    """Every container and init container sets CPU and memory requests and limits."""
    out = []
    for where, c, _ in containers(m):
        res = c.get("resources") or {}
        for part in ("requests", "limits"):
            missing = [r for r in ("cpu", "memory") if not (res.get(part) or {}).get(r)]
            if missing:
                out.append(Violation("limits", where, f"resources.{part} lacks {', '.join(missing)}"))
    return out


def non_root(m: Manifest) -> list[Violation]:
    """Every container runs as a non-root user without privilege escalation."""
    out = []
    for where, c, pod in containers(m):
        pod_ctx, ctx = pod.get("securityContext") or {}, c.get("securityContext") or {}
        non_root_set = ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot"))
        user = ctx.get("runAsUser", pod_ctx.get("runAsUser"))
        if non_root_set is not True:
            out.append(Violation("non-root", where, "runAsNonRoot must be true"))
        if user == 0:
            out.append(Violation("non-root", where, "runAsUser must not be 0"))
        if ctx.get("privileged") or ctx.get("allowPrivilegeEscalation", True) is not False:
            out.append(Violation("non-root", where, "allowPrivilegeEscalation must be false (and not privileged)"))
    return out


def no_plaintext_secrets_in_env(m: Manifest) -> list[Violation]:
    """Credentials reach containers through Secret references, never inline env values."""
    out = []
    for where, c, _ in containers(m):
        for env in c.get("env") or []:
            value = env.get("value")
            if value is None:
                continue
            if SECRET_ENV.search(env.get("name", "")) and value != "":
                if env["name"].endswith(("_AUTH",)) and value in ("none", "token", "basic"):
                    continue  # a mode switch (DASHBOARD_AUTH=token), not a credential
                if env["name"].endswith("_FILE") and value.startswith("/"):
                    continue  # where a mounted Secret's file is (DASHBOARD_TOKENS_FILE), not its content
                out.append(Violation("plaintext-secret", where,
                                     f"env {env['name']} has an inline value; use valueFrom.secretKeyRef"))
            elif isinstance(value, str) and URL_WITH_PASSWORD.search(value):
                out.append(Violation("plaintext-secret", where,
                                     f"env {env['name']} holds a URL with a password; use valueFrom.secretKeyRef"))
    return out


def image_pinned(image: str) -> str | None:
    """Why ``image`` is not pinned, or None when it is (a version tag or a digest)."""
    if "@sha256:" in image:
        return None
    last = image.rsplit("/", 1)[-1]
    if ":" not in last:
        return "has no tag (means latest)"
    if last.rsplit(":", 1)[1] == "latest":
        return "uses the latest tag"
    return None


def no_latest_tags(m: Manifest) -> list[Violation]:
    """Every image is pinned by a version tag or a digest, never latest."""
    out = []
    for where, c, _ in containers(m):
        problem = image_pinned(str(c.get("image", "")))
        if problem:
            out.append(Violation("pinned-image", where, f"image {c.get('image')!r} {problem}"))
    return out


# Pod Security Standards, "restricted" (https://kubernetes.io/docs/concepts/security/pod-security-standards/):
# what the namespace's pod-security.kubernetes.io/enforce=restricted label makes the API server refuse.
RESTRICTED_VOLUMES = frozenset({"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim",
                                "projected", "secret"})
_VOLUME_META = frozenset({"name"})


def pod_security_restricted(m: Manifest) -> list[Violation]:
    """Every Pod meets the "restricted" Pod Security Standard: no host namespaces, ports or paths,
    only the restricted volume types, seccomp RuntimeDefault or Localhost, non-root, no privilege
    escalation, every capability dropped (NET_BIND_SERVICE the only one that may be added back)."""
    spec = pod_spec(m)
    if spec is None:
        return []
    name = f"{m.get('kind')}/{(m.get('metadata') or {}).get('name')}"
    out = []
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            out.append(Violation("restricted", name, f"{field} must not be true"))
    for volume in spec.get("volumes") or []:
        kinds = set(volume) - _VOLUME_META
        if not kinds <= RESTRICTED_VOLUMES:
            out.append(Violation("restricted", name, f"volume {volume.get('name')}: {', '.join(sorted(kinds))} "
                                 "is not a restricted volume type"))
    pod_ctx = spec.get("securityContext") or {}
    if (pod_ctx.get("seccompProfile") or {}).get("type") not in (None, "RuntimeDefault", "Localhost"):
        out.append(Violation("restricted", name, "the Pod's seccompProfile must be RuntimeDefault or Localhost"))
    if pod_ctx.get("runAsUser") == 0:
        out.append(Violation("restricted", name, "the Pod's runAsUser must not be 0"))
    for sysctl in pod_ctx.get("sysctls") or []:
        out.append(Violation("restricted", name, f"sysctl {sysctl.get('name')} is not allowed"))
    for where, c, _ in containers(m):
        ctx = c.get("securityContext") or {}
        seccomp = (ctx.get("seccompProfile") or pod_ctx.get("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            out.append(Violation("restricted", where, "seccompProfile must be RuntimeDefault or Localhost "
                                 "(the container's or the Pod's)"))
        if ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")) is not True:
            out.append(Violation("restricted", where, "runAsNonRoot must be true"))
        if ctx.get("runAsUser", pod_ctx.get("runAsUser")) == 0:
            out.append(Violation("restricted", where, "runAsUser must not be 0"))
        if ctx.get("privileged"):
            out.append(Violation("restricted", where, "privileged must not be true"))
        if ctx.get("allowPrivilegeEscalation") is not False:
            out.append(Violation("restricted", where, "allowPrivilegeEscalation must be false"))
        if ctx.get("procMount", "Default") != "Default":
            out.append(Violation("restricted", where, "procMount must be Default"))
        caps = ctx.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            out.append(Violation("restricted", where, "capabilities.drop must include ALL"))
        added = set(caps.get("add") or []) - {"NET_BIND_SERVICE"}
        if added:
            out.append(Violation("restricted", where, f"capabilities.add may only hold NET_BIND_SERVICE, "
                                 f"not {', '.join(sorted(added))}"))
        if any(port.get("hostPort") for port in c.get("ports") or []):
            out.append(Violation("restricted", where, "hostPort must not be set"))
    return out


RULES: dict[str, Callable[[Manifest], list[Violation]]] = {
    "limits-on-every-container": limits_on_every_container,
    "non-root": non_root,
    "pod-security-restricted": pod_security_restricted,
    "no-plaintext-secrets-in-env": no_plaintext_secrets_in_env,
    "no-latest-tags": no_latest_tags,
}


def check(manifest: Manifest) -> list[Violation]:
    return [v for rule in RULES.values() for v in rule(manifest)]
