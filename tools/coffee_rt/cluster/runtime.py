"""Talking to the node's containerd with its own ``ctr``: importing images, and taking every
container down on ``local down`` (containerd leaves its containers running when it stops).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from coffee_rt.errors import PrerequisiteError, StartupError

NAMESPACE = "k8s.io"  # CRI's containerd namespace: what the kubelet sees


def _ctr(socket: Path, *args: str, check: bool = True, timeout: float = 300.0) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("ctr")
    if binary is None:
        raise PrerequisiteError("ctr (Debian's containerd) is needed: run tools/bootstrap.sh")
    result = subprocess.run([binary, "--address", str(socket), "--namespace", NAMESPACE, *args],
                            capture_output=True, text=True, check=False, timeout=timeout)
    if check and result.returncode != 0:
        raise StartupError(f"ctr {' '.join(args[:2])} failed: {(result.stdout + result.stderr).strip()[-2000:]}")
    return result


def image_names(socket: Path) -> set[str]:
    return set(_ctr(socket, "images", "ls", "-q").stdout.split())


def import_archive(socket: Path, archive: Path) -> None:
    """Import a docker-archive (its names kept) so CRI finds it without a registry."""
    _ctr(socket, "images", "import", str(archive))


def _netns_of(socket: Path, container: str) -> str | None:
    info = _ctr(socket, "containers", "info", container, check=False)
    if info.returncode != 0:
        return None
    try:
        namespaces = json.loads(info.stdout)["Spec"]["linux"]["namespaces"]
    except (ValueError, KeyError, TypeError):
        return None
    for ns in namespaces:
        path = str(ns.get("path", ""))
        if ns.get("type") == "network" and path.startswith(("/var/run/netns/", "/run/netns/")):
            return os.path.basename(path)
    return None


def kill_all(socket: Path, timeout: float = 30.0) -> tuple[int, list[str]]:
    """SIGKILL every task and delete it; returns (tasks killed, sandbox netns names to delete)."""
    if not socket.exists():
        return 0, []
    listed = _ctr(socket, "tasks", "ls", "-q", check=False)
    if listed.returncode != 0:
        return 0, []
    tasks = listed.stdout.split()
    netns = sorted({name for task in tasks if (name := _netns_of(socket, task))})
    for task in tasks:
        _ctr(socket, "tasks", "kill", "--all", "--signal", "SIGKILL", task, check=False)
    deadline = time.monotonic() + timeout
    remaining = list(tasks)
    while remaining and time.monotonic() < deadline:
        remaining = [t for t in remaining
                     if _ctr(socket, "tasks", "delete", t, check=False).returncode != 0
                     and t in _ctr(socket, "tasks", "ls", "-q", check=False).stdout.split()]
        if remaining:
            time.sleep(0.5)
    return len(tasks), netns


def unmount_under(root: Path) -> int:
    """Unmount everything mounted below ``root`` (volumes, rootfs overlays, shm), deepest first."""
    prefix = str(root.resolve()) + "/"
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point.startswith(prefix):
            mounts.append(point)
    for point in sorted(mounts, key=len, reverse=True):
        subprocess.run(["umount", "--lazy", point], capture_output=True, check=False)
    return len(mounts)
