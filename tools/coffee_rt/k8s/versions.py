"""The pinned Kubernetes release. Change it here, then run ``python -m coffee_rt.k8s.gomod``.

The staging modules (``k8s.io/api``, ``k8s.io/client-go``, ...) are published as ``v0.<minor>.<patch>``
for Kubernetes ``v1.<minor>.<patch>``; the wrapper module maps each one to that version.
"""

from __future__ import annotations

import re

KUBERNETES_VERSION = "v1.37.2"

_RELEASE = re.compile(r"^v1\.(\d+)\.(\d+)$")


def parse_release(version: str) -> tuple[int, int]:
    """``v1.37.2`` -> (37, 2). Only plain releases: pre-releases have no published staging tags to map."""
    match = _RELEASE.match(version)
    if not match:
        raise ValueError(f"not a Kubernetes release version (want v1.MINOR.PATCH): {version!r}")
    return int(match.group(1)), int(match.group(2))


def staging_version(version: str) -> str:
    """The published version of every staging module for a Kubernetes release: v1.37.2 -> v0.37.2."""
    minor, patch = parse_release(version)
    return f"v0.{minor}.{patch}"
