"""Kubeconfig files for the local control plane: one for people and tests (token), one per component (cert)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

CONTEXT = "coffee-rt-local"


def render(
    server: str,
    ca_file: Path,
    user: str,
    *,
    token: str | None = None,
    client_cert: Path | None = None,
    client_key: Path | None = None,
    namespace: str = "default",
) -> dict[str, Any]:
    """A single-context kubeconfig; exactly one of ``token`` or the client cert/key pair authenticates."""
    if (token is None) == (client_cert is None or client_key is None):
        raise ValueError("give either a token or a client certificate and key, not both or neither")
    credentials: dict[str, str] = (
        {"token": token} if token is not None
        else {"client-certificate": str(client_cert), "client-key": str(client_key)}
    )
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT, "cluster": {"server": server, "certificate-authority": str(ca_file)}}],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": CONTEXT, "context": {"cluster": CONTEXT, "user": user, "namespace": namespace}}],
        "current-context": CONTEXT,
        "preferences": {},
    }


def write(path: Path, config: dict[str, Any]) -> Path:
    """Write ``config`` readable only by us (it holds a credential)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path
